"""Figures for the tutorial: matplotlib only, one function per picture.

Every function takes the result of a computation (a :class:`~fxq_explore.Decomposition`, an
``ErrorAnalysis``, a ``Sweep``, a ``Comparison``, a list of timing rows, ...) and an optional
``ax``; it draws into ``ax`` (or into a new figure when ``ax`` is None) and returns the Axes.
Nothing here computes quantization results and nothing changes global matplotlib state: colours
come from the Axes' own property cycle and no ``rcParams`` are touched.

matplotlib is imported inside the functions, so ``import fxq_explore.plotting`` is cheap.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "new_axes",
    "plot_decomposition",
    "plot_relative_error",
    "plot_requantization_error",
    "plot_error_histograms",
    "plot_sweep",
    "plot_scheme_disagreement",
    "plot_series",
    "plot_timings",
    "plot_calibration_histogram",
    "plot_threshold_tradeoff",
    "plot_seed_outputs",
    "figure_to_png",
]

#: Axis labels for the metrics of a ``Sweep``.
METRIC_LABELS = {
    "max_abs_error": "max |result - real| (LSB)",
    "mismatch_rate": "mismatch rate vs exact rounding",
    "bias": "mean error (LSB)",
    "sqnr_db": "SQNR (dB)",
}


def new_axes(ax=None, figsize=(6.4, 3.6)):
    """Return ``ax`` or, when it is None, the Axes of a new pyplot figure of ``figsize``."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def figure_to_png(fig, dpi=80) -> bytes:
    """Render a matplotlib ``Figure`` to PNG bytes (for an ``ipywidgets.Image``)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not hasattr(fig.canvas, "print_png"):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# notebook 01: a scale as multiplier and shift


def plot_decomposition(d, ax=None):
    """The binary picture of a scalar decomposition: the multiplier's bits and the shift.

    One cell per bit of the ``bits``-wide signed multiplier (sign bit first, always 0; the next
    bit is the leading 1 that normalisation guarantees), the binary point of the Q-format
    fraction ``multiplier / 2^(bits-1)`` in ``[1/2, 1)``, and the power of two that scales it.

    Parameters
    ----------
    d : Decomposition
        A scalar result of :func:`fxq_explore.decompose`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from fxq_explore import decompose
    >>> ax = plot_decomposition(decompose(0.0018843, bits=8), ax=Figure().add_subplot())
    >>> "".join(t.get_text() for t in ax.texts[:8])          # 123 = 0b0111_1011
    '01111011'
    """
    if not d.is_scalar:
        raise ValueError(
            "plot_decomposition draws one scale; pass a scalar Decomposition "
            "(index per-channel scales first)"
        )
    from matplotlib.patches import Rectangle

    ax = new_axes(ax, figsize=(9.0, 1.6))
    bits, m = d.bits, int(d.multiplier)
    pattern = format(m, f"0{bits}b")
    on, off = "C0", "white"
    for i, ch in enumerate(pattern):
        face = "0.85" if i == 0 else (on if ch == "1" else off)
        ax.add_patch(Rectangle((i, 0), 1, 1, facecolor=face, edgecolor="0.3", lw=0.8))
        ax.text(
            i + 0.5,
            0.5,
            ch,
            ha="center",
            va="center",
            fontsize=8 if bits > 24 else 10,
            color="white" if (ch == "1" and i > 0) else "black",
        )
    # binary point after the sign bit: multiplier / 2^(bits-1) is a fraction in [1/2, 1)
    ax.plot([1, 1], [-0.25, 1.25], color="C3", lw=2)
    ax.text(1, 1.3, "binary point", color="C3", ha="center", va="bottom", fontsize=8)
    ax.text(0.5, -0.2, "sign", ha="center", va="top", fontsize=7)
    if m:
        ax.text(1.5, -0.2, "leading 1", ha="left", va="top", fontsize=7)
    ax.text(
        bits + 0.4, 0.5, f"$\\times\\ 2^{{{int(d.shift)}}}$", ha="left", va="center", fontsize=13
    )
    ax.set_xlim(-0.2, bits + 4.2)
    ax.set_ylim(-0.8, 1.9)
    ax.set_aspect("equal")
    ax.axis("off")
    flushed = " (flushed to zero)" if d.flushed else ""
    ax.set_title(
        f"scale {d.scale:.7g} ~ {m} * 2^-{int(d.right_shift)} = {float(d.value):.10g}"
        f"   rel. error {d.rel_error:+.2e}{flushed}",
        fontsize=9,
    )
    return ax


def plot_relative_error(scales, rel_error, *, bits=None, ax=None):
    """Relative error of the decomposition over a range of scales (log-log), with the bound
    ``2^-(bits-1)`` when ``bits`` is given."""
    ax = new_axes(ax)
    scales = np.asarray(scales, dtype=float)
    err = np.abs(np.asarray(rel_error, dtype=float))
    ax.loglog(scales, np.where(err > 0, err, np.nan), lw=0.8, label="|relative error|")
    if bits is not None:
        ax.axhline(
            2.0 ** -(bits - 1), color="C3", ls="--", lw=1, label=f"bound $2^{{-{bits - 1}}}$"
        )
    ax.set_xlabel("scale")
    ax.set_ylabel("|value / scale - 1|")
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------------
# notebooks 02 and 03: errors against exact arithmetic


def _schemes_of(analysis, schemes):
    return list(analysis.results) if schemes is None else list(schemes)


def plot_requantization_error(analysis, schemes=None, *, ax=None, max_points=4000):
    """Error ``result - acc*scale`` (in output LSB) against the accumulator, one colour per
    scheme.

    Parameters
    ----------
    analysis : ErrorAnalysis
        From :func:`fxq_explore.analysis.error_vs_exact`.
    schemes : list of str, optional
        Subset of ``analysis.results`` to draw (default all).
    ax : matplotlib Axes, optional
    max_points : int
        Draw at most this many accumulators per scheme (evenly subsampled after sorting).

    Returns
    -------
    matplotlib Axes
    """
    ax = new_axes(ax)
    acc = np.asarray(analysis.acc)
    order = np.argsort(acc, kind="stable")
    step = max(1, len(order) // max_points)
    idx = order[::step]
    for k, s in enumerate(_schemes_of(analysis, schemes)):
        err = np.asarray(analysis.errors[s])
        ax.plot(acc[idx], err[idx], ".", ms=2, alpha=0.6, color=f"C{k}", label=s)
    ax.axhline(0.5, color="0.5", lw=0.6, ls=":")
    ax.axhline(-0.5, color="0.5", lw=0.6, ls=":")
    ax.set_xlabel("accumulator")
    ax.set_ylabel("result - acc*scale (LSB)")
    ax.legend(fontsize=8, markerscale=4, loc="best")
    return ax


def plot_error_histograms(analysis, schemes=None, *, ax=None, bins=60):
    """Histograms of the error ``result - acc*scale`` (in LSB), one step outline per scheme;
    exact rounding stays inside ``[-0.5, 0.5]``."""
    ax = new_axes(ax)
    sel = _schemes_of(analysis, schemes)
    errs = [np.asarray(analysis.errors[s], dtype=float) for s in sel]
    lo = min(min(float(e.min()) for e in errs), -0.5)
    hi = max(max(float(e.max()) for e in errs), 0.5)
    edges = np.linspace(lo, hi, bins + 1)
    for k, (s, e) in enumerate(zip(sel, errs, strict=False)):
        ax.hist(
            e,
            bins=edges,
            histtype="step",
            lw=1.4,
            color=f"C{k}",
            label=f"{s} (mean {e.mean():+.3f})",
        )
    ax.axvline(-0.5, color="0.5", lw=0.6, ls=":")
    ax.axvline(0.5, color="0.5", lw=0.6, ls=":")
    ax.set_xlabel("result - acc*scale (LSB)")
    ax.set_ylabel("accumulators")
    ax.legend(fontsize=8)
    return ax


def plot_scheme_disagreement(rows, *, key="mismatch_rate", ax=None):
    """Horizontal bars of one column of a comparison table, one bar per scheme.

    ``rows`` is a ``Comparison`` (its ``.rows`` are used), an ``ErrorAnalysis`` (its
    ``.summary()``) or a list of dicts with keys ``scheme`` and ``key``.
    """
    if hasattr(rows, "rows"):
        rows = rows.rows
    elif hasattr(rows, "summary"):
        rows = rows.summary()
    ax = _labelled_barh(new_axes(ax), [r["scheme"] for r in rows], [float(r[key]) for r in rows])
    ax.set_xlabel(key.replace("_", " ") + (" vs exact rounding" if key.startswith("mis") else ""))
    ax.margins(x=0.15)
    return ax


def _labelled_barh(ax, names, vals):
    """One horizontal bar per name, top to bottom, each labelled with its value."""
    y = np.arange(len(names))
    ax.barh(y, vals, color=[f"C{i % 10}" for i in range(len(names))])
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    for yi, v in zip(y, vals, strict=False):
        ax.text(v, yi, f" {v:.3g}", va="center", fontsize=8)
    return ax


def plot_series(x, series, *, ax=None, xlabel="", ylabel="", logx=False, logy=False, marker="o"):
    """Generic line plot: ``series`` maps a label to y values over ``x``."""
    ax = new_axes(ax)
    for k, (label, y) in enumerate(series.items()):
        ax.plot(x, y, marker=marker, ms=3, lw=1.2, color=f"C{k}", label=label)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1 or any(series):
        ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------------
# notebook 04: bit-width sweeps


def plot_sweep(sweep, metric="sqnr_db", *, ax=None, mark=None):
    """One line per scheme of a ``Sweep`` metric against the swept bit width.

    Parameters
    ----------
    sweep : Sweep
        From ``sweep_multiplier_bits`` or ``sweep_output_bits``.
    metric : {"max_abs_error", "mismatch_rate", "bias", "sqnr_db"}
    ax : matplotlib Axes, optional
    mark : int, optional
        Draw a vertical line at this bit width (the explorer's slider position).
    """
    if metric not in METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(map(repr, METRIC_LABELS))}")
    ax = new_axes(ax)
    data = getattr(sweep, metric)
    for k, s in enumerate(sweep.schemes):
        y = np.asarray(data[s], dtype=float)
        ax.plot(sweep.bits, y, marker="o", ms=3, lw=1.2, color=f"C{k}", label=s)
    if metric == "max_abs_error":
        ys = np.concatenate([np.asarray(data[s], float) for s in sweep.schemes])
        if np.nanmax(ys) > 10:
            ax.set_yscale("log" if np.nanmin(ys) > 0 else "symlog")
    if mark is not None:
        ax.axvline(mark, color="0.4", lw=1, ls="--")
    ax.set_xlabel(sweep.parameter.replace("_", " "))
    ax.set_ylabel(METRIC_LABELS[metric])
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------------
# notebook 05: timings


def plot_timings(rows, *, ax=None, label="name", value="ms", xlabel="time per call (ms)"):
    """Horizontal bar chart of timing rows (list of dicts with ``label`` and ``value`` keys)."""
    ax = _labelled_barh(
        new_axes(ax), [str(r[label]) for r in rows], [float(r[value]) for r in rows]
    )
    ax.set_xlabel(xlabel)
    ax.margins(x=0.2)
    return ax


# ---------------------------------------------------------------------------------------------
# notebook 06: calibration


def plot_calibration_histogram(values, thresholds=None, *, ax=None, bins=200, logy=True):
    """Histogram of ``|values|`` with one vertical line per calibrated threshold.

    ``thresholds`` maps a calibrator label to its threshold ``T``.
    """
    ax = new_axes(ax)
    a = np.abs(np.asarray(values, dtype=float).ravel())
    ax.hist(a, bins=bins, color="0.6", log=logy)
    for k, (name, t) in enumerate((thresholds or {}).items()):
        ax.axvline(t, color=f"C{k}", lw=1.4, label=f"{name}: {t:.3g}")
    ax.set_xlabel("|activation|")
    ax.set_ylabel("count")
    if thresholds:
        ax.legend(fontsize=8)
    return ax


def plot_threshold_tradeoff(thresholds, clip_error, round_error, *, ax=None, mark=None):
    """Clipping error, rounding error and their sum (mean squared, per element) against the
    threshold; ``mark`` draws a vertical line at one threshold."""
    ax = new_axes(ax)
    t = np.asarray(thresholds, dtype=float)
    c, r = np.asarray(clip_error, float), np.asarray(round_error, float)
    ax.plot(t, c, color="C3", label="clipping error")
    ax.plot(t, r, color="C0", label="rounding error")
    ax.plot(t, c + r, color="k", lw=1.6, label="total")
    ax.set_yscale("log")
    if mark is not None:
        ax.axvline(mark, color="0.4", lw=1, ls="--")
    ax.set_xlabel("threshold T")
    ax.set_ylabel("mean squared error")
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------------
# notebook 00: the seed thread's outputs


def plot_seed_outputs(outputs, *, ax=None):
    """Histogram of the differences between uint8 outputs, one line per pair.

    ``outputs`` maps a label to ``(a, b)`` arrays; the counts of ``b - a`` are drawn.
    """
    ax = new_axes(ax)
    for k, (name, (a, b)) in enumerate(outputs.items()):
        d = b.astype(np.int64).ravel() - a.astype(np.int64).ravel()
        vals, counts = np.unique(d, return_counts=True)
        ax.plot(vals, counts, marker="o", lw=1, color=f"C{k}", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("difference (output LSB)")
    ax.set_ylabel("elements")
    ax.legend(fontsize=8)
    return ax
