"""Benchmarks importable from the installed package (``benchmarks/*.py`` are thin wrappers).

:func:`run` times the seed layer, a depthwise layer and small fully connected layers against
every peer installed (ONNX Runtime, LiteRT XNNPACK, torch), with the CPU's MAC peaks measured
by C probes; :func:`plot` draws its result for the kernel chapter.
"""

from __future__ import annotations

from .seed import main, measure_peaks, run

__all__ = ["run", "main", "measure_peaks", "plot"]


def plot(result, ax=None):
    """Horizontal bars: each seed-layer candidate's median time, coloured by exactness on
    full-range per-channel weights, with the measured MAC-peak floors as vertical lines.

    Parameters
    ----------
    result : dict
        What :func:`run` returned.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    from .seed import PROBES, SEED_MACS

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.32 * len(result["rows"]) + 1.5))
    rows = sorted(result["rows"], key=lambda r: r["ms"])
    colors = [
        "tab:green"
        if r["exact"].startswith("yes")
        else ("tab:gray" if r["exact"] == "-" else "tab:red")
        for r in rows
    ]
    ax.barh([r["name"] for r in rows], [r["ms"] for r in rows], color=colors)
    labels = dict(PROBES)
    for i, (name, g) in enumerate(result["peaks"].items()):
        ax.axvline(SEED_MACS / g / 1e6, ls=":", color=f"C{i}", label=f"floor: {labels[name]}")
    ax.invert_yaxis()
    ax.set_xlabel("ms per seed layer (median, 1 thread)")
    ax.set_title(f"Seed layer on {result['cpu']}\ngreen: exact on full-range weights, red: not")
    ax.legend(fontsize="x-small", loc="lower right")
    return ax
