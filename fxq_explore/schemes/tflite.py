"""``tflite``: TFLite's default ``MultiplyByQuantizedMultiplier`` -- double rounding.

``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc << L, M), R)``
(``tensorflow/lite/kernels/internal/common.cc``, gemmlowp ``fixedpoint/fixedpoint.h``): stage 1
rounds half up at 2^31, stage 2 half away from zero at 2^R.
"""

from __future__ import annotations

import numpy as np

from . import _q31
from ._base import Array, Context, Ops, Scheme, Step


class TFLite(Scheme):
    name = "tflite"
    formula = "RoundingDivideByPOT(SRDHM(acc << L, M), R)"
    tie = "half up (SRDHM), then half away from zero"
    engines = "TFLite reference kernels, gemmlowp, CMSIS-NN default, TFLM"
    multiplier = "Q31, tflite"
    c_scheme = "FXQ_SCHEME_TFLITE"
    uses_multiplier_bits = True

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> _q31.Q31Params:
        return _q31.q31_params(scales, multiplier_bits, "tflite")

    def rounded(self, acc: Array, p: _q31.Q31Params, ctx: Context, ops: Ops) -> Array:
        x = ops.left_shift(acc, np.maximum(p.shift, 0))
        y = ops.srdhm(x, p.multiplier, p.bits)
        return ops.saturate(ops.rounding_divide_by_pot(y, np.maximum(-p.shift, 0)))

    def describe(self, p: _q31.Q31Params, scale: float) -> list[Step]:
        return _q31.describe(p, scale)

    def c_supports(self, p: _q31.Q31Params, out_dtype: str) -> str | None:
        # a left shift (scale >= 1) is not fused: the C kernel has no overflow check for it
        return super().c_supports(p, out_dtype) or _q31.c_q31_supports(p, 31)


SCHEME = TFLite()
