"""Silently wrong results (issue 13): each input now gives the right value, or a clear error.

Expected values come from the package's Python-int / Fraction oracles (``fxq_explore.oracles``
imports nothing from the code it checks) or from exact arithmetic written out here.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fxq_explore as fx
from fxq_explore import analysis, oracles
from fxq_explore.analysis import calibration as cal
from fxq_explore.core import validate
from fxq_explore.schemes import SCHEMES

from .conftest import raises_naming

ACC32 = st.integers(-(2**31), 2**31 - 1)
POS_FLOATS = st.floats(min_value=5e-324, max_value=1.7976931348623157e308, allow_nan=False)


def _pow2_expected(acc, scale):
    """(acc + 2^(n-1)) >> n in Python ints, scale -> 2^-n (the pow2 oracle), int32 output."""
    return oracles.finish(oracles.pow2(acc, scale), 0, -(2**31), 2**31 - 1)


# ---- pow2 for tiny scales ---------------------------------------------------------------------


def test_pow2_scale_2_pow_minus_64_reproducer():
    got = fx.requantize([0, 5, -5], 2.0**-64, "pow2", dtype="int32")
    assert got.tolist() == [0, 0, 0]


def test_pow2_explain_1e_40_reproducer():
    e = fx.explain(-5, 1e-40, "pow2")
    assert e.result == 0 == e.rounded


@settings(max_examples=150)
@given(acc=st.lists(ACC32, min_size=1, max_size=8), k=st.integers(-1074, -20))
def test_pow2_tiny_scales_match_oracle(acc, k):
    scale = 2.0**k * 1.3 if k < -1073 else 2.0**k
    got = fx.requantize(acc, scale, "pow2", dtype="int32").tolist()
    assert got == [_pow2_expected(a, scale) for a in acc]
    assert fx.explain(acc[0], scale, "pow2", dtype="int32").result == got[0]


@settings(max_examples=60)
@given(acc=st.lists(ACC32, min_size=1, max_size=8), k=st.integers(-1074, -40))
def test_pow2_truncate_tiny_scales_floor(acc, k):
    got = fx.requantize(acc, 2.0**k, "pow2", dtype="int32", pow2_mode="truncate").tolist()
    assert got == [a >> -k for a in acc]  # Python's >> is the floor


# ---- float32 schemes with a scale beyond float32 ------------------------------------------------


F32_SCHEMES = [n for n, s in SCHEMES.items() if "float32" in s.multiplier]


@pytest.mark.parametrize("scheme", F32_SCHEMES)
@pytest.mark.parametrize("scale", [1e300, 3.5e38, 1e-46, 5e-324])
def test_float32_schemes_refuse_out_of_range_scale(scheme, scale):
    raises_naming(ValueError, "scale", fx.requantize, [0], scale, scheme)
    raises_naming(ValueError, "scale", fx.explain, 1, scale, scheme)
    raises_naming(ValueError, "scale", fx.compare, [1], scale, [scheme])


@settings(max_examples=100)
@given(scale=POS_FLOATS)
def test_float32_rne_any_double_scale_right_or_refused(scale):
    name = F32_SCHEMES[0]
    f = np.float32(scale) if scale < 3.4028235677973366e38 else np.float32(np.inf)
    if f == 0 or not np.isfinite(f):
        raises_naming(ValueError, "scale", fx.requantize, [0, 1], scale, name)
        return
    got = fx.requantize([0, 1], scale, name, dtype="int32").tolist()
    want = [oracles.float32_rne(a, scale) for a in (0, 1)]
    assert got == [max(-(2**31), min(2**31 - 1, w)) for w in want]


# ---- threshold <-> scale and MSE calibration ----------------------------------------------------


def test_threshold_to_scale_5e_324_reproducer():
    raises_naming(ValueError, "threshold", cal.threshold_to_scale, 5e-324)


def test_calibrate_mse_huge_reproducer():
    raises_naming(ValueError, "values", fx.calibrate, [1.7e308], "mse")


@settings(max_examples=200)
@given(t=POS_FLOATS, bits=st.integers(2, 16), signed=st.booleans())
def test_threshold_to_scale_exact_or_refused(t, bits, signed):
    levels = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    q = t / levels
    if q < np.finfo(np.float64).tiny:
        raises_naming(ValueError, "threshold", cal.threshold_to_scale, t, bits, signed=signed)
        return
    s = cal.threshold_to_scale(t, bits, signed=signed)
    assert s == q and s > 0 and math.isfinite(s)


@settings(max_examples=100)
@given(s=POS_FLOATS, bits=st.integers(2, 16))
def test_scale_to_threshold_finite_or_refused(s, bits):
    t = s * (2 ** (bits - 1) - 1)
    if not math.isfinite(t):
        raises_naming(ValueError, "scale", cal.scale_to_threshold, s, bits)
    else:
        assert cal.scale_to_threshold(s, bits) == t


@settings(max_examples=40)
@given(e=st.integers(-1000, 1000), method=st.sampled_from(["mse", "kl", "percentile"]))
def test_histogram_calibration_at_any_magnitude_finite_or_refused(e, method):
    x = np.linspace(-1.0, 1.0, 201) * 2.0**e
    kw = {"variant": "histogram"} if method == "percentile" else {}
    lo, hi = (-100, 127) if method == "kl" else (-900, 500)  # kl tvm: float32 bin edges
    if not lo <= e <= hi:
        raises_naming(ValueError, "values", fx.calibrate, x, method, **kw)
        return
    t = fx.calibrate(x, method, **kw)
    assert 0 < t <= 2.0**e * (1 + 1e-12) and math.isfinite(t)


# ---- overflow paths now give values -------------------------------------------------------------


def test_decompose_max_double_repr_reproducer():
    d = fx.decompose(1.7976931348623157e308)
    assert d.value == Fraction(d.multiplier) * Fraction(2) ** (d.shift - 31)
    text = repr(d)
    assert "beyond the double range" in text and str(d.multiplier) in text
    assert "beyond the double range" in d._repr_html_()


@settings(max_examples=150)
@given(scale=POS_FLOATS, bits=st.integers(2, 32))
def test_decompose_any_double_exact_and_printable(scale, bits):
    d = fx.decompose(scale, bits=bits, convention="tvm")
    assert d.value == Fraction(d.multiplier) * Fraction(2) ** (d.shift - (bits - 1))
    assert abs(Fraction(d.rel_error)) <= Fraction(1, 2 ** (bits - 2))
    assert repr(d).startswith("Decomposition(")


def test_gain_error_max_double_reproducer():
    g = analysis.gain_error(1.7e308)
    assert g == float(Fraction(2) ** 1024 / Fraction(1.7e308) - 1)


@settings(max_examples=150)
@given(scale=POS_FLOATS, mode=st.sampled_from(["nearest", "ceil", "floor"]))
def test_gain_error_any_double(scale, mode):
    e = oracles.pow2_exponent(scale, mode)
    assert analysis.gain_error(scale, mode) == float(Fraction(2) ** e / Fraction(scale) - 1)


def test_explain_huge_pow2_reproducer():
    e = fx.explain(1, 1.7e308, "pow2", dtype="int32")
    assert e.result == 2**31 - 1
    assert e.result == int(fx.requantize([1], 1.7e308, "pow2", dtype="int32")[0])
    assert "2^1024" in str(e)


# ---- chunked numpy paths give the unchunked values ----------------------------------------------

CHUNKED = [n for n in SCHEMES]


@settings(max_examples=60)
@given(
    acc=st.lists(ACC32, min_size=1, max_size=60),
    scheme=st.sampled_from(CHUNKED),
    per_channel=st.booleans(),
    chunk=st.integers(1, 17),
)
def test_chunked_equals_elementwise(acc, scheme, per_channel, chunk):
    n = len(acc) - len(acc) % 3 or 3
    a = np.array((acc * 3)[:n], dtype=np.int64).reshape(-1, 3)
    scale = np.array([0.0018843, 0.25, 3.0]) if per_channel else 0.0018843
    kw = {"axis": 1} if per_channel else {}
    try:
        want = np.stack(
            [
                fx.requantize(a[:, j], scale[j] if per_channel else scale, scheme, dtype="int16")
                for j in range(3)
            ],
            axis=1,
        )
    except ValueError:  # the scheme refuses (e.g. tflite's acc << shift overflow): so must chunks
        old, validate.CHUNK = validate.CHUNK, chunk
        try:
            with pytest.raises(ValueError):
                fx.requantize(a, scale, scheme, dtype="int16", **kw)
        finally:
            validate.CHUNK = old
        return
    old, validate.CHUNK = validate.CHUNK, chunk
    try:
        got = fx.requantize(a, scale, scheme, dtype="int16", **kw)
    finally:
        validate.CHUNK = old
    assert got.dtype == want.dtype and got.tolist() == want.tolist()


def test_requantize_empty_list_gives_empty_int8():
    out = fx.requantize([], 0.5)
    assert out.dtype == np.int8 and out.shape == (0,)
