"""Plotting functions: draw into the given Axes, return it, and leave global state alone."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fxq_explore as fx  # noqa: E402
from fxq_explore import analysis  # noqa: E402
from fxq_explore.viz import plotting  # noqa: E402

ACC = analysis.random_accumulators(3_000, seed=0, spread=67_000)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_decomposition_bits_drawn(ax):
    d = fx.decompose(0.0018843, bits=8)
    assert plotting.plot_decomposition(d, ax=ax) is ax
    texts = [t.get_text() for t in ax.texts]
    assert texts[:8] == list(format(int(d.multiplier), "08b"))
    assert "2^-16" in ax.get_title() and str(d.multiplier) in ax.get_title()


def test_decomposition_rejects_arrays(ax):
    with pytest.raises(ValueError, match="scalar"):
        plotting.plot_decomposition(fx.decompose([0.5, 0.25]), ax=ax)


def test_error_plots(ax):
    a = analysis.error_vs_exact(ACC, 0.0018843, ("float32_rne", "pow2"))
    assert plotting.plot_requantization_error(a, ax=ax) is ax
    assert [line.get_label() for line in ax.lines[:2]] == ["float32_rne", "pow2"]
    fig2, ax2 = plt.subplots()
    plotting.plot_error_histograms(a, ax=ax2)
    assert len(ax2.patches) == 2
    plt.close(fig2)


def test_sweep_and_mark(ax):
    sw = analysis.sweep_output_bits(ACC, 0.0018843, bits=[4, 8], progress=False)
    plotting.plot_sweep(sw, "sqnr_db", ax=ax, mark=8)
    assert np.allclose(ax.lines[0].get_ydata(), sw.sqnr_db[sw.schemes[0]])
    assert ax.get_xlabel() == "output bits"
    with pytest.raises(ValueError, match="metric"):
        plotting.plot_sweep(sw, "accuracy", ax=ax)


def test_bars(ax):
    c = fx.compare(ACC, 0.0018843, ["tflite", "tflite_single"])
    plotting.plot_scheme_disagreement(c, ax=ax)
    assert len(ax.patches) == 2
    fig2, ax2 = plt.subplots()
    plotting.plot_timings([{"name": "a", "ms": 1.0}, {"name": "b", "ms": 2.0}], ax=ax2)
    assert [p.get_width() for p in ax2.patches] == [1.0, 2.0]
    plt.close(fig2)


def test_calibration_plots(ax):
    x = np.random.default_rng(0).normal(size=1000)
    plotting.plot_calibration_histogram(x, {"max": 3.0}, ax=ax)
    assert ax.lines[0].get_xdata()[0] == 3.0
    fig2, ax2 = plt.subplots()
    plotting.plot_threshold_tradeoff([1, 2], [0.1, 0.0], [0.01, 0.02], ax=ax2, mark=1.5)
    assert len(ax2.lines) == 4
    plt.close(fig2)


def test_new_figure_when_ax_is_none():
    n = len(plt.get_fignums())
    ax = plotting.plot_series([1, 2], {"y": [1, 2]})
    assert len(plt.get_fignums()) == n + 1
    plt.close(ax.figure)


def test_no_global_style_change():
    before = dict(matplotlib.rcParams)
    import importlib

    importlib.reload(plotting)
    fig, ax = plt.subplots()
    plotting.plot_decomposition(fx.decompose(0.0018843), ax=ax)
    plt.close(fig)
    assert dict(matplotlib.rcParams) == before


def test_figure_to_png():
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1])
    assert plotting.figure_to_png(fig)[:4] == b"\x89PNG"
