"""The C pair-saturating accumulation (csrc/fxq_pairsat.c) is bit-identical to its oracles.

Expected values come from the numpy accumulation model
(:func:`fxq_explore.kernels.accumulate.conv2d_accumulate`, itself checked against a plain-Python
oracle and the real engines in tests/engines) or from the real engine (torch fbgemm / oneDNN
forced to their AVX2 kernels in a subprocess), never from the C code. Every C path this CPU runs
is forced in turn (``path=``): the scalar one runs everywhere, the AVX2 one where the CPU has
AVX2, the AVX-512 one where it has AVX-512 BW. Inputs are full range: uint8 activations 0..255 (with 255 and 0 extremes), weights with
|w| = 127 and -128, so pair sums reach +-65,280 and do saturate (asserted).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fxq_explore.kernels import pairsat
from fxq_explore.kernels.accumulate import conv2d_accumulate

MODELS = ("pairs_flat_k", "pairs_per_tap")


def c_paths():
    return pairsat.available_paths()


@pytest.fixture(params=pairsat.PATHS)
def path(request):
    if request.param not in c_paths():
        pytest.skip(f"pair-saturating path {request.param!r} not available on this CPU")
    return request.param


def oracle(x, w, **kw):
    return conv2d_accumulate(x, w, return_stats=True, **kw)


@st.composite
def pairsat_case(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    cg = draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 16, 17, 33]))
    kg = draw(st.sampled_from([1, 3, 8, 16, 17, 24]))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, r - 2 * ph), r + 7))
    wd = draw(st.integers(max(1, s - 2 * pw), s + 9))
    n = draw(st.integers(1, 2))
    fill = draw(st.sampled_from(["random", "extreme", "full_range", "max"]))
    xs = (n, cg * groups, h, wd)
    ws = (kg * groups, cg, r, s)
    if fill == "random":
        x = rng.integers(0, 256, size=xs)
        w = rng.integers(-128, 128, size=ws)
    elif fill == "extreme":
        x = rng.choice([0, 255, 254], size=xs)
        w = rng.choice([-128, -127, 127, 0], size=ws)
    elif fill == "full_range":  # per-channel max |w| = 127, as symmetric quantization gives
        x = rng.integers(0, 256, size=xs)
        f = rng.normal(size=ws)
        f = f / np.abs(f.reshape(ws[0], -1)).max(axis=1).reshape(-1, 1, 1, 1)
        w = np.rint(f * 127)
    else:
        x = np.full(xs, 255)
        w = rng.choice([-128, 127], size=ws)
    zx = draw(st.sampled_from([0, 128, 255, 3]))
    zw = draw(st.sampled_from(["zero", "scalar", "per_channel"]))
    if zw == "zero":
        wzp = 0
    elif zw == "scalar":
        wzp = int(rng.integers(-128, 128))
    else:
        wzp = rng.integers(-128, 128, size=ws[0])
    kw = dict(x_zero_point=zx, w_zero_point=wzp, stride=(sh, sw), padding=(ph, pw), groups=groups)
    return x.astype(np.uint8), w.astype(np.int8), kw


@given(case=pairsat_case(), model=st.sampled_from(MODELS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_c_path_equals_the_numpy_model(case, model):
    x, w, kw = case
    want, stats = oracle(x, w, accumulate=model, **kw)
    layer = pairsat.PairSatConv2d(w, accumulate=model, **kw)
    saturated = int(stats.saturated.sum())
    event(f"saturated pairs: {'some' if saturated else 'none'}")
    for p in c_paths():
        got = layer(x, path=p)
        assert got.dtype == np.int64 and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"path {p}, {model}")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "geom",
    [
        dict(c=64, k=64, r=3, hw=20, padding=1),  # the seed layer, smaller image
        dict(c=3, k=16, r=3, hw=14, padding=1),
        dict(c=5, k=24, r=3, hw=12, stride=2, padding=1),
        dict(c=24, k=24, r=5, hw=12, padding=2),
        dict(c=24, k=32, r=1, hw=10, padding=0),
        dict(c=32, k=32, r=3, hw=10, padding=1, groups=32),  # depthwise
        dict(c=48, k=48, r=3, hw=10, padding=1, groups=2),
    ],
    ids=["seed", "3ch", "5ch-s2", "5x5", "1x1", "dw", "g2"],
)
def test_full_range_layers_saturate_and_match(model, geom, path):
    rng = np.random.default_rng(sum(map(ord, str(geom))))
    c, k, r, hw = geom["c"], geom["k"], geom["r"], geom["hw"]
    g = geom.get("groups", 1)
    x = rng.integers(0, 256, size=(1, c, hw, hw), dtype=np.uint8)
    f = rng.normal(size=(k, c // g, r, r))
    f /= np.abs(f.reshape(k, -1)).max(axis=1).reshape(-1, 1, 1, 1)
    w = np.rint(f * 127).astype(np.int8)
    kw = dict(
        x_zero_point=128,
        stride=geom.get("stride", 1),
        padding=geom["padding"],
        groups=g,
    )
    want, stats = oracle(x, w, accumulate=model, **kw)
    exact = conv2d_accumulate(x, w, accumulate="exact", **kw)
    got = pairsat.PairSatConv2d(w, accumulate=model, **kw)(x, path=path)
    np.testing.assert_array_equal(got, want)
    partners = c // g if model == "pairs_per_tap" else c // g * r * r
    if partners >= 2:  # a product without a partner (one channel per tap) cannot saturate
        assert stats.saturated.sum() > 0  # pairs do saturate here ...
        assert np.count_nonzero(got != exact) > 0  # ... and change accumulators


def test_pair_extremes(path):
    # 255*127 + 255*127 = 64,770 -> 32,767; 255*(-128) * 2 = -65,280 -> -32,768; x_zp = 0
    x = np.full((1, 4, 1, 1), 255, np.uint8)
    for wv in (127, -128):
        w = np.full((3, 4, 1, 1), wv, np.int8)
        want, stats = oracle(x, w, accumulate="pairs_flat_k")
        assert stats.saturated.sum() == 3 * 2
        got = pairsat.PairSatConv2d(w)(x, path=path)
        np.testing.assert_array_equal(got, want)


def test_layer_is_reusable_and_independent_of_the_callers_weights(path):
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, size=(19, 7, 3, 3)).astype(np.int8)
    kw = dict(x_zero_point=128, padding=1, stride=(1, 2))
    layer = pairsat.PairSatConv2d(w, **kw)
    w0 = w.copy()
    w[:] = 0  # the packed weights were taken at construction
    for seed in range(3):
        x = np.random.default_rng(seed).integers(0, 256, size=(2, 7, 9, 11), dtype=np.uint8)
        want, _ = oracle(x, w0, accumulate="pairs_flat_k", **kw)
        np.testing.assert_array_equal(layer(x, path=path), want)
    nhwc = layer.accumulators_nhwc(x, path=path)
    assert nhwc.dtype == np.int32 and nhwc.flags.c_contiguous
    np.testing.assert_array_equal(nhwc.transpose(0, 3, 1, 2), want)


def test_non_contiguous_input(path):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(1, 8, 12, 12), dtype=np.uint8)[:, ::2, ::2, 1:]
    w = rng.integers(-128, 128, size=(5, 4, 3, 3)).astype(np.int8)
    want, _ = oracle(x, w, accumulate="pairs_per_tap", padding=1, x_zero_point=9)
    got = pairsat.conv2d_accumulate_c(
        x, w, accumulate="pairs_per_tap", padding=1, x_zero_point=9, path=path
    )
    np.testing.assert_array_equal(got, want)


def test_paths_and_dispatch(monkeypatch):
    paths = c_paths()
    assert paths[0] == "scalar"
    from fxq_explore.engines import cpu_flags

    assert ("avx2" in paths) == ("avx2" in cpu_flags())
    monkeypatch.setenv("FXQ_KERNEL_PATH", "scalar")
    assert pairsat._resolve(None) == pairsat._path_id("scalar")
    monkeypatch.delenv("FXQ_KERNEL_PATH")
    assert ("avx512" in paths) == ({"avx512f", "avx512bw"} <= cpu_flags())
    assert pairsat._resolve(None) == pairsat._path_id(paths[-1])  # the widest


# ---------------------------------------------------------------------------------------------
# bad input: TypeError / ValueError naming the argument, before any C call

W = np.zeros((4, 2, 3, 3), np.int8)
X = np.zeros((1, 2, 5, 5), np.uint8)


@pytest.mark.parametrize(
    "kw,exc,word",
    [
        (dict(w=W.tolist()), TypeError, "w"),
        (dict(w=W.astype(np.int16)), ValueError, "w"),
        (dict(w=W.astype(np.uint8)), ValueError, "w"),
        (dict(w=W[0]), ValueError, "w"),
        (dict(w=np.zeros((0, 2, 3, 3), np.int8)), ValueError, "w"),
        (dict(w=np.zeros((1, 22000, 1, 1), np.int8)), ValueError, "w"),
        (dict(x_zero_point=256), ValueError, "x_zero_point"),
        (dict(x_zero_point=-1), ValueError, "x_zero_point"),
        (dict(x_zero_point=True), TypeError, "x_zero_point"),
        (dict(x_zero_point=1.5), TypeError, "x_zero_point"),
        (dict(w_zero_point=200), ValueError, "w_zero_point"),
        (dict(w_zero_point=[0, 0]), ValueError, "w_zero_point"),
        (dict(w_zero_point=0.5), ValueError, "w_zero_point"),
        (dict(stride=0), ValueError, "stride"),
        (dict(stride=(1, 2, 3)), ValueError, "stride"),
        (dict(stride="1"), TypeError, "stride"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(padding=None), TypeError, "padding"),
        (dict(groups=0), ValueError, "groups"),
        (dict(groups=3), ValueError, "groups"),
        (dict(groups=2.0), TypeError, "groups"),
        (dict(accumulate="exact"), ValueError, "accumulate"),
        (dict(accumulate="nope"), ValueError, "accumulate"),
        (dict(accumulate=3), TypeError, "accumulate"),
    ],
)
def test_bad_layer_arguments(kw, exc, word):
    args = dict(w=W)
    args.update(kw)
    w = args.pop("w")
    with pytest.raises(exc, match=word):
        pairsat.PairSatConv2d(w, **args)


@pytest.mark.parametrize(
    "x,path,exc,word",
    [
        (X.tolist(), None, TypeError, "x"),
        (X.astype(np.int8), None, ValueError, "x"),
        (X[0], None, ValueError, "x"),
        (np.zeros((1, 3, 5, 5), np.uint8), None, ValueError, "channels"),
        (np.zeros((1, 2, 2, 5), np.uint8), None, ValueError, "x"),
        (np.zeros((0, 2, 5, 5), np.uint8), None, ValueError, "x"),
        (X, "vnni", ValueError, "path"),
        (X, "bogus", ValueError, "path"),
        (X, 2, TypeError, "path"),
    ],
)
def test_bad_call_arguments(x, path, exc, word):
    layer = pairsat.PairSatConv2d(W)
    with pytest.raises(exc, match=word):
        layer(x, path=path)


# ---------------------------------------------------------------------------------------------
# the engine presets route through the C kernel; against the real engines where installed

_ASAN = bool(os.environ.get("FXQ_EXPECT_EXTENSION_DIR"))


def test_presets_use_the_c_kernel_and_agree_with_numpy(path):
    from dataclasses import replace

    from fxq_explore.engines.api import Conv2d, conv2d
    from fxq_explore.engines.saturation import make_case

    case = make_case(c=16, k=24, r=3, hw=12, seed=3)
    # a bias beyond which the int32 add could wrap for some input: the general path runs
    big = np.array([2**31 - 2 * 10**7] * 12 + [-(2**31) + 2 * 10**7] * 12, np.int32)
    variants = [case, replace(case, bias=None), replace(case, bias=big)]
    for preset in ("onnxruntime-avx2", "torch-fbgemm-avx2", "torch-onednn-avx2"):
        for c in variants:
            # with a bias / the scales, torch presets take their float path; ORT and bias-free
            # fbgemm the all-C one (C accumulators, C float32 RNE requantization)
            want = c.conv(engine=preset, acc_backend="numpy")
            got = c.conv(engine=preset, acc_backend="c", acc_path=path)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want, err_msg=preset)
        assert np.count_nonzero(want != case.exact()) > 0  # saturation reaches the outputs
    for scale in (1e-3, np.linspace(1e-3, 2e-3, 24)):
        kw = dict(scale=scale, x_zero_point=128, out_zero_point=3, padding=1)
        want = conv2d(
            case.x, case.w, case.bias, engine="onnxruntime-avx2", acc_backend="numpy", **kw
        )
        got = conv2d(case.x, case.w, case.bias, engine="onnxruntime-avx2", acc_path=path, **kw)
        np.testing.assert_array_equal(got, want)
    kw = dict(
        x_scale=case.x_scale,
        w_scale=case.w_scale,
        y_scale=case.y_scale,
        x_zero_point=128,
        out_zero_point=128,
        padding=1,
    )
    layer = Conv2d(case.w, case.bias, engine="onnxruntime-avx2", **kw)
    assert isinstance(layer._acc_layer, pairsat.PairSatConv2d)  # packed at construction
    want = conv2d(case.x, case.w, case.bias, engine="onnxruntime-avx2", acc_backend="numpy", **kw)
    np.testing.assert_array_equal(layer(case.x), want)
    with pytest.raises(ValueError, match="acc_backend"):
        conv2d(case.x, case.w, engine="onnxruntime-avx2", acc_backend="fast", **kw)
    with pytest.raises(ValueError, match="x"):
        conv2d(case.x.astype(np.int8), case.w, engine="onnxruntime-avx2", **kw)


@pytest.mark.skipif(_ASAN, reason="make asan: the engines are not started under ASan")
@pytest.mark.parametrize(
    "runner,env,preset",
    [
        ("fbgemm", {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}, "torch-fbgemm-avx2"),
        ("onednn", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "torch-onednn-avx2"),
    ],
)
def test_c_paths_equal_the_real_engine_forced_to_avx2(runner, env, preset):
    from fxq_explore.engines import cpu_flags
    from fxq_explore.engines.runners import available, run_cases_in_subprocess
    from fxq_explore.engines.saturation import make_case

    ok, why = available(runner)
    if not ok:
        pytest.skip(why)
    if "avx2" not in cpu_flags():
        pytest.skip("this CPU lacks AVX2: the override cannot select the vpmaddubsw kernels")
    cases = [
        make_case(c=64, k=64, r=3, hw=14, seed=0),
        make_case(c=3, k=16, r=3, hw=14, seed=1),
        make_case(c=5, k=24, r=3, hw=12, stride=2, seed=2),
        make_case(c=24, k=24, r=5, hw=12, seed=3),
    ]
    ys = run_cases_in_subprocess(runner, [c.runner_case() for c in cases], env=env)
    differ = 0
    for case, y in zip(cases, ys, strict=True):
        for p in c_paths():
            got = case.conv(engine=preset, acc_backend="c", acc_path=p)
            mism = int(np.count_nonzero(got != y))
            assert mism == 0, f"{preset} path {p} differs from {runner} on {mism} outputs"
        differ += int(np.count_nonzero(y != case.exact()))
    assert differ > 0  # the engine saturated on these layers


def test_onnxruntime_here():
    """ORT's own u8s8 QLinearConv saturates only on AVX2 / AVX-512-without-VNNI CPUs; on a VNNI
    CPU it is exact, so the AVX2 preset is checked against the numpy model above (and against
    ORT itself in tests/engines on AVX2 CPUs)."""
    from fxq_explore.engines import detect

    pytest.importorskip("onnxruntime")
    if _ASAN:
        pytest.skip("make asan: the engines are not started under ASan")
    if detect()["onnxruntime"].preset == "onnxruntime-avx2":
        from fxq_explore.engines.runners import run_engine
        from fxq_explore.engines.saturation import make_case

        case = make_case(c=64, k=64, r=3, hw=14, seed=0)
        y = run_engine("onnxruntime", case.x, case.w, case.bias, **case.kwargs())
        for p in c_paths():
            np.testing.assert_array_equal(
                case.conv(engine="onnxruntime-avx2", acc_backend="c", acc_path=p), y
            )
    else:
        pytest.skip("this CPU has VNNI: ORT does not saturate here (compared with numpy above)")


def _bench(forced):
    import io

    from fxq_explore.bench import pairsat as bench

    buf = io.StringIO()
    rows = bench.run(quick=True, out=buf, forced=forced)
    text = buf.getvalue()
    assert "fxq C pairsat scalar" in text and "numpy model" in text
    assert all(r["bit_exact"] for r in rows), text
    assert all(r["ms"] > 0 for r in rows)  # timings are reported, never asserted
    return rows


@pytest.mark.skipif(_ASAN, reason="make asan: third-party native code (ORT, torch) under ASan")
def test_bench_runs_and_every_row_is_bit_exact():
    _bench(forced=False)


@pytest.mark.slow
@pytest.mark.skipif(_ASAN, reason="make asan: third-party native code (ORT, torch) under ASan")
def test_bench_forced_avx2_engines_are_bit_exact():
    pytest.importorskip("torch")
    rows = _bench(forced=True)
    from fxq_explore.engines import cpu_flags

    if "avx2" in cpu_flags():
        assert sum("forced AVX2" in r["name"] for r in rows) == 2


def test_the_all_c_path_is_taken_where_it_applies(monkeypatch):
    from dataclasses import replace

    from fxq_explore.engines import presets
    from fxq_explore.engines.saturation import make_case

    taken = []
    real = presets._c_conv2d

    def spy(*a, **kw):
        y = real(*a, **kw)
        taken.append(y is not None)
        return y

    monkeypatch.setattr(presets, "_c_conv2d", spy)
    case = make_case(c=8, k=16, r=3, hw=8, seed=4)
    case.conv(engine="onnxruntime-avx2")
    case.conv(engine="torch-fbgemm-avx2")  # float bias: FBGEMM's float path, not called
    replace(case, bias=None).conv(engine="torch-fbgemm-avx2")
    case.conv(engine="onnxruntime-avx2", acc_backend="numpy")
    assert taken == [True, True, False]


@pytest.mark.parametrize(
    "model", ["exact", "pairs_flat_k", "mlas_u8s8", "fbgemm_vnni", "pairs_per_tap"]
)
@pytest.mark.parametrize(
    "wshape,kw",
    [
        ((16, 1, 3, 3), dict(groups=16, padding=1)),  # depthwise, FBGEMM's fast path
        ((16, 1, 3, 3), dict(groups=16, padding=0)),  # depthwise, not the fast path
        ((12, 6, 3, 3), dict(padding=1, stride=2)),
        ((8, 3, 1, 1), dict(groups=2)),
    ],
    ids=["dw-fast", "dw", "dense", "g2-1x1"],
)
def test_engines_accumulators_route_every_model(model, wshape, kw):
    from fxq_explore.engines import accumulators

    rng = np.random.default_rng(11)
    g = kw.get("groups", 1)
    x = rng.integers(0, 256, size=(1, wshape[1] * g, 9, 9), dtype=np.uint8)
    w = rng.choice(np.array([-128, -127, 127, 100], np.int8), size=wshape)
    want = conv2d_accumulate(x, w, x_zero_point=128, accumulate=model, **kw)
    for backend in ("auto", "c"):
        got = accumulators(x, w, x_zero_point=128, accumulate=model, backend=backend, **kw)
        np.testing.assert_array_equal(got, want, err_msg=f"{model} {backend}")
