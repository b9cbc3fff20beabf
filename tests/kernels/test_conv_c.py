"""The C convolution is bit-identical to the oracle: reference conv, then numpy requantize(axis=1).

Every SIMD path is forced in turn (``path=``), so the scalar and AVX2 kernels are tested on an
AVX-512 machine too. Hypothesis draws shapes (1x1 to 7x7 kernels, odd sizes, channel counts that
are not multiples of 16, stride 1-2, padding 0-3), dtypes, zero points, scales and extreme values.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fxq_explore import requantize
from fxq_explore.kernels import _ffi as kernels
from fxq_explore.kernels import conv
from fxq_explore.kernels.reference import conv2d_reference

available_paths = kernels.available_paths

FUSED = ("float32_rne", "pow2", "tflite", "tflite_single")
OTHER = ("tflite_optimized", "tvm_tonearest", "xnnpack_rndnu")


def oracle(x, w, bias, *, scale, xzp, ozp, stride, padding, scheme, out_dtype, pow2_mode="nearest"):
    acc = conv2d_reference(x, w, bias, x_zero_point=xzp, stride=stride, padding=padding)
    if scheme is None:
        return acc
    return requantize(
        acc, scale, scheme, zero_point=ozp, dtype=out_dtype, axis=1, pow2_mode=pow2_mode
    )


@st.composite
def conv_case(draw, schemes=FUSED + (None,)):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 2))
    c = draw(st.sampled_from([1, 3, 15, 16, 17, 33]))
    k = draw(st.sampled_from([1, 5, 16, 19, 32, 40]))
    r, s = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h = draw(st.integers(max(1, r - 2 * ph), r + 9))
    wd = draw(st.integers(max(1, s - 2 * pw), s + 17))
    signed = draw(st.booleans())
    if signed:
        xdt, xzp = np.int8, draw(st.sampled_from([0, -128, 127, -3]))
    else:
        xdt, xzp = np.uint8, draw(st.sampled_from([0, 128, 255, 3]))
    lo, hi = (-128, 127) if signed else (0, 255)
    # "random127"/"extreme127": weights in [-127, 127] (the AVX2 vpmaddubsw kernel; a -128
    # anywhere switches it to its int16 fallback, which "random"/"extreme" exercise)
    fill = draw(
        st.sampled_from(["random", "random127", "extreme", "extreme127", "max_acc", "min_acc"])
    )
    if fill in ("random", "random127"):
        x = rng.integers(lo, hi + 1, size=(n, c, h, wd))
        w = rng.integers(-128 if fill == "random" else -127, 128, size=(k, c, r, s))
    elif fill in ("extreme", "extreme127"):
        x = rng.choice([lo, hi], size=(n, c, h, wd))
        w = rng.choice([-128 if fill == "extreme" else -127, 127], size=(k, c, r, s))
    else:  # drive the accumulators to their extremes: |x - zp| and |w| maximal, same sign
        xzp = lo if not signed else (lo if fill == "max_acc" else hi)
        x = np.full((n, c, h, wd), hi if xzp == lo else lo)
        w = np.full((k, c, r, s), -128 if fill == "min_acc" else 127)
    x, w = x.astype(xdt), w.astype(np.int8)
    bias = None
    if draw(st.booleans()):
        bmax = min(2**31 - 1 - c * r * s * 255 * 128, 2**24)
        bias = rng.integers(-bmax, bmax + 1, size=k).astype(np.int32)
    scheme = draw(st.sampled_from(schemes))
    per_channel = draw(st.booleans())
    # scales: fitted to the accumulators (outputs spread over the whole range), tiny (everything
    # rounds to 0) or large, up to 2 (tflite left shifts)
    regime = draw(st.sampled_from(["fit", "fit", "fit", "tiny", "large"]))
    size = k if per_channel else None
    if regime == "fit":
        acc = conv2d_reference(x, w, bias, x_zero_point=xzp, stride=(sh, sw), padding=(ph, pw))
        span = max(int(np.abs(acc.astype(np.int64)).max()), 1)
        scale = 200.0 / span * 2.0 ** rng.uniform(-2, 2, size=size)
    elif regime == "tiny":
        scale = 2.0 ** rng.uniform(-40, -30, size=size)
    else:
        scale = 2.0 ** rng.uniform(-3, 1, size=size)
    out_dtype = draw(st.sampled_from(["uint8", "int8"]))
    ozp = (
        draw(st.sampled_from([0, 3, 128, 255]))
        if out_dtype == "uint8"
        else draw(st.sampled_from([0, -128, 127, -5]))
    )
    return dict(
        x=x,
        w=w,
        bias=bias,
        scale=scale,
        xzp=xzp,
        ozp=ozp,
        stride=(sh, sw),
        padding=(ph, pw),
        scheme=scheme,
        out_dtype=out_dtype,
    )


def run_c(case, path, layout="NCHW"):
    return conv.conv2d(
        case["x"],
        case["w"],
        case["bias"],
        scale=case["scale"],
        x_zero_point=case["xzp"],
        out_zero_point=case["ozp"],
        stride=case["stride"],
        padding=case["padding"],
        scheme=case["scheme"],
        out_dtype=case["out_dtype"],
        layout=layout,
        path=path,
    )


def check_all_paths(case):
    kw = {k: case[k] for k in ("scale", "xzp", "ozp", "stride", "padding", "scheme", "out_dtype")}
    try:
        want = oracle(case["x"], case["w"], case["bias"], **kw)
    except ValueError as e:  # e.g. tflite: acc << shift overflows int32 -> C must refuse too
        event(f"oracle refuses: {str(e)[:30]}")
        for p in available_paths():
            with pytest.raises(ValueError) as info:
                run_c(case, p)
            assert str(info.value) == str(e)
        return
    event(f"scheme={case['scheme']}, distinct outputs > 2: {len(np.unique(want)) > 2}")
    for p in available_paths():
        got = run_c(case, p)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), f"path {p}: {np.count_nonzero(got != want)} differ"
        # the same through the prepared layer (weights packed once by fxq_conv2d_pack_weights)
        layer = conv.Conv2d(
            case["w"],
            case["bias"],
            scale=case["scale"],
            x_dtype=case["x"].dtype.name,
            x_zero_point=case["xzp"],
            out_zero_point=case["ozp"],
            stride=case["stride"],
            padding=case["padding"],
            scheme=case["scheme"],
            out_dtype=case["out_dtype"],
            path=p,
        )
        assert np.array_equal(layer(case["x"]), want), f"prepared, path {p}"
        # and the C entry that packs the weights itself on every call (fxq_conv2d)
        direct = run_direct(case, p)
        if direct is not None:
            assert np.array_equal(direct, want), f"fxq_conv2d, path {p}"


def run_direct(case, path):
    """kernels.conv2d_c without pre-packed weights, for the cases C fuses (else None)."""
    x, w, scheme = case["x"], case["w"], case["scheme"]
    n, _, h, wd = x.shape
    k, _, r, s = w.shape
    (sh, sw), (ph, pw) = case["stride"], case["padding"]
    out_shape = (n, k, (h + 2 * ph - r) // sh + 1, (wd + 2 * pw - s) // sw + 1)
    common = dict(
        layout="NCHW",
        x_zero_point=case["xzp"],
        stride=case["stride"],
        padding=case["padding"],
        out_shape=out_shape,
        path=path,
    )
    if scheme is None:
        return kernels.conv2d_c(x, w, case["bias"], **common)
    if scheme not in FUSED:
        return None
    arrays, nch = kernels.quant_arrays(case["scale"], scheme)
    if scheme == "tflite" and (arrays["shift"] > 0).any():
        return None
    return kernels.conv2d_c(
        x,
        w,
        case["bias"],
        scheme=scheme,
        arrays=arrays,
        n_channels=nch,
        out_dtype=case["out_dtype"],
        out_zero_point=case["ozp"],
        **common,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_case())
def test_c_matches_oracle_all_paths(case):
    check_all_paths(case)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_case(schemes=OTHER))
def test_unfused_schemes_match_oracle(case):
    check_all_paths(case)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_case(), data=st.data())
def test_nchw16c_layout_matches_nchw(case, data):
    """Blocked layout: same numbers as NCHW after conversion (C, K padded up to 16 with zeros)."""
    c, k = case["x"].shape[1], case["w"].shape[0]
    cp, kp = -(-c // 16) * 16, -(-k // 16) * 16
    x = np.zeros(case["x"].shape[:1] + (cp,) + case["x"].shape[2:], case["x"].dtype)
    x[:, :c] = case["x"]
    x[:, c:] = case["xzp"]  # padded channels: zero-point valued, weights 0 anyway
    w = np.zeros((kp, cp) + case["w"].shape[2:], np.int8)
    w[:k, :c] = case["w"]
    bias = (
        None if case["bias"] is None else np.concatenate([case["bias"], np.zeros(kp - k, np.int32)])
    )
    scale = case["scale"]
    if np.ndim(scale):
        scale = np.concatenate([scale, np.full(kp - k, 0.01)])
    padded = dict(case, x=x, w=w, bias=bias, scale=scale)
    kw = {
        kk: padded[kk] for kk in ("scale", "xzp", "ozp", "stride", "padding", "scheme", "out_dtype")
    }
    try:
        want = oracle(x, w, bias, **kw)
    except ValueError:
        return
    blocked = dict(padded, x=conv.nchw_to_nchw16c(x), w=conv.oihw_to_oihw4i16o4i(w))
    for p in available_paths():
        got = run_c(blocked, p, layout="NCHW16c")
        assert np.array_equal(conv.nchw16c_to_nchw(got), want), p


# ---------------------------------------------------------------------------------------------
# the seed layer


@pytest.fixture(scope="module")
def seed_layer():
    rng = np.random.default_rng(2019)
    x = rng.integers(0, 256, size=(1, 64, 56, 56)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(64, 64, 3, 3)).astype(np.int8)
    bias = rng.integers(-20000, 20000, size=64).astype(np.int32)
    acc = conv2d_reference(x, w, bias, x_zero_point=128, padding=1)
    return x, w, bias, acc


@pytest.mark.parametrize(
    "scheme, per_channel", [(None, False)] + [(s, pc) for s in FUSED for pc in (False, True)]
)
@pytest.mark.parametrize("layout", ["NCHW", "NCHW16c"])
def test_seed_layer(seed_layer, path, scheme, layout, per_channel):
    x, w, bias, acc = seed_layer
    scale = np.linspace(0.9e-4, 1.5e-4, 64) if per_channel else 1.2e-4
    if scheme is None:
        want = acc
    else:
        want = requantize(acc, scale, scheme, zero_point=3, dtype="uint8", axis=1)
        assert len(np.unique(want)) > 20  # a non-trivial output
    if layout == "NCHW":
        xin, win = x, w
    else:
        xin, win = conv.nchw_to_nchw16c(x), conv.oihw_to_oihw4i16o4i(w)
    got = conv.conv2d(
        xin,
        win,
        bias,
        scale=scale,
        x_zero_point=128,
        out_zero_point=3,
        padding=1,
        scheme=scheme,
        layout=layout,
        path=path,
    )
    if layout == "NCHW16c":
        got = conv.nchw16c_to_nchw(got)
    assert np.array_equal(got, want)


def test_seed_layer_int8_input(seed_layer, path):
    x, w, bias, _ = seed_layer
    xs = (x.astype(np.int16) - 128).astype(np.int8)
    want = requantize(
        conv2d_reference(xs, w, bias, x_zero_point=-7, padding=1),
        1.2e-4,
        "tflite_single",
        zero_point=-2,
        dtype="int8",
        axis=1,
    )
    got = conv.conv2d(
        xs,
        w,
        bias,
        scale=1.2e-4,
        x_zero_point=-7,
        out_zero_point=-2,
        padding=1,
        scheme="tflite_single",
        out_dtype="int8",
        path=path,
    )
    assert np.array_equal(got, want)


def test_reference_backend_is_the_oracle(seed_layer):
    x, w, bias, acc = seed_layer
    got = conv.conv2d(
        x[:, :, :9, :9],
        w,
        bias,
        x_zero_point=128,
        padding=1,
        backend="reference",
        scale=1.2e-4,
        scheme="tflite",
    )
    want = requantize(
        conv2d_reference(x[:, :, :9, :9], w, bias, x_zero_point=128, padding=1),
        1.2e-4,
        "tflite",
        dtype="uint8",
        axis=1,
    )
    assert np.array_equal(got, want)


def test_top_level_export():
    import fxq_explore

    assert fxq_explore.conv2d is fxq_explore.engines.api.conv2d  # engine= or the C kernel
    assert kernels.info()["path"] in kernels.available_paths()


@pytest.mark.parametrize("scheme", FUSED)
@pytest.mark.parametrize("width, stride", [(131, 1), (200, 2), (64, 1)])
def test_wide_rows(path, scheme, width, stride):
    """Rows longer than the 14-pixel tile and the 64-pixel NCHW output transpose, K = 3 blocks."""
    rng = np.random.default_rng(width)
    x = rng.integers(0, 256, size=(1, 21, 3, width)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(40, 21, 3, 3)).astype(np.int8)
    bias = rng.integers(-9999, 9999, size=40).astype(np.int32)
    scale = 2.0 ** rng.uniform(-16, -12, size=40)
    acc = conv2d_reference(x, w, bias, x_zero_point=128, stride=stride, padding=1)
    want = requantize(acc, scale, scheme, zero_point=128, dtype="uint8", axis=1)
    got = conv.conv2d(
        x,
        w,
        bias,
        scale=scale,
        scheme=scheme,
        x_zero_point=128,
        out_zero_point=128,
        stride=stride,
        padding=1,
        path=path,
    )
    assert np.array_equal(got, want)
    assert len(np.unique(want)) > 50


@pytest.mark.parametrize("scheme", ["tflite", None])
@pytest.mark.parametrize("layout", ["NCHW", "NCHW16c"])
def test_seed_layer_direct_entry(seed_layer, path, scheme, layout):
    """fxq_conv2d packing the weights itself (conv2d()'s memo normally uses pre-packed ones)."""
    x, w, bias, acc = seed_layer
    want = (
        acc
        if scheme is None
        else requantize(acc, 1.2e-4, scheme, zero_point=3, dtype="uint8", axis=1)
    )
    if layout == "NCHW":
        xin, win, shape = x, w, (1, 64, 56, 56)
    else:
        xin, win = conv.nchw_to_nchw16c(x), conv.oihw_to_oihw4i16o4i(w)
        shape = (1, 4, 56, 56, 16)
    kw = dict(
        layout=layout, x_zero_point=128, stride=(1, 1), padding=(1, 1), out_shape=shape, path=path
    )
    if scheme is not None:
        arrays, n = kernels.quant_arrays(1.2e-4, scheme)
        kw.update(scheme=scheme, arrays=arrays, n_channels=n, out_dtype="uint8", out_zero_point=3)
    got = kernels.conv2d_c(xin, win, bias, **kw)
    if layout == "NCHW16c":
        got = conv.nchw16c_to_nchw(got)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("wmin", [-127, -128])
def test_int16_pair_extremes(path, wmin):
    """Products at the int16 pair limit: x - 128 = -128 or 127 against w = +-127 (and one -128,
    the AVX2 kernel's fallback); a vpmaddubsw(x_u8, w) kernel would saturate here."""
    rng = np.random.default_rng(7)
    x = rng.choice(np.array([0, 1, 254, 255], np.uint8), size=(1, 19, 6, 23))
    w = rng.choice(np.array([-127, 127, 126, -126], np.int8), size=(21, 19, 3, 3))
    w[3, 5, 1, 1] = wmin
    bias = rng.integers(-1000, 1000, size=21).astype(np.int32)
    for xzp in (0, 128, 255):
        want = conv2d_reference(x, w, bias, x_zero_point=xzp, padding=1)
        got = conv.conv2d(x, w, bias, x_zero_point=xzp, padding=1, path=path)
        np.testing.assert_array_equal(got, want)
        want8 = requantize(want, 3e-4, "tflite", zero_point=3, dtype="uint8")
        got8 = conv.conv2d(
            x,
            w,
            bias,
            x_zero_point=xzp,
            padding=1,
            path=path,
            scheme="tflite",
            scale=3e-4,
            out_zero_point=3,
        )
        np.testing.assert_array_equal(got8, want8)


@pytest.mark.parametrize("scheme", ["tflite", "tflite_single"])
@pytest.mark.parametrize(
    "out_dtype, ozp", [("uint8", 0), ("uint8", 128), ("uint8", 255), ("int8", -128), ("int8", 0)]
)
@pytest.mark.parametrize("layout", ["NCHW", "NCHW16c"])
def test_saturating_store_edges(path, scheme, out_dtype, ozp, layout):
    """Outputs clamped at both ends and every zero point: the AVX-512 epilogue's saturating
    store (zero point folded into the rounding, vpmovsdb) applies to a 16-channel block only
    where every shift is in [33, 53]; block 1 holds a channel with scale 0.3 (shift 32) and
    block 2 one with scale 2^-23.5 (shift 54), so both fallbacks run next to it.  K = 40 in NCHW
    (the last block is partial), 48 in NCHW16c."""
    rng = np.random.default_rng(ozp + 1000 * len(layout))
    blocked = layout == "NCHW16c"
    c, k = 64, 48 if blocked else 40
    x = rng.choice(np.array([0, 255, 1, 254, 128], np.uint8), size=(1, c, 5, 19))
    w = rng.integers(-128, 128, size=(k, c, 1, 1)).astype(np.int8)
    bias = rng.integers(-(2**20), 2**20, size=k).astype(np.int32)
    scale = 2.0 ** rng.uniform(-14, -10, size=k)
    scale[0], scale[1], scale[2] = 2.0**-2.01, 2.0**-22.99, 0.0018843  # shifts 33, 53, 40
    scale[20] = 0.3
    scale[33] = 2.0**-23.5
    acc = conv2d_reference(x, w, bias, x_zero_point=128)
    want = requantize(acc, scale, scheme, zero_point=ozp, dtype=out_dtype, axis=1)
    lo, hi = (0, 255) if out_dtype == "uint8" else (-128, 127)
    assert (want == lo).sum() > 50 and (want == hi).sum() > 50
    assert ((want > lo) & (want < hi)).sum() > 200
    got = conv.conv2d(
        conv.nchw_to_nchw16c(x) if blocked else x,
        conv.oihw_to_oihw4i16o4i(w) if blocked else w,
        bias,
        scale=scale,
        scheme=scheme,
        x_zero_point=128,
        out_zero_point=ozp,
        out_dtype=out_dtype,
        layout=layout,
        path=path,
    )
    if blocked:
        got = conv.nchw16c_to_nchw(got)[:, :k]
    assert np.array_equal(got, want)
