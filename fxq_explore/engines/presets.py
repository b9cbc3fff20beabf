"""Engine presets: what each engine computes on each CPU class, and which one runs here.

A :class:`Preset` names one engine on one CPU class (kernel path) and fixes everything that
decides its output bits: the accumulation model (:mod:`fxq_explore.kernels.accumulate`), the
requantization scheme, how the multiplier is derived from the tensor scales, the rounding
details and the dtypes the kernel accepts. :func:`detect` reads the CPU features the way the
engines read them (CPUID bits, here through the kernel's ``/proc/cpuinfo`` flags, which are
those bits) and resolves ``onnxruntime``, ``torch-fbgemm`` and ``torch-onednn`` to the preset
this CPU would run.

Sources (read, not copied): ONNX Runtime ``onnxruntime/core/mlas/lib/platform.cpp``
(``MLAS_PLATFORM::MLAS_PLATFORM``: AVX2 = CPUID.1:ECX.FMA and CPUID.7:EBX bit 5; AVX-VNNI =
CPUID.(7,1):EAX bit 4; AVX-512 core = CPUID.7:EBX F/DQ/BW/VL; AVX512VNNI = CPUID.7:ECX bit 11;
AMX = CPUID.7:EDX bits 24, 25), ``qlinearconv.cc`` (``ComputeOutputScale``: float32
``x_scale * w_scale / y_scale``; bias added to the int32 accumulator), ``quantize.cpp``
(``MlasRequantizeOutput``); FBGEMM ``src/Utils.cc`` (``fbgemmInstructionSet``,
``FBGEMM_ENABLE_INSTRUCTIONS``), ``src/FbgemmConv.cc`` (``takeDepthWiseFastPath``),
``GenerateI8Depthwise.cc`` (AVX2 only, also on VNNI CPUs); PyTorch
``aten/src/ATen/native/quantized/cpu/qconv.cpp`` (``GetQuantizationParams``:
``act_times_w_scale = act_scale * w_scale``, ``output_multiplier = act_times_w_scale /
out_scale``, float32; float bias divided by ``act_times_w_scale`` in FBGEMM's
``ReQuantizeOutput``); oneDNN ``src/cpu/x64/jit_brgemm_conv_utils.cpp`` (s8s8 compensation and
``scale_adjust = 0.5`` only for signed activations without VNNI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..core import validate
from ..kernels import _ffi as kernels
from ..kernels.accumulate import AccumulationModel, conv2d_accumulate, get_model
from ..requantization import requantize
from ..schemes import (
    SCHEMES,
    float32_rne,
    tflite,
    tflite_optimized,
    tflite_single,
    tvm_tonearest,
    xnnpack_rndnu,
)

__all__ = [
    "Preset",
    "PRESETS",
    "ALIASES",
    "SCHEME_NAMES",
    "Detection",
    "cpu_flags",
    "detect",
    "resolve",
    "table",
    "format_table",
    "conv2d",
    "multiplier",
    "accumulators",
    "accumulator_layer",
    "ACC_BACKENDS",
]

#: The requantization schemes the presets use, taken from the scheme registry (no names retyped)
F32 = float32_rne.SCHEME.name
TFL = tflite.SCHEME.name
TFL_SINGLE = tflite_single.SCHEME.name
TFL_OPT = tflite_optimized.SCHEME.name
TVM_NEAR = tvm_tonearest.SCHEME.name
XNN_RNDNU = xnnpack_rndnu.SCHEME.name
SCHEME_NAMES: dict[str, str] = {n: n for n in (F32, TFL, TFL_SINGLE, TFL_OPT, TVM_NEAR, XNN_RNDNU)}


@dataclass(frozen=True)
class Preset:
    """One engine on one CPU class.

    Attributes
    ----------
    name : str
        ``"onnxruntime-avx2"``, ...
    engine : str
        The engine as users name it.
    cpu_class : str
        ``"avx2"`` (AVX2 or AVX-512 without VNNI), ``"vnni"``, ``"any"``.
    kernel_path : str
        The kernel that runs (u8s8 / u8u8 / VNNI ...).
    accumulate : str
        Accumulation model name (:data:`fxq_explore.kernels.accumulate.MODELS`).
    requantization : str
        Key of :data:`SCHEME_NAMES`.
    multiplier : str
        How the engine derives the requantization multiplier (``"f32(x*w/y)"``,
        ``"f32(f32(x*w)/y)"``, ``"double"``).
    rounding : str
        Rounding details in words.
    x_dtypes, w_dtypes : tuple of str
        Activation and weight dtypes the kernel takes.
    bias : str
        ``"int32"`` (added to the accumulator) or ``"float"`` (PyTorch: float bias).
    float_ops : str
        ``""`` (the scheme alone), ``"fbgemm"`` (``f32(acc) + f32(bias_f / act_times_w_scale)``,
        times ``f32(act_times_w_scale / y_scale)``: FBGEMM ``ReQuantizeOutput``) or ``"onednn"``
        (``(f32(acc) * x_scale) * w_scale + bias_f``, times ``f32(1 / y_scale)``, plus the
        output zero point in float, then RNE: oneDNN applies the source, weight and destination
        scales one after the other and adds the zero point before converting; established
        against torch's onednn engine, which this matches bit for bit where a single float32
        multiplier misses single outputs).
    runner : str or None
        Real engine behind it in :mod:`fxq_explore.engines.runners`.
    env : dict
        Environment that makes the real engine take this path on a CPU with more features.
    sources : tuple of str
    """

    name: str
    engine: str
    cpu_class: str
    kernel_path: str
    accumulate: str
    requantization: str
    multiplier: str
    rounding: str
    x_dtypes: tuple = ("uint8",)
    w_dtypes: tuple = ("int8",)
    bias: str = "int32"
    float_ops: str = ""
    runner: str | None = None
    env: dict = field(default_factory=dict)
    sources: tuple = ()

    @property
    def model(self) -> AccumulationModel:
        """The :class:`AccumulationModel`."""
        return get_model(self.accumulate)

    @property
    def scheme(self) -> str:
        """The requantization scheme name."""
        return SCHEME_NAMES[self.requantization]


_RNE = "f32(acc + bias) * f32 scale, RNE (cvtps2dq), + zero point, clamp"
_TORCH_RNE = "f32(acc) + f32(bias_f / act_times_w_scale), * f32 multiplier, RNE, + zp, clamp"
_DNN_RNE = "((f32(acc) * x_scale) * w_scale + bias_f) * f32(1/y_scale) + zp in f32, RNE, saturate"
_ORT_SRC = (
    "onnxruntime/core/mlas/lib/platform.cpp",
    "onnxruntime/core/providers/cpu/quantization/qlinearconv.cc",
    "onnxruntime/core/mlas/lib/convsym.cpp",
    "onnxruntime/core/mlas/lib/qgemm_kernel_avx2.cpp",
)
_FBGEMM_SRC = (
    "FBGEMM src/Utils.cc",
    "FBGEMM src/PackAWithIm2Col.cc",
    "FBGEMM src/GenerateKernelU8S8S32ACC32.cc",
    "FBGEMM src/GenerateI8Depthwise.cc",
    "FBGEMM src/FbgemmConv.cc",
)
_ONEDNN_SRC = ("oneDNN src/cpu/x64/jit_brgemm_conv_utils.cpp", "oneDNN src/cpu/x64/cpu_isa_traits")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "onnxruntime-avx2",
            "onnxruntime",
            "avx2",
            "MLAS u8s8 AVX2 / AVX-512BW (vpmaddubsw): ConvSym if w_zp == 0, else im2col + QGemm",
            "mlas_u8s8",
            F32,
            "f32(x*w/y)",
            _RNE,
            runner="onnxruntime",
            sources=_ORT_SRC,
        ),
        Preset(
            "onnxruntime-vnni",
            "onnxruntime",
            "vnni",
            "MLAS u8s8 AVX-VNNI / AVX512-VNNI / AMX (vpdpbusd, tdpbusd)",
            "exact",
            F32,
            "f32(x*w/y)",
            _RNE,
            runner="onnxruntime",
            sources=_ORT_SRC,
        ),
        Preset(
            "onnxruntime-u8u8",
            "onnxruntime",
            "any",
            "MLAS u8u8 (operands widened to int16, vpmaddwd)",
            "exact",
            F32,
            "f32(x*w/y)",
            _RNE,
            w_dtypes=("uint8",),
            runner="onnxruntime",
            sources=_ORT_SRC,
        ),
        Preset(
            "torch-fbgemm-avx2",
            "torch-fbgemm",
            "avx2",
            "FBGEMM acc32 AVX2 / AVX-512 (vpmaddubsw), depthwise AVX2 JIT",
            "pairs_flat_k",
            F32,
            "f32(f32(x*w)/y)",
            _TORCH_RNE,
            bias="float",
            float_ops="fbgemm",
            runner="fbgemm",
            env={"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"},
            sources=_FBGEMM_SRC,
        ),
        Preset(
            "torch-fbgemm-vnni",
            "torch-fbgemm",
            "vnni",
            "FBGEMM acc32 AVX512-VNNI (vpdpbusd); depthwise fast path still AVX2 (vpmaddubsw)",
            "fbgemm_vnni",
            F32,
            "f32(f32(x*w)/y)",
            _TORCH_RNE,
            bias="float",
            float_ops="fbgemm",
            runner="fbgemm",
            sources=_FBGEMM_SRC,
        ),
        Preset(
            "torch-onednn-avx2",
            "torch-onednn",
            "avx2",
            "oneDNN jit int8 conv AVX2 / AVX-512 core (vpmaddubsw)",
            "pairs_per_tap",
            F32,
            "x, w, 1/y applied in turn",
            _DNN_RNE,
            bias="float",
            float_ops="onednn",
            runner="onednn",
            env={"ONEDNN_MAX_CPU_ISA": "AVX2"},
            sources=_ONEDNN_SRC,
        ),
        Preset(
            "torch-onednn-vnni",
            "torch-onednn",
            "vnni",
            "oneDNN brgemm int8 AVX2-VNNI / AVX512-VNNI / AMX",
            "exact",
            F32,
            "x, w, 1/y applied in turn",
            _DNN_RNE,
            bias="float",
            float_ops="onednn",
            runner="onednn",
            sources=_ONEDNN_SRC,
        ),
        Preset(
            "tflite-reference",
            "tflite",
            "any",
            "reference/integer_ops/conv.h (int32 MACs)",
            "exact",
            "tflite",
            "double",
            "QuantizeMultiplier (double, RHA), SRDHM (RHU) then RoundingDivideByPOT (RHA)",
            x_dtypes=("int8",),
            sources=("tensorflow/lite/kernels/internal/reference/integer_ops/conv.h",),
        ),
        Preset(
            "tflite-optimized",
            "tflite",
            "any",
            "optimized_ops (ruy, int32 MACs), NEON rounding shift",
            "exact",
            TFL_OPT,
            "double",
            "SRDHM (RHU) then rounding right shift (RHU)",
            x_dtypes=("int8",),
            sources=("tensorflow/lite/kernels/internal/optimized/integer_ops/conv.h",),
        ),
        Preset(
            "litert-xnnpack",
            "litert-xnnpack",
            "any",
            "XNNPACK qs8/qc8w conv, fp32 requantization",
            "exact",
            F32,
            "f32(x*w/y)",
            "f32(acc) * f32 scale, clamp, magic-bias / cvtps2dq RNE, + zero point",
            x_dtypes=("int8",),
            sources=("XNNPACK src/microparams-init.c",),
        ),
        Preset(
            "tvm-upward",
            "tvm",
            "any",
            "Relay QNN requantize rounding=UPWARD (int64)",
            "exact",
            TFL_SINGLE,
            "double",
            "one rounding, half up: (acc*q + 2^(t-1)) >> t",
            x_dtypes=("int8", "uint8"),
            sources=("apache/tvm src/relay/qnn/utils.cc",),
        ),
        Preset(
            "tvm-tonearest",
            "tvm",
            "any",
            "Relay QNN requantize rounding=TONEAREST (int64)",
            "exact",
            TVM_NEAR,
            "double",
            "one rounding, half away from zero",
            x_dtypes=("int8", "uint8"),
            sources=("apache/tvm src/relay/qnn/utils.cc",),
        ),
        Preset(
            "cmsis-nn",
            "cmsis-nn",
            "any",
            "arm_convolve_s8 (int32 MACs), arm_nn_requantize",
            "exact",
            "tflite",
            "double",
            "doubling high mul (RHU) then divide_by_power_of_two (RHA)",
            x_dtypes=("int8",),
            sources=("ARM-software/CMSIS-NN Include/arm_nnsupportfunctions.h",),
        ),
    )
}

#: Names resolved per CPU by :func:`detect`.
ALIASES = ("onnxruntime", "torch-fbgemm", "torch-onednn")


def cpu_flags() -> frozenset:
    """CPU feature flags of this machine, as the Linux kernel reports the CPUID bits.

    Falls back to the C extension's own CPUID reading (``fxq_explore.kernels.info()``) where
    ``/proc/cpuinfo`` is not readable.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:  # pragma: no cover - non-Linux
        names = {"avx512vnni": "avx512_vnni"}
        return frozenset(names.get(f, f) for f in kernels.info()["cpu_features"])
    except Exception:  # pragma: no cover
        return frozenset()


