"""The one place where fxq_explore.models names engines and requantization schemes.

``ENGINES`` maps each engine preset to the arithmetic replay uses for each kind of op; the
values are scheme names of :data:`fxq_explore.SCHEMES` (for the requantization of
convolution / fully-connected accumulators) or op-specific recipe names implemented in
:mod:`fxq_explore.models.ops`. When the engines preset registry (``fxq_explore.engines``)
lands, this table is the single thing to point at it.
"""

from __future__ import annotations

from .. import schemes

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
#: FULLY_CONNECTED; ``add``/``mean``: op-specific recipes (see ops.py).
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
    "onnxruntime": {
        "format": "onnx",
        "gemm": FLOAT32_RNE,
        "fc": FLOAT32_RNE,
        "add": "mlas_avx2",
        "mean": "mlas",
        "scale": "float32",
    },
}

#: runtime name (fingerprint) -> engine preset that is expected to reproduce it
RUNTIMES = {
    "litert-reference": "tflite-reference",
    "litert-optimized": "tflite-optimized",
    "litert-xnnpack": "litert-xnnpack",
    "onnxruntime": "onnxruntime",
}

#: schemes tried per requantization site by fingerprint (beyond the engines' own)
CANDIDATE_SCHEMES = (TFLITE, TFLITE_OPTIMIZED, TFLITE_SINGLE, TVM_TONEAREST, FLOAT32_RNE,
                     XNNPACK_RNDNU)  # fmt: skip


def engines_for(fmt: str) -> list[str]:
    """Engine presets that can replay a model of format ``fmt`` ("tflite" / "onnx")."""
    return [k for k, v in ENGINES.items() if v["format"] == fmt]


def engine(name: str) -> dict[str, str]:
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {name!r}")
    return ENGINES[name]
