"""conv2d checks its arguments before any C call and names the offending one."""

import os

import numpy as np
import pytest

from fxq_explore.kernels import _ffi as kernels
from fxq_explore.kernels.conv import conv2d

X = np.zeros((1, 3, 5, 5), np.uint8)
W = np.zeros((4, 3, 3, 3), np.int8)


def call(**kw):
    args = dict(x=X, w=W, bias=None, scale=0.01, scheme="tflite")
    args.update(kw)
    return conv2d(args.pop("x"), args.pop("w"), args.pop("bias"), **args)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(x=X.astype(np.int16)), TypeError, "x must have dtype"),
        (dict(x=X.tolist()), TypeError, "x must be a numpy ndarray"),
        (dict(w=W.astype(np.uint8)), TypeError, "w must have dtype int8"),
        (dict(x=X[0]), ValueError, "x must have rank 4"),
        (dict(w=W[0]), ValueError, "w must have rank 4"),
        (dict(w=np.zeros((4, 2, 3, 3), np.int8)), ValueError, "input channel count"),
        (dict(bias=np.zeros(4, np.int64)), TypeError, "bias must have dtype int32"),
        (dict(bias=np.zeros(3, np.int32)), ValueError, r"bias must have shape \(4,\)"),
        (dict(scale=np.full(3, 0.01)), ValueError, r"scale must be a float or have shape \(4,\)"),
        (dict(scale=-1.0), ValueError, "scale must be positive"),
        (dict(scale=None), ValueError, "scale is required"),
        (dict(stride=0), ValueError, "stride must be >= 1"),
        (dict(stride=1.5), TypeError, "stride must be an int"),
        (dict(padding=-1), ValueError, "padding must be >= 0"),
        (dict(padding=(1, 2, 3)), TypeError, "padding must be an int or a pair"),
        (dict(x=np.zeros((1, 3, 2, 2), np.uint8)), ValueError, "output would be empty"),
        (dict(x_zero_point=256), ValueError, r"x_zero_point must be in \[0, 255\]"),
        (
            dict(x=X.astype(np.int8), x_zero_point=128),
            ValueError,
            r"x_zero_point must be in \[-128, 127\]",
        ),
        (dict(out_zero_point=-1), ValueError, r"out_zero_point must be in \[0, 255\]"),
        (dict(out_dtype="float32"), ValueError, "out_dtype"),
        (dict(scheme="nope"), ValueError, "unknown scheme"),
        (dict(layout="NHWC"), ValueError, "unknown layout"),
        (dict(backend="gpu"), ValueError, "unknown backend"),
        (dict(path="sse9"), ValueError, "unknown path"),
        (
            dict(layout="NCHW16c", w=np.zeros((1, 1, 3, 3, 4, 16, 4), np.int8)),
            ValueError,
            r"x must have shape \(N, C/16, H, W, 16\)",
        ),
        (
            dict(x=np.zeros((1, 1, 5, 5, 16), np.uint8), layout="NCHW16c"),
            ValueError,
            r"w must have shape \(K/16, C/16, R, S, 4, 16, 4\)",
        ),
    ],
)
def test_bad_arguments_are_named(kw, exc, match):
    with pytest.raises(exc, match=match):
        call(**kw)


def test_accumulator_bound():
    """C*R*S*255*128 + max|bias| must stay below 2^31: 7311 channels of 3x3 would not."""
    x = np.zeros((1, 7311, 3, 3), np.uint8)
    w = np.zeros((1, 7311, 3, 3), np.int8)
    with pytest.raises(ValueError, match=r"accumulator bound .* must be < 2\^31"):
        conv2d(x, w, scale=0.01, scheme="tflite")
    # just below the bound, the bias tips it over
    c = 7310
    bias_ok = 2**31 - 1 - c * 9 * 255 * 128
    x = np.zeros((1, c, 3, 3), np.uint8)
    w = np.zeros((1, c, 3, 3), np.int8)
    assert conv2d(x, w, np.array([bias_ok], np.int32)).ravel().tolist() == [bias_ok]
    with pytest.raises(ValueError, match="max|bias|"):
        conv2d(x, w, np.array([bias_ok + 1], np.int32))


def test_non_contiguous_inputs_are_copied():
    rng = np.random.default_rng(0)
    xb = rng.integers(0, 256, size=(1, 6, 7, 7)).astype(np.uint8)
    wb = rng.integers(-128, 128, size=(8, 6, 3, 3)).astype(np.int8)
    x, w = xb[:, ::2], wb[::2, ::2]  # strided views
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    got = conv2d(x, w, x_zero_point=128, padding=1)
    want = conv2d(
        np.ascontiguousarray(x),
        np.ascontiguousarray(w),
        x_zero_point=128,
        padding=1,
        backend="reference",
    )
    assert np.array_equal(got, want)


