"""Grouped / depthwise convolution and the fully connected layer in C, bit-identical to the numpy
oracles (reference conv / fully connected, then numpy requantize), on every SIMD path."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fxq_explore import requantize
from fxq_explore.kernels import _ffi as kernels
from fxq_explore.kernels import conv
from fxq_explore.kernels.reference import conv2d_reference, fully_connected_reference

SCHEMES = kernels.FUSED_SCHEMES + (None, "tflite_optimized")


def _case(draw, rng, c, k):
    signed = draw(st.booleans())
    lo, hi = (-128, 127) if signed else (0, 255)
    xzp = draw(st.sampled_from([lo, hi, (lo + hi + 1) // 2, lo + 3]))
    wlo = draw(st.sampled_from([-128, -127]))
    scheme = draw(st.sampled_from(SCHEMES))
    per_channel = draw(st.booleans())
    out_dtype = draw(st.sampled_from(["uint8", "int8"]))
    ozp = draw(st.sampled_from([0, 3])) if out_dtype == "uint8" else draw(st.sampled_from([0, -5]))
    bias = rng.integers(-5000, 5000, size=k).astype(np.int32) if draw(st.booleans()) else None
    return signed, lo, hi, xzp, wlo, scheme, per_channel, out_dtype, ozp, bias


@st.composite
def grouped_case(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["depthwise", "depthwise", "grouped", "grouped", "multiplier"]))
    if kind == "depthwise":
        c = draw(st.sampled_from([1, 3, 16, 17, 40]))
        groups, k = c, c
    elif kind == "multiplier":  # depthwise with a channel multiplier: a grouped conv, C_g = 1
        c = draw(st.sampled_from([1, 3, 8]))
        groups, k = c, c * draw(st.sampled_from([2, 3]))
    else:  # the SIMD paths run one dense conv per (image, group): C_g, K_g around 16
        groups = draw(st.sampled_from([2, 3, 4, 8]))
        c = groups * draw(st.sampled_from([1, 2, 5, 17]))
        k = groups * draw(st.sampled_from([1, 3, 16, 17]))
    r, s = draw(st.sampled_from([(1, 1), (3, 3), (5, 5), (3, 1), (2, 4)]))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, r - 2 * ph), r + 8))
    wd = draw(st.integers(max(1, s - 2 * pw), s + 20))
    signed, lo, hi, xzp, wlo, scheme, pc, out_dtype, ozp, bias = _case(draw, rng, c, k)
    x = rng.integers(lo, hi + 1, size=(draw(st.integers(1, 2)), c, h, wd))
    x = x.astype(np.int8 if signed else np.uint8)
    w = rng.integers(wlo, 128, size=(k, c // groups, r, s)).astype(np.int8)
    acc = conv2d_reference(
        x, w, bias, x_zero_point=xzp, stride=(sh, sw), padding=(ph, pw), groups=groups
    )
    span = max(int(np.abs(acc.astype(np.int64)).max()), 1)
    scale = 200.0 / span * 2.0 ** rng.uniform(-2, 2, size=k if pc else None)
    return dict(
        x=x,
        w=w,
        bias=bias,
        xzp=xzp,
        stride=(sh, sw),
        padding=(ph, pw),
        groups=groups,
        scheme=scheme,
        scale=scale,
        out_dtype=out_dtype,
        ozp=ozp,
        acc=acc,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=grouped_case())
def test_grouped_conv_matches_oracle_all_paths(case):
    want = case["acc"]
    if case["scheme"] is not None:
        want = requantize(
            want,
            case["scale"],
            case["scheme"],
            zero_point=case["ozp"],
            dtype=case["out_dtype"],
            axis=1,
        )
    kw = dict(
        x_zero_point=case["xzp"],
        stride=case["stride"],
        padding=case["padding"],
        groups=case["groups"],
        scale=case["scale"],
        scheme=case["scheme"],
        out_zero_point=case["ozp"],
        out_dtype=case["out_dtype"],
    )
    for p in kernels.available_paths():
        got = conv.conv2d(case["x"], case["w"], case["bias"], path=p, **kw)
        np.testing.assert_array_equal(got, want, err_msg=f"path {p}")
    ref = conv.conv2d(case["x"], case["w"], case["bias"], backend="reference", **kw)
    np.testing.assert_array_equal(ref, want)


@pytest.mark.parametrize("scheme", kernels.FUSED_SCHEMES + (None,))
def test_mobilenet_depthwise(path, scheme):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(1, 64, 56, 56)).astype(np.uint8)
    w = rng.integers(-127, 128, size=(64, 1, 3, 3)).astype(np.int8)
    bias = rng.integers(-999, 999, size=64).astype(np.int32)
    acc = conv2d_reference(x, w, bias, x_zero_point=128, padding=1, groups=64)
    want = (
        acc
        if scheme is None
        else requantize(acc, 0.01, scheme, zero_point=3, dtype="uint8", axis=1)
    )
    layer = conv.Conv2d(
        w,
        bias,
        x_zero_point=128,
        padding=1,
        groups=64,
        scheme=scheme,
        scale=None if scheme is None else 0.01,
        out_zero_point=3,
        path=path,
    )
    np.testing.assert_array_equal(layer(x), want)
    np.testing.assert_array_equal(layer(x), want)  # the cached call


@st.composite
def fc_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.sampled_from([1, 2, 4, 5, 7, 33]))
    c = draw(st.sampled_from([1, 10, 16, 64, 100]))
    k = draw(st.sampled_from([1, 10, 16, 33, 64]))
    signed, lo, hi, xzp, wlo, scheme, pc, out_dtype, ozp, bias = _case(draw, rng, c, k)
    x = rng.integers(lo, hi + 1, size=(n, c)).astype(np.int8 if signed else np.uint8)
    w = rng.integers(wlo, 128, size=(k, c)).astype(np.int8)
    acc = fully_connected_reference(x, w, bias, x_zero_point=xzp)
    span = max(int(np.abs(acc.astype(np.int64)).max()), 1)
    scale = 200.0 / span * 2.0 ** rng.uniform(-2, 2, size=k if pc else None)
    return dict(
        x=x,
        w=w,
        bias=bias,
        xzp=xzp,
        scheme=scheme,
        scale=scale,
        out_dtype=out_dtype,
        ozp=ozp,
        acc=acc,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fc_case())
def test_fully_connected_matches_oracle_all_paths(case):
    want = case["acc"]
    if case["scheme"] is not None:
        want = requantize(
            want,
            case["scale"],
            case["scheme"],
            zero_point=case["ozp"],
            dtype=case["out_dtype"],
            axis=1,
        )
    kw = dict(
        x_zero_point=case["xzp"],
        scale=case["scale"],
        scheme=case["scheme"],
        out_zero_point=case["ozp"],
        out_dtype=case["out_dtype"],
    )
    for p in kernels.available_paths():
        layer = conv.FullyConnected(
            case["w"], case["bias"], x_dtype=str(case["x"].dtype), path=p, **kw
        )
        np.testing.assert_array_equal(layer(case["x"]), want, err_msg=f"path {p}")
        np.testing.assert_array_equal(layer(case["x"]), want, err_msg=f"path {p} (cached)")
    got = conv.fully_connected(case["x"], case["w"], case["bias"], backend="reference", **kw)
    np.testing.assert_array_equal(got, want)


def test_bad_groups_and_fc_shapes():
    w = np.zeros((6, 2, 3, 3), np.int8)
    x = np.zeros((1, 4, 5, 5), np.uint8)
    with pytest.raises(ValueError, match="groups"):
        conv.conv2d(x, w, groups=4)  # 4 does not divide K = 6
    with pytest.raises(ValueError, match="input channel count"):
        conv.conv2d(x, w, groups=3)  # w says C = 6
    with pytest.raises(ValueError, match="groups must be >= 1"):
        conv.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match="groups must be 1"):
        conv.conv2d(
            np.zeros((1, 1, 4, 4, 16), np.uint8),
            np.zeros((1, 1, 1, 1, 4, 16, 4), np.int8),
            layout="NCHW16c",
            groups=2,
        )
    fc = conv.FullyConnected(np.zeros((3, 5), np.int8))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 5\)"):
        fc(np.zeros((2, 4), np.uint8))
    with pytest.raises(TypeError, match="x must have dtype uint8"):
        fc(np.zeros((2, 5), np.int8))
    with pytest.raises(ValueError, match="w must have rank 2"):
        conv.FullyConnected(np.zeros((3, 5, 1), np.int8))


def test_conv_call_refuses_a_wrong_x():
    """The checked layer: a prepared call cannot be handed an x of another shape or dtype."""
    layer = conv.Conv2d(np.ones((4, 3, 3, 3), np.int8), padding=1)
    x = np.zeros((1, 3, 8, 8), np.uint8)
    layer(x)
    run = next(iter(layer._calls.values()))
    call = run.conv_call
    for bad in (
        np.zeros((1, 3, 8, 7), np.uint8),
        np.zeros((1, 3, 8, 8), np.int8),
        np.zeros((1, 3, 8, 16), np.uint8)[..., ::2],
    ):
        with pytest.raises(ValueError, match="x must be a C-contiguous"):
            call.run(bad)
    # the cached runner trusts its caller's key, but C still checks the byte counts, and a
    # strided array has no buffer to hand it
    with pytest.raises(RuntimeError, match="fxq_conv2d_call failed in C: FXQ_ERR_ARG"):
        run(np.zeros((1, 3, 8, 7), np.uint8))
    with pytest.raises((ValueError, BufferError, TypeError)):
        run(np.zeros((1, 3, 8, 16), np.uint8)[..., ::2])
    np.testing.assert_array_equal(run(x), layer(x))


@pytest.mark.parametrize("scheme", kernels.FUSED_SCHEMES + (None, "tflite_optimized"))
@pytest.mark.parametrize("wlo", [-128, -127])
def test_fully_connected_groups_and_tails(path, scheme, wlo):
    """K = 100 (a group of 4 blocks of 16 channels, then a short group of 3 with a partial block)
    and C = 257 (a partial input quad and pair): every fused scheme, with and without a weight
    of -128 (the int16 fallback), int8 and uint8 input, batch 3."""
    rng = np.random.default_rng(11)
    for x_dtype, xzp in (("uint8", 128), ("int8", -3)):
        lo, hi = (0, 255) if x_dtype == "uint8" else (-128, 127)
        x = rng.integers(lo, hi + 1, size=(3, 257)).astype(x_dtype)
        w = rng.integers(wlo, 128, size=(100, 257)).astype(np.int8)
        bias = rng.integers(-9999, 9999, size=100).astype(np.int32)
        acc = fully_connected_reference(x, w, bias, x_zero_point=xzp)
        scale = 100.0 / max(int(np.abs(acc).max()), 1) * 2.0 ** rng.uniform(-1, 1, size=100)
        want = (
            acc
            if scheme is None
            else requantize(acc, scale, scheme, zero_point=-2, dtype="int8", axis=1)
        )
        layer = conv.FullyConnected(
            w,
            bias,
            x_dtype=x_dtype,
            x_zero_point=xzp,
            scale=None if scheme is None else scale,
            scheme=scheme,
            out_zero_point=0 if scheme is None else -2,
            out_dtype="int8",
            path=path,
        )
        for _ in range(2):  # the first call is checked, the second cached
            np.testing.assert_array_equal(layer(x), want)
        np.testing.assert_array_equal(layer(np.asfortranarray(x)), want)  # not C-contiguous
        np.testing.assert_array_equal(layer(x[:1]), want[:1])  # another batch size


def test_fully_connected_cache_keys():
    """The cached call of a shape never serves an input of another dtype (TypeError naming x,
    not a ValueError from the prepared call), nor a changed FXQ_KERNEL_PATH."""
    fc = conv.FullyConnected(np.ones((3, 5), np.int8), x_zero_point=128, scheme="tflite", scale=0.1)
    x = np.full((2, 5), 150, np.uint8)
    want = fc(x)
    np.testing.assert_array_equal(fc(x), want)
    with pytest.raises(TypeError, match="x must have dtype uint8; got int8"):
        fc(x.view(np.int8))
    with pytest.raises(TypeError, match="x must be a numpy ndarray"):
        fc(x.tolist())
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("FXQ_KERNEL_PATH", "scalar")
        np.testing.assert_array_equal(fc(x), want)
        mp.setenv("FXQ_KERNEL_PATH", "no-such-path")
        with pytest.raises(ValueError, match="unknown FXQ_KERNEL_PATH"):
            fc(x)
    finally:
        mp.undo()
    np.testing.assert_array_equal(fc(x), want)


def test_conv2d_cache_keys():
    """Conv2d's cached calls (the last one kept aside): alternating shapes each get their own
    result, another dtype is refused by name, and a changed FXQ_KERNEL_PATH is seen at once."""
    w = np.arange(-8, 10, dtype=np.int8).reshape(2, 1, 3, 3)
    layer = conv.Conv2d(w, x_zero_point=128, padding=1, groups=2, scheme="tflite", scale=0.01)
    xa = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(1, 2, 5, 5) * 3
    xb = np.arange(2 * 6 * 4, dtype=np.uint8).reshape(1, 2, 6, 4) * 5
    want = {
        k: requantize(
            conv2d_reference(v, w, x_zero_point=128, padding=1, groups=2),
            0.01,
            "tflite",
            dtype="uint8",
        )
        for k, v in (("a", xa), ("b", xb))
    }
    for _ in range(3):
        np.testing.assert_array_equal(layer(xa), want["a"])
        np.testing.assert_array_equal(layer(xb), want["b"])
    with pytest.raises(TypeError, match="x must have dtype uint8; got int8"):
        layer(xa.view(np.int8))
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("FXQ_KERNEL_PATH", "scalar")
        np.testing.assert_array_equal(layer(xb), want["b"])
        mp.setenv("FXQ_KERNEL_PATH", "no-such-path")
        with pytest.raises(ValueError, match="unknown FXQ_KERNEL_PATH"):
            layer(xb)
    finally:
        mp.undo()
    np.testing.assert_array_equal(layer(xb), want["b"])


def test_fc_plan_refuses_wrong_sizes_and_a_moved_plan():
    """The C plan checks the byte counts it is given and its own address (a copy is refused)."""
    if not {"scalar", "avx2"} & set(kernels.available_paths()):
        pytest.skip("no FC plan path")
    ext = kernels._ext()
    ffi, lib = ext.ffi, ext.lib
    w = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    plan = kernels.FcPlan(w, None, x_dtype="uint8", x_zero_point=0, pid=lib.FXQ_PATH_SCALAR)
    x = np.ones((2, 4), np.uint8)
    out = np.empty((2, 3), np.int32)
    xb, ob = ffi.from_buffer(x), ffi.from_buffer(out)
    assert lib.fxq_fc_run(plan._ptr, xb, 8, ob, 24, 2) == lib.FXQ_OK
    np.testing.assert_array_equal(out, x.astype(np.int32) @ w.T.astype(np.int32))
    assert lib.fxq_fc_run(plan._ptr, xb, 7, ob, 24, 2) == lib.FXQ_ERR_ARG
    assert lib.fxq_fc_run(plan._ptr, xb, 8, ob, 23, 2) == lib.FXQ_ERR_ARG
    assert lib.fxq_fc_run(plan._ptr, xb, 8, ob, 24, 0) == lib.FXQ_ERR_ARG
    moved = np.empty(plan._buf.nbytes + 64, np.uint8)
    addr = int(ffi.cast("uintptr_t", plan._ptr))
    off = (addr - int(ffi.cast("uintptr_t", ffi.from_buffer(moved)))) % 64  # same alignment
    moved[off : off + plan._buf.nbytes] = plan._buf
    mp = ffi.from_buffer(moved[off:])
    assert lib.fxq_fc_run(mp, xb, 8, ob, 24, 2) == lib.FXQ_ERR_ARG


def test_conv_call_prepared_block_refuses_a_moved_copy():
    """fxq_conv_call_prepare expands the requantization parameters once into a block that checks
    its own address: the call runs on it, a copy elsewhere is refused, and prep = NULL (expanded
    per call) gives the same result."""
    ext = kernels._ext()
    ffi, lib = ext.ffi, ext.lib
    w = np.arange(-36, 36, dtype=np.int8).reshape(2, 4, 3, 3)
    layer = conv.Conv2d(w, x_zero_point=128, padding=1, scheme="tflite", scale=[0.01, 0.003])
    x = np.arange(4 * 6 * 6, dtype=np.uint8).reshape(1, 4, 6, 6)
    want = layer(x)
    cc_obj = next(iter(layer._calls.values())).conv_call
    cc, blk = cc_obj._call, cc_obj._prep
    assert cc.prep != ffi.NULL
    out = np.empty_like(want)
    ws = np.empty(cc_obj._ws_size, np.uint8)

    def call():
        return lib.fxq_conv2d_call(
            cc,
            ffi.from_buffer(x),
            x.nbytes,
            ffi.from_buffer(out),
            out.nbytes,
            ffi.from_buffer(ws),
            ws.nbytes,
        )

    assert call() == lib.FXQ_OK
    np.testing.assert_array_equal(out, want)
    kept = cc.prep
    moved = np.empty(blk.nbytes + 64, np.uint8)
    addr = int(ffi.cast("uintptr_t", kept))
    off = (addr - int(ffi.cast("uintptr_t", ffi.from_buffer(moved)))) % 64  # same alignment
    start = addr - int(ffi.cast("uintptr_t", ffi.from_buffer(blk)))
    moved[off : off + blk.nbytes - start] = blk[start:]
    try:
        cc.prep = ffi.from_buffer(moved[off:])
        assert call() == lib.FXQ_ERR_ARG
        cc.prep = ffi.NULL
        out[:] = 0
        assert call() == lib.FXQ_OK
        np.testing.assert_array_equal(out, want)
    finally:
        cc.prep = kept
    assert lib.fxq_conv_call_prepare(cc, ffi.from_buffer(blk), 8) == lib.FXQ_ERR_WORKSPACE


def test_conv2d_runner_from_several_threads():
    """The cached runner keeps a workspace of its own for the thread that made it; other threads
    use their per-thread workspace. Three threads at once (C releases the GIL), each on its own
    inputs, all exact."""
    import threading

    c = 16
    w = np.random.default_rng(3).integers(-128, 128, (c, 1, 3, 3), dtype=np.int8)
    layer = conv.Conv2d(w, x_zero_point=128, padding=1, groups=c, scheme="tflite", scale=0.004)
    xs = [np.random.default_rng(i).integers(0, 256, (1, c, 8, 8), dtype=np.uint8) for i in range(6)]
    wants = [
        requantize(
            conv2d_reference(x, w, x_zero_point=128, padding=1, groups=c),
            0.004,
            "tflite",
            dtype="uint8",
        )
        for x in xs
    ]
    np.testing.assert_array_equal(layer(xs[0]), wants[0])  # the runner, made in this thread
    bad = []

    def work(i):
        for _ in range(300):
            for j in (i, i + 3):
                if not np.array_equal(layer(xs[j]), wants[j]):
                    bad.append(j)

    threads = [threading.Thread(target=work, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    work(0)
    for t in threads:
        t.join()
    assert bad == []


def test_fc_plan_path_numbers():
    """fxq_fc_plan_init takes every path this CPU has (AVX-512 and any later one run the AVX-512
    kernel) and AUTO; a known path the CPU lacks is FXQ_ERR_PATH, an unknown number FXQ_ERR_ARG.
    The Python FcPlan refuses both with a ValueError before C is called."""
    ext = kernels._ext()
    ffi, lib = ext.ffi, ext.lib
    w = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    x = np.array([[1, 2, 3, 250], [0, 255, 7, 9]], np.uint8)
    want = x.astype(np.int32) @ w.T.astype(np.int32)
    q = ffi.new(
        "fxq_quant_params *", dict(scheme=lib.FXQ_SCHEME_NONE, out_dtype=lib.FXQ_DTYPE_INT32)
    )
    wb = ffi.from_buffer(w)
    nbytes = lib.fxq_fc_plan_size(4, 3, wb)
    buf = np.zeros(nbytes, np.uint8)
    out = np.empty((2, 3), np.int32)
    known = sorted(kernels._path_ids().values())

    def init(pid):
        return lib.fxq_fc_plan_init(
            ffi.from_buffer(buf), nbytes, 4, 3, wb, ffi.NULL, lib.FXQ_DTYPE_UINT8, 0, q, pid
        )

    for pid in known:
        ok = pid == lib.FXQ_PATH_AUTO or lib.fxq_path_available(pid)
        assert init(pid) == (lib.FXQ_OK if ok else lib.FXQ_ERR_PATH), kernels.path_name(pid)
        if ok:
            st = lib.fxq_fc_run(
                ffi.from_buffer(buf), ffi.from_buffer(x), 8, ffi.from_buffer(out), 24, 2
            )
            assert st == lib.FXQ_OK
            np.testing.assert_array_equal(out, want)
            plan = kernels.FcPlan(w, None, x_dtype="uint8", x_zero_point=0, pid=pid)
            np.testing.assert_array_equal(plan.runner(2)(x), want)
        else:
            with pytest.raises(ValueError, match="not available on this CPU"):
                kernels.FcPlan(w, None, x_dtype="uint8", x_zero_point=0, pid=pid)
    for pid in (-1, -(2**31), max(known) + 1, max(known) + 2, 99, 2**31 - 1):
        if lib.fxq_path_available(pid):
            continue  # a later path compiled in (AMX): accepted, tested above once it is named
        assert init(pid) == lib.FXQ_ERR_ARG, pid
        with pytest.raises(ValueError, match="unknown path id"):
            kernels.FcPlan(w, None, x_dtype="uint8", x_zero_point=0, pid=pid)
    with pytest.raises(TypeError, match="pid must be an int"):
        kernels.FcPlan(w, None, x_dtype="uint8", x_zero_point=0, pid="avx512")


@pytest.mark.parametrize("scheme", kernels.FUSED_SCHEMES)
def test_depthwise_3x3_widths_around_the_blocks(path, scheme):
    """The NCHW depthwise 3x3 kernel (AVX2: lanes = pixels, blocks of 2 x 16 outputs, the input
    row's tail loaded as its last 16 pixels): widths around 16 and 32, pad 0..2, uint8 and int8
    input, uint8 and int8 output, per-channel scales, weights with -128."""
    rng = np.random.default_rng(7)
    for wd, pad, x_dtype, out_dtype in (
        (15, 1, "uint8", "uint8"),
        (16, 0, "int8", "int8"),
        (17, 2, "uint8", "int8"),
        (31, 1, "int8", "uint8"),
        (32, 1, "uint8", "uint8"),
        (33, 0, "uint8", "int8"),
        (47, 2, "int8", "int8"),
        (49, 1, "uint8", "uint8"),
    ):
        _check_depthwise(rng, path, scheme, (3, 3), (1, 1), (pad, pad), (5, wd), x_dtype, out_dtype)


@pytest.mark.parametrize("scheme", ["tflite", "tflite_optimized", None])
def test_nhwc_1x1_convolution_on_every_path(path, scheme):
    """The C NHWC layout (the low-level ConvCall, no longer FullyConnected's AVX-512 route): a 1x1
    convolution over a 1 x N image is the fully connected layer, fused, unfused and int32."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(3, 70)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(40, 70)).astype(np.int8)
    bias = rng.integers(-999, 999, size=40).astype(np.int32)
    acc = fully_connected_reference(x, w, bias, x_zero_point=128)
    fused = scheme in kernels.FUSED_SCHEMES
    want = acc if scheme is None else requantize(acc, 0.002, scheme, dtype="uint8", axis=1)
    packed = kernels.PackedWeights(
        w.reshape(40, 70, 1, 1), bias, layout="NHWC", x_dtype="uint8", x_zero_point=128
    )
    kw = {}
    if fused:
        arrays, n = kernels.fusion_plan(scheme, 0.002, "uint8", "nearest")
        kw = dict(scheme=scheme, arrays=arrays, n_channels=n, out_dtype="uint8")
    cc = kernels.ConvCall(
        (1, 1, 3, 70),
        "uint8",
        packed,
        stride=(1, 1),
        padding=(0, 0),
        out_shape=(1, 1, 3, 40),
        pid=kernels.resolve_path(path),
        **kw,
    )
    got = cc.run(x.reshape(1, 1, 3, 70)).reshape(3, 40)
    if scheme is not None and not fused:
        got = requantize(got, 0.002, scheme, dtype="uint8", axis=1)
    np.testing.assert_array_equal(got, want)


FC_C = (1, 3, 4, 5, 16, 17, 63, 64, 65, 130, 1024)  # quad tails, one and several groups' rows
FC_K = (1, 10, 15, 16, 17, 33, 100)  # partial blocks, one to four blocks per group, short groups
FC_N = (1, 2, 3, 4, 5, 8, 9)  # row passes of 4 and their tails


def _fc_grid_data(rng, c, k, x_dtype):
    """x (9, C) and w (K, C) with the extremes: row 0 all at the top of the x range, row 1 at
    the bottom; channel 0 all -128, channel 1 (when K > 1) all +127, the rest uniform."""
    lo, hi = (0, 255) if x_dtype == "uint8" else (-128, 127)
    x = rng.integers(lo, hi + 1, size=(max(FC_N), c))
    x[0], x[1] = hi, lo
    w = rng.integers(-128, 128, size=(k, c))
    w[0] = -128
    w[1:2] = 127
    bias = rng.integers(-(2**20), 2**20, size=k).astype(np.int32)
    return x.astype(x_dtype), w.astype(np.int8), bias, lo + 3


@pytest.mark.parametrize("c", FC_C)
def test_fully_connected_grid(path, c):
    """Every K in FC_K and N in FC_N for this C on the path at hand, uint8 and int8 input,
    every fused scheme per tensor and per channel, uint8 and int8 output, and int32
    accumulators: bit-identical to the reference GEMV requantized by numpy."""
    rng = np.random.default_rng(c)
    for k in FC_K:
        for x_dtype in ("uint8", "int8"):
            x, w, bias, xzp = _fc_grid_data(rng, c, k, x_dtype)
            acc = fully_connected_reference(x, w, bias, x_zero_point=xzp)
            span = max(int(np.abs(acc.astype(np.int64)).max()), 1)
            layers = [(None, None, "int32", 0)]
            for scheme in kernels.FUSED_SCHEMES:
                for per_channel, out_dtype, ozp in (
                    (False, "uint8", 3),
                    (True, "int8", -5),
                    (True, "uint8", 0),
                    (False, "int8", 0),
                ):
                    scale = (
                        200.0 / span * 2.0 ** rng.uniform(-2, 2, size=k if per_channel else None)
                    )
                    layers.append((scheme, scale, out_dtype, ozp))
            for scheme, scale, out_dtype, ozp in layers:
                layer = conv.FullyConnected(
                    w,
                    bias,
                    x_dtype=x_dtype,
                    x_zero_point=xzp,
                    scale=scale,
                    scheme=scheme,
                    out_dtype=out_dtype,
                    out_zero_point=ozp,
                    path=path,
                )
                assert scheme is None or layer._fused() is not None  # C requantizes
                want = acc
                if scheme is not None:
                    want = requantize(acc, scale, scheme, zero_point=ozp, dtype=out_dtype, axis=1)
                for n in FC_N:
                    got = layer(x[:n])
                    assert got.dtype == want.dtype
                    np.testing.assert_array_equal(
                        got, want[:n], err_msg=f"K={k} N={n} {x_dtype} {scheme} {out_dtype}"
                    )


def test_fully_connected_python_int_oracle(path):
    """A few tail shapes checked against Python ints only (fxq_explore.oracles, one accumulator
    at a time: no numpy arithmetic, no vectorised requantize), every fused scheme."""
    from fxq_explore import oracles

    rng = np.random.default_rng(3)
    ranges = {"uint8": (0, 255), "int8": (-128, 127)}
    for c, k, n, x_dtype in ((5, 17, 5, "int8"), (65, 33, 9, "uint8"), (130, 10, 3, "int8")):
        x, w, bias, xzp = _fc_grid_data(rng, c, k, x_dtype)
        x, xl, wl = x[:n], x[:n].tolist(), w.tolist()
        acc = [
            [
                sum((a - xzp) * b for a, b in zip(xl[r], wl[o], strict=True)) + int(bias[o])
                for o in range(k)
            ]
            for r in range(n)
        ]
        span = max(max(abs(v) for v in row) for row in acc)
        for scheme in kernels.FUSED_SCHEMES:
            for per_channel, out_dtype, ozp in ((False, "int8", -3), (True, "uint8", 7)):
                scale = 150.0 / span * 2.0 ** rng.uniform(-2, 2, size=k if per_channel else None)
                layer = conv.FullyConnected(
                    w,
                    bias,
                    x_dtype=x_dtype,
                    x_zero_point=xzp,
                    scale=scale,
                    scheme=scheme,
                    out_dtype=out_dtype,
                    out_zero_point=ozp,
                    path=path,
                )
                qmin, qmax = ranges[out_dtype]
                s = [float(scale[o] if per_channel else scale) for o in range(k)]
                want = [
                    [
                        oracles.finish(oracles.ORACLES[scheme](acc[r][o], s[o]), ozp, qmin, qmax)
                        for o in range(k)
                    ]
                    for r in range(n)
                ]
                assert layer(x).tolist() == want, f"C={c} K={k} {scheme} {out_dtype}"


@pytest.mark.parametrize("scheme", [None, "tflite", "float32_rne"])
def test_grouped_direct_entry_every_path(path, scheme):
    """fxq_conv2d on unpacked grouped weights (the per-group route takes w and bias slices) and
    the pre-packed call (bias rebuilt from the weight summary), N = 2, per-channel scales."""
    rng = np.random.default_rng(11)
    groups, c, k = 4, 4 * 20, 4 * 18
    x = rng.integers(0, 256, size=(2, c, 9, 21)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(k, c // groups, 3, 3)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=k).astype(np.int32)
    acc = conv2d_reference(x, w, bias, x_zero_point=77, padding=1, groups=groups)
    scale = np.linspace(1.0, 2.0, k) * 100.0 / int(np.abs(acc.astype(np.int64)).max())
    want = acc if scheme is None else requantize(acc, scale, scheme, dtype="uint8", axis=1)
    kw = dict(
        layout="NCHW",
        x_zero_point=77,
        stride=(1, 1),
        padding=(1, 1),
        out_shape=(2, k, 9, 21),
        path=path,
        groups=groups,
    )
    if scheme is not None:
        arrays, nch = kernels.quant_arrays(scale, scheme)
        kw.update(scheme=scheme, arrays=arrays, n_channels=nch, out_dtype="uint8")
    np.testing.assert_array_equal(kernels.conv2d_c(x, w, bias, **kw), want)
    layer = conv.Conv2d(
        w,
        bias,
        x_zero_point=77,
        padding=1,
        groups=groups,
        scheme=scheme,
        scale=None if scheme is None else scale,
        path=path,
    )
    np.testing.assert_array_equal(layer(x), want)


@pytest.mark.parametrize("scheme", kernels.FUSED_SCHEMES + (None,))
def test_depthwise_nchw_kernel_shapes(path, scheme):
    """The depthwise kernels on every path, over the geometries the AVX-512 NCHW kernel (lane =
    output pixel, windows of 4 taps) splits into: the rolling variants (stride_h 1, 3 rows with
    s <= 4, 5 rows with s <= 4 and s <= 8), the direct one (any other r <= 8, s <= 8, stride_h 2) and the
    NCHW16c fallback (s = 9, stride_w 2), two output rows per zmm on small planes (odd and even
    heights, ow = 8 and below); widths across several blocks of 16 with a tail, uint8 and int8
    input and output, weights with -128, per-channel scales."""
    rng = np.random.default_rng(11)
    cases = [  # (r, s, stride, pad, width, x_dtype, out_dtype)
        (3, 3, (1, 1), (1, 1), 70, "uint8", "uint8"),
        (3, 1, (1, 1), (0, 2), 33, "int8", "int8"),
        (3, 4, (1, 1), (2, 0), 19, "uint8", "int8"),
        (5, 5, (1, 1), (2, 2), 41, "int8", "uint8"),
        (5, 3, (1, 1), (2, 1), 35, "uint8", "int8"),
        (5, 7, (1, 1), (0, 3), 50, "uint8", "uint8"),
        (1, 1, (1, 1), (0, 0), 17, "uint8", "int8"),
        (7, 7, (1, 1), (3, 3), 29, "int8", "int8"),
        (8, 8, (1, 1), (1, 2), 40, "uint8", "uint8"),
        (3, 3, (2, 1), (1, 1), 64, "uint8", "uint8"),
        (2, 6, (3, 1), (1, 0), 23, "int8", "uint8"),
        (3, 9, (1, 1), (1, 4), 30, "uint8", "int8"),
        (3, 3, (1, 2), (1, 1), 45, "int8", "int8"),
        # small planes (ow <= 8, padded rows <= 16 bytes): two output rows per zmm
        (3, 3, (1, 1), (1, 1), 8, "uint8", "uint8"),
        (3, 3, (1, 1), (1, 1), 5, "int8", "uint8"),
        (2, 2, (1, 1), (0, 0), 9, "uint8", "int8"),
        (5, 5, (1, 1), (2, 2), 4, "int8", "int8"),
        (1, 1, (1, 1), (0, 0), 3, "uint8", "uint8"),
        (3, 7, (1, 1), (1, 3), 2, "uint8", "int8"),
        (2, 8, (1, 1), (1, 2), 10, "int8", "uint8"),
    ]
    for r, s, stride, pad, wd, x_dtype, out_dtype in cases:
        _check_depthwise(rng, path, scheme, (r, s), stride, pad, (r + 6, wd), x_dtype, out_dtype)
    # small 3x3 planes (the AVX2 kernel's two-row blocks too): even and odd output heights,
    # ow = 8 with w >= 8, int8 out
    for hw, pad, x_dtype, out_dtype in (
        ((8, 8), (1, 1), "uint8", "int8"),
        ((7, 10), (0, 0), "int8", "int8"),
        ((10, 6), (1, 1), "uint8", "uint8"),
        ((3, 4), (1, 1), "int8", "uint8"),
    ):
        _check_depthwise(rng, path, scheme, (3, 3), (1, 1), pad, hw, x_dtype, out_dtype)


def _check_depthwise(rng, path, scheme, rs, stride, pad, hw, x_dtype, out_dtype, c=19):
    """One depthwise Conv2d on ``path`` against the reference conv (+ numpy requantize): 2
    images of c channels, weights with -128, per-channel scales, uint8/int8 in and out."""
    lo, hi = (0, 255) if x_dtype == "uint8" else (-128, 127)
    xzp = 131 if x_dtype == "uint8" else -9
    x = rng.integers(lo, hi + 1, size=(2, c) + hw).astype(x_dtype)
    w = rng.integers(-128, 128, size=(c, 1) + rs).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=c).astype(np.int32)
    acc = conv2d_reference(x, w, bias, x_zero_point=xzp, stride=stride, padding=pad, groups=c)
    want, scale, ozp = acc, None, 0
    if scheme is not None:
        scale = 100.0 / max(int(np.abs(acc).max()), 1) * 2.0 ** rng.uniform(-1, 1, size=c)
        ozp = 3 if out_dtype == "uint8" else -4
        want = requantize(acc, scale, scheme, zero_point=ozp, dtype=out_dtype, axis=1)
    layer = conv.Conv2d(
        w,
        bias,
        x_dtype=x_dtype,
        x_zero_point=xzp,
        stride=stride,
        padding=pad,
        groups=c,
        scheme=scheme,
        scale=scale,
        out_zero_point=ozp,
        out_dtype=out_dtype,
        path=path,
    )
    np.testing.assert_array_equal(
        layer(x), want, err_msg=f"r, s={rs} stride={stride} pad={pad} h, w={hw} {x_dtype}"
    )
