from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fxq_explore as fx
from fxq_explore.oracles import ORACLES, Overflow


@pytest.mark.parametrize("scheme", sorted(fx.SCHEMES))
@given(acc=st.integers(-(2**31), 2**31 - 1), s=st.floats(2.0**-30, 4.0), zp=st.integers(-5, 5))
def test_explain_result_and_trace_agree_with_requantize(scheme, acc, s, zp):
    try:
        ORACLES[scheme](acc, s)
    except Overflow:
        with pytest.raises(ValueError, match="overflows"):
            fx.explain(acc, s, scheme)
        return
    e = fx.explain(acc, s, scheme, zero_point=zp, dtype="int16")
    assert e.result == int(fx.requantize([acc], s, scheme, zero_point=zp, dtype="int16")[0])
    # the traced value, independently recomputed step by step, gives the same result
    assert max(-32768, min(32767, e.rounded + zp)) == e.result or scheme == "tvm_2019_float"
    assert e.exact == Fraction(acc) * Fraction(s)


def test_explain_shows_the_double_rounding_tie():
    e = fx.explain(265, 0.0018843, "tflite")
    text = str(e)
    assert "SRDHM" in text and "exactly one half: a TIE" in text and "ties away" in text
    assert e.result == 1 and e.exact < Fraction(1, 2)
    assert "<table>" in e._repr_html_()
    single = fx.explain(265, 0.0018843, "tflite_single")
    assert single.result == 0 and "below one half" in str(single)


def test_explain_rejects_arrays():
    with pytest.raises(ValueError, match="single accumulator"):
        fx.explain([1, 2], 0.1)


def test_compare_counts_against_brute_force():
    acc = np.arange(-70000, 70001, 7)
    c = fx.compare(acc, 0.0018843, ["tflite", "tflite_single", "float32_rne", "pow2"])
    exact = np.array([ORACLES["exact"](int(a), 0.0018843) for a in acc])
    exact = np.clip(exact, -128, 127)
    for row in c.rows:
        want = np.clip([ORACLES[row["scheme"]](int(a), 0.0018843) for a in acc], -128, 127)
        assert row["mismatches"] == int(np.count_nonzero(want != exact))
        assert row["max_abs_diff"] == int(np.abs(want - exact).max())
    rows = {r["scheme"]: r for r in c.rows}
    assert rows["tflite_single"]["mismatches"] == 0 and rows["tflite"]["mismatches"] > 0
    assert set(c.differing_acc.tolist()) >= {
        a
        for a in acc.tolist()
        if ORACLES["tflite"](a, 0.0018843) != ORACLES["exact"](a, 0.0018843) and abs(a) < 60000
    }
    assert "mismatches" in str(c) and "<table>" in c._repr_html_()


def test_compare_single_value_and_bad_scheme():
    c = fx.compare(265, 0.0018843)
    assert c.n == 1 and 265 in c.differing_acc.tolist()
    with pytest.raises(ValueError, match="unknown schemes 'x'"):
        fx.compare([1], 0.1, ["x"])
