"""The standalone C requantization (SIMD, per tensor and per channel) against numpy requantize."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fxq_explore import requantize, scheme_parameters
from fxq_explore.kernels import _ffi as kernels

FUSED = ("float32_rne", "pow2", "tflite", "tflite_single")
I32 = (-(2**31), 2**31 - 1)


def edge_values(rng, n):
    """int32 extremes, values around ties of power-of-two shifts, and random ones."""
    special = [I32[0], I32[0] + 1, I32[1], I32[1] - 1, 0, 1, -1]
    ties = [s * (2**b + d) for b in range(1, 31) for d in (-1, 0, 1) for s in (1, -1)]
    rand = rng.integers(I32[0], I32[1] + 1, size=n).tolist()
    small = rng.integers(-(2**21), 2**21, size=n).tolist()
    return np.array(special + ties + rand + small, dtype=np.int64)


def compare(acc, scale, scheme, path, **kw):
    try:
        want = requantize(acc, scale, scheme, **kw)
    except ValueError as e:
        with pytest.raises(ValueError) as info:
            kernels.requantize(acc, scale, scheme, path=path, **kw)
        assert str(info.value) == str(e)
        return None
    got = kernels.requantize(acc, scale, scheme, path=path, **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    bad = np.flatnonzero(got.ravel() != want.ravel())
    assert bad.size == 0, (
        f"{bad.size} differ, first acc={acc.ravel()[bad[0]]} "
        f"got {got.ravel()[bad[0]]} want {want.ravel()[bad[0]]}"
    )
    return got


@pytest.mark.parametrize("scheme", FUSED)
@pytest.mark.parametrize("dtype, zp", [("uint8", 0), ("uint8", 128), ("int8", 0), ("int8", -5)])
def test_per_tensor_edges(path, scheme, dtype, zp):
    rng = np.random.default_rng(7)
    acc = edge_values(rng, 1000)
    for scale in (
        0.0018843,
        1.2e-4,
        2.0**-9,
        2.0**-31,
        2.0**-33,
        3e-10,
        0.49999,
        0.75,
        1.0,
        1.5,
        3.5,
    ):
        compare(acc, scale, scheme, path, zero_point=zp, dtype=dtype)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_drawn_shapes_axes_and_scales(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    ndim = data.draw(st.integers(1, 4))
    shape = tuple(data.draw(st.lists(st.integers(1, 19), min_size=ndim, max_size=ndim)))
    scheme = data.draw(st.sampled_from(FUSED))
    dtype = data.draw(st.sampled_from(["uint8", "int8"]))
    zp = data.draw(st.integers(0, 255) if dtype == "uint8" else st.integers(-128, 127))
    spread = data.draw(st.sampled_from([2**8, 2**21, 2**31]))
    acc = rng.integers(max(-spread, I32[0]), min(spread, I32[1]), size=shape, endpoint=True)
    axis = data.draw(st.none() | st.integers(-ndim, ndim - 1))
    lo, hi = data.draw(st.sampled_from([(-12, -4), (-36, -28), (-3, 2)]))
    if axis is None:
        scale = float(2.0 ** rng.uniform(lo, hi))
    else:
        scale = 2.0 ** rng.uniform(lo, hi, size=shape[axis])
    pow2_mode = data.draw(st.sampled_from(["nearest", "ceil", "floor"]))
    for p in kernels.available_paths():
        compare(acc, scale, scheme, p, zero_point=zp, dtype=dtype, axis=axis, pow2_mode=pow2_mode)


@pytest.mark.parametrize("scheme", FUSED)
@pytest.mark.parametrize(
    "axis, shape", [(0, (37, 5)), (1, (3, 37, 2)), (-1, (4, 37)), (1, (2, 16, 33)), (-1, (3, 16))]
)
def test_per_channel_layouts(path, scheme, axis, shape):
    """Channels innermost (one lane per channel) and outer (broadcast parameters), with tails."""
    rng = np.random.default_rng(11)
    acc = rng.integers(-(2**22), 2**22, size=shape)
    scale = 2.0 ** rng.uniform(-20, -10, size=shape[axis])
    got = compare(acc, scale, scheme, path, zero_point=3, dtype="uint8", axis=axis)
    assert len(np.unique(got)) > 10


@pytest.mark.parametrize("scheme", ("tflite", "tflite_single"))
@pytest.mark.parametrize("axis", (0, -1))
def test_per_channel_mixed_shifts(path, scheme, axis):
    """Neighbouring channels with a left shift, no shift and right shifts up to 31 (the 64-bit
    AVX-512 forms take per-lane rounding constants split into even and odd channels), on int32
    extremes and ties."""
    rng = np.random.default_rng(5)
    k = 37
    scale = np.array([2.0 ** rng.uniform(-33, 2.5) for _ in range(k)])
    scale[:6] = [3.5, 0.75, 2.0**-31, 1.0, 0.0018843, 2.0**-9]
    vals = edge_values(rng, 300)
    acc = np.resize(vals, (vals.size // k + 1) * k).reshape(-1, k)
    if axis == 0:
        acc = np.ascontiguousarray(acc.T)
    compare(acc, scale, scheme, path, zero_point=-3, dtype="int8", axis=axis)


def test_c_backend_of_requantize_dispatches_here(path, monkeypatch):
    monkeypatch.setenv("FXQ_KERNEL_PATH", path)
    acc = np.arange(-40000, 40000, 7)
    for scheme in FUSED:
        assert np.array_equal(
            requantize(acc, 0.0018843, scheme, backend="c"), requantize(acc, 0.0018843, scheme)
        )


# ---------------------------------------------------------------------------------------------
# golden values and an independent Python-int oracle


def test_golden_values(path):
    acc = np.array([-70000, -1000, 265, 70000])
    # 265 * 0.0018843 = 0.49934: the first (SRDHM) rounding lands on a tie that RDBPOT rounds up
    assert kernels.requantize(acc, 0.0018843, "tflite", path=path).tolist() == [-128, -2, 1, 127]
    assert kernels.requantize(acc, 0.0018843, "tflite_single", path=path).tolist() == [
        -128,
        -2,
        0,
        127,
    ]
    # 797 * 0.0018843 = 1.5018 -> 2, + 128
    assert kernels.requantize(
        [797], 0.0018843, "float32_rne", zero_point=128, dtype="uint8", path=path
    ).tolist() == [130]
    # 2^-9: (acc + 256) >> 9 -- ties (odd multiples of 256) go up
    assert kernels.requantize(
        [256, -256, 767, -768, 768], 2.0**-9, "pow2", dtype="int8", path=path
    ).tolist() == [1, 0, 1, -1, 2]


@settings(max_examples=60, deadline=None)
@given(
    acc=st.lists(st.integers(*I32), min_size=1, max_size=40),
    log2s=st.floats(-34, 1.5),
    zp=st.integers(-128, 127),
)
def test_single_rounding_and_pow2_against_python_ints(acc, log2s, zp):
    """tflite_single = floor((acc*M + 2^(30-e)) / 2^(31-e)); pow2 = floor((acc + 2^(n-1)) / 2^n)."""
    scale = 2.0**log2s
    p = scheme_parameters(scale, "tflite_single")
    m, e = int(p["multiplier"][0]), int(p["shift"][0])
    t = 31 - e
    want = [min(max(((a * m + (1 << (t - 1))) >> t) + zp, -128), 127) for a in acc]
    ex = int(scheme_parameters(scale, "pow2")["exponent"][0])
    if ex < 0:
        want2 = [min(max(((a + (1 << (-ex - 1))) >> -ex) + zp, -128), 127) for a in acc]
    else:
        want2 = [min(max(a * 2**ex + zp, -128), 127) for a in acc]
    for path in kernels.available_paths():
        got = kernels.requantize(np.array(acc), scale, "tflite_single", zero_point=zp, path=path)
        assert got.tolist() == want
        got2 = kernels.requantize(np.array(acc), scale, "pow2", zero_point=zp, path=path)
        assert got2.tolist() == want2
