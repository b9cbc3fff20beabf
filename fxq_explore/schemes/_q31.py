"""Parameters shared by the Q31 fixed-point schemes: ``scale ~= multiplier * 2^(shift - 31)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..core.multiplier import decompose
from ._base import Array, Params, Step, describe_q31


@dataclass(frozen=True)
class Q31Params(Params):
    """Integer multiplier in ``[2^(bits-2), 2^(bits-1))`` (or 0: flushed) and a signed shift
    (positive = left, TFLite's convention), one per channel; ``bits`` is the multiplier width."""

    multiplier: Array
    shift: Array
    bits: int = 32
    convention: str = "tflite"
    _scalars: ClassVar[tuple[str, ...]] = ("bits", "convention")


def q31_params(scales: Array, bits: int, convention: str, cap_shift: bool = False) -> Q31Params:
    """``decompose`` each scale; ``cap_shift``: saturate shifts above ``bits - 2`` as
    ``TFLITE_SINGLE_ROUNDING`` does (multiplier ``2^(bits-1) - 1``, shift ``bits - 2``)."""
    d = decompose(scales, bits=bits, convention=convention)
    q = np.atleast_1d(np.asarray(d.multiplier, dtype=np.int64)).copy()
    e = np.atleast_1d(np.asarray(d.shift, dtype=np.int64)).copy()
    if cap_shift:
        cap = e > bits - 2
        q[cap], e[cap] = (1 << (bits - 1)) - 1, bits - 2
    return Q31Params(q, e, bits, convention)


def describe(p: Q31Params, scale: float, note: str = "") -> list[Step]:
    q, e = int(p.multiplier.ravel()[0]), int(p.shift.ravel()[0])
    return [describe_q31(q, e, p.bits, p.convention, scale, note)]


def c_q31_supports(p: Q31Params, max_shift: int) -> str | None:
    """What the C kernels accept of Q31 parameters (None: all of it)."""
    if p.bits != 32:
        return f"multiplier_bits={p.bits} has no C kernel (only 32)"
    m, s = p.multiplier, p.shift
    if ((m != 0) & ((m < 2**30) | (m >= 2**31))).any() or (m < 0).any():
        return "the scale gives a multiplier outside [2^30, 2^31)"
    if (s < -31).any() or (s > max_shift).any():
        bad = int(s[(s < -31) | (s > max_shift)][0])
        return f"the scale gives shift {bad}; the C kernel accepts [-31, {max_shift}]"
    return None