@dataclass(frozen=True)
class Detection:
    """What one engine would run on this CPU, and why."""

    engine: str
    preset: str
    kernel: str
    reason: str


def _ort(flags) -> Detection:
    # platform.cpp: later checks override earlier ones, in this order
    if not ({"avx2", "fma"} <= flags):
        return Detection(
            "onnxruntime",
            "onnxruntime-vnni",
            "SSE (widened int16 products)",
            "no AVX2+FMA: MLAS keeps its SSE kernels, which widen before multiplying (exact)",
        )
    kernel, why, vnni = "Avx2", "AVX2+FMA (CPUID.1:ECX bit 12, CPUID.7:EBX bit 5)", False
    if "avx_vnni" in flags:
        kernel, why, vnni = "AvxVnni", "AVX-VNNI (CPUID.(7,1):EAX bit 4)", True
    if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags:
        kernel, why, vnni = "Avx512Core", "AVX-512 F/DQ/BW/VL, no AVX512-VNNI", False
        if "avx512_vnni" in flags:
            kernel, why, vnni = "Avx512Vnni", "AVX512-VNNI (CPUID.7:ECX bit 11)", True
    qgemm = kernel
    if {"amx_tile", "amx_int8"} <= flags:
        qgemm, why = "Amx", why + "; QGemm u8s8 on AMX (CPUID.7:EDX bits 24, 25)"
    preset = "onnxruntime-vnni" if vnni else "onnxruntime-avx2"
    exact = "exact" if vnni else "int16 pair saturation"
    return Detection(
        "onnxruntime",
        preset,
        f"ConvSym{kernel} / QGemm {qgemm}",
        f"{why} -> u8s8 {exact}; uint8 weights -> onnxruntime-u8u8 (exact)",
    )


