"""``tvm_2019_float``: TVM relay.quantize's realize before PR #4160 (the seed thread).

A binary32 multiply, ``round()`` (half away from zero), then a clip to the symmetric range
``+-(2^(b-1)-1)`` and a cast (``src/relay/pass/quantize/realize.cc`` at the time).
"""

from __future__ import annotations

import numpy as np

from ._base import Array, Context, Ops, Scheme, Step
from .float32_rne import FloatScale, float32_scale


class TVM2019Float(Scheme):
    name = "tvm_2019_float"
    formula = "f32(f32(acc) * f32(scale)), round, clip +-(2^(b-1)-1), cast"
    tie = "half away from zero"
    engines = "TVM relay.quantize before PR #4160 (the seed thread)"
    multiplier = "float32 scale"

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> FloatScale:
        return float32_scale(scales, self.name)

    def rounded(self, acc: Array, p: FloatScale, ctx: Context, ops: Ops) -> Array:
        v = ops.mul_f32(ops.to_f32(acc, "acc"), p.scale_f32)
        r = ops.round_half_away(v, 2.0**40)
        return np.clip(r, -ctx.narrow, ctx.narrow)

    def describe(self, p: FloatScale, scale: float) -> list[Step]:
        return [("float32(scale)", f"{scale!r} -> {float(p.scale_f32.ravel()[0])!r}")]

    def finish(self, r: Array, zero_point: int, qmin: int, qmax: int, ctx: Context) -> Array:
        out = np.clip(r + zero_point, qmin, qmax)
        return np.clip(out, -ctx.narrow, ctx.narrow) if qmin < 0 else out


SCHEME = TVM2019Float()
