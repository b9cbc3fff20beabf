"""Accumulation models against a plain-Python oracle written here from the engines' rules.

The oracle imports nothing from fxq_explore. For every output it lists the raw u8 x s8 products
in the order the engine's kernel consumes them, pairs them as the engine does, clamps each pair
to int16 (vpmaddubsw), sums in Python ints, then applies the engine's exact zero-point
corrections:

* MLAS / FBGEMM ("flat K"): reduction index (kh, kw, c), channel fastest; padded pixels hold the
  raw zero point; products 2j and 2j+1 paired; tail padded with zero products. Accumulator =
  sum(pairs) - zx * sum(w) - zw * sum(x) + K * zx * zw (zw = weight zero point).
* oneDNN ("per tap"): channels (c, c+1) of one tap, each tap's channels padded with zero to a
  multiple of 4; padded taps skipped. Accumulator = sum(pairs) - zx * sum(w over in-image taps).
* exact: sum (x - zx)(w - zw).
"""

import numpy as np
import pytest

from fxq_explore.engines import conv2d_accumulate


def clamp16(v):
    return max(-32768, min(32767, v))


def oracle(x, w, zx, zw, stride, pad, groups, rule):
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    kg = k // groups
    oh = (h + 2 * pad - r) // stride + 1
    ow = (wd + 2 * pad - s) // stride + 1
    out = np.zeros((n, k, oh, ow), dtype=np.int64)
    for b in range(n):
        for o in range(k):
            g = o // kg
            for i in range(oh):
                for j in range(ow):
                    taps = []  # (inside, [(xraw, w) per channel])
                    for kh in range(r):
                        for kw in range(s):
                            hi, wi = i * stride + kh - pad, j * stride + kw - pad
                            inside = 0 <= hi < h and 0 <= wi < wd
                            chans = []
                            for cc in range(cg):
                                xr = int(x[b, g * cg + cc, hi, wi]) if inside else zx
                                chans.append((xr, int(w[o, cc, kh, kw])))
                            taps.append((inside, chans))
                    if rule == "exact":
                        acc = sum(
                            (xr - zx) * (wv - zw) if inside else 0
                            for inside, chans in taps
                            for xr, wv in chans
                        )
                    elif rule == "flat":
                        prods = [xr * wv for _, chans in taps for xr, wv in chans]
                        while len(prods) % 4:
                            prods.append(0)
                        acc = sum(clamp16(prods[t] + prods[t + 1]) for t in range(0, len(prods), 2))
                        sw = sum(wv for _, chans in taps for _, wv in chans)
                        sx = sum(xr for _, chans in taps for xr, _ in chans)
                        acc += -zx * sw - zw * sx + len(taps) * cg * zx * zw
                    elif rule == "per_tap":
                        acc = 0
                        for inside, chans in taps:
                            if not inside:
                                continue
                            prods = [xr * wv for xr, wv in chans]
                            while len(prods) % 4:
                                prods.append(0)
                            acc += sum(
                                clamp16(prods[t] + prods[t + 1]) for t in range(0, len(prods), 2)
                            )
                            acc -= zx * sum(wv for _, wv in chans)
                    out[b, o, i, j] = acc
    return out


SHAPES = [
    # (c, k, r, hw, stride, pad, groups)
    (3, 4, 3, 5, 1, 1, 1),
    (5, 3, 3, 6, 2, 1, 1),
    (4, 4, 1, 4, 1, 0, 1),
    (2, 2, 5, 6, 1, 2, 1),
    (7, 2, 2, 5, 1, 0, 1),
    (6, 4, 3, 5, 1, 1, 2),
    (8, 8, 3, 5, 1, 1, 8),  # depthwise
    (1, 3, 3, 4, 2, 1, 1),
]


