"""NCHW <-> NCHW16c and OIHW <-> OIHW4i16o4i converters."""

import numpy as np
import pytest

from fxq_explore.kernels.conv import (
    nchw16c_to_nchw,
    nchw_to_nchw16c,
    oihw4i16o4i_to_oihw,
    oihw_to_oihw4i16o4i,
)


def test_input_layout_index_mapping_and_round_trip():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(2, 32, 5, 3)).astype(np.uint8)
    x16 = nchw_to_nchw16c(x)
    assert x16.shape == (2, 2, 5, 3, 16) and x16.flags.c_contiguous
    for n, c, h, w in [(0, 0, 0, 0), (1, 17, 4, 2), (0, 31, 2, 1), (1, 15, 3, 0)]:
        assert x16[n, c // 16, h, w, c % 16] == x[n, c, h, w]
    assert np.array_equal(nchw16c_to_nchw(x16), x)


def test_weight_layout_index_mapping_and_round_trip():
    """w16[ko, ci, r, s, a, k, b] == w[16*ko + k, 16*ci + 4*a + b, r, s] (OIHW4i16o4i)."""
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, size=(32, 48, 3, 2)).astype(np.int8)
    w16 = oihw_to_oihw4i16o4i(w)
    assert w16.shape == (2, 3, 3, 2, 4, 16, 4) and w16.flags.c_contiguous
    for _ in range(200):
        ko, ci, r, s, a, k, b = (int(rng.integers(0, m)) for m in w16.shape)
        assert w16[ko, ci, r, s, a, k, b] == w[16 * ko + k, 16 * ci + 4 * a + b, r, s]
    assert np.array_equal(oihw4i16o4i_to_oihw(w16), w)


def test_seed_shapes_round_trip():
    rng = np.random.default_rng(3)
    w16 = rng.integers(-128, 128, size=(4, 4, 3, 3, 4, 16, 4)).astype(np.int8)
    assert oihw4i16o4i_to_oihw(w16).shape == (64, 64, 3, 3)
    assert np.array_equal(oihw_to_oihw4i16o4i(oihw4i16o4i_to_oihw(w16)), w16)


@pytest.mark.parametrize(
    "fn, arr, match",
    [
        (nchw_to_nchw16c, np.zeros((1, 15, 2, 2), np.uint8), "multiple of 16"),
        (nchw_to_nchw16c, np.zeros((15, 2, 2), np.uint8), "rank 4"),
        (nchw16c_to_nchw, np.zeros((1, 1, 2, 2, 8), np.uint8), "16"),
        (oihw_to_oihw4i16o4i, np.zeros((16, 8, 3, 3), np.int8), "multiples of 16"),
        (oihw4i16o4i_to_oihw, np.zeros((1, 1, 3, 3, 4, 8, 4), np.int8), r"\(4, 16, 4\)"),
    ],
)
def test_converters_reject_bad_shapes(fn, arr, match):
    with pytest.raises(ValueError, match=match):
        fn(arr)
