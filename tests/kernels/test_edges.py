"""Edges of the kernel layer around the issue-13 fixes: strides past the input, the padding
memory bound, numpy dtype objects, the conv2d memo and copy_bytes -- each result bit-exact
against the numpy reference or an exact expectation."""

from __future__ import annotations

import numpy as np
import pytest

import fxq_explore as fx
from fxq_explore.kernels import _ffi, conv

FIXED_POINT = next(n for n, s in fx.SCHEMES.items() if s.c_scheme and "Q31" in s.multiplier)


def _case(rng, n=1, c=3, h=5, wd=6, k=4, r=2, s=3):
    x = rng.integers(0, 256, size=(n, c, h, wd)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(k, c, r, s)).astype(np.int8)
    bias = rng.integers(-1000, 1000, size=k).astype(np.int32)
    return x, w, bias


@pytest.mark.parametrize(
    "stride,padding",
    [((2**20, 1), 0), ((1, 2**20), 1), ((2**31 - 1, 2**31 - 1), (1, 2)), ((4, 5), 0), ((6, 9), 2)],
)
@pytest.mark.parametrize("scheme", [None, FIXED_POINT])
def test_stride_past_the_input_is_exact(path, stride, padding, scheme):
    rng = np.random.default_rng(7)
    x, w, bias = _case(rng)
    kw = dict(
        scale=None if scheme is None else 0.004,
        scheme=scheme,
        x_zero_point=3,
        stride=stride,
        padding=padding,
    )
    got = fx.conv2d(x, w, bias, path=path, **kw)
    want = fx.conv2d(x, w, bias, backend="reference", **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


def test_padding_bound_reported_is_the_largest_that_fits():
    x, w, _ = _case(np.random.default_rng(1), h=1, wd=1, r=1, s=1)
    with pytest.raises(ValueError, match=r"padding must be in \[0, (\d+)\]") as e:
        fx.conv2d(x, w, scale=0.01, scheme=FIXED_POINT, padding=(2**16, 2**16))
    bound = int(e.value.args[0].rsplit("[0, ", 1)[1].split("]")[0])
    st = conv._check_static(
        w, None, 0.01, "uint8", 0, 0, 1, 0, FIXED_POINT, "uint8", "NCHW", "c", "nearest"
    )
    base = conv._padded_bytes(1, 3, 1, 1, st, 0, 0)
    assert conv._padded_bytes(1, 3, 1, 1, st, bound, bound) - base <= conv.PADDING_MAX_BYTES
    assert conv._padded_bytes(1, 3, 1, 1, st, bound + 1, bound + 1) - base > conv.PADDING_MAX_BYTES


def test_padding_wider_than_the_kernel_still_runs():
    x, w, bias = _case(np.random.default_rng(2), r=1, s=1)
    kw = dict(scale=0.01, scheme=FIXED_POINT, x_zero_point=5, padding=(3, 7))
    assert np.array_equal(
        fx.conv2d(x, w, bias, **kw), fx.conv2d(x, w, bias, backend="reference", **kw)
    )


@pytest.mark.parametrize("dt", [np.uint8, np.dtype("uint8"), np.int8, np.dtype("int8")])
def test_numpy_dtypes_everywhere_on_the_c_path(dt):
    name = np.dtype(dt).name
    acc = np.arange(-3000, 3000, 7, dtype=np.int32)
    got = fx.requantize(acc, 0.01, FIXED_POINT, backend="c", dtype=dt)
    want = fx.requantize(acc, 0.01, FIXED_POINT, dtype=name)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    rng = np.random.default_rng(3)
    x, w, bias = _case(rng)
    xs = (x.astype(np.int16) - 128).astype(np.int8) if name == "int8" else x
    layer = fx.Conv2d(w, bias, scale=0.003, scheme=FIXED_POINT, x_dtype=dt, out_dtype=dt)
    ref = fx.conv2d(
        xs, w, bias, scale=0.003, scheme=FIXED_POINT, out_dtype=name, backend="reference"
    )
    out = layer(xs)
    assert out.dtype == ref.dtype and np.array_equal(out, ref)


def test_c_dtype_without_kernel_is_named():
    with pytest.raises(ValueError, match="dtype"):
        fx.requantize([1, 2], 0.5, FIXED_POINT, backend="c", dtype=np.dtype("int16"))


def test_memo_hit_with_numpy_integers_matches_a_fresh_call():
    x, w, bias = _case(np.random.default_rng(4))
    kw = dict(scale=0.004, scheme=FIXED_POINT, x_zero_point=np.int64(3), stride=(np.int64(1), 2))
    first = fx.conv2d(x, w, bias, **kw)
    again = fx.conv2d(x, w, bias, **kw)  # a hit
    plain = fx.conv2d(x, w, bias, scale=0.004, scheme=FIXED_POINT, x_zero_point=3, stride=(1, 2))
    assert np.array_equal(first, again) and np.array_equal(first, plain)


def test_layer_arrays_are_private_and_read_only():
    x, w, bias = _case(np.random.default_rng(5))
    scale = np.full(4, 0.004)
    layer = conv.Conv2d(w, bias, scale=scale, scheme=FIXED_POINT)
    before = layer(x)
    w[:] = 0
    bias[:] = 0
    scale[:] = 0.5
    assert np.array_equal(layer(x), before)
    st = layer._st
    assert not (st.w.flags.writeable or st.bias.flags.writeable or st.scale.flags.writeable)


def test_copy_bytes_adjacent_and_disjoint():
    a = np.arange(16, dtype=np.uint8)
    _ffi.copy_bytes(a[8:16], a[0:8])  # touching, not overlapping
    assert a.tolist() == list(range(8)) * 2
    dst = np.zeros((2, 4), np.int32)
    _ffi.copy_bytes(dst, np.arange(8, dtype=np.int32).reshape(2, 4))
    assert dst.ravel().tolist() == list(range(8))
