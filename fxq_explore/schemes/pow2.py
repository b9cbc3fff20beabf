"""``pow2``: the scale replaced by a power of two and a rounding shift ``(acc + 2^(n-1)) >> n``.

TVM relay.quantize's realize for power-of-two ratios with ``round_for_shift=True``
(``src/relay/quantize/realize.cc``), i.e. ``add 2^(n-1), right_shift n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..core import validate
from ._base import Array, Context, Ops, Params, Scheme, Step

POW2_MODES = ("nearest", "ceil", "floor", "truncate")


def pow2_exponent(scale: ArrayLike, mode: str = "nearest") -> np.int64 | NDArray[np.int64]:
    """The exponent ``e`` of the power of two that replaces ``scale`` (``scale ~ 2^e``).

    ``"nearest"`` is nearest in log2 (``2^-9`` for 0.0018843: a +3.65 % gain error),
    ``"ceil"``/``"floor"`` round log2 up/down; ``"truncate"`` uses the nearest exponent, and
    the scheme then shifts without the rounding offset. Computed exactly (no ``log2``).

    Examples
    --------
    >>> int(pow2_exponent(0.0018843)), int(pow2_exponent(0.0018843, "ceil"))
    (-9, -9)
    >>> int(pow2_exponent(0.0018843, "floor"))
    -10
    """
    validate.choice("pow2_mode", mode, POW2_MODES)
    arr, scalar = validate.scales("scale", scale)
    out = []
    for s in arr.ravel():
        fr = Fraction(float(s))
        _, e = np.frexp(s)
        k = int(e) - 1  # 2^k <= s < 2^(k+1)
        if mode == "floor":
            out.append(k)
        elif mode == "ceil":
            out.append(k if fr == Fraction(2) ** k else k + 1)
        else:  # nearest in log2: compare s^2 with 2^(2k+1) (never equal for rational s)
            out.append(k + 1 if fr * fr > Fraction(2) ** (2 * k + 1) else k)
    res = np.array(out, dtype=np.int64).reshape(arr.shape)
    return res[()] if scalar else res


@dataclass(frozen=True)
class Pow2Params(Params):
    """``scale ~ 2^exponent``; ``truncate``: shift without the rounding offset."""

    exponent: Array
    truncate: bool = False
    _scalars: ClassVar[tuple[str, ...]] = ("truncate",)


class Pow2(Scheme):
    name = "pow2"
    formula = "(acc + 2^(n-1)) >> n, scale replaced by 2^-n (left shift if >= 1)"
    tie = "half up"
    engines = "TVM relay.quantize round_for_shift (power-of-two scales)"
    multiplier = "power of two"
    c_scheme = "FXQ_SCHEME_POW2"
    uses_pow2_mode = True

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> Pow2Params:
        e = np.atleast_1d(pow2_exponent(scales, pow2_mode)).astype(np.int64)
        return Pow2Params(e, truncate=pow2_mode == "truncate")

    def rounded(self, acc: Array, p: Pow2Params, ctx: Context, ops: Ops) -> Array:
        e = p.exponent
        if np.all(e >= 0):  # scales >= 1: a saturating left shift
            return ops.saturating_left_shift(acc, e)
        n = np.maximum(-e, 0)
        right = ops.floor_shift(acc, n) if p.truncate else ops.rounding_right_shift(acc, n)
        if np.all(e < 0):
            return ops.saturate(right)
        return ops.saturate(np.where(e >= 0, ops.saturating_left_shift(acc, e), right))

    def describe(self, p: Pow2Params, scale: float) -> list[Step]:
        e = int(p.exponent.ravel()[0])
        gain = float(Fraction(2) ** e / Fraction(scale) - 1)
        mode = "truncate" if p.truncate else "rounding"
        return [("power of two", f"scale {scale!r} -> 2^{e} ({mode}); gain error {gain:+.2%}")]

    def c_supports(self, p: Pow2Params, out_dtype: str) -> str | None:
        if p.truncate:
            return "pow2_mode 'truncate' has no C kernel (only the rounding shift)"
        return super().c_supports(p, out_dtype)


SCHEME = Pow2()
