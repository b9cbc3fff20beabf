"""``exact``: the mathematical yardstick -- ``acc * scale`` with the exact double, rounded once.

No engine computes this; every other scheme is measured against it. The tie rule is the
``tie`` argument of :func:`fxq_explore.requantize` (default half away from zero).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._base import Array, Context, Ops, Scheme, Step
from .xnnpack_rndnu import MantissaParams


class Exact(Scheme):
    name = "exact"
    formula = "acc * scale (exact rational), rounded once"
    tie = "the `tie` argument"
    engines = "none: the mathematical yardstick"
    multiplier = "exact double"
    uses_tie = True

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> MantissaParams:
        mant, exp = np.frexp(scales)
        return MantissaParams((mant * 2.0**53).astype(np.int64), (53 - exp).astype(np.int64))

    def rounded(self, acc: Array, p: MantissaParams, ctx: Context, ops: Ops) -> Array:
        return ops.saturate(ops.round_mul_shift(acc, p.mantissa, p.right_shift, ctx.tie))

    def describe(self, p: MantissaParams, scale: float) -> list[Step]:
        m, k = int(p.mantissa.ravel()[0]), int(p.right_shift.ravel()[0])
        v = Fraction(m, 1) / Fraction(2) ** k if k >= 0 else Fraction(m * 2**-k)
        return [("the double", f"scale {scale!r} = {m} * 2^-{k} = {float(v)!r} exactly")]


SCHEME = Exact()
