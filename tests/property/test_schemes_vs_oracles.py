"""Every requantization scheme equals its exact Python-int / Fraction oracle, bit for bit."""

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import fxq_explore.requantization as rq
from fxq_explore.oracles import (
    EDGE_ACCS,
    INT32_MAX,
    INT32_MIN,
    ORACLES,
    Overflow,
    finish,
    round_fraction,
)
from fxq_explore.oracles import SPECIAL_SCALES as ORACLE_SPECIAL_SCALES

# the oracles' edge set, plus a scale whose TFLite shift exceeds 31 (left shift overflow)
SPECIAL_SCALES = (*ORACLE_SPECIAL_SCALES, 3e9)

accs = st.one_of(
    st.integers(INT32_MIN, INT32_MAX), st.sampled_from(EDGE_ACCS), st.integers(-(2**21), 2**21)
)
scales = st.one_of(
    st.sampled_from(SPECIAL_SCALES),
    st.floats(min_value=2.0**-40, max_value=2.0**12, allow_nan=False, allow_infinity=False),
    st.integers(-40, 12).map(lambda k: 2.0**k),
)
DTYPES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int4": (-8, 7),
    "uint4": (0, 15),
    "int32": (INT32_MIN, INT32_MAX),
}


def expected(scheme, acc, s, zp, dtype, **kw):
    qmin, qmax = DTYPES[dtype]
    bits = {"int8": 8, "uint8": 8, "int16": 16, "int4": 4, "uint4": 4, "int32": 32}[dtype]
    narrow = 2 ** (bits - 1) - 1 if qmin < 0 else 2**bits - 1
    r = ORACLES[scheme](acc, s, **kw)
    return finish(r, zp, qmin, qmax, scheme, narrow)


def run(scheme, acc_list, s, zp, dtype, **kw):
    return rq.requantize(
        np.array(acc_list, dtype=np.int64), s, scheme, zero_point=zp, dtype=dtype, **kw
    )


def applicable(scheme, s):
    """Whether the scheme's engine accepts this scale (XNNPACK: [2^-32, 256) in float32)."""
    if scheme.startswith("xnnpack_"):
        return 2.0**-32 <= np.float32(s) < 256
    return True


@pytest.mark.parametrize("scheme", sorted(set(rq.SCHEMES) - {"pow2", "exact"}))
@given(
    acc=st.lists(accs, min_size=1, max_size=8),
    s=scales,
    dtype=st.sampled_from(sorted(DTYPES)),
    zp=st.integers(-3, 3),
)
@example(acc=[265], s=0.0018843, dtype="int8", zp=0)
@example(acc=[INT32_MIN, INT32_MAX], s=2.0**-32, dtype="int32", zp=0)
def test_scheme_matches_oracle(scheme, acc, s, dtype, zp):
    assume(applicable(scheme, s))
    qmin, qmax = DTYPES[dtype]
    zp = min(max(zp, qmin), qmax)
    try:
        want = [expected(scheme, a, s, zp, dtype) for a in acc]
    except Overflow:
        with pytest.raises(ValueError, match="overflows int32"):
            run(scheme, acc, s, zp, dtype)
        return
    got = run(scheme, acc, s, zp, dtype)
    assert got.tolist() == want


@pytest.mark.parametrize("mode", ["nearest", "ceil", "floor", "truncate"])
@given(acc=st.lists(accs, min_size=1, max_size=8), s=scales, dtype=st.sampled_from(sorted(DTYPES)))
def test_pow2_matches_oracle(mode, acc, s, dtype):
    want = [expected("pow2", a, s, 0, dtype, mode=mode) for a in acc]
    assert run("pow2", acc, s, 0, dtype, pow2_mode=mode).tolist() == want


TIES = [
    "HALF_UP",
    "HALF_DOWN",
    "HALF_AWAY_FROM_ZERO",
    "HALF_TOWARD_ZERO",
    "HALF_TO_EVEN",
    "FLOOR",
    "CEIL",
    "TOWARD_ZERO",
]


@pytest.mark.parametrize("tie", TIES)
@given(
    acc=st.lists(accs, min_size=1, max_size=8),
    s=st.one_of(scales, st.floats(min_value=2.0**-70, max_value=2.0**40)),
)
def test_exact_matches_fraction(tie, acc, s):
    want = [expected("exact", a, s, 0, "int32", tie=tie) for a in acc]
    assert run("exact", acc, s, 0, "int32", tie=tie).tolist() == want


@pytest.mark.parametrize(
    "scheme",
    [
        "tflite",
        "tflite_single",
        "tvm_tonearest",
        "exact",
        "xnnpack_rndnu",
        "xnnpack_rndna",
        "pow2",
        "tflite_optimized",
    ],
)
@given(k=st.integers(1, 31), j=st.integers(-(2**20), 2**20))
def test_exact_ties_at_powers_of_two(scheme, k, j):
    """acc = (2j+1) * 2^(k-1) at scale 2^-k is exactly halfway: each tie rule shows."""
    acc = (2 * j + 1) * 2 ** (k - 1)
    assume(INT32_MIN <= acc <= INT32_MAX)
    s = 2.0**-k
    got = int(run(scheme, [acc], s, 0, "int32")[0])
    assert got == expected(scheme, acc, s, 0, "int32")
    half = round_fraction  # the tie rule each scheme is documented with
    from fractions import Fraction

    v = Fraction(acc) * Fraction(s)
    # tflite: SRDHM (half up) halves x exactly when x is even (k >= 2), so the tie reaches
    # RoundingDivideByPOT (half away); at k = 1 the tie is already decided by SRDHM: half up.
    rule = {
        "tflite": "HALF_AWAY_FROM_ZERO" if k >= 2 else "HALF_UP",
        "tflite_single": "HALF_UP",
        "tvm_tonearest": "HALF_AWAY_FROM_ZERO",
        "exact": "HALF_AWAY_FROM_ZERO",
        "xnnpack_rndnu": "HALF_UP",
        "xnnpack_rndna": "HALF_AWAY_FROM_ZERO",
        "pow2": "HALF_UP",
        "tflite_optimized": "HALF_UP",
    }[scheme]
    assert got == half(v, rule)


@given(
    acc=st.lists(accs, min_size=3, max_size=3),
    s=st.lists(st.floats(min_value=1e-6, max_value=0.9), min_size=3, max_size=3),
)
def test_per_channel_equals_per_tensor_columns(acc, s):
    a = np.array([acc, acc], dtype=np.int64)  # shape (2, 3), channels on axis 1
    for scheme in ("tflite", "tflite_single", "float32_rne", "xnnpack_rndnu", "pow2", "exact"):
        got = rq.requantize(a, s, scheme, axis=1, dtype="int32")
        for c in range(3):
            col = rq.requantize(a[:, c], s[c], scheme, dtype="int32")
            assert got[:, c].tolist() == col.tolist()


def test_scheme_parameters_match_oracle_multiplier():
    from fxq_explore.oracles import quantize_multiplier

    for s in SPECIAL_SCALES:
        p = rq.scheme_parameters(s, "tflite")
        assert (int(p["multiplier"][0]), int(p["shift"][0])) == quantize_multiplier(s)
