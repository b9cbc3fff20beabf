"""The seed graphs against a plain rendering of the printed ops (element by element)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fxq_explore.studies import seed

SMALL = (1, 2, 5, 4, 16)  # (N, C/16, H, W, 16)


def conv_from_printed_layout(x, w):
    """3x3 conv, stride 1, pad 1, written from the layout definitions (loops over positions).

    x[n, cb, h, w, c16] is channel 16 cb + c16; w[ko, ci, r, s, a, k, b] is the weight of output
    channel 16 ko + k and input channel 16 ci + 4 a + b.
    """
    n, cb, hh, ww, _ = x.shape
    kb = w.shape[0]
    xc = np.zeros((n, cb * 16, hh, ww), dtype=np.int64)
    for c in range(cb * 16):
        xc[:, c] = x[:, c // 16, :, :, c % 16]
    wc = np.zeros((kb * 16, cb * 16, 3, 3), dtype=np.int64)
    for ko in range(kb):
        for ci in range(cb):
            for a in range(4):
                for k in range(16):
                    for b in range(4):
                        wc[16 * ko + k, 16 * ci + 4 * a + b] = w[ko, ci, :, :, a, k, b]
    xp = np.zeros((n, cb * 16, hh + 2, ww + 2), dtype=np.int64)
    xp[:, :, 1:-1, 1:-1] = xc
    out = np.zeros((n, kb, hh, ww, 16), dtype=np.int64)
    for i in range(hh):
        for j in range(ww):
            patch = xp[:, :, i : i + 3, j : j + 3]  # (n, C, 3, 3)
            res = np.einsum("ncrs,kcrs->nk", patch, wc)
            out[:, :, i, j, :] = res.reshape(n, kb, 16)
    return out


def round_half_away(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def q31(ratio):
    """frexp, round half away, renormalize -- of the float32 ratio."""
    r = float(np.float32(ratio))
    f, e = math.frexp(r)
    q = int(math.floor(f * 2**31 + 0.5))
    if q == 2**31:
        q, e = 2**30, e + 1
    return q, e


def fpm_upward(x, q, e):
    """TVM FixedPointMultiply(UPWARD) with Python ints."""
    left, right = max(e, 0), max(-e, 0)
    total = 31 + right
    return ((int(x) << left) * q + (1 << (total - 1))) >> total


def fpm_tonearest(x, q, e):
    """TVM FixedPointMultiply(TONEAREST): round half away from zero, with Python ints."""
    p = (int(x) << max(e, 0)) * q
    total = 31 + max(-e, 0)
    mag = (abs(p) + (1 << (total - 1))) >> total
    return mag if p >= 0 else -mag


def render_graphs(inp, fpm=fpm_upward):
    """The three graphs as printed, one element at a time."""
    acc = conv_from_printed_layout(inp["x"], inp["w"])
    bias, mul, add = inp["bias"], inp["mul"], inp["add"]
    m1, m2 = np.float32(0.0018843), np.float32(0.0340026)
    qa, qb = q31(0.0018843), q31(0.0340026)
    shape = acc.shape
    pow2 = np.zeros(shape, np.uint8)
    flt = np.zeros(shape, np.uint8)
    fix = np.zeros(shape, np.uint8)
    for idx in np.ndindex(shape):
        ko, k = idx[1], idx[4]
        a = int(acc[idx])
        # graph 1
        g = max(a + int(bias[ko, 0, 0, k]), 0)
        pow2[idx] = min(max((g + 64) >> 7, -127), 127)
        # graph 2 (float32 products)
        v = float(np.float32(np.float32(a) * m1))
        s1 = min(max(round_half_away(v), -127), 127)
        s2 = max(s1 * int(mul[ko, 0, 0, k]) + int(add[ko, 0, 0, k]), 0)
        v2 = float(np.float32(np.float32(s2) * m2))
        flt[idx] = min(max(round_half_away(v2), -127), 127)
        # graph 2 with fixed-point multiplies
        t1 = min(max(fpm(a, *qa), -127), 127)
        t2 = max(t1 * int(mul[ko, 0, 0, k]) + int(add[ko, 0, 0, k]), 0)
        fix[idx] = min(max(fpm(t2, *qb), -127), 127)
    return acc, pow2, flt, fix


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("s", [0, 3])
def test_small_shape_against_printed_ops(backend, s):
    r = seed.replay(s, shape=SMALL, out_blocks=1, backend=backend)
    acc, pow2, flt, fix = render_graphs(r.inputs)
    np.testing.assert_array_equal(r.intermediates["acc"], acc)
    np.testing.assert_array_equal(r.pow2, pow2)
    np.testing.assert_array_equal(r.float, flt)
    np.testing.assert_array_equal(r.fixed, fix)
    assert r.fixed.shape == (1, 1, 5, 4, 16) and r.fixed.dtype == np.uint8


def test_tonearest_rounding_against_printed_ops():
    r = seed.replay(2, shape=SMALL, out_blocks=1, backend="numpy", rounding="TONEAREST")
    _, _, _, fix = render_graphs(r.inputs, fpm_tonearest)
    np.testing.assert_array_equal(r.fixed, fix)
    # the two roundings differ only on exact ties of acc * q * 2^(e-31) (none expected here)
    up = seed.replay(2, shape=SMALL, out_blocks=1, backend="numpy")
    assert np.count_nonzero(up.fixed != r.fixed) <= 2


def test_multipliers_from_float32_ratio():
    assert seed.fixed_point_multiplier(0.0018843) == (2071809792, -9)
    assert seed.fixed_point_multiplier(0.0018843, "float64") == (2071809760, -9)
    assert seed.fixed_point_multiplier(0.0340026) == (1168320384, -4)
    r = seed.replay(0, shape=SMALL, backend="numpy", ratio_precision="float64")
    assert r.multipliers["M1"] == (2071809760, -9)


def test_stages_agree_with_requantize_schemes():
    """Stage 1 is requantize 'tvm_2019_float' (clip +-127) / 'tflite_single' of float32(M)."""
    from fxq_explore import requantize

    r = seed.replay(1, shape=(1, 1, 7, 7, 16), backend="numpy")
    acc = r.intermediates["acc"]
    f1 = requantize(acc, 0.0018843, "tvm_2019_float", dtype="int8")
    np.testing.assert_array_equal(r.intermediates["float_stage1"], f1)
    x1 = requantize(acc, float(np.float32(0.0018843)), "tflite_single", dtype="int32")
    np.testing.assert_array_equal(r.intermediates["fixed_stage1"], np.clip(x1, -127, 127))


@pytest.fixture(scope="module")
def full():
    return seed.replay(0)


def test_full_seed_shapes_and_magnitudes(full):
    for name in ("pow2", "float", "fixed"):
        a = getattr(full, name)
        assert a.shape == (1, 4, 56, 56, 16) and a.dtype == np.uint8
        assert 0.05 < np.mean(a == 0) < 0.95  # not all zero
        assert np.mean(a == 127) < 0.05  # not all clipped
        assert len(np.unique(a)) > 30
    assert full.inputs["x"].shape == seed.SEED_SHAPE and full.inputs["x"].dtype == np.uint8
    assert full.inputs["w"].shape == seed.SEED_WEIGHT_SHAPE and full.inputs["w"].dtype == np.int8
    for k in ("bias", "mul", "add"):
        assert full.inputs[k].shape == (4, 1, 1, 16) and full.inputs[k].dtype == np.int32


def test_full_seed_conv_checked_and_table(full):
    if full.conv_checked is not None:  # C kernel present: checked against the reference
        assert full.conv_checked is True
    rows = full.table()
    pairs = {(r["a"], r["b"]): r for r in rows}
    fl_fx = pairs[("float", "fixed")]
    d = np.abs(full.float.astype(int) - full.fixed.astype(int))
    assert fl_fx["mismatches"] == int(np.count_nonzero(d))
    assert fl_fx["max_abs_diff"] == int(d.max())
    # the pow2 graph is a different (power-of-two) quantization of the same layer
    assert pairs[("float", "pow2")]["mismatches"] > 0
    text = str(full)
    assert "mismatches" in text and "2071809792" in text
    assert "<table>" in full._repr_html_()


def test_deterministic_and_seed_dependent():
    a = seed.replay(5, shape=SMALL, backend="numpy")
    b = seed.replay(5, shape=SMALL, backend="numpy")
    c = seed.replay(6, shape=SMALL, backend="numpy")
    np.testing.assert_array_equal(a.fixed, b.fixed)
    assert not np.array_equal(a.inputs["x"], c.inputs["x"])


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"shape": (1, 4, 8, 8)}, "shape"),
        ({"shape": (1, 4, 8, 8, 8)}, "shape"),
        ({"float_round": "up"}, "float_round"),
        ({"backend": "gpu"}, "backend"),
        ({"ratio_precision": "float16"}, "ratio_precision"),
        ({"rounding": "DOWNWARD"}, "rounding"),
    ],
)
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        seed.replay(0, **kw)
