"""Engines as they run on the CPU at hand: accumulation models, presets, saturation.

``conv2d(x, w, bias, ..., engine="onnxruntime")`` computes what that engine outputs on this CPU
(or on a named CPU class: ``"onnxruntime-avx2"``, ``"torch-fbgemm-vnni"``, ...); ``detect()``
says which kernel path each engine takes here and why; ``format_table()`` lists the presets;
:mod:`.saturation` predicts and measures the int16 pair saturation of x86 u8s8 kernels without
VNNI; :mod:`.runners` runs the real engines; :mod:`.plots` draws the results.

Where a model pairs, :func:`accumulators` (and so ``conv2d``) runs the C pair-saturating kernel
(:mod:`fxq_explore.kernels.pairsat`, the engines' ``vpmaddubsw`` + ``vpmaddwd``); the numpy
:func:`conv2d_accumulate` is its oracle (``acc_backend="numpy"``).
"""

from ..kernels.accumulate import MODELS, AccumulationModel, PairStats, conv2d_accumulate
from .presets import (
    ALIASES,
    PRESETS,
    SCHEME_NAMES,
    Detection,
    Preset,
    accumulator_layer,
    accumulators,
    conv2d,
    cpu_flags,
    detect,
    format_table,
    multiplier,
    resolve,
    table,
)

__all__ = [
    "ALIASES",
    "MODELS",
    "PRESETS",
    "SCHEME_NAMES",
    "AccumulationModel",
    "Detection",
    "PairStats",
    "Preset",
    "accumulator_layer",
    "accumulators",
    "conv2d",
    "conv2d_accumulate",
    "cpu_flags",
    "detect",
    "format_table",
    "multiplier",
    "resolve",
    "table",
]
