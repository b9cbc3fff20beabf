"""The AMX path: dense convolutions on tiles, bit-identical to the oracle.

Its own operand layouts (channels padded to 16/32/48/64 or a multiple of 64, pixel tiles of up
to 16 pixels of one output row, in pairs) have edges the other paths do not: channel counts
above 64, an odd number of pixel tiles, one pixel per tile, rows longer than a tile pair,
strides, every input layout (NCHW, NCHW16c, NHWC). The oracle is the numpy reference conv and
numpy requantize; depthwise and grouped convolutions take the AVX-512 kernels on this path and
are covered with every path elsewhere. Skipped on a CPU without AMX (but for the check that
the path exists exactly where the CPU has AMX).
"""

import numpy as np
import pytest

from fxq_explore import requantize
from fxq_explore.kernels import _ffi as kernels
from fxq_explore.kernels import conv
from fxq_explore.kernels.reference import conv2d_reference

needs_amx = pytest.mark.skipif(
    "amx" not in kernels.available_paths(), reason="this CPU has no AMX (or the OS denies it)"
)

FUSED = ("float32_rne", "pow2", "tflite", "tflite_single")


def case(seed, n, c, k, h, wd, r, s, signed=False):
    rng = np.random.default_rng(seed)
    lo, hi = (-128, 127) if signed else (0, 255)
    x = rng.integers(lo, hi + 1, size=(n, c, h, wd)).astype(np.int8 if signed else np.uint8)
    w = rng.integers(-128, 128, size=(k, c, r, s)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=k).astype(np.int32)
    xzp = int(rng.integers(lo, hi + 1))
    return x, w, bias, xzp


GEOMETRIES = [
    # (n, c, k, h, wd, r, s, stride, padding): C above 64 (cpad 128, 192, 256), C at the chunk
    # edges, K not a multiple of 16 (one 16-channel block left over), OW = 1, 16, 17 (two tiles
    # of 9), 33 (three tiles: the last pair has one), 56 (the seed row), rows of 70 pixels
    (1, 65, 17, 5, 9, 3, 3, 1, 1),
    (2, 130, 33, 4, 17, 3, 3, 1, 1),
    (1, 200, 40, 3, 33, 1, 1, 1, 0),
    (1, 64, 64, 6, 56, 3, 3, 1, 1),
    (1, 48, 5, 7, 16, 5, 5, 1, 2),
    (1, 33, 70, 9, 70, 3, 3, 2, 1),
    (2, 1, 3, 8, 1, 1, 1, 1, 0),
    (1, 17, 16, 11, 33, 3, 1, 2, 0),
    (1, 80, 31, 5, 40, 5, 3, 1, 2),
]


@needs_amx
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
@pytest.mark.parametrize("signed", [False, True])
def test_amx_matches_oracle(geom, signed):
    n, c, k, h, wd, r, s, stride, pad = geom
    x, w, bias, xzp = case(sum(geom), n, c, k, h, wd, r, s, signed)
    acc = conv2d_reference(x, w, bias, x_zero_point=xzp, stride=stride, padding=pad)
    kw = dict(x_zero_point=xzp, stride=stride, padding=pad, path="amx")
    np.testing.assert_array_equal(conv.conv2d(x, w, bias, **kw), acc)
    scale = np.linspace(1.0, 3.0, k) * 100.0 / max(int(np.abs(acc.astype(np.int64)).max()), 1)
    for scheme in FUSED:
        want = requantize(acc, scale, scheme, zero_point=-5, dtype="int8", axis=1)
        got = conv.conv2d(
            x, w, bias, scheme=scheme, scale=scale, out_zero_point=-5, out_dtype="int8", **kw
        )
        np.testing.assert_array_equal(got, want, err_msg=scheme)
        assert len(np.unique(want)) > min(20, want.size // 4)


@needs_amx
@pytest.mark.parametrize("scheme", [None, "tflite", "float32_rne"])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW16c"])
def test_amx_other_layouts(layout, scheme):
    """The channels-last and blocked inputs are packed by their own loops on this path."""
    c, k = (80, 40) if layout == "NHWC" else (96, 48)
    x, w, bias, xzp = case(3, 2, c, k, 7, 19, 3, 3)
    acc = conv2d_reference(x, w, bias, x_zero_point=xzp, padding=1)
    want = acc if scheme is None else requantize(acc, 2e-4, scheme, dtype="uint8", axis=1)
    kw = dict(x_zero_point=xzp, stride=(1, 1), padding=(1, 1), path="amx")
    if scheme is not None:
        arrays, nch = kernels.quant_arrays(2e-4, scheme)
        kw.update(scheme=scheme, arrays=arrays, n_channels=nch, out_dtype="uint8")
    if layout == "NHWC":
        got = kernels.conv2d_c(
            np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
            w,
            bias,
            layout="NHWC",
            out_shape=(2, 7, 19, k),
            **kw,
        )
        got = got.transpose(0, 3, 1, 2)
    else:
        got = kernels.conv2d_c(
            conv.nchw_to_nchw16c(x),
            conv.oihw_to_oihw4i16o4i(w),
            bias,
            layout="NCHW16c",
            out_shape=(2, k // 16, 7, 19, 16),
            **kw,
        )
        got = conv.nchw16c_to_nchw(got)
    np.testing.assert_array_equal(got, want)


@needs_amx
def test_amx_accumulator_extremes():
    """|x - zp| = 255 against w = -128 everywhere: the largest accumulators C = 64 allows in a
    3x3 conv, through the int32 tiles (no intermediate int16 step to saturate)."""
    x = np.full((1, 64, 5, 20), 255, np.uint8)
    w = np.full((20, 64, 3, 3), -128, np.int8)
    want = conv2d_reference(x, w, None, x_zero_point=0)
    assert int(want.min()) == -255 * 128 * 64 * 9
    np.testing.assert_array_equal(conv.conv2d(x, w, None, x_zero_point=0, path="amx"), want)


@needs_amx
def test_amx_depthwise_and_grouped_take_the_avx512_kernels():
    x, w, bias, xzp = case(9, 1, 24, 24, 9, 13, 3, 3)
    for groups in (24, 3):
        wg = w[:, : 24 // groups]
        want = conv2d_reference(x, wg, bias, x_zero_point=xzp, padding=1, groups=groups)
        got = conv.conv2d(x, wg, bias, x_zero_point=xzp, padding=1, groups=groups, path="amx")
        np.testing.assert_array_equal(got, want)


@needs_amx
def test_amx_is_the_best_path_and_the_env_selects_it(monkeypatch):
    assert kernels.info()["best_path"] == "amx"
    monkeypatch.setenv("FXQ_KERNEL_PATH", "amx")
    assert kernels.info()["path"] == "amx"


def test_amx_path_follows_the_cpu_flags():
    """The path exists exactly where the kernel reports AMX tiles + int8 and the AVX-512 path."""
    from fxq_explore.engines import cpu_flags

    paths = kernels.available_paths()
    want = {"amx_tile", "amx_int8"} <= cpu_flags() and "avx512" in paths
    assert ("amx" in paths) == want
