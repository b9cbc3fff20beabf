"""fxq_explore: see, measure and explain fixed-point requantization in int8 inference.

Quick start::

    >>> import fxq_explore as fx
    >>> fx.decompose(0.0018843).multiplier
    2071809760
    >>> fx.requantize([70000, 265], 0.0018843, "tflite").tolist()
    [127, 1]

``fxq_explore.requantize`` is the function; the module of the same name is reached with
``from fxq_explore.requantize import SCHEMES, scheme_parameters``.
"""

from .explainers import compare, explain
from .fixedpoint import RoundingMode
from .multiplier import CONVENTIONS, Decomposition, decompose, quantize_multiplier
from .requantize import SCHEMES, requantize, scheme_parameters

__version__ = "0.1.0"

_LAZY = {
    "conv2d": ("conv", "conv2d"),
    "Conv2d": ("conv", "Conv2d"),
    "calibrate": ("calibration", "calibrate"),
}


def __getattr__(name):
    """Import the heavier parts on first use (no import-time cost or side effects)."""
    import importlib

    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    if name in (
        "analysis",
        "seed",
        "kernels",
        "plotting",
        "plotting_calibration",
        "widgets",
        "calibration",
        "e2e",
        "conv",
        "reference",
    ):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fxq_explore' has no attribute {name!r}")


__all__ = [
    "CONVENTIONS",
    "Conv2d",
    "Decomposition",
    "RoundingMode",
    "SCHEMES",
    "compare",
    "conv2d",
    "calibrate",
    "decompose",
    "explain",
    "quantize_multiplier",
    "requantize",
    "scheme_parameters",
]
