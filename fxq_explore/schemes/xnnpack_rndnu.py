"""``xnnpack_rndnu``: XNNPACK's rndnu requantization -- the float32 mantissa, one rounding up.

``m * 2^-k == f32(scale)`` exactly, with ``m`` the 24-bit mantissa (``src/microparams-init.c``,
``src/xnnpack/requantization.h``); ``(acc * m + 2^(k-1)) >> k`` in int64. XNNPACK asserts
``2^-32 <= scale < 256``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.fixedpoint import RoundingMode
from ..core.multiplier import decompose
from ._base import Array, Context, Ops, Params, Scheme, Step


@dataclass(frozen=True)
class MantissaParams(Params):
    """``scale == mantissa * 2^-right_shift``, one per channel."""

    mantissa: Array
    right_shift: Array


class XNNPACKRndnu(Scheme):
    name = "xnnpack_rndnu"
    formula = "(acc * m + 2^(k-1)) >> k with m * 2^-k == float32(scale)"
    tie = "half up, once"
    engines = "XNNPACK rndnu (QU8 ARM kernels)"
    multiplier = "24-bit float32 mantissa"

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> MantissaParams:
        with np.errstate(over="ignore", under="ignore"):
            f = scales.astype(np.float32)
        bad = (f < 2.0**-32) | (f >= 256.0)
        if bad.any():
            raise ValueError(
                f"scale must be in [2^-32, 256) for scheme {self.name!r} (XNNPACK asserts it); "
                f"got {scales[bad][0]!r}"
            )
        d = decompose(scales, bits=25, convention="xnnpack")  # multiplier = 24-bit mantissa
        return MantissaParams(
            np.atleast_1d(np.asarray(d.multiplier, dtype=np.int64)),
            np.atleast_1d(np.asarray(d.right_shift, dtype=np.int64)),
        )

    def rounded(self, acc: Array, p: MantissaParams, ctx: Context, ops: Ops) -> Array:
        r = ops.round_mul_shift(acc, p.mantissa, p.right_shift, RoundingMode.HALF_UP)
        return ops.saturate(r)

    def describe(self, p: MantissaParams, scale: float) -> list[Step]:
        m, k = int(p.mantissa.ravel()[0]), int(p.right_shift.ravel()[0])
        return [("decompose", f"float32(scale) = {m} * 2^-{k} exactly (24-bit mantissa)")]


SCHEME = XNNPACKRndnu()
