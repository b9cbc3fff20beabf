"""Run one quantized convolution on the real engines: ONNX Runtime, PyTorch fbgemm and oneDNN.

Each runner takes the same integer arrays as :func:`fxq_explore.engines.conv2d` (NCHW uint8
activations, OIHW int8 or uint8 weights, int32 bias, scales and zero points) and returns the
engine's uint8 output, NCHW. The engines are imported inside the functions: this module imports
nothing heavy, and an engine that is not installed raises :class:`EngineUnavailable` with the
reason.

:func:`run_in_subprocess` runs a runner in a fresh interpreter with extra environment variables,
for the ISA overrides that the engines read once at start-up: ``ONEDNN_MAX_CPU_ISA`` (oneDNN,
``src/common/dnnl_thread``/``cpu_isa_traits``) and ``FBGEMM_ENABLE_INSTRUCTIONS`` (FBGEMM
``src/Utils.cc``, ``fbgemmEnvGetIsa``: ``AVX2``, ``AVX512``, ``AVX512_E1``, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "EngineUnavailable",
    "available",
    "run_onnxruntime",
    "run_torch",
    "run_engine",
    "run_in_subprocess",
    "run_cases_in_subprocess",
]


class EngineUnavailable(RuntimeError):
    """The engine (or the requested kernel path) cannot run here; the message says why."""


def available(engine: str) -> tuple[bool, str]:
    """Whether ``engine`` ("onnxruntime", "fbgemm", "onednn") can run here, and why not.

    Returns
    -------
    (bool, str)
        ``(True, version)`` or ``(False, reason)``.
    """
    if engine == "onnxruntime":
        try:
            import onnx  # noqa: F401
            import onnxruntime
        except ImportError as e:
            return False, f"onnxruntime/onnx not installed ({e})"
        return True, f"onnxruntime {onnxruntime.__version__}"
    if engine in ("fbgemm", "onednn"):
        try:
            import torch
        except ImportError as e:
            return False, f"torch not installed ({e})"
        if engine not in torch.backends.quantized.supported_engines:
            return False, f"torch {torch.__version__} has no quantized engine {engine!r}"
        return True, f"torch {torch.__version__}"
    raise ValueError(f"engine must be 'onnxruntime', 'fbgemm' or 'onednn', got {engine!r}")


def _pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def run_onnxruntime(
    x,
    w,
    bias,
    *,
    x_scale: float,
    x_zero_point: int,
    w_scale,
    w_zero_point=0,
    y_scale: float,
    y_zero_point: int,
    stride=1,
    padding=0,
    groups: int = 1,
):
    """ONNX Runtime ``QLinearConv`` (CPU execution provider, one thread) on these arrays.

    The weights, scales and zero points are graph initializers (constants), as a quantized model
    has them, so ORT pre-packs the weights and takes the kernel path it would take in a real
    model (``qlinearconv.cc``: ``TryConvSymPrepack`` when all weight zero points are 0).

    Parameters
    ----------
    x : ndarray of uint8, (N, C, H, W)
    w : ndarray of int8 (u8s8 path) or uint8 (u8u8 path), (K, C/groups, R, S)
    bias : ndarray of int32, (K,), or None
    x_scale, y_scale : float
    x_zero_point, y_zero_point : int in [0, 255]
    w_scale : float or ndarray of float (K,)
    w_zero_point : int or ndarray (K,), in the range of ``w.dtype``

    Returns
    -------
    ndarray of uint8, (N, K, OH, OW)
    """
    ok, why = available("onnxruntime")
    if not ok:
        raise EngineUnavailable(why)
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    x = np.ascontiguousarray(x, dtype=np.uint8)
    w = np.ascontiguousarray(w)
    k = w.shape[0]
    ws = np.broadcast_to(np.asarray(w_scale, np.float32), (k,)).copy()
    wz = np.broadcast_to(np.asarray(w_zero_point, w.dtype), (k,)).copy()
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    inits = [
        numpy_helper.from_array(np.array(x_scale, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(x_zero_point, np.uint8), "x_zp"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(ws, "w_scale"),
        numpy_helper.from_array(wz, "w_zp"),
        numpy_helper.from_array(np.array(y_scale, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(y_zero_point, np.uint8), "y_zp"),
    ]
    ins = ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"]
    if bias is not None:
        inits.append(numpy_helper.from_array(np.asarray(bias, np.int32), "bias"))
        ins.append("bias")
    node = helper.make_node(
        "QLinearConv",
        ins,
        ["y"],
        strides=[sh, sw],
        pads=[ph, pw, ph, pw],
        group=int(groups),
        kernel_shape=list(w.shape[2:]),
    )
    graph = helper.make_graph(
        [node],
        "qlinearconv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(
        onnx._serialize(model) if hasattr(onnx, "_serialize") else model.SerializeToString(),
        so,
        providers=["CPUExecutionProvider"],
    )
    return sess.run(None, {"x": x})[0]


def run_torch(
    engine: str,
    x,
    w,
    bias,
    *,
    x_scale: float,
    x_zero_point: int,
    w_scale,
    w_zero_point=0,
    y_scale: float,
    y_zero_point: int,
    stride=1,
    padding=0,
    groups: int = 1,
):
    """PyTorch ``torch.ao.nn.quantized.Conv2d`` with ``torch.backends.quantized.engine = engine``.

    Weights are quantized per output channel (``torch.per_channel_affine``, axis 0) when
    ``w_scale`` is an array, per tensor otherwise. PyTorch keeps the bias in float: the int32
    ``bias`` is passed as ``bias * x_scale * w_scale`` (float32 products, then widened).

    Returns
    -------
    ndarray of uint8, (N, K, OH, OW)
    """
    ok, why = available(engine)
    if not ok:
        raise EngineUnavailable(why)
    import torch

    torch.backends.quantized.engine = engine
    torch.set_num_threads(1)
    x = np.ascontiguousarray(x, dtype=np.uint8)
    w = np.ascontiguousarray(w, dtype=np.int8)
    k = w.shape[0]
    per_channel = np.ndim(w_scale) > 0
    ws = np.broadcast_to(np.asarray(w_scale, np.float64), (k,)).copy()
    wz = np.broadcast_to(np.asarray(w_zero_point, np.int64), (k,)).copy()
    if per_channel:
        qw = torch._make_per_channel_quantized_tensor(
            torch.from_numpy(w), torch.from_numpy(ws), torch.from_numpy(wz), 0
        )
    else:
        qw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(ws[0]), int(wz[0]))
    conv = torch.ao.nn.quantized.Conv2d(
        w.shape[1] * groups,
        k,
        tuple(w.shape[2:]),
        stride=_pair(stride),
        padding=_pair(padding),
        groups=int(groups),
        bias=bias is not None,
    )
    fb = None
    if bias is not None:
        s = np.float32(x_scale) * ws.astype(np.float32)
        fb = torch.from_numpy((np.asarray(bias, np.float32) * s).astype(np.float32))
    conv.set_weight_bias(qw, fb)
    conv.scale = float(y_scale)
    conv.zero_point = int(y_zero_point)
    qx = torch._make_per_tensor_quantized_tensor(
        torch.from_numpy(x), float(x_scale), int(x_zero_point)
    )
    with torch.no_grad():
        y = conv(qx)
    return y.int_repr().numpy().copy()


def run_engine(engine: str, *args, **kwargs):
    """``run_onnxruntime`` for "onnxruntime", ``run_torch(engine, ...)`` for "fbgemm"/"onednn"."""
    if engine == "onnxruntime":
        return run_onnxruntime(*args, **kwargs)
    if engine in ("fbgemm", "onednn"):
        return run_torch(engine, *args, **kwargs)
    raise ValueError(f"engine must be 'onnxruntime', 'fbgemm' or 'onednn', got {engine!r}")


def run_in_subprocess(engine: str, x, w, bias, *, env: dict | None = None, timeout=300, **kwargs):
    """:func:`run_engine` in a fresh Python process with ``env`` added to the environment.

    The ISA overrides (``ONEDNN_MAX_CPU_ISA=AVX2``, ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``) are read
    when the engine initialises, so they must be set before it is imported: hence a new process.

    Returns
    -------
    ndarray of uint8
    """
    case = dict(kwargs, x=x, w=w, bias=bias)
    return run_cases_in_subprocess(engine, [case], env=env, timeout=timeout)[0]


#: QEMU's CPU model of an AMD EPYC Zen 3 (AVX2 and FMA, no AVX-512, no VNNI)
EMULATED_AVX2_CPU = "EPYC-Milan"


def emulator(cpu: str = EMULATED_AVX2_CPU) -> list[str] | None:
    """The command prefix that runs a Python process on an emulated x86 CPU (``qemu-x86_64
    -cpu cpu``: user-mode QEMU answers CPUID as that CPU does, so an engine that dispatches on
    CPUID takes the kernels it would take there), or ``None`` when ``qemu-x86_64`` is not
    installed or this is not an x86-64 machine. ``/proc/cpuinfo`` stays the host's, so
    :func:`fxq_explore.engines.detect` is not meaningful inside it; name presets explicitly."""
    import platform
    import shutil

    exe = shutil.which("qemu-x86_64")
    if exe is None or platform.machine() not in ("x86_64", "AMD64"):
        return None
    return [exe, "-cpu", cpu]


def run_cases_in_subprocess(
    engine: str, cases, *, env: dict | None = None, timeout=300, prefix=None
):
    """Several :func:`run_engine` calls in one fresh process (one engine start-up).

    Parameters
    ----------
    engine : {"onnxruntime", "fbgemm", "onednn"}
    cases : list of dict
        Each with keys ``x``, ``w``, ``bias`` and the keyword arguments of the runner.
    env : dict, optional
    prefix : list of str, optional
        A command the interpreter runs under, e.g. :func:`emulator` ``()`` for another CPU.

    Returns
    -------
    list of ndarray of uint8
    """
    with tempfile.TemporaryDirectory() as d:
        meta = []
        arrays = {}
        for i, case in enumerate(cases):
            scalars = {}
            for key, v in case.items():
                if v is None:
                    continue
                if np.ndim(v) > 0:
                    arrays[f"{i}__{key}"] = np.asarray(v)
                else:
                    scalars[key] = v.item() if hasattr(v, "item") else v
            meta.append(scalars)
        np.savez(Path(d) / "in.npz", **arrays)
        (Path(d) / "kw.json").write_text(json.dumps(meta))
        full_env = dict(os.environ)
        full_env.update(env or {})
        code = f"from fxq_explore.engines.runners import _main; _main({engine!r}, {str(d)!r})"
        p = subprocess.run(
            [*(prefix or []), sys.executable, "-c", code],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if p.returncode != 0:
            raise EngineUnavailable(f"{engine} subprocess failed: {p.stderr.strip()[-2000:]}")
        out = np.load(Path(d) / "out.npz")
        return [out[f"y{i}"] for i in range(len(cases))]


def _main(engine: str, d: str) -> None:
    """Child side of :func:`run_cases_in_subprocess`."""
    dd = Path(d)
    z = np.load(dd / "in.npz")
    meta = json.loads((dd / "kw.json").read_text())
    outs = {}
    for i, kwargs in enumerate(meta):
        for key in z.files:
            idx, name = key.split("__", 1)
            if int(idx) == i:
                kwargs[name] = z[key]
        x, w, bias = kwargs.pop("x"), kwargs.pop("w"), kwargs.pop("bias", None)
        outs[f"y{i}"] = run_engine(engine, x, w, bias, **kwargs)
    np.savez(dd / "out.npz", **outs)
