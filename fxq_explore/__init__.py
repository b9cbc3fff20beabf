"""fxq_explore: see, measure and explain fixed-point requantization in int8 inference.

Quick start::

    >>> import fxq_explore as fx
    >>> fx.decompose(0.0018843).multiplier
    2071809760
    >>> fx.requantize([70000, 265], 0.0018843, "tflite").tolist()
    [127, 1]

The package is layered (each layer imports only the ones below it): ``core`` (multiplier,
fixed-point primitives, validation) < ``schemes`` (the registry) < ``kernels`` (C binding, conv,
reference conv) < ``requantization`` < ``analysis`` (errors, sweeps, calibration, explain) <
``studies`` (seed replay, end-to-end) / ``bench`` < ``viz`` (plots, widgets) < ``cli``;
``oracles`` imports nothing from the package.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .analysis.explain import compare, explain
from .core.fixedpoint import RoundingMode
from .core.multiplier import CONVENTIONS, Decomposition, decompose, quantize_multiplier
from .requantization import requantize
from .schemes import SCHEMES, scheme_parameters

_LAZY = {
    "conv2d": ("engines.api", "conv2d"),
    "Conv2d": ("engines.api", "Conv2d"),
    "calibrate": ("analysis.calibration", "calibrate"),
}
#: the module names of fxq_explore 0.1, kept as aliases of where they live now
_ALIASES = {
    "plotting": "viz.plotting",
    "widgets": "viz.widgets",
    "seed": "studies.seed",
    "e2e": "studies.e2e",
    "calibration": "analysis.calibration",
    "conv": "kernels.conv",
    "reference": "kernels.reference",
}
_SUBPACKAGES = (
    "analysis",
    "bench",
    "core",
    "engines",
    "kernels",
    "models",
    "oracles",
    "schemes",
    "studies",
    "viz",
)


def __getattr__(name: str) -> Any:
    """Import the heavier parts on first use (no import-time cost or side effects)."""
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    if name in _ALIASES:
        return importlib.import_module(f".{_ALIASES[name]}", __name__)
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fxq_explore' has no attribute {name!r}")


__all__ = [
    "CONVENTIONS",
    "Conv2d",
    "Decomposition",
    "RoundingMode",
    "SCHEMES",
    "__version__",
    "calibrate",
    "compare",
    "conv2d",
    "decompose",
    "explain",
    "quantize_multiplier",
    "requantize",
    "scheme_parameters",
]
