"""Kernel-layer reproducers of issue 13 (``fxq_explore/kernels/_ffi.py``, ``kernels/conv.py``,
``csrc/``): the correct behaviour, asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

import fxq_explore as fx
from fxq_explore.kernels import _ffi

from .conftest import MiB, memory_cap, raises_naming

X = np.full((1, 3, 1, 4), 10, np.uint8)  # acc = 3 * 10 = 30 per output
W = np.ones((2, 3, 1, 1), np.int8)
FIXED_POINT = next(n for n, s in fx.SCHEMES.items() if s.c_scheme and "Q31" in s.multiplier)


def _expected(x, scale):
    """30 * scale rounded (ties cannot occur here), uint8, every output."""
    n_out = x.shape[0] * W.shape[0] * x.shape[2] * x.shape[3]
    return [min(255, max(0, round(30 * scale)))] * n_out


def test_conv2d_memo_cache_not_stale_after_scale_mutation():
    s = np.array([0.01, 0.01])
    fx.conv2d(X, W, scale=s, scheme=FIXED_POINT)
    s[:] = 0.5
    got = fx.conv2d(X[:, :, :, :2], W, scale=np.array([0.01, 0.01]), scheme=FIXED_POINT)
    assert got.ravel().tolist() == _expected(X[:, :, :, :2], 0.01)


def test_conv2d_layer_keeps_a_copy_of_the_scale():
    s = np.array([0.01, 0.01])
    layer = fx.Conv2d(W, scale=s, scheme=FIXED_POINT)
    assert layer(X).ravel().tolist() == _expected(X, 0.01)
    s[:] = 0.5  # the caller's array changes; the layer was built with 0.01
    assert layer(X[:, :, :, :2]).ravel().tolist() == _expected(X[:, :, :, :2], 0.01)


@pytest.mark.parametrize(
    "kw,name", [({"x_zero_point": 1.0}, "x_zero_point"), ({"stride": True}, "stride")]
)
def test_conv2d_memo_hit_is_validated_like_a_miss(kw, name):
    base = dict(scale=0.01, scheme=FIXED_POINT, x_zero_point=1, stride=1)
    fx.conv2d(X, W, **base)  # a valid call fills the memo
    raises_naming(TypeError, name, fx.conv2d, X, W, **{**base, **kw})


@pytest.mark.parametrize(
    "kw,name", [({"x_zero_point": 1.0}, "x_zero_point"), ({"stride": True}, "stride")]
)
def test_conv2d_fresh_call_validates(kw, name):
    base = dict(scale=0.02, scheme=FIXED_POINT, x_zero_point=2, stride=1)
    raises_naming(TypeError, name, fx.conv2d, X, W[:1], **{**base, **kw})


def test_conv2d_huge_padding_refused_before_allocating():
    with memory_cap(512 * MiB):
        raises_naming(
            ValueError,
            "padding",
            fx.conv2d,
            X[:, :, :1, :1],
            W,
            scale=0.01,
            scheme=FIXED_POINT,
            padding=2**16,
        )


def _huge_stride():
    return fx.conv2d(X[:, :, :1, :1], W, scale=0.01, scheme=FIXED_POINT, stride=2**20)


def test_conv2d_huge_stride_within_a_bounded_working_set():
    with memory_cap(512 * MiB):
        try:
            out = _huge_stride()
        except ValueError as e:  # refusing it, naming the argument, is also right
            assert "stride" in str(e)
            return
    assert out.shape == (1, 2, 1, 1) and out.ravel().tolist() == _expected(X[:, :, :1, :1], 0.01)


def test_copy_bytes_refuses_overlap():
    a = np.arange(16, dtype=np.uint8)
    with pytest.raises(ValueError) as e:
        _ffi.copy_bytes(a[4:12], a[0:8])
    assert "overlap" in str(e.value)


def test_copy_bytes_refuses_read_only_destination():
    b = bytes(8)
    dst = np.frombuffer(b, np.uint8)
    with pytest.raises((ValueError, TypeError)) as e:
        _ffi.copy_bytes(dst, np.ones(8, np.uint8))
    assert "dst" in str(e.value)
    assert b == bytes(8)


@pytest.mark.parametrize("scale", [1e-46, 1e39, 1e300])
def test_c_float32_rne_scale_beyond_float32(scale):
    name = next(n for n, s in fx.SCHEMES.items() if s.c_scheme and "float32" in s.multiplier)
    raises_naming(ValueError, "scale", fx.requantize, [1], scale, name, backend="c")


def test_c_requantize_accepts_numpy_dtype_objects():
    got = fx.requantize([100, 1000], 0.5, FIXED_POINT, backend="c", dtype=np.dtype("uint8"))
    want = fx.requantize([100, 1000], 0.5, FIXED_POINT, dtype="uint8")
    assert got.dtype == want.dtype and got.tolist() == want.tolist()


def test_c_conv2d_accepts_numpy_dtype_objects():
    got = fx.conv2d(X, W, scale=0.01, scheme=FIXED_POINT, out_dtype=np.dtype("uint8"))
    assert got.dtype == np.uint8 and got.ravel().tolist() == _expected(X, 0.01)
