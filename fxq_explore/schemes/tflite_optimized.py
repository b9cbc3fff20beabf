"""``tflite_optimized``: TFLite's NEON kernels and ruy -- SQRDMULH, then a rounding shift.

``MultiplyByQuantizedMultiplier4Rows`` (``optimized/neon_check.h`` family) uses VQRDMULH and
VRSHL without the negative fix-up of RoundingDivideByPOT, so stage 2 rounds ties up.
"""

from __future__ import annotations

import numpy as np

from . import _q31
from ._base import Array, Context, Ops, Scheme, Step


class TFLiteOptimized(Scheme):
    name = "tflite_optimized"
    formula = "RoundingRightShift(SRDHM(acc << L, M), R)"
    tie = "half up, then half up"
    engines = "TFLite optimized (NEON) kernels, ruy"
    multiplier = "Q31, tflite"
    uses_multiplier_bits = True

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> _q31.Q31Params:
        return _q31.q31_params(scales, multiplier_bits, "tflite")

    def rounded(self, acc: Array, p: _q31.Q31Params, ctx: Context, ops: Ops) -> Array:
        x = ops.left_shift(acc, np.maximum(p.shift, 0))
        y = ops.srdhm(x, p.multiplier, p.bits)
        return ops.saturate(ops.rounding_right_shift(y, np.maximum(-p.shift, 0)))

    def describe(self, p: _q31.Q31Params, scale: float) -> list[Step]:
        return _q31.describe(p, scale)


SCHEME = TFLiteOptimized()
