"""Golden table in the style of TFLite's quantization_util_test.cc, plus decompose properties."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxq_explore import decompose
from fxq_explore.oracles import quantize_multiplier

# (scale, multiplier, shift): derived by hand from frexp + round-half-away + renormalisation
GOLDEN = [
    (0.0018843, 2071809760, -9),  # the seed thread's scale (issue text)
    (0.25, 2**30, -1),
    (0.5, 2**30, 0),
    (1.0, 2**30, 1),
    (1.5, 3 * 2**29, 1),
    (math.nextafter(0.5, 0), 2**30, 0),  # mantissa rounds up to 2^31 -> renormalised
    (math.nextafter(1.0, 0), 2**30, 1),
    (math.nextafter(2.0, 0), 2**30, 2),
    (2.0**-31, 2**30, -30),
    (2.0**-32, 2**30, -31),  # smallest exponent kept
    (2.0**-33, 0, 0),  # flushed
    (1e-12, 0, 0),  # flushed
    (0.9999999999, 2**30, 1),
    (3e9, 1500000000, 32),
]


@pytest.mark.parametrize("scale,multiplier,shift", GOLDEN)
def test_golden_tflite(scale, multiplier, shift):
    d = decompose(scale)
    assert (d.multiplier, d.shift) == (multiplier, shift)
    assert d.flushed == (multiplier == 0)
    assert d.right_shift == 31 - shift


def test_0_0340026_against_fraction_oracle():
    d = decompose(0.0340026)
    assert (d.multiplier, d.shift) == quantize_multiplier(0.0340026)
    assert 2**30 <= d.multiplier < 2**31


def test_seed_scale_repr_and_errors():
    d = decompose(0.0018843)
    assert d.right_shift == 40
    assert d.value == Fraction(2071809760, 2**40)
    assert d.abs_error == float(Fraction(2071809760, 2**40) - Fraction(0.0018843))
    assert (
        abs(d.rel_error + 1.05e-10) < 0.01e-10
    )  # TFLite QuantizeMultiplier of 0.0018843: -1.05e-10
    text = repr(d)
    assert "2071809760" in text and "0x7B7D4EE0" in text and "right_shift 40" in text
    html = d._repr_html_()
    assert "<table>" in html and "0x7B7D4EE0" in html


def test_flush_is_said_in_repr():
    assert "flushed" in repr(decompose(1e-12))
    assert "flushed" in decompose(1e-12)._repr_html_()
    assert decompose(1e-12, convention="tvm").multiplier > 0  # TVM does not flush


def test_per_channel_arrays():
    s = [0.0018843, 0.25, 1e-12, 3e9]
    d = decompose(s)
    assert d.multiplier.tolist() == [2071809760, 2**30, 0, 1500000000]
    assert d.shift.tolist() == [-9, -1, 0, 32]
    assert d.flushed.tolist() == [False, False, True, False]
    assert d.right_shift.tolist() == [40, 32, 31, -1]
    assert d.abs_error.shape == (4,) and d.value.shape == (4,)
    assert "channels=4" in repr(d)


def test_xnnpack_is_float32_mantissa():
    d = decompose(0.0018843, convention="xnnpack")
    assert d.multiplier == 2071809792  # TVM relay.quantize: the float32 ratio gives this
    assert float(d.value) == float(np.float32(0.0018843))


def test_fbgemm_binary32_search():
    d = decompose(0.0018843, convention="fbgemm")
    assert d.multiplier == 2071809792 and d.shift == -9
    assert decompose(1.0, convention="fbgemm").multiplier == 2**30


@pytest.mark.parametrize("bits", [2, 8, 16, 24, 31, 32])
def test_other_widths(bits):
    d = decompose(0.0018843, bits=bits)
    assert 2 ** (bits - 2) <= d.multiplier < 2 ** (bits - 1)
    assert d.multiplier == quantize_multiplier(0.0018843, bits=bits)[0]


@given(
    s=st.floats(min_value=2.0**-31, max_value=2.0**40),
    bits=st.integers(2, 32),
    conv=st.sampled_from(["tflite", "tvm", "fbgemm"]),
)
def test_range_and_error_bound(s, bits, conv):
    d = decompose(s, bits=bits, convention=conv)
    assert 2 ** (bits - 2) <= d.multiplier < 2 ** (bits - 1)
    # half a unit of the normalised multiplier, relative (float32 rounding too for fbgemm)
    bound = Fraction(1, 2 ** (bits - 1)) + (Fraction(1, 2**24) if conv == "fbgemm" else 0)
    assert abs(Fraction(d.value) - Fraction(s)) <= bound * Fraction(s)


@given(
    a=st.floats(min_value=2.0**-31, max_value=2.0**30),
    b=st.floats(min_value=2.0**-31, max_value=2.0**30),
)
def test_monotone(a, b):
    lo, hi = sorted([a, b])
    assert decompose(lo).value <= decompose(hi).value


@pytest.mark.parametrize(
    "bad,exc,match",
    [
        (0.0, ValueError, "scale must be positive"),
        (-0.5, ValueError, "scale must be positive"),
        (float("nan"), ValueError, "scale"),
        (float("inf"), ValueError, "scale"),
        ("0.1", TypeError, "scale"),
        (None, TypeError, "scale"),
        ([], ValueError, "empty"),
    ],
)
def test_bad_scale(bad, exc, match):
    with pytest.raises(exc, match=match):
        decompose(bad)


def test_bad_bits_and_convention():
    with pytest.raises(ValueError, match=r"bits must be in \[2, 32\]; got 33"):
        decompose(0.1, bits=33)
    with pytest.raises(ValueError, match=r"bits must be in \[2, 32\]; got 1"):
        decompose(0.1, bits=1)
    with pytest.raises(TypeError, match="bits"):
        decompose(0.1, bits=8.0)
    with pytest.raises(ValueError, match="unknown convention 'gemmlowp'.*'tflite'"):
        decompose(0.1, convention="gemmlowp")
