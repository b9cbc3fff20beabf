"""Every fixed-point primitive against a Python-int oracle written here, on gemmlowp's edge set.

The edge set of a ``bits``-wide integer is gemmlowp's (test/test_fixedpoint.cc): ``(1 << i) + d``
and its negation for every ``i`` and ``d`` in {-2, ..., 2}, plus the minimum and maximum. Nothing
here is imported from the code under test except the functions being checked.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from fxq_explore.core.fixedpoint import (
    RoundingMode,
    round_mul_shift,
    rounding_divide_by_pot,
    rounding_right_shift,
    saturating_rounding_doubling_high_mul,
)

WIDTHS = range(2, 33)


def edge_set(bits: int) -> list[int]:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    vals = {lo, lo + 1, hi, hi - 1, 0}
    for i in range(bits - 1):
        for d in (-2, -1, 0, 1, 2):
            for v in ((1 << i) + d, -((1 << i) + d)):
                if lo <= v <= hi:
                    vals.add(v)
    return sorted(vals)


def c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm_oracle(a: int, b: int, bits: int) -> int:
    lo = -(1 << (bits - 1))
    if a == b == lo:
        return -lo - 1
    ab = a * b
    nudge = (1 << (bits - 2)) if ab >= 0 else 1 - (1 << (bits - 2))
    return c_div(ab + nudge, 1 << (bits - 1))


def rdbpot_oracle(x: int, exponent: int) -> int:
    # ties away from zero, from the exact quotient
    v = Fraction(x, 1 << exponent)
    fl = v.numerator // v.denominator
    frac = v - fl
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and v > 0):
        return fl + 1
    return fl


def round_oracle(v: Fraction, mode: RoundingMode) -> int:
    fl = v.numerator // v.denominator
    frac = v - fl
    if mode is RoundingMode.FLOOR:
        return fl
    if mode is RoundingMode.CEIL:
        return fl + (frac > 0)
    if mode is RoundingMode.TOWARD_ZERO:
        return fl + (frac > 0 and v < 0)
    if frac != Fraction(1, 2):
        return fl + (frac > Fraction(1, 2))
    return {
        RoundingMode.HALF_UP: fl + 1,
        RoundingMode.HALF_DOWN: fl,
        RoundingMode.HALF_AWAY_FROM_ZERO: fl + (v > 0),
        RoundingMode.HALF_TOWARD_ZERO: fl + (v < 0),
        RoundingMode.HALF_TO_EVEN: fl + (fl % 2),
    }[mode]


@pytest.mark.parametrize("bits", WIDTHS)
def test_srdhm_on_the_edge_set(bits):
    e = edge_set(bits)
    a, b = (np.array(v, dtype=np.int64) for v in zip(*itertools.product(e, e), strict=True))
    got = saturating_rounding_doubling_high_mul(a, b, bits)
    want = [srdhm_oracle(int(x), int(y), bits) for x, y in zip(a, b, strict=True)]
    assert got.tolist() == want


@pytest.mark.parametrize("bits", WIDTHS)
def test_rounding_divide_by_pot_on_the_edge_set(bits):
    e = edge_set(bits)
    for k in range(bits):
        got = rounding_divide_by_pot(np.array(e, dtype=np.int64), k)
        assert got.tolist() == [rdbpot_oracle(x, k) for x in e], k


@pytest.mark.parametrize("bits", WIDTHS)
def test_rounding_right_shift_on_the_edge_set(bits):
    e = edge_set(bits)
    for n in list(range(bits + 2)) + [40, 62]:
        got = rounding_right_shift(np.array(e, dtype=np.int64), n)
        want = [(x + (1 << (n - 1))) >> n if n else x for x in e]  # Python ints: no overflow
        assert got.tolist() == want, n


@pytest.mark.parametrize("bits", [2, 16, 32])
@pytest.mark.parametrize("mode", list(RoundingMode))
def test_round_mul_shift_on_the_edge_set(bits, mode):
    acc = edge_set(32)[::7] + [-(2**31), 2**31 - 1]
    mult = [m for m in edge_set(bits) if m >= 0] + [(1 << 52) + 1, (1 << 53) - 1]
    for t in (-3, 0, 1, 2, 27, 28, 31, 40, 62, 70, 95):
        a, m = (
            np.array(v, dtype=np.int64) for v in zip(*itertools.product(acc, mult), strict=True)
        )
        got = round_mul_shift(a, m, t, mode)
        want = [
            max(
                -(2**40),
                min(2**40, round_oracle(Fraction(int(x) * int(y), 1) / Fraction(2) ** t, mode)),
            )
            for x, y in zip(a, m, strict=True)
        ]
        assert got.tolist() == want, (t, mode)


def test_the_edge_set_is_gemmlowps():
    e = edge_set(8)
    assert -128 in e and 127 in e and 64 in e and 66 in e and -62 in e and 0 in e


@pytest.mark.parametrize("mode", list(RoundingMode))
def test_round_mul_shift_float_screen_on_random_and_near_tie_values(mode):
    """Values of every size, mostly taking the float64 screen, and values placed within a few
    units of 2^-53 relative of a tie or an integer, which must take the exact route."""
    rng = np.random.default_rng(7)
    n_vals = 3000
    acc = rng.integers(-(2**31), 2**31, n_vals)
    mant = rng.integers(2**52, 2**53, n_vals)
    t = rng.integers(40, 100, n_vals)
    # near ties and near integers: n / 2^t = k + {1/2, 0} + d / 2^t, |d| <= 3, k < 2^19
    k = rng.integers(0, 2**19, 500)
    d = rng.integers(-3, 4, 500)
    num = np.concatenate([(2 * k + 1) * 2**30 + d, k * 2**31 + np.abs(d)])
    t2 = np.full(num.size, 31)
    acc = np.concatenate([acc, np.ones(num.size, np.int64), -np.ones(num.size, np.int64)])
    mant = np.concatenate([mant, num, num])
    t = np.concatenate([t, t2, t2])
    got = round_mul_shift(acc, mant, t, mode)
    want = [
        max(
            -(2**40),
            min(2**40, round_oracle(Fraction(int(a) * int(m), 1) / Fraction(2) ** int(s), mode)),
        )
        for a, m, s in zip(acc, mant, t, strict=True)
    ]
    assert got.tolist() == want
