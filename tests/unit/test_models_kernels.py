"""models.kernels.conv_nchw_exact: the C accumulators where they apply equal the int64 einsum."""

from __future__ import annotations

import numpy as np
import pytest

from fxq_explore.models.kernels import conv_nchw_exact, conv_nhwc


def einsum_route(x, zx, w, zw, **geom):
    zw = np.asarray(zw, np.int64).reshape(-1)
    wn = w.astype(np.int64) - (zw.reshape(-1, 1, 1, 1) if zw.size > 1 else zw[0])
    xn = x.astype(np.int64).transpose(0, 2, 3, 1) - zx
    return conv_nhwc(xn, wn.transpose(0, 2, 3, 1), **geom).transpose(0, 3, 1, 2)


@pytest.mark.parametrize(
    ("xdt", "zx", "c", "k", "ksize", "stride", "pads", "groups", "dilation", "zw", "c_path"),
    [
        ("uint8", 0, 1, 16, 3, 1, (1, 1, 1, 1), 1, 1, 0, True),  # e2e conv1
        ("uint8", 7, 16, 32, 3, 2, (1, 1, 1, 1), 1, 1, 0, True),  # e2e conv2, a zero point
        ("int8", -5, 8, 8, 3, 1, (0, 0, 0, 0), 8, 1, 0, True),  # depthwise, int8 input
        ("int8", 3, 8, 12, 1, 1, (2, 1, 2, 1), 4, 1, 0, True),  # grouped, 1x1, pads h != w
        ("uint8", 128, 4, 6, 3, 1, (0, 1, 1, 0), 1, 1, 0, False),  # asymmetric pads
        ("uint8", 128, 4, 6, 3, 1, (1, 1, 1, 1), 1, 2, 0, False),  # dilation
        ("uint8", 128, 4, 6, 3, 1, (1, 1, 1, 1), 1, 1, 3, False),  # weight zero point
    ],
)
def test_c_and_einsum_accumulators_agree(
    monkeypatch, xdt, zx, c, k, ksize, stride, pads, groups, dilation, zw, c_path
):
    from fxq_explore.kernels import conv

    calls = []
    real_conv2d = conv.conv2d
    monkeypatch.setattr(conv, "conv2d", lambda *a, **kw: calls.append(1) or real_conv2d(*a, **kw))
    rng = np.random.default_rng(3)
    info = np.iinfo(xdt)
    x = rng.integers(info.min, info.max + 1, (3, c, 9, 9)).astype(xdt)
    w = rng.integers(-128, 128, (k, c // groups, ksize, ksize)).astype(np.int8)
    geom = {"stride": (stride, stride), "dilation": (dilation, dilation), "pads": pads,
            "groups": groups}  # fmt: skip
    got = conv_nchw_exact(x, zx, w, np.full(1, zw), **geom)
    want = einsum_route(x, zx, w, zw, **geom)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    assert bool(calls) == c_path
