"""Calibrators against straightforward re-implementations written from the engines' sources.

The reference functions below are deliberately naive (Python loops over bins and candidates,
``math.log``), written from the calibration notes of each engine's source and the engine code it cites, not
from ``fxq_explore.analysis.calibration``. They run on reduced bin counts so the loops stay fast.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from fxq_explore.analysis.calibration import (
    HistogramCollector,
    calibrate,
    calibrate_all,
    kl_search,
    scale_to_threshold,
    threshold_to_scale,
)

# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def gaussian_with_outliers(seed=0, n=20_000):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    x[:5] = [12.0, -9.0, 15.0, 7.5, -20.0]  # a few large outliers
    return x


def relu_spike(seed=1, n=20_000):
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.normal(0.3, 1.0, n), 0.0)  # ~38 % exact zeros: the spike
    x[:3] = [9.0, 11.0, 6.0]
    return x


def laplace_data(seed=2, n=20_000):
    return np.random.default_rng(seed).laplace(0.0, 0.5, n)


DATASETS = {
    "gauss_outliers": gaussian_with_outliers,
    "relu_spike": relu_spike,
    "laplace": laplace_data,
}


# ---------------------------------------------------------------------------------------------
# naive references
# ---------------------------------------------------------------------------------------------


def ref_smooth(p, eps=1e-4):
    n_zero = sum(1 for v in p if v == 0)
    n_nonzero = len(p) - n_zero
    if n_nonzero == 0:
        return None
    eps1 = eps * n_zero / n_nonzero
    if eps1 >= 1.0:
        return None
    return [v + eps if v == 0 else v - eps1 for v in p]


def ref_entropy(p, q):
    sp, sq = sum(p), sum(q)
    total = 0.0
    for a, b in zip(p, q, strict=False):
        a, b = a / sp, b / sq
        if a > 0:
            if b == 0:
                return math.inf
            total += a * math.log(a / b)
    return total


def ref_kl_tvm(x, num_bins, nq):
    """TVM MinimizeKL (calibrate.cc), literally: the C++ loops."""
    th = max(abs(min(x)), abs(max(x)))
    hist, edges = np.histogram(x, bins=num_bins, range=(-th, th))
    hist = [int(v) for v in hist]
    zero = num_bins // 2
    best, best_t = math.inf, None
    for i in range(nq // 2, zero + 1):
        p_start, p_stop = zero - i, zero + i + 1
        t = float(np.float32(edges[p_stop]))
        n = p_stop - p_start
        sliced = [0] * n
        p = [0.0] * n
        for j in range(num_bins):
            if j <= p_start:
                p[0] += hist[j]
            elif j >= p_stop:
                p[-1] += hist[j]
            else:
                sliced[j - p_start] = hist[j]
                p[j - p_start] = hist[j]
        merged = n // nq
        qb = [0] * nq
        for j in range(nq):
            qb[j] = sum(sliced[j * merged : (j + 1) * merged])
        qb[-1] += sum(sliced[nq * merged :])
        q = [0.0] * n
        for j in range(nq):
            a = j * merged
            b = n if j == nq - 1 else (j + 1) * merged
            norm = sum(1 for v in sliced[a:b] if v != 0)
            if norm:
                for k in range(a, b):
                    if p[k]:
                        q[k] = qb[j] / norm
        ps, qs = ref_smooth(p), ref_smooth(q)
        d = math.inf if ps is None or qs is None else ref_entropy(ps, qs)
        if d < best:  # first minimum
            best, best_t = d, t
    return best_t


def ref_kl_pytorch(x, num_bins, num_bits=8, unsigned=False, start_bin=128, zero_fix=False):
    """pytorch-quantization _compute_amax_entropy (stride 1), with explicit loops."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    hist, edges = np.histogram(a, bins=num_bins, range=(0, a.max()))
    bins = [float(v) for v in hist]
    if zero_fix:
        bins[0] = bins[1]
    nlev = 1 << (num_bits - 1 + int(unsigned))
    divs, args = [], []
    for i in range(start_bin, len(bins) + 1):
        space = np.linspace(0, i, num=nlev + 1)
        dig = [int(v) for v in (np.digitize(range(i), space) - 1)]
        dig = [-1 if bins[k] == 0 else dig[k] for k in range(i)]
        dens = [0.0] * nlev
        for k, d in enumerate(dig):
            if d != -1:
                dens[d] += bins[k]
        cnt = Counter(dig)
        for key, val in cnt.items():
            if key != -1:
                dens[key] /= val
        newd = [dens[d] if d != -1 else 0.0 for d in dig]
        ref = bins[:i]
        ref[-1] += sum(bins[i:])
        divs.append(ref_entropy(ref, newd))
        args.append(i)
    best = min(divs)
    last = max(k for k, d in enumerate(divs) if d == best)  # last minimum
    return float(edges[args[last]])


