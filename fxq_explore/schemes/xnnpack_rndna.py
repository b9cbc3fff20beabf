"""``xnnpack_rndna``: XNNPACK's rndna (= QNNPACK's "precise") -- the float32 mantissa, ties away.

The same parameters as rndnu (``m * 2^-k == f32(scale)`` exactly, 24-bit mantissa; XNNPACK
asserts ``2^-32 <= scale < 256``), rounded once half away from zero: the rounding is done on
``|acc|`` and the sign restored (``src/qs8-requantization/rndna-*.c`` before their removal in
2024-10; QNNPACK ``src/requantization/precise-*.c``).
"""

from __future__ import annotations

from ..core.fixedpoint import RoundingMode
from ._base import Array, Context, Ops, Scheme, Step
from .xnnpack_rndnu import SCHEME as RNDNU
from .xnnpack_rndnu import MantissaParams


class XNNPACKRndna(Scheme):
    name = "xnnpack_rndna"
    formula = "sign(acc) * ((abs(acc) * m + 2^(k-1)) >> k) with m * 2^-k == float32(scale)"
    tie = "half away from zero, once"
    engines = "XNNPACK rndna (removed 2024), QNNPACK precise"
    multiplier = "24-bit float32 mantissa"

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> MantissaParams:
        return RNDNU.params(scales)

    def rounded(self, acc: Array, p: MantissaParams, ctx: Context, ops: Ops) -> Array:
        mode = RoundingMode.HALF_AWAY_FROM_ZERO
        return ops.saturate(ops.round_mul_shift(acc, p.mantissa, p.right_shift, mode))

    def describe(self, p: MantissaParams, scale: float) -> list[Step]:
        return RNDNU.describe(p, scale)


SCHEME = XNNPACKRndna()
