"""The oracle itself, checked against the definition written as six plain Python loops."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fxq_explore.kernels.reference import conv2d_reference


def naive_conv(x, w, bias, zp, stride, pad):
    """Sum over c, r, s of (x - zp) * w with out-of-image taps contributing 0 (Python ints)."""
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    oh = (h + 2 * pad - r) // stride + 1
    ow = (wd + 2 * pad - s) // stride + 1
    out = np.zeros((n, k, oh, ow), dtype=object)
    for b in range(n):
        for o in range(k):
            for i in range(oh):
                for j in range(ow):
                    acc = int(bias[o]) if bias is not None else 0
                    for ci in range(c):
                        for di in range(r):
                            for dj in range(s):
                                hi, wj = i * stride + di - pad, j * stride + dj - pad
                                if 0 <= hi < h and 0 <= wj < wd:
                                    acc += (int(x[b, ci, hi, wj]) - zp) * int(w[o, ci, di, dj])
                    out[b, o, i, j] = acc
    return out


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_reference_matches_six_loops(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    c, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    r, s = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    pad, stride = data.draw(st.integers(0, 2)), data.draw(st.integers(1, 2))
    h = data.draw(st.integers(max(1, r - 2 * pad), 6))
    wd = data.draw(st.integers(max(1, s - 2 * pad), 6))
    signed = data.draw(st.booleans())
    dt, zp = (
        (np.int8, data.draw(st.integers(-128, 127)))
        if signed
        else (np.uint8, data.draw(st.integers(0, 255)))
    )
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max + 1, size=(1, c, h, wd)).astype(dt)
    w = rng.integers(-128, 128, size=(k, c, r, s)).astype(np.int8)
    bias = rng.integers(-1000, 1000, size=k).astype(np.int32) if data.draw(st.booleans()) else None
    got = conv2d_reference(x, w, bias, x_zero_point=zp, stride=stride, padding=pad)
    assert got.dtype == np.int32
    assert got.tolist() == naive_conv(x, w, bias, zp, stride, pad).tolist()


def test_padding_contributes_zero():
    """A constant image equal to the zero point gives exactly the bias everywhere."""
    x = np.full((1, 2, 4, 4), 77, np.uint8)
    w = np.full((3, 2, 3, 3), -128, np.int8)
    bias = np.array([5, -6, 7], np.int32)
    acc = conv2d_reference(x, w, bias, x_zero_point=77, padding=2)
    assert acc.shape == (1, 3, 6, 6)
    assert (acc == bias[None, :, None, None]).all()
