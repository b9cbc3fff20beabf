"""The one place where fxq_explore.models names engines and requantization schemes.

``ENGINES`` maps each engine preset to the arithmetic replay uses for each kind of op; the
values are scheme names of :data:`fxq_explore.SCHEMES` (for the requantization of
convolution / fully-connected accumulators) or op-specific recipe names implemented in
:mod:`fxq_explore.models.ops`. The ONNX Runtime rows are built from the engine presets of
:mod:`fxq_explore.engines` (``onnxruntime-vnni``: exact accumulation; ``onnxruntime-avx2``: the
``mlas_u8s8`` int16 pair saturation of MLAS's u8s8 kernels without VNNI), and the alias
``onnxruntime`` resolves to the one this CPU runs (:func:`resolve`).
"""

from __future__ import annotations

from .. import schemes
from ..engines import presets as _engine_presets

# scheme names from the registry (fxq_explore.schemes), the ones replay uses
TFLITE = schemes.tflite.SCHEME.name
TFLITE_OPTIMIZED = schemes.tflite_optimized.SCHEME.name
TFLITE_SINGLE = schemes.tflite_single.SCHEME.name
FLOAT32_RNE = schemes.float32_rne.SCHEME.name
TVM_TONEAREST = schemes.tvm_tonearest.SCHEME.name
XNNPACK_RNDNU = schemes.xnnpack_rndnu.SCHEME.name
EXACT = schemes.EXACT.name

#: engine preset -> {"format", "gemm", "fc", "add", "mean", ...}. ``gemm``: scheme for
#: CONV_2D / DEPTHWISE_CONV_2D (and QLinearConv); ``fc``: scheme or recipe for
#: FULLY_CONNECTED; ``add``/``mean``: op-specific recipes (see ops.py); ``accumulate``
#: (ONNX): the accumulation model of u8 x s8 QLinearConv / QLinearMatMul / QGemm, taken from
#: the engine preset ``preset`` of :data:`fxq_explore.engines.PRESETS` (s8s8 and u8u8 stay
#: exact: MLAS widens those operands before multiplying).
ENGINES: dict[str, dict[str, str]] = {
    "tflite-reference": {
        "format": "tflite",
        "gemm": TFLITE,
        "fc": "double_round_half_away",  # reference FC: round(double(acc) * double scale)
        "add": "tflite_reference",
        "mean": "tflite_reference",
        "mul": "tflite_reference",
        "scale": "double",
    },
    "tflite-optimized": {
        "format": "tflite",
        "gemm": TFLITE_OPTIMIZED,  # ruy / NEON(-on-SSE) kernels: RHU then RHU
        "fc": TFLITE_OPTIMIZED,
        "add": "tflite_neon",
        "mean": "tflite_reference",  # keep_dims=False MEAN falls back to the reference code
        "mul": "tflite_reference",
        "scale": "double",
    },
    "litert-xnnpack": {
        "format": "tflite",
        "gemm": FLOAT32_RNE,
        "fc": FLOAT32_RNE,
        "add": "xnnpack",
        "mean": "xnnpack",
        "mul": "xnnpack",
        "scale": "float32",
    },
}


def _ort_row(preset_name: str) -> dict[str, str]:
    p = _engine_presets.PRESETS[preset_name]
    return {
        "format": "onnx",
        "gemm": p.scheme,
        "fc": p.scheme,
        "add": "mlas_avx2",
        "mean": "mlas",
        "scale": "float32",
        "accumulate": p.accumulate,
        "preset": p.name,
    }


# ONNX Runtime on each CPU class: VNNI (exact) first, then AVX2 / AVX-512 without VNNI
# (MLAS u8s8 int16 pair saturation); "onnxruntime" is an alias resolved for this CPU
ENGINES["onnxruntime-vnni"] = _ort_row("onnxruntime-vnni")
ENGINES["onnxruntime-avx2"] = _ort_row("onnxruntime-avx2")

#: alias -> engine of ``fxq_explore.engines`` resolved for the CPU at hand (``detect()``)
ALIASES = ("onnxruntime",)

#: runtime name (fingerprint) -> engine preset that is expected to reproduce it
RUNTIMES = {
    "litert-reference": "tflite-reference",
    "litert-optimized": "tflite-optimized",
    "litert-xnnpack": "litert-xnnpack",
    "onnxruntime": "onnxruntime",  # an alias: resolve() names the preset for this CPU
}

#: schemes tried per requantization site by fingerprint (beyond the engines' own)
CANDIDATE_SCHEMES = (TFLITE, TFLITE_OPTIMIZED, TFLITE_SINGLE, TVM_TONEAREST, FLOAT32_RNE,
                     XNNPACK_RNDNU)  # fmt: skip


def engines_for(fmt: str) -> list[str]:
    """Engine presets that can replay a model of format ``fmt`` ("tflite" / "onnx"); the
    aliases (``"onnxruntime"``) are not listed, they resolve to one of these."""
    return [k for k, v in ENGINES.items() if v["format"] == fmt]


def resolve(name: str, flags=None) -> str:
    """The :data:`ENGINES` key ``name`` stands for: itself, or for ``"onnxruntime"`` the
    preset ONNX Runtime runs on this CPU (``fxq_explore.engines.detect``; ``flags``: CPU
    feature flags to resolve for instead of this machine's)."""
    if name in ALIASES:
        return _engine_presets.resolve(name, flags=flags).name
    if name not in ENGINES:
        valid = ", ".join(list(ALIASES) + list(ENGINES))
        raise ValueError(f"engine must be one of {valid}; got {name!r}")
    return name


#: the engine whose recipes a :func:`scheme_row` keeps for the ops other than conv / FC
SCHEME_ROW_BASE = {"onnx": "onnxruntime-vnni", "tflite": "tflite-reference"}


def scheme_row(scheme: str, fmt: str = "onnx") -> dict[str, str]:
    """A recipe row that requantizes with a registry scheme instead of an engine's arithmetic.

    Parameters
    ----------
    scheme : str
        A scheme of :data:`fxq_explore.SCHEMES` (``"exact"``, ``"tflite"``, ...): the
        requantization of every convolution / fully-connected / matmul accumulator.
    fmt : {"onnx", "tflite"}
        The format of the model it replays.

    Returns
    -------
    dict
        The row of :data:`SCHEME_ROW_BASE` [fmt] (``onnxruntime-vnni``, ``tflite-reference``:
        exact accumulation, their recipes for add, mean, ...) with ``gemm`` and ``fc`` set to
        ``scheme`` and ``scale`` to ``"float64"``: the effective scale ``s_in * s_w / s_out``
        in double from the scales as the graph stores them (float32 in a file, where it
        equals TFLite's ``"double"``; float64 in an in-memory graph).

    Raises
    ------
    ValueError
        ``scheme`` not in the registry, or ``fmt`` not a format (naming the valid values).
    """
    schemes.get(scheme, "scheme")
    if fmt not in SCHEME_ROW_BASE:
        raise ValueError(f"unknown fmt {fmt!r}; valid: {', '.join(map(repr, SCHEME_ROW_BASE))}")
    row = dict(ENGINES[SCHEME_ROW_BASE[fmt]], gemm=scheme, fc=scheme, scale="float64")
    row.pop("preset", None)  # no engine preset: nothing of fxq_explore.engines applies
    if fmt == "onnx":
        row["accumulate"] = "exact"
    return row


def engine(name: str) -> dict[str, str]:
    """The recipe row of ``name`` (an alias is resolved for this CPU first)."""
    return ENGINES[resolve(name)]