def full_range(rng, shape):
    w = rng.integers(-127, 128, size=shape)
    flat = w.reshape(shape[0], -1)
    for o in range(shape[0]):
        flat[o, rng.integers(flat.shape[1])] = rng.choice([-127, 127])
    return flat.reshape(shape).astype(np.int8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "model,rule",
    [("exact", "exact"), ("pairs_flat_k", "flat"), ("pairs_per_tap", "per_tap")],
)
def test_model_matches_oracle(shape, model, rule):
    c, k, r, hw, stride, pad, groups = shape
    rng = np.random.default_rng(hash((shape, model)) % 2**32)
    x = rng.integers(150, 256, size=(1, c, hw, hw), dtype=np.uint8)  # large: pairs saturate
    w = full_range(rng, (k, c // groups, r, r))
    got = conv2d_accumulate(
        x, w, x_zero_point=128, stride=stride, padding=pad, groups=groups, accumulate=model
    )
    want = oracle(x, w, 128, 0, stride, pad, groups, rule)
    np.testing.assert_array_equal(got, want)


def test_oracle_cases_do_saturate():
    # the shapes above are not vacuous: the flat-K oracle differs from exact on most of them
    differ = 0
    for shape in SHAPES:
        c, k, r, hw, stride, pad, groups = shape
        rng = np.random.default_rng(1)
        x = rng.integers(150, 256, size=(1, c, hw, hw), dtype=np.uint8)
        w = full_range(rng, (k, c // groups, r, r))
        a = oracle(x, w, 128, 0, stride, pad, groups, "flat")
        b = oracle(x, w, 128, 0, stride, pad, groups, "exact")
        differ += bool((a != b).any())
    assert differ >= 6


def test_mlas_depthwise_is_exact_and_other_layers_pair():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(1, 8, 5, 5), dtype=np.uint8)
    w = full_range(rng, (8, 1, 3, 3))
    got = conv2d_accumulate(x, w, x_zero_point=128, padding=1, groups=8, accumulate="mlas_u8s8")
    np.testing.assert_array_equal(got, oracle(x, w, 128, 0, 1, 1, 8, "exact"))
    w2 = full_range(rng, (4, 3, 3, 3))
    x2 = rng.integers(150, 256, size=(1, 3, 5, 5), dtype=np.uint8)
    got2 = conv2d_accumulate(x2, w2, x_zero_point=128, padding=1, accumulate="mlas_u8s8")
    np.testing.assert_array_equal(got2, oracle(x2, w2, 128, 0, 1, 1, 1, "flat"))


def test_flat_k_with_weight_zero_point():
    # MLAS QGemm path: weight zero point != 0, raw s8 weights are multiplied
    rng = np.random.default_rng(4)
    x = rng.integers(150, 256, size=(1, 3, 5, 5), dtype=np.uint8)
    w = full_range(rng, (2, 3, 3, 3))
    got = conv2d_accumulate(
        x, w, x_zero_point=100, w_zero_point=5, padding=1, accumulate="pairs_flat_k"
    )
    np.testing.assert_array_equal(got, oracle(x, w, 100, 5, 1, 1, 1, "flat"))
    ex = conv2d_accumulate(x, w, x_zero_point=100, w_zero_point=5, padding=1)
    np.testing.assert_array_equal(ex, oracle(x, w, 100, 5, 1, 1, 1, "exact"))


def test_stats_count_saturated_pairs():
    x = np.full((1, 2, 1, 1), 255, np.uint8)
    w = np.array([[[[127]], [[127]]], [[[1]], [[1]]]], np.int8)
    acc, st = conv2d_accumulate(x, w, accumulate="pairs_flat_k", return_stats=True)
    assert acc[0, :, 0, 0].tolist() == [32767, 510]
    assert st.saturated.tolist() == [1, 0]
    assert st.pairs == 2  # (c0, c1) and the zero tail pair (padded to 4)
    assert st.error[0, :, 0, 0].tolist() == [32767 - 2 * 255 * 127, 0]


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(accumulate="nope"), "accumulate"),
        (dict(groups=3), "groups"),
        (dict(stride=0), "stride"),
        (dict(padding=-1), "padding"),
    ],
)
def test_bad_arguments(kw, match):
    x = np.zeros((1, 4, 5, 5), np.uint8)
    w = np.zeros((4, 4, 3, 3), np.int8)
    with pytest.raises(ValueError, match=match):
        conv2d_accumulate(x, w, **kw)
