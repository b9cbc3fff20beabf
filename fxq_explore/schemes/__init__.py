"""The scheme registry: every requantization scheme, one module each, listed once here.

Every layer reads this registry -- ``requantize``, ``explain``/``compare``, the analysis, the
kernels and ``conv2d``, the end-to-end study, the benchmark, the command line, the widgets and
the README's table. Adding a scheme is one new module here (plus its oracle in
``fxq_explore.oracles`` and, optionally, a C case): see CONTRIBUTING.md.

Examples
--------
>>> import numpy as np
>>> from fxq_explore import schemes
>>> s = schemes.get("tflite_single")
>>> s.tie
'half up, once'
>>> p = s.params(np.array([0.0018843]))
>>> int(p.multiplier[0]), int(p.shift[0])
(2071809760, -9)
"""

from __future__ import annotations

from ._base import Context, Ops, Params, Scheme, TraceOps
from ._registry import (
    BIT_SWEEP,
    DEFAULT,
    EXACT,
    FAMILIES,
    OUTPUT_SWEEP,
    SCHEMES,
    c_schemes,
    engine_schemes,
    get,
    markdown_table,
    multiplier_bit_schemes,
    names,
    scheme_parameters,
    scheme_params,
)
from ._requantize import requantize_numpy
from .pow2 import POW2_MODES, pow2_exponent

__all__ = [
    "BIT_SWEEP",
    "DEFAULT",
    "EXACT",
    "FAMILIES",
    "OUTPUT_SWEEP",
    "multiplier_bit_schemes",
    "POW2_MODES",
    "SCHEMES",
    "Context",
    "Ops",
    "Params",
    "Scheme",
    "TraceOps",
    "c_schemes",
    "engine_schemes",
    "get",
    "markdown_table",
    "names",
    "pow2_exponent",
    "requantize_numpy",
    "scheme_params",
    "scheme_parameters",
]
