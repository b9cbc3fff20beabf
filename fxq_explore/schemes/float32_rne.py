"""``float32_rne``: a binary32 multiply, a clamp in float and a round half to even.

What ONNX Runtime's MLAS (``MlasRequantizeOutput``), PyTorch fbgemm (``ReQuantizeOutput``) and
qnnpack, and XNNPACK's fp32 requantization compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Array, Context, Ops, Params, Scheme, Step


@dataclass(frozen=True)
class FloatScale(Params):
    """The scale rounded to binary32, one per channel."""

    scale_f32: Array


def float32_scale(scales: Array, name: str) -> FloatScale:
    """``f32(scale)``, refusing scales that binary32 flushes to 0 or overflows to inf."""
    with np.errstate(over="ignore", under="ignore"):
        f = scales.astype(np.float32)
    bad = (f == 0) | ~np.isfinite(f)
    if bad.any():
        raise ValueError(
            f"scale must be representable in float32 for scheme {name!r} "
            f"(about 1.4e-45 <= scale <= 3.4e38); got {float(scales[bad][0])!r}"
        )
    return FloatScale(f)


class Float32RNE(Scheme):
    name = "float32_rne"
    formula = "f32(f32(acc) * f32(scale)), clamp, round, + zp"
    tie = "half to even (RNE)"
    engines = "ONNX Runtime MLAS, PyTorch fbgemm/qnnpack, XNNPACK fp32, LiteRT via XNNPACK"
    multiplier = "float32 scale"
    c_scheme = "FXQ_SCHEME_FLOAT32_RNE"

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> FloatScale:
        return float32_scale(scales, self.name)

    def rounded(self, acc: Array, p: FloatScale, ctx: Context, ops: Ops) -> Array:
        v = ops.mul_f32(ops.to_f32(acc, "acc"), p.scale_f32)
        return ops.round_half_to_even(ops.clip_float(v, ctx.qmin_shift, ctx.qmax_shift))

    def describe(self, p: FloatScale, scale: float) -> list[Step]:
        return [("float32(scale)", f"{scale!r} -> {float(p.scale_f32.ravel()[0])!r}")]


SCHEME = Float32RNE()