def test_env_var_selects_path(monkeypatch):
    monkeypatch.setenv("FXQ_KERNEL_PATH", "scalar")
    assert kernels.info()["path"] == "scalar"
    monkeypatch.setenv("FXQ_KERNEL_PATH", "bogus")
    with pytest.raises(ValueError, match="FXQ_KERNEL_PATH"):
        call()


def test_info_reports_features_and_flags():
    i = kernels.info()
    assert i["best_path"] in ("scalar", "avx2", "avx512", "amx")
    assert i["best_path"] == i["available_paths"][-1]
    assert "scalar" in i["available_paths"]
    assert "-O3" in i["compile_flags"] and "-march" not in i["compile_flags"]
    if "avx512" in i["available_paths"]:
        assert {"avx512f", "avx512bw", "avx512vl", "avx512vnni"} <= set(i["cpu_features"])
    if "amx" in i["available_paths"]:
        assert {"avx512vnni", "amx_int8"} <= set(i["cpu_features"])


def test_kernels_requantize_rejects_what_c_lacks():
    with pytest.raises(ValueError, match="scheme"):
        kernels.requantize([1, 2], 0.5, "tvm_tonearest")
    with pytest.raises(ValueError, match="dtype"):
        kernels.requantize([1, 2], 0.5, "tflite", dtype="int16")
    with pytest.raises(ValueError, match="pow2_mode"):
        kernels.requantize([1, 2], 0.5, "pow2", pow2_mode="truncate")
    with pytest.raises(ValueError, match="multiplier_bits"):
        kernels.requantize([1, 2], 0.5, "tflite", multiplier_bits=16)
    with pytest.raises(ValueError, match="axis"):
        kernels.requantize(np.zeros((2, 3), np.int32), [0.1, 0.2, 0.3], "tflite")
    with pytest.raises(ValueError, match="per-channel"):
        kernels.requantize(np.zeros((2, 3), np.int32), [0.1, 0.2, 0.3], "tflite", axis=0)


def test_the_expected_build_is_loaded():
    """``make asan`` sets FXQ_EXPECT_EXTENSION_DIR so the sanitized build is the one under test."""
    expected = os.environ.get("FXQ_EXPECT_EXTENSION_DIR")
    if not expected:
        pytest.skip("FXQ_EXPECT_EXTENSION_DIR not set")
    assert kernels.info()["extension"].startswith(expected)


def test_prepared_layer_matches_one_shot_and_checks_x():
    from fxq_explore.kernels.conv import Conv2d

    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, size=(20, 5, 3, 3)).astype(np.int8)
    bias = rng.integers(-999, 999, size=20).astype(np.int32)
    layer = Conv2d(
        w, bias, scale=2e-4, scheme="tflite_single", x_zero_point=100, padding=1, stride=2
    )
    w[:] = 0  # the layer keeps its own copy
    w = rng.integers(-128, 128, size=(20, 5, 3, 3)).astype(np.int8)
    for shape in [(1, 5, 9, 9), (2, 5, 4, 11)]:
        x = rng.integers(0, 256, size=shape).astype(np.uint8)
        assert np.array_equal(
            layer(x),
            conv2d(
                x,
                layer._st.w,
                layer._st.bias,
                scale=2e-4,
                scheme="tflite_single",
                x_zero_point=100,
                padding=1,
                stride=2,
                backend="reference",
            ),
        )
    with pytest.raises(TypeError, match="x must have dtype uint8"):
        layer(np.zeros((1, 5, 9, 9), np.int8))
    with pytest.raises(ValueError, match="input channel count"):
        layer(np.zeros((1, 4, 9, 9), np.uint8))
    with pytest.raises(ValueError, match="x_dtype"):
        Conv2d(w, x_dtype="int16")


def test_peak_probe_runs():
    """The benchmark's vpdpbusd probe: runs where AVX-512 VNNI exists, refuses elsewhere."""
    lib = kernels._ext().lib
    expected = 0 if "avx512" in kernels.available_paths() else -2
    assert lib.fxq_probe_vpdpbusd_zmm(10) == expected


def test_one_shot_memo_sees_in_place_changes():
    """conv2d reuses packed weights only while w and bias hold the same values."""
    from fxq_explore.kernels.conv import conv2d as c2d

    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, size=(1, 4, 6, 6)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(3, 4, 3, 3)).astype(np.int8)
    bias = rng.integers(-99, 99, size=3).astype(np.int32)
    kw = dict(scale=3e-3, scheme="tflite_single", x_zero_point=128, padding=1)
    for _ in range(2):
        assert np.array_equal(c2d(x, w, bias, **kw), c2d(x, w, bias, backend="reference", **kw))
    w[0, 0, 0, 0] ^= 0x55  # in place: the memo must notice
    assert np.array_equal(c2d(x, w, bias, **kw), c2d(x, w, bias, backend="reference", **kw))
    bias[2] += 1000
    assert np.array_equal(c2d(x, w, bias, **kw), c2d(x, w, bias, backend="reference", **kw))
    assert np.array_equal(c2d(x, w, None, **kw), c2d(x, w, None, backend="reference", **kw))
