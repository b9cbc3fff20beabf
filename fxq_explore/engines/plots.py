"""Figures for the saturation chapter (matplotlib is imported inside the functions).

Each function takes results from :mod:`fxq_explore.engines.saturation`, draws on ``ax`` (a new
figure when None) and returns the Axes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_channel_saturation",
    "plot_saturation_map",
    "plot_pair_slots",
    "plot_weight_range_sweep",
    "plot_mismatch_bars",
]


def _ax(ax, figsize=(6.4, 3.2)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_channel_saturation(measurement, predicted=None, ax=None):
    """Fraction of saturated pairs per output channel (bars); predicted channels marked."""
    ax = _ax(ax)
    f = np.asarray(measurement.fraction) * 100.0
    ch = np.arange(f.size)
    ax.bar(ch, f, color="tab:red", label="measured")
    if predicted is not None:
        p = np.asarray(predicted, bool)
        ax.plot(ch[p], np.zeros(p.sum()), "k^", ms=4, label="predicted: can saturate")
    ax.set_xlabel("output channel")
    ax.set_ylabel("saturated pairs (%)")
    ax.set_title(f"pair saturation per channel ({measurement.model})")
    ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_saturation_map(measurement, channel: int = 0, image: int = 0, ax=None):
    """Saturated pairs in each output pixel's sum, for one output channel."""
    ax = _ax(ax, (4.2, 3.6))
    m = np.asarray(measurement.stats.per_output[image, channel])
    im = ax.imshow(m, cmap="magma", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="saturated pairs")
    ax.set_title(f"channel {channel}: saturated pairs per output")
    ax.set_xlabel("output column")
    ax.set_ylabel("output row")
    return ax


def plot_pair_slots(measurement, channel: int = 0, ax=None):
    """How often each pair slot (products 2j, 2j+1 of the packed reduction) saturated."""
    ax = _ax(ax)
    st = measurement.stats
    kg = st.per_pair[0].shape[0]
    counts = st.per_pair[channel // kg][channel % kg]
    ax.bar(np.arange(counts.size), counts, color="tab:purple")
    ax.set_xlabel("pair slot j (products 2j, 2j+1)")
    ax.set_ylabel("times saturated")
    ax.set_title(f"channel {channel}: which pairs saturate")
    return ax


def plot_weight_range_sweep(sweep, ax=None, marker=None):
    """Mismatch rate (outputs differing from exact) against the weight range max|w|."""
    ax = _ax(ax)
    x = np.asarray(sweep["max_abs"])
    ax.plot(x, np.asarray(sweep["mismatch_rate"]) * 100, "o-", label="outputs that differ")
    ax.plot(x, np.asarray(sweep["pair_fraction"]) * 100, "s--", label="pairs saturated")
    ax.axvline(32767 / 510, color="gray", lw=0.8, ls=":")
    ax.text(32767 / 510, ax.get_ylim()[1] * 0.9, " 32767/510", color="gray", fontsize="small")
    if marker is not None:
        ax.axvline(marker, color="tab:red", lw=1.2)
    ax.set_xlabel("per-channel max |w|")
    ax.set_ylabel("%")
    ax.set_title("u8s8 without VNNI: mismatches rise with the weight range")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_mismatch_bars(rows, key="preset_vs_exact", ax=None):
    """Outputs differing from exact, per preset (rows of ``saturation.mismatch_rows``)."""
    ax = _ax(ax)
    names = [r["preset"] for r in rows]
    vals = [r[key] for r in rows]
    bars = ax.barh(names, vals, color="tab:blue")
    ax.bar_label(bars, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("outputs that differ from exact")
    return ax