def ref_kl_onnxruntime(x, num_bins=128, nq=128):
    """ONNX Runtime get_entropy_threshold -> (left, right) clipped to [min, max]."""
    th = max(abs(min(x)), abs(max(x)))
    hist, edges = np.histogram(x, bins=num_bins, range=(-th, th))
    hist = [int(v) for v in hist]
    zero = num_bins // 2
    best, best_pair = math.inf, None
    for i in range(nq // 2, zero + 1):
        s = zero - i
        e = min(zero + i + 1, num_bins)
        sliced = hist[s:e]
        p = list(sliced)
        p[0] += sum(hist[:s])
        p[-1] += sum(hist[e:])
        nz = [1 if v != 0 else 0 for v in p]
        merged = len(sliced) // nq
        qb = [sum(sliced[j * merged : (j + 1) * merged]) for j in range(nq)]
        qb[-1] += sum(sliced[nq * merged :])
        q = [0] * len(p)
        for j in range(nq):
            norm = sum(nz[j * merged : (j + 1) * merged])
            if norm:
                for k in range(j * merged, (j + 1) * merged):
                    q[k] = int(qb[j] / norm)
        ps, qs = ref_smooth(p), ref_smooth(q)
        d = math.inf if ps is None or qs is None else ref_entropy(ps, qs)
        if d < best:
            best, best_pair = d, (float(edges[s]), float(edges[e]))
    lo, hi = best_pair
    return max(lo, float(min(x))), min(hi, float(max(x)))


def ref_mse(x, num_bins, num_bits=8, unsigned=False, start_bin=128):
    """pytorch-quantization _compute_amax_mse with loops."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    hist, edges = np.histogram(a, bins=num_bins, range=(0, a.max()))
    centers = [(edges[k] + edges[k + 1]) / 2 for k in range(num_bins)]
    max_bound = 2.0 ** (num_bits - 1 + int(unsigned)) - 1
    best, best_c = math.inf, None
    for i in range(start_bin, len(centers)):
        amax = centers[i]
        scale = max_bound / amax
        err = 0.0
        for c, n in zip(centers, hist, strict=False):
            qv = min(max(float(np.rint(c * scale)), -max_bound - 1), max_bound) / scale
            err += (qv - c) ** 2 * n
        if err < best:
            best, best_c = err, amax
    return best_c


def ref_percentile_tvm(x, pct):
    a = sorted(abs(v) for v in x)
    k = min(int(len(a) * pct / 100), len(a) - 1)
    return a[k]


def ref_percentile_hist(x, pct, num_bins=2048):
    a = np.abs(np.asarray(x, dtype=np.float64))
    hist, edges = np.histogram(a, bins=num_bins, range=(0, a.max()))
    total = hist.sum()
    c = 0.0
    for k, n in enumerate(hist):
        c += n / total
        if c >= pct / 100:
            return float(edges[k])
    return float(edges[-1])


# ---------------------------------------------------------------------------------------------
# calibrators vs references
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DATASETS))
def test_max(name):
    x = DATASETS[name]()
    assert calibrate(x, "max") == max(abs(v) for v in x)


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("pct", [99.0, 99.99, 100.0])
def test_percentile_tvm(name, pct):
    x = DATASETS[name]()
    assert calibrate(x, "percentile", percentile=pct) == ref_percentile_tvm(x, pct)


@pytest.mark.parametrize("name", list(DATASETS))
def test_percentile_histogram(name):
    x = DATASETS[name]()
    assert calibrate(x, "percentile", variant="histogram", percentile=99.9) == pytest.approx(
        ref_percentile_hist(x, 99.9), rel=1e-12
    )


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("bits,unsigned", [(8, False), (4, True)])
def test_mse(name, bits, unsigned):
    x = DATASETS[name]()
    got = calibrate(x, "mse", bits=bits, unsigned=unsigned, num_bins=384)
    assert got == pytest.approx(ref_mse(x, 384, bits, unsigned), rel=1e-12)


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("bits,unsigned,nbins", [(8, False, 901), (8, True, 1201), (6, False, 301)])
def test_kl_tvm(name, bits, unsigned, nbins):
    x = DATASETS[name]()
    nq = 2**bits - 1
    if unsigned:
        nq = 2 * nq + 1
    got = calibrate(x, "kl", variant="tvm", bits=bits, unsigned=unsigned, num_bins=nbins)
    assert got == ref_kl_tvm(list(x), nbins, nq)


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("zero_fix", [False, True])
def test_kl_tensorrt(name, zero_fix):
    x = DATASETS[name]()
    got = calibrate(x, "kl", variant="tensorrt", num_bins=400, zero_bin_fix=zero_fix)
    assert got == ref_kl_pytorch(x, 400, zero_fix=zero_fix)


def test_kl_tensorrt_unsigned_low_bits():
    x = relu_spike()
    got = calibrate(x, "kl", variant="tensorrt", bits=4, unsigned=True, num_bins=300, start_bin=40)
    assert got == ref_kl_pytorch(x, 300, num_bits=4, unsigned=True, start_bin=40)


def test_zero_bin_fix_matters_on_relu_spike():
    x = relu_spike()
    a = calibrate(x, "kl", variant="tensorrt", zero_bin_fix=False)
    b = calibrate(x, "kl", variant="tensorrt", zero_bin_fix=True)
    assert a != b


@pytest.mark.parametrize("name", list(DATASETS))
def test_kl_onnxruntime_against_reference(name):
    x = DATASETS[name]()
    lo, hi = ref_kl_onnxruntime(list(x), num_bins=601, nq=128)
    got = calibrate(x, "kl", variant="onnxruntime", num_bins=601)
    assert got == max(abs(lo), abs(hi))


@pytest.mark.parametrize("name", list(DATASETS))
def test_kl_onnxruntime_defaults_degenerate_to_max(name):
    """128 bins and 128 levels: one candidate, the full range, clipped to [min, max]."""
    x = DATASETS[name]()
    r = kl_search(x, "onnxruntime")
    assert len(r.thresholds) == 1
    assert calibrate(x, "kl", variant="onnxruntime") == max(abs(v) for v in x)


def test_kl_default_bins_properties():
    """Default 8001 / 2048 bins: candidates counted as TVM and ORT count them; T below max."""
    x = gaussian_with_outliers()
    r = kl_search(x, "tvm")
    assert len(r.thresholds) == 8001 // 2 + 1 - 255 // 2 == 3874
    assert r.index == int(np.argmin(r.divergences))
    assert 2.0 < r.threshold < 20.0
    r2 = kl_search(x, "tensorrt")
    assert len(r2.thresholds) == 2048 - 128 + 1
    finite = r2.divergences[np.isfinite(r2.divergences)]
    assert r2.divergences[r2.index] == finite.min()
    assert r2.divergences[r2.index + 1 :].min() > finite.min()  # last minimum


def test_kl_clips_outliers_max_does_not():
    x = gaussian_with_outliers()
    for variant in ("tvm", "tensorrt"):
        assert calibrate(x, "kl", variant=variant) < 0.5 * calibrate(x, "max")


# ---------------------------------------------------------------------------------------------
# streaming histograms
# ---------------------------------------------------------------------------------------------


def ref_combine_signed(batches, num_bins):
    """MXNet combine_histogram, per batch."""
    state = None
    for b in batches:
        b = np.asarray(b, dtype=np.float64)
        th = float(np.abs(b).max())
        if state is None:
            h, e = np.histogram(b, bins=num_bins, range=(-th, th))
            state = (h, e, th)
            continue
        oh, oe, oth = state
        if th <= oth:
            h, _ = np.histogram(b, bins=len(oh), range=(-oth, oth))
            state = (oh + h, oe, oth)
        else:
            step = 2 * oth / len(oh)
            half = int((th - oth) // step + 1)
            nnb = half * 2 + len(oh)
            nth = half * step + oth
            h, e = np.histogram(b, bins=nnb, range=(-nth, nth))
            h[half : nnb - half] += oh
            state = (h, e, nth)
    return state[0], state[1]


def test_collector_signed_matches_mxnet_merge():
    rng = np.random.default_rng(5)
    batches = [rng.normal(0, s, 3000) for s in (1.0, 0.5, 3.0, 2.0, 6.0)]
    hc = HistogramCollector(801, mode="signed", progress=False).collect(batches)
    h, e = ref_combine_signed(batches, 801)
    np.testing.assert_array_equal(hc.hist, h)
    np.testing.assert_array_equal(hc.edges, e)
    assert len(hc.hist) % 2 == 1 and hc.hist.sum() == 15000


def test_collector_abs_appends_bins_and_counts_everything():
    rng = np.random.default_rng(6)
    batches = [rng.normal(0, s, 2000) for s in (1.0, 4.0, 0.5)]
    hc = HistogramCollector(256, mode="abs", progress=False).collect(batches)
    width = hc.edges[1] - hc.edges[0]
    assert np.allclose(np.diff(hc.edges), width)
    assert len(hc.hist) > 256 and hc.hist.sum() == 6000
    assert hc.edges[-1] >= max(np.abs(b).max() for b in batches)


def test_collector_feeds_calibrate():
    x = gaussian_with_outliers()
    whole = calibrate(x, "kl", variant="tvm", num_bins=1001)
    hc = HistogramCollector(1001, mode="signed").update(x)
    assert calibrate(hc, "kl", variant="tvm") == whole
    assert calibrate(hc, "max") == calibrate(x, "max")
    with pytest.raises(ValueError, match="mode='abs'"):
        calibrate(hc, "kl", variant="tensorrt")
    with pytest.raises(ValueError, match="samples"):
        calibrate(hc, "percentile")


def test_abs_collector_feeds_histogram_methods():
    x = relu_spike()
    hc = HistogramCollector(2048, mode="abs").update(x)
    assert calibrate(hc, "kl", variant="tensorrt") == calibrate(x, "kl", variant="tensorrt")
    assert calibrate(hc, "mse") == calibrate(x, "mse")
    assert calibrate(hc, "percentile", variant="histogram") == calibrate(
        x, "percentile", variant="histogram"
    )
    # two batches: the later, larger one appends bins of the same width
    hc2 = HistogramCollector(2048, mode="abs").collect([x[:10_000] * 0.5, x[10_000:]])
    assert calibrate(hc2, "kl", variant="tensorrt") > 0


def test_collector_zero_batch_first():
    hc = HistogramCollector(11, mode="signed").update(np.zeros(7)).update([-1.0, 1.0])
    assert hc.hist.sum() == 9 and hc.hist[5] == 7


# ---------------------------------------------------------------------------------------------
# threshold -> scale
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "t,bits,signed,conv,expected",
    [
        (12.7, 8, True, "tflite", 0.1),
        (12.7, 8, True, "tensorrt", 0.1),
        (12.8, 8, True, "tvm", 0.1),
        (25.5, 8, False, "tflite", 0.1),
        (25.6, 8, False, "tvm", 0.1),
        (0.7, 4, True, "tflite", 0.1),
        (0.8, 4, True, "tvm", 0.1),
        (1.5, 4, False, "tflite", 0.1),
    ],
)
def test_threshold_to_scale(t, bits, signed, conv, expected):
    assert threshold_to_scale(t, bits, signed=signed, convention=conv) == pytest.approx(
        expected, rel=1e-12
    )
    assert scale_to_threshold(expected, bits, signed=signed, convention=conv) == pytest.approx(
        t, rel=1e-12
    )


def test_calibrate_all_labels_and_order():
    ts = calibrate_all(gaussian_with_outliers())
    assert set(ts) == {"max", "percentile", "mse", "kl_tvm", "kl_tensorrt", "kl_tensorrt_zfix"}
    assert ts["max"] == 20.0
    assert all(0 < t <= 20.0 for t in ts.values())


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad,match",
    [
        ([], "values must not be empty"),
        (np.array([1.0, np.nan]), "finite"),
        (np.array([1.0, np.inf]), "finite"),
        (np.zeros(10), "all zero"),
        (["a", "b"], "real numbers"),
    ],
)
def test_bad_values(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        calibrate(bad)


@pytest.mark.parametrize("bits", [1, 17, 0, -8])
def test_bad_bits(bits):
    with pytest.raises(ValueError, match=r"bits must be in \[2, 16\]"):
        calibrate([1.0, 2.0], "kl", bits=bits)
    with pytest.raises(ValueError, match="bits"):
        threshold_to_scale(1.0, bits)


def test_unknown_method_and_variant():
    with pytest.raises(ValueError, match="unknown method 'entropy'.*'max'.*'kl'"):
        calibrate([1.0], "entropy")
    with pytest.raises(ValueError, match="variant.*'tvm', 'tensorrt', 'onnxruntime'"):
        calibrate([1.0], "kl", variant="mxnet")
    with pytest.raises(ValueError, match="variant"):
        calibrate([1.0], "mse", variant="tvm")


def test_bad_percentile_and_threshold():
    with pytest.raises(ValueError, match="percentile"):
        calibrate([1.0, 2.0], "percentile", percentile=0)
    with pytest.raises(ValueError, match="percentile"):
        calibrate([1.0, 2.0], "percentile", percentile=100.5)
    with pytest.raises(ValueError, match="threshold"):
        threshold_to_scale(0.0)
    with pytest.raises(ValueError, match="threshold"):
        threshold_to_scale(float("nan"))
    with pytest.raises(ValueError, match="convention"):
        threshold_to_scale(1.0, convention="onnx")


def test_collector_bad_input():
    hc = HistogramCollector(11)
    with pytest.raises(ValueError, match="empty"):
        hc.update([])
    with pytest.raises(ValueError, match="finite"):
        hc.update([np.nan])
    with pytest.raises(ValueError, match="empty"):
        calibrate(hc, "max")
    with pytest.raises(ValueError, match="mode"):
        HistogramCollector(11, mode="log")


def test_mostly_zero_percentile_is_an_error():
    x = np.zeros(10_000)
    x[0] = 1.0
    with pytest.raises(ValueError, match="T = 0"):
        calibrate(x, "percentile", percentile=99.0)


# ---------------------------------------------------------------------------------------------
# plots (headless: an explicit Figure, no pyplot state)
# ---------------------------------------------------------------------------------------------


def test_plots_draw_every_threshold():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from fxq_explore.viz.calibration_plots import plot_histogram_thresholds, plot_kl_curve

    x = relu_spike()
    ts = {"max": 11.0, "kl": 4.0}
    ax = Figure().subplots()
    assert plot_histogram_thresholds(x, ts, ax=ax) is ax
    xs = sorted(line.get_xdata()[0] for line in ax.get_lines())
    assert xs == [4.0, 11.0]  # unsigned data: one line per threshold
    ax2 = Figure().subplots()
    r = kl_search(x, "tensorrt", num_bins=400)
    assert plot_kl_curve(r, ax=ax2) is ax2
    curve = ax2.get_lines()[0]
    assert len(curve.get_xdata()) == int(np.isfinite(r.divergences).sum())
    ax3 = Figure().subplots()
    plot_histogram_thresholds(gaussian_with_outliers(), ax=ax3)  # signed: +-T for 6 labels
    assert len(ax3.get_lines()) == 12


def test_collector_progress_bar_runs(capsys):
    rng = np.random.default_rng(9)
    batches = (rng.normal(size=100) for _ in range(5))  # a generator: no len()
    hc = HistogramCollector(101, progress=True).collect(batches, total=5)
    assert hc.count == 500
    hc2 = HistogramCollector(101).collect([rng.normal(size=10)])  # auto: not a terminal
    assert hc2.count == 10
    assert "calibration histogram" not in capsys.readouterr().err  # quick runs print nothing
