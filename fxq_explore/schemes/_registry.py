"""The registry proper: the list of scheme modules and look-ups by name."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from ..core import validate
from . import (
    exact,
    float32_rne,
    pow2,
    tflite,
    tflite_optimized,
    tflite_single,
    tvm_2019_float,
    tvm_tonearest,
    xnnpack_rndna,
    xnnpack_rndnu,
)
from ._base import Array, Params, Scheme
from .pow2 import POW2_MODES

_MODULES = (
    float32_rne,
    tvm_2019_float,
    pow2,
    tflite,
    tflite_optimized,
    tflite_single,
    tvm_tonearest,
    xnnpack_rndnu,
    xnnpack_rndna,
    exact,
)

#: name -> Scheme, in the order the tables show them (engine schemes first, ``exact`` last).
SCHEMES: MappingProxyType[str, Scheme] = MappingProxyType(
    {m.SCHEME.name: m.SCHEME for m in _MODULES}
)
#: the yardstick every other scheme is measured against
EXACT: Scheme = exact.SCHEME
#: the default scheme of ``requantize``/``explain``: TFLite's reference arithmetic
DEFAULT: str = tflite.SCHEME.name
#: the four families the chapters compare: float, power of two, double and single rounding
FAMILIES: tuple[str, ...] = tuple(m.SCHEME.name for m in (float32_rne, pow2, tflite, tflite_single))
#: the default schemes of a multiplier-width sweep (any ``uses_multiplier_bits`` scheme works)
BIT_SWEEP: tuple[str, ...] = tuple(m.SCHEME.name for m in (tflite, tflite_single, tvm_tonearest))
#: the default schemes of an output-width sweep
OUTPUT_SWEEP: tuple[str, ...] = tuple(
    m.SCHEME.name for m in (float32_rne, tflite, tflite_single, pow2)
)


def names() -> tuple[str, ...]:
    """Every scheme name, in table order."""
    return tuple(SCHEMES)


def engine_schemes() -> tuple[str, ...]:
    """The schemes that reproduce an engine (all but the exact yardstick)."""
    return tuple(n for n, s in SCHEMES.items() if s is not EXACT)


def multiplier_bit_schemes() -> tuple[str, ...]:
    """The schemes whose integer multiplier width can be varied (``multiplier_bits``)."""
    return tuple(n for n, s in SCHEMES.items() if s.uses_multiplier_bits)


def c_schemes() -> tuple[str, ...]:
    """The schemes the C kernels implement."""
    return tuple(n for n, s in SCHEMES.items() if s.c_scheme is not None)


def markdown_table() -> str:
    """The README's scheme table, generated from the registry (``fxq-explore schemes --markdown``)."""
    lines = ["| scheme | arithmetic | ties | engines |", "|---|---|---|---|"]
    for s in SCHEMES.values():
        lines.append(f"| `{s.name}` | `{s.formula}` | {s.tie} | {s.engines} |")
    return "\n".join(lines)


def get(name: str, argument: str = "scheme") -> Scheme:
    """The registered scheme called ``name`` (ValueError listing them otherwise)."""
    if isinstance(name, Scheme):
        return name
    validate.choice(argument, name, names())
    return SCHEMES[name]


def scheme_parameters(
    scale: ArrayLike, scheme: str, *, pow2_mode: str = "nearest", multiplier_bits: int = 32
) -> dict[str, Array]:
    """The integer/float parameters a kernel needs for ``scheme``, one entry per channel.

    Returns a dict of 1-D arrays: ``{"multiplier", "shift"}`` (TFLite convention, int64) for the
    fixed-point schemes -- with the shift capped at ``bits - 2`` for ``tflite_single`` as
    ``TFLITE_SINGLE_ROUNDING`` does --, ``{"scale_f32"}`` for the float schemes,
    ``{"exponent"}`` for ``pow2`` and ``{"mantissa", "right_shift"}`` for ``xnnpack_rndnu``.

    Examples
    --------
    >>> p = scheme_parameters(0.0018843, "tflite_single")
    >>> int(p["multiplier"][0]), int(p["shift"][0])
    (2071809760, -9)
    """
    return scheme_params(
        scale, scheme, pow2_mode=pow2_mode, multiplier_bits=multiplier_bits
    ).arrays()


def scheme_params(
    scale: ArrayLike, scheme: str, *, pow2_mode: str = "nearest", multiplier_bits: int = 32
) -> Params:
    """Like :func:`scheme_parameters`, as the scheme's typed parameter dataclass."""
    s = get(scheme)
    validate.choice("pow2_mode", pow2_mode, POW2_MODES)
    bits = validate.int_in_range("multiplier_bits", multiplier_bits, 2, 32)
    arr, _ = validate.scales("scale", scale)
    return s.params(np.ascontiguousarray(arr.ravel()), multiplier_bits=bits, pow2_mode=pow2_mode)