_FBGEMM_ISA = {"AVX2": "avx2", "AVX512": "avx512", "AVX512_256": "avx512", "AVX512_E1": "vnni"}


def _fbgemm(flags, env) -> Detection:
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags and "avx512_vnni" in flags:
        isa = "vnni"
    elif {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        isa = "avx512"
    elif "avx2" in flags:
        isa = "avx2"
    else:
        isa = "none"
    why = f"cpuinfo: {isa}"
    forced = env.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper()
    if forced in _FBGEMM_ISA:
        order = ["none", "avx2", "avx512", "vnni"]
        if order.index(_FBGEMM_ISA[forced]) <= order.index(isa):
            isa = _FBGEMM_ISA[forced]
            why += f", capped by FBGEMM_ENABLE_INSTRUCTIONS={forced}"
    if isa == "vnni":
        return Detection(
            "torch-fbgemm",
            "torch-fbgemm-vnni",
            "acc32 AVX512-VNNI; depthwise AVX2 JIT",
            why + " -> GEMM exact, depthwise fast path saturates (AVX2 JIT on every CPU)",
        )
    if isa == "none":
        return Detection("torch-fbgemm", "torch-fbgemm-vnni", "none", "no AVX2: fbgemm cannot run")
    return Detection(
        "torch-fbgemm",
        "torch-fbgemm-avx2",
        f"acc32 {isa.upper()} (vpmaddubsw)",
        why + " -> int16 pair saturation (no VNNI)",
    )


_ONEDNN_CAP = {
    "SSE41": 0,
    "AVX": 0,
    "AVX2": 1,
    "AVX2_VNNI": 2,
    "AVX2_VNNI_2": 2,
    "AVX512_CORE": 1,
    "AVX512_CORE_VNNI": 3,
    "AVX512_CORE_BF16": 3,
    "AVX10_1_512": 3,
    "AVX512_CORE_FP16": 3,
    "AVX512_CORE_AMX": 3,
    "AVX10_1_512_AMX": 3,
    "AVX10_1_512_AMX_FP16": 3,
    "AVX10_2_512_AMX_2": 3,
}


def _onednn(flags, env) -> Detection:
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    why = "AVX512-VNNI/AVX-VNNI present" if vnni else "no VNNI"
    cap = env.get("ONEDNN_MAX_CPU_ISA", env.get("DNNL_MAX_CPU_ISA", "")).upper()
    if vnni and cap in _ONEDNN_CAP and _ONEDNN_CAP[cap] < 2:
        vnni, why = False, why + f", capped by ONEDNN_MAX_CPU_ISA={cap}"
    if "avx2" not in flags:
        return Detection("torch-onednn", "torch-onednn-vnni", "SSE4.1", "no AVX2 (not modelled)")
    if vnni:
        return Detection("torch-onednn", "torch-onednn-vnni", "vpdpbusd", why + " -> exact")
    return Detection(
        "torch-onednn",
        "torch-onednn-avx2",
        "jit x8s8s32x (vpmaddubsw)",
        why + " -> int16 pair saturation, channel pairs per tap",
    )


def detect(flags=None, env=None) -> dict:
    """What each x86 engine would run on this CPU, and why.

    Parameters
    ----------
    flags : iterable of str, optional
        CPU flags (``/proc/cpuinfo`` names: ``avx2``, ``fma``, ``avx512bw``, ``avx512_vnni``,
        ``avx_vnni``, ``amx_int8``, ...). Default: this machine's (:func:`cpu_flags`).
    env : mapping, optional
        Environment for the engines' ISA overrides (default ``os.environ``).

    Returns
    -------
    dict
        ``{"onnxruntime": Detection, "torch-fbgemm": Detection, "torch-onednn": Detection}``.

    Examples
    --------
    >>> detect({"avx2", "fma"}, env={})["onnxruntime"].preset
    'onnxruntime-avx2'
    >>> detect({"avx2", "fma", "avx_vnni"}, env={})["onnxruntime"].preset
    'onnxruntime-vnni'
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    env = os.environ if env is None else env
    return {
        "onnxruntime": _ort(flags),
        "torch-fbgemm": _fbgemm(flags, env),
        "torch-onednn": _onednn(flags, env),
    }


def resolve(engine: str, *, w_dtype=None, flags=None, env=None) -> Preset:
    """The :class:`Preset` for ``engine`` (a preset name, or an alias resolved for this CPU).

    Raises
    ------
    ValueError
        Unknown engine (the message lists them).
    """
    if isinstance(engine, Preset):
        return engine
    if engine in PRESETS:
        return PRESETS[engine]
    if engine not in ALIASES:
        raise ValueError(
            f"unknown engine {engine!r}; valid: {', '.join(list(ALIASES) + list(PRESETS))}"
        )
    if engine == "onnxruntime" and w_dtype is not None and np.dtype(w_dtype) == np.uint8:
        return PRESETS["onnxruntime-u8u8"]
    return PRESETS[detect(flags, env)[engine].preset]


def multiplier(preset: Preset, x_scale, w_scale, y_scale) -> np.ndarray:
    """The engine's requantization scale, derived from the tensor scales as the engine does.

    ``"f32(x*w/y)"``: ORT ``ComputeOutputScale`` (float32 ``x * w / y``, left to right);
    ``"f32(f32(x*w)/y)"``: PyTorch ``GetQuantizationParams`` (the same float32 operations);
    ``"double"``: TFLite ``PopulateConvolutionQuantizationParams`` (double, passed as float64).
    """
    if preset.multiplier == "double":
        return (np.float64(x_scale) * np.asarray(w_scale, np.float64) / np.float64(y_scale)).astype(
            np.float64
        )
    xs, ys = np.float32(x_scale), np.float32(y_scale)
    ws = np.asarray(w_scale, dtype=np.float32)
    return ((xs * ws).astype(np.float32) / ys).astype(np.float32).astype(np.float64)


def _dtype_name(a) -> str:
    return np.dtype(np.asarray(a).dtype).name


def conv2d(
    x,
    w,
    bias=None,
    *,
    scale=None,
    x_scale=None,
    w_scale=None,
    y_scale=None,
    x_zero_point: int = 0,
    w_zero_point=0,
    out_zero_point: int = 0,
    stride=1,
    padding=0,
    groups: int = 1,
    engine: str | None = None,
    scheme: str | None = None,
    accumulate: str | None = None,
    out_dtype: str | None = None,
    acc_backend: str = "auto",
    acc_path: str | None = None,
    _acc_layer=None,
):
    """Quantized conv2d as an engine computes it (accumulation model + requantization).

    Either ``engine`` (a preset name or ``"onnxruntime"``, ``"torch-fbgemm"``,
    ``"torch-onednn"``, resolved for this CPU by :func:`detect`), or an explicit ``scheme``
    (and optional ``accumulate``, default ``"exact"``) -- not both.

    Parameters
    ----------
    x : ndarray of uint8 or int8, (N, C, H, W)
    w : ndarray of int8 (or uint8 for ``onnxruntime-u8u8``), (K, C // groups, R, S)
    bias : ndarray of int32 (K,) or None
        Integer bias in units of ``x_scale * w_scale`` (PyTorch presets turn it into the float
        bias PyTorch keeps, ``bias * f32(x_scale * w_scale)``, and back as PyTorch does).
    scale : float or ndarray (K,), optional
        Effective scale ``s_x s_w / s_y``; or give ``x_scale``, ``w_scale``, ``y_scale`` and the
        preset derives it as its engine does (needed for bit-exactness with the engine).
    x_zero_point, w_zero_point, out_zero_point : int (w_zero_point may be per channel)
    stride, padding, groups : see :func:`fxq_explore.kernels.accumulate.conv2d_accumulate`
    engine, scheme, accumulate : str
    out_dtype : str, optional
        Default ``"uint8"`` for uint8 activations, else ``"int8"``.
    acc_backend : {"auto", "c", "numpy"}
        Who forms the accumulators when the model pairs on this layer: the C pair-saturating
        kernel (:mod:`fxq_explore.kernels.pairsat`, the engines' instructions), the numpy model
        (the oracle), or ``"auto"``: C for uint8 x int8 ndarrays when the extension is built,
        else numpy. See :func:`accumulators`. Where the C kernel runs and the preset
        requantizes with float32 RNE and no float bias (ORT; torch without a bias), the int32
        bias and the requantization run in C too (same bits: tests/kernels/test_pairsat.py).
    acc_path : {"scalar", "avx2"}, optional
        The C kernel's path (default: AVX2 where the CPU has it).

    Returns
    -------
    ndarray, (N, K, OH, OW)

    Raises
    ------
    ValueError
        ``engine`` together with ``scheme``/``accumulate``; unknown engine (lists them); an
        engine that does not take these dtypes (names the argument); missing scales.
    """
    if engine is not None and (scheme is not None or accumulate is not None):
        raise ValueError(
            "engine and scheme/accumulate are mutually exclusive: an engine preset fixes both "
            f"(got engine={engine!r}, scheme={scheme!r}, accumulate={accumulate!r})"
        )
    xd, wd = _dtype_name(x), _dtype_name(w)
    if engine is None:
        if scheme is None:
            raise ValueError("give engine=... or scheme=... (see fxq_explore.engines.PRESETS)")
        if scheme not in SCHEME_NAMES.values():
            if scheme not in SCHEMES:
                raise ValueError(f"unknown scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
        model = get_model("exact" if accumulate is None else accumulate)
        if model.saturates and (xd != "uint8" or wd != "int8"):
            raise ValueError(
                f"accumulate={model.name!r} models u8 x s8 kernels: x must be uint8 and w int8 "
                f"(got x {xd}, w {wd}); use accumulate='exact'"
            )
        preset = None
        sch = scheme
    else:
        preset = resolve(engine, w_dtype=np.asarray(w).dtype)
        if xd not in preset.x_dtypes:
            raise ValueError(
                f"x: engine {preset.name!r} takes activations of dtype {', '.join(preset.x_dtypes)}"
                f"; got {xd}"
            )
        if wd not in preset.w_dtypes:
            raise ValueError(
                f"w: engine {preset.name!r} takes weights of dtype {', '.join(preset.w_dtypes)}; "
                f"got {wd}"
            )
        model = preset.model
        sch = preset.scheme
        if preset.name == "torch-fbgemm-avx2" and _fbgemm_groupwise(np.shape(w), padding, groups):
            raise ValueError(
                "groups: FBGEMM sends this grouped layer to its groupwise fast path "
                "(Fbgemm.cc fbgemmOptimizedGConv: C/G == K/G in {2, 4, 8, 16}, 3x3, pad 1), whose "
                "pairing without VNNI is not modelled here (FBGEMM_ENABLE_INSTRUCTIONS does not "
                "reach it, so it could not be observed on a VNNI CPU)"
            )
    if scale is None:
        if x_scale is None or w_scale is None or y_scale is None:
            raise ValueError("give scale=..., or all of x_scale, w_scale and y_scale")
        if preset is not None:
            scale = multiplier(preset, x_scale, w_scale, y_scale)
        else:
            scale = np.float64(x_scale) * np.asarray(w_scale, np.float64) / np.float64(y_scale)
    if out_dtype is None:
        out_dtype = "uint8" if xd == "uint8" else "int8"
    have_scales = x_scale is not None and w_scale is not None and y_scale is not None
    float_ops = (
        preset is not None
        and bool(preset.float_ops)
        and (bias is not None or (preset.float_ops == "onednn" and have_scales))
    )
    if not float_ops:
        fast = _c_conv2d(
            x,
            w,
            bias,
            scale,
            sch,
            model,
            out_zero_point=out_zero_point,
            out_dtype=out_dtype,
            x_zero_point=x_zero_point,
            w_zero_point=w_zero_point,
            stride=stride,
            padding=padding,
            groups=groups,
            backend=acc_backend,
            path=acc_path,
            layer=_acc_layer,
        )
        if fast is not None:
            return fast
    acc = accumulators(
        x,
        w,
        x_zero_point=x_zero_point,
        w_zero_point=w_zero_point,
        stride=stride,
        padding=padding,
        groups=groups,
        accumulate=model,
        backend=acc_backend,
        path=acc_path,
        layer=_acc_layer,
    )
    k = acc.shape[1]
    scale_arr = np.broadcast_to(np.asarray(scale, np.float64), (k,))
    if float_ops:
        return _torch_requantize(
            preset.float_ops,
            acc,
            bias,
            x_scale,
            w_scale,
            y_scale,
            scale_arr,
            out_zero_point,
            out_dtype,
        )
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64).reshape(1, -1, 1, 1)
    return requantize(acc, scale_arr, sch, zero_point=out_zero_point, dtype=out_dtype, axis=1)


# ---------------------------------------------------------------------------------------------
# the accumulators: the C pair-saturating kernel where it applies, the numpy model otherwise

ACC_BACKENDS = ("auto", "c", "numpy")


def _c_pairsat():
    """:mod:`fxq_explore.kernels.pairsat` if the C extension is built, else None."""
    try:
        from ..kernels import pairsat

        pairsat.available_paths()
    except ImportError:
        return None
    return pairsat


def accumulator_layer(
    w,
    *,
    accumulate,
    x_zero_point: int = 0,
    w_zero_point=0,
    stride=1,
    padding=0,
    groups: int = 1,
    backend: str = "auto",
):
    """A :class:`~fxq_explore.kernels.pairsat.PairSatConv2d` with ``w`` packed in the model's
    pair order, if ``backend`` runs this layer in C (see :func:`accumulators`), else None."""
    backend = validate.choice("acc_backend", backend, ACC_BACKENDS)
    model = get_model(accumulate)
    if backend == "numpy" or not model.saturates:
        return None
    ps = _c_pairsat()
    if ps is None:
        if backend == "c":
            raise ValueError("acc_backend='c': the C extension is not built (use 'numpy')")
        return None
    if backend == "auto" and not (
        isinstance(w, np.ndarray)
        and w.dtype == np.int8
        and w.ndim == 4
        and int(np.prod(w.shape[1:])) <= ps.MAX_REDUCTION
    ):
        return None
    layer = ps.PairSatConv2d(
        w,
        x_zero_point=x_zero_point,
        w_zero_point=w_zero_point,
        stride=stride,
        padding=padding,
        groups=groups,
        accumulate=model,
    )
    if not model.saturates_on(w.shape, layer.stride, layer.padding, layer.groups):
        return None  # e.g. MLAS depthwise: exact, the numpy path
    return layer


def accumulators(
    x,
    w,
    *,
    x_zero_point: int = 0,
    w_zero_point=0,
    stride=1,
    padding=0,
    groups: int = 1,
    accumulate="exact",
    backend: str = "auto",
    path: str | None = None,
    layer=None,
):
    """int64 accumulators (N, K, OH, OW) under ``accumulate``, no bias.

    ``backend="numpy"``: :func:`~fxq_explore.kernels.accumulate.conv2d_accumulate` (the oracle).
    ``"c"``: the C pair-saturating kernel wherever the model pairs on this layer (uint8 x and
    int8 w ndarrays required; ValueError/TypeError naming the argument otherwise). ``"auto"``:
    C where it applies and the extension is built, numpy otherwise. Layers the model computes
    exactly (``saturates_on`` false, e.g. MLAS depthwise) and exact models use numpy. ``layer``:
    a prepacked :func:`accumulator_layer` for these weights (skips the packing).
    """
    backend = validate.choice("acc_backend", backend, ACC_BACKENDS)
    if layer is None and backend != "numpy":
        layer = accumulator_layer(
            w,
            accumulate=accumulate,
            x_zero_point=x_zero_point,
            w_zero_point=w_zero_point,
            stride=stride,
            padding=padding,
            groups=groups,
            backend=backend,
        )
    if layer is not None and backend != "numpy":
        if backend == "c" or (isinstance(x, np.ndarray) and x.dtype == np.uint8):
            return layer(x, path=path)
    if path is not None and backend == "numpy":
        raise ValueError(f"acc_path={path!r} applies to the C pair-saturating kernel only")
    return conv2d_accumulate(
        x,
        w,
        x_zero_point=x_zero_point,
        w_zero_point=w_zero_point,
        stride=stride,
        padding=padding,
        groups=groups,
        accumulate=accumulate,
    )


#: requantization schemes the all-C path runs (the engines' float32 RNE)
_C_REQUANT = (F32,)


def _c_conv2d(
    x, w, bias, scale, sch, model, *, out_zero_point, out_dtype, backend, path, layer, **geo
):
    """The whole conv in C when it can be: pair-saturating accumulators (int32, NHWC), the int32
    bias (when no int32 overflow is possible: the accumulator bound plus max |bias|), the C
    float32 RNE requantization. None where any condition fails (the caller takes the general
    path, whose result this equals bit for bit)."""
    if backend == "numpy" or sch not in _C_REQUANT or out_dtype not in ("uint8", "int8"):
        return None
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8):
        return None
    if layer is None:
        layer = accumulator_layer(w, accumulate=model, backend=backend, **geo)
        if layer is None:
            return None
    k, cg, r, s = layer.wshape
    b = None
    if bias is not None:
        b = np.asarray(bias)
        if b.dtype.kind not in "iu" or b.shape not in ((k,), ()):
            return None
        bound = (255 * 255 + 255 * 128) * cg * r * s + int(np.abs(b.astype(np.int64)).max())
        if bound > 2**31 - 1:
            return None
    scale_arr = np.asarray(scale, np.float64)
    if scale_arr.ndim > 1 or (scale_arr.ndim == 1 and scale_arr.shape[0] not in (1, k)):
        return None
    acc = layer.accumulators_nhwc(x, path=path)
    if b is not None:
        acc += np.broadcast_to(b, (k,)).astype(np.int32)  # no wrap: bounded above
    y = requantize(
        acc,
        np.broadcast_to(scale_arr, (k,)),
        sch,
        zero_point=out_zero_point,
        dtype=out_dtype,
        axis=3,
        backend="c",
    )
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def _fbgemm_groupwise(wshape, padding, groups) -> bool:
    """FBGEMM ``fbgemmOptimizedGConv`` (``src/Fbgemm.cc``), 2-D, ignoring its G_together test."""
    k, cg, r, s = wshape
    pd = (padding, padding) if np.ndim(padding) == 0 else tuple(padding)
    return (
        groups > 1
        and cg == k // groups
        and cg in (2, 4, 8, 16)
        and r == s == 3
        and all(int(p) == 1 for p in pd)
    )


def _torch_requantize(ops, acc, bias, x_scale, w_scale, y_scale, scale, zp, out_dtype):
    """PyTorch's float bias and the engines' float operations (see ``Preset.float_ops``)."""
    if x_scale is None or w_scale is None:
        raise ValueError("PyTorch presets with a bias need x_scale and w_scale (float bias)")
    f32 = np.float32
    k = acc.shape[1]
    xs = f32(x_scale)
    ws = np.broadcast_to(np.asarray(w_scale, f32), (k,)).reshape(1, -1, 1, 1)
    atw = (xs * ws).astype(f32)
    a = acc.astype(f32)
    if bias is None:
        bias_f = np.zeros((1, k, 1, 1), f32)
    else:
        # the float bias the runners (and a PyTorch user) hand to torch: bias * f32(x * w)
        bias_f = (np.asarray(bias, f32).reshape(1, -1, 1, 1) * atw).astype(f32)
    if ops == "fbgemm":
        v = (a + (bias_f / atw).astype(f32)).astype(f32)
        v = (v * scale.astype(f32).reshape(1, -1, 1, 1)).astype(f32)
    else:  # onednn
        if y_scale is None:
            raise ValueError("torch-onednn presets need y_scale (oneDNN multiplies by 1/y)")
        v = ((a * xs).astype(f32) * ws).astype(f32)
        v = ((v + bias_f).astype(f32) * (f32(1) / f32(y_scale))).astype(f32)
        # the destination zero point is added in float, before the conversion to integer
        info = np.iinfo(np.dtype(out_dtype))
        v = (v + f32(zp)).astype(f32)
        return np.clip(np.rint(v), info.min, info.max).astype(out_dtype)
    info = np.iinfo(np.dtype(out_dtype))
    return np.clip(np.rint(v).astype(np.int64) + int(zp), info.min, info.max).astype(out_dtype)


def table(flags=None, env=None) -> list[dict]:
    """One row per preset: name, engine, CPU class, kernel path, accumulation, scheme,
    multiplier, dtypes, and whether :func:`detect` picks it on this CPU."""
    picked = {d.preset for d in detect(flags, env).values()}
    rows = []
    for p in PRESETS.values():
        rows.append(
            {
                "preset": p.name,
                "engine": p.engine,
                "cpu": p.cpu_class,
                "kernel": p.kernel_path,
                "accumulate": p.accumulate,
                "scheme": p.scheme,
                "multiplier": p.multiplier,
                "x": "/".join(p.x_dtypes),
                "w": "/".join(p.w_dtypes),
                "here": "yes" if p.name in picked else "",
            }
        )
    return rows


def format_table(flags=None, env=None) -> str:
    """:func:`table` as text, followed by what :func:`detect` found and why."""
    rows = table(flags, env)
    cols = ["preset", "cpu", "accumulate", "scheme", "multiplier", "x", "w", "here"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines.append("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        lines.append("  ".join(str(r[c]).ljust(widths[c]) for c in cols).rstrip())
    lines.append("")
    for name, d in detect(flags, env).items():
        lines.append(f"{name} -> {d.preset}: {d.kernel}; {d.reason}")
    return "\n".join(lines)
