"""Matplotlib figures for calibration: a histogram with each calibrator's threshold, the KL curve.

Each function takes ``ax=None`` (a new figure's Axes then) and returns the Axes; matplotlib is
imported only when a function is called, and no global style is changed.
"""

from __future__ import annotations

import numpy as np

from ..analysis.calibration import HistogramCollector, KLSearch, calibrate_all, kl_search

__all__ = ["plot_histogram_thresholds", "plot_kl_curve"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.5))
    return ax


def plot_histogram_thresholds(
    values, thresholds=None, *, bits=8, unsigned=None, bins=256, log=True, ax=None
):
    """Histogram of ``values`` with a vertical line at each calibrator's threshold.

    Parameters
    ----------
    values : array_like of float
        Calibration values (finite, non-empty, not all zero).
    thresholds : dict of str -> float, optional
        Label -> threshold ``T``; default :func:`fxq_explore.calibration.calibrate_all`.
    bits : int, 2..16
        Passed to ``calibrate_all`` when ``thresholds`` is None.
    unsigned : bool or None
        Passed to ``calibrate_all``.
    bins : int
        Histogram bins for the picture (not the calibrators' bins).
    log : bool
        Logarithmic count axis (the tails are where the thresholds differ).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Signed data are drawn over ``[-max|x|, max|x|]`` with a line at ``±T``.
    """
    if isinstance(values, HistogramCollector):
        raise TypeError("values must be an array here; pass the samples, not a collector")
    if thresholds is None:
        thresholds = calibrate_all(values, bits=bits, unsigned=unsigned)
    x = np.asarray(values, dtype=np.float64).ravel()
    ax = _axes(ax)
    amax = float(np.abs(x).max())
    lo = -amax if x.min() < 0 else 0.0
    ax.hist(x, bins=bins, range=(lo, amax), color="0.6", log=log)
    colors = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"]
    for k, (label, t) in enumerate(thresholds.items()):
        c = colors[k % len(colors)]
        ax.axvline(t, color=c, lw=1.2, label=f"{label}: T = {t:.4g}")
        if lo < 0:
            ax.axvline(-t, color=c, lw=1.2, ls="--")
    ax.set_xlabel("value")
    ax.set_ylabel("count")
    ax.set_title("calibration thresholds")
    ax.legend(fontsize="small", loc="upper right")
    return ax


def plot_kl_curve(values, variant="tvm", *, ax=None, **kwargs):
    """KL divergence against the candidate threshold, with the chosen one marked.

    Parameters
    ----------
    values : array_like of float, HistogramCollector, or KLSearch
        Data (searched with :func:`fxq_explore.calibration.kl_search`) or a finished search.
    variant : {"tvm", "tensorrt", "onnxruntime"}
    ax : matplotlib Axes, optional
    **kwargs
        Passed to ``kl_search`` (``bits``, ``unsigned``, ``zero_bin_fix``, ...).

    Returns
    -------
    matplotlib.axes.Axes
    """
    r = values if isinstance(values, KLSearch) else kl_search(values, variant, **kwargs)
    ax = _axes(ax)
    finite = np.isfinite(r.divergences)
    ax.plot(
        r.thresholds[finite],
        r.divergences[finite],
        lw=1.0,
        color="C0",
        label=f"KL(P||Q), {r.variant}",
    )
    ax.axvline(r.threshold, color="C3", lw=1.0, label=f"chosen T = {r.threshold:.4g}")
    ax.plot([r.threshold], [r.divergences[r.index]], "o", color="C3")
    ax.set_xlabel("candidate threshold T")
    ax.set_ylabel("KL divergence")
    ax.set_yscale("log")
    ax.set_title(f"KL calibration ({r.variant}): {len(r.thresholds)} candidates")
    ax.legend(fontsize="small")
    return ax
