import numpy as np
import pytest

from fxq_explore import SCHEMES, requantize


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(scheme="round"), ValueError, "unknown scheme 'round'; valid: 'float32_rne'"),
        (dict(dtype="int64"), ValueError, "unsupported dtype 'int64'"),
        (dict(dtype="int8", zero_point=200), ValueError, r"zero_point must be in \[-128, 127\]"),
        (dict(scale=0.0), ValueError, "scale must be positive"),
        (dict(scale=float("nan")), ValueError, "scale"),
        (dict(scale=[0.1, 0.2, 0.3]), ValueError, "axis must be given"),
        (dict(scale=[0.1, 0.2, 0.3], axis=1), ValueError, "3 per-channel values but acc has 2"),
        (dict(pow2_mode="round"), ValueError, "unknown pow2_mode"),
        (dict(tie="BANKERS"), ValueError, "unknown tie 'BANKERS'"),
        (dict(multiplier_bits=40), ValueError, r"multiplier_bits must be in \[2, 32\]"),
        (dict(backend="cuda"), ValueError, "unknown backend"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(acc=np.zeros((4, 2), np.int32), scale=0.01, scheme="tflite")
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        requantize(args.pop("acc"), args.pop("scale"), args.pop("scheme"), **args)


@pytest.mark.parametrize(
    "acc,exc,match",
    [
        ([2**31], ValueError, r"int32 range \[-2147483648, 2147483647\]; got 2147483648"),
        ([-(2**31) - 1], ValueError, "int32 range"),
        ([1.5], TypeError, "acc must be integers"),
        ([1.0], TypeError, "integer dtype"),
        ("12", TypeError, "acc"),
        (np.array([2**40], dtype=np.int64), ValueError, "int32 range"),
    ],
)
def test_bad_accumulators(acc, exc, match):
    with pytest.raises(exc, match=match):
        requantize(acc, 0.01, "tflite")


def test_tflite_left_shift_overflow_is_refused():
    # scale 4 -> shift 3: acc << 3 overflows int32 for |acc| >= 2^28 (UB in TFLite's C code)
    with pytest.raises(ValueError, match=r"acc << 3 overflows int32 for acc=268435456"):
        requantize([1, 2**28], 4.0, "tflite", dtype="int32")
    assert requantize([2**28 - 1], 4.0, "tflite_single", dtype="int32")[0] == 2**30 - 4


def test_dtypes_and_storage():
    acc = np.array([-(10**6), -5, 0, 5, 10**6])  # * 0.5: -2.5 and 2.5 are ties, away from zero
    assert requantize(acc, 0.5, "exact", dtype="int4").tolist() == [-8, -3, 0, 3, 7]
    assert requantize(acc, 0.5, "exact", dtype="uint4", zero_point=8).tolist() == [0, 5, 8, 11, 15]
    assert requantize(acc, 0.5, "exact", dtype="int4").dtype == np.int8
    assert requantize(acc, 0.5, "exact", dtype="uint8").dtype == np.uint8
    assert requantize(acc, 0.5, "exact", dtype="int16").tolist() == [-32768, -3, 0, 3, 32767]
    assert requantize(acc, 0.5, "exact", dtype="int32").tolist() == [-500000, -3, 0, 3, 500000]
    assert requantize(acc, 0.5, "exact", dtype="int6").tolist() == [-32, -3, 0, 3, 31]


def test_tvm_2019_float_clips_symmetric():
    out = requantize([-(10**6), 10**6], 0.5, "tvm_2019_float", dtype="int8")
    assert out.tolist() == [-127, 127]  # clip(-127, 127) as in the seed graph


def test_xnnpack_scale_range():
    with pytest.raises(ValueError, match=r"\[2\^-32, 256\)"):
        requantize([1], 300.0, "xnnpack_rndnu")


def test_every_scheme_documented():
    for s in SCHEMES.values():
        assert s.formula and s.tie and s.engines
