"""``tflite_single``: TFLite built with ``TFLITE_SINGLE_ROUNDING`` -- one rounding, half up.

``(acc * M + 2^(30 - shift)) >> (31 - shift)`` in int64 with the shift capped at 30
(``tensorflow/lite/kernels/internal/common.h``, ``quantization_util.cc``); the same as CMSIS-NN's
single rounding and TVM's ``q_multiply_shift`` / QNN ``rounding="UPWARD"``.
"""

from __future__ import annotations

from ..core.fixedpoint import RoundingMode
from . import _q31
from ._base import Array, Context, Ops, Scheme, Step


class TFLiteSingle(Scheme):
    name = "tflite_single"
    formula = "(acc * M + 2^(30 - shift)) >> (31 - shift) in int64"
    tie = "half up, once"
    engines = (
        "TFLite TFLITE_SINGLE_ROUNDING, CMSIS-NN single rounding, TVM q_multiply_shift / "
        "QNN rounding='UPWARD'"
    )
    multiplier = "Q31, tflite (shift capped at 30)"
    c_scheme = "FXQ_SCHEME_TFLITE_SINGLE"
    uses_multiplier_bits = True

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> _q31.Q31Params:
        return _q31.q31_params(scales, multiplier_bits, "tflite", cap_shift=True)

    def rounded(self, acc: Array, p: _q31.Q31Params, ctx: Context, ops: Ops) -> Array:
        t = (p.bits - 1) - p.shift  # >= 1 thanks to the cap
        return ops.saturate(ops.round_mul_shift(acc, p.multiplier, t, RoundingMode.HALF_UP))

    def describe(self, p: _q31.Q31Params, scale: float) -> list[Step]:
        capped = int(p.shift.ravel()[0]) == p.bits - 2
        return _q31.describe(p, scale, " (shift capped for single rounding)" if capped else "")

    def c_supports(self, p: _q31.Q31Params, out_dtype: str) -> str | None:
        return super().c_supports(p, out_dtype) or _q31.c_q31_supports(p, 30)


SCHEME = TFLiteSingle()
