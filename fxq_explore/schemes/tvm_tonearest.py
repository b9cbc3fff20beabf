"""``tvm_tonearest``: TVM QNN ``rounding="TONEAREST"`` -- one rounding, half away from zero.

``FixedPointMultiplyToNearest`` (``src/relay/qnn/utils.cc``, TVM <= 0.19): int64 product, add
``2^(t-1)`` (or ``2^(t-1) - 1`` when negative), arithmetic shift; multiplier from
``GetFixedPointMultiplierShift`` (no flush, no cap).
"""

from __future__ import annotations

from ..core.fixedpoint import RoundingMode
from . import _q31
from ._base import Array, Context, Ops, Scheme, Step


class TVMToNearest(Scheme):
    name = "tvm_tonearest"
    formula = "round(acc * M * 2^(shift - 31)) in int64"
    tie = "half away from zero, once"
    engines = "TVM QNN rounding='TONEAREST'"
    multiplier = "Q31, tvm"
    uses_multiplier_bits = True

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> _q31.Q31Params:
        return _q31.q31_params(scales, multiplier_bits, "tvm")

    def rounded(self, acc: Array, p: _q31.Q31Params, ctx: Context, ops: Ops) -> Array:
        t = (p.bits - 1) - p.shift
        mode = RoundingMode.HALF_AWAY_FROM_ZERO
        return ops.saturate(ops.round_mul_shift(acc, p.multiplier, t, mode))

    def describe(self, p: _q31.Q31Params, scale: float) -> list[Step]:
        return _q31.describe(p, scale)


SCHEME = TVMToNearest()
