"""Interactive explorers for the notebooks: ipywidgets controls -> analysis -> plotting.

Each explorer comes in two layers, as in the ipywidgets "Lorenz" example:

* a plain function (``decomposition_view``, ``requantization_view``, ...) that computes one
  result and draws it into a matplotlib ``Figure`` (a new pyplot figure when ``fig`` is None, so
  the notebook shows it); notebooks call it once for the static figure the book shows, and tests
  call it directly;
* a widget box (``decompose_explorer()``, ...; an ``ipywidgets.VBox``) whose controls call that function on every change
  and show the result as an HTML readout plus the figure rendered to PNG in an
  ``ipywidgets.Image`` (an ``<img>`` in the browser).

The boxes expose their child widgets as attributes (``.scale``, ``.bits``, ``.readout``,
``.image``) and keep the last result and figure (``.last_result``, ``.figure``), so a test can set
``.value`` headless and check what was computed. Figures are ``matplotlib.figure.Figure`` objects
created without pyplot: nothing global changes and nothing is displayed twice.
"""

from __future__ import annotations

import html

import ipywidgets
import numpy as np

from ..analysis import errors as analysis
from ..analysis.explain import explain
from ..core import validate
from ..core.multiplier import decompose
from ..schemes import DEFAULT, FAMILIES, POW2_MODES, SCHEMES, engine_schemes
from . import plotting

__all__ = [
    "decomposition_view",
    "requantization_view",
    "scheme_view",
    "sweep_view",
    "threshold_view",
    "decompose_explorer",
    "requantization_explorer",
    "scheme_explorer",
    "sweep_explorer",
    "threshold_explorer",
]

SEED_SCALE = 0.0018843


def _figure(figsize):
    """A Figure outside pyplot (for the explorers: rendered to PNG, never shown twice)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _view_figure(fig, figsize):
    """``fig``, or a new pyplot figure (shown by the notebook, like ``plotting``'s ``ax=None``)."""
    if fig is not None:
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def _table(rows, cols, fmt=None):
    """rows (list of dicts) -> an HTML table string."""
    fmt = fmt or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(fmt.get(c, '{}').format(r[c]))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


# ---------------------------------------------------------------------------------------------
# the plain functions: compute, draw, return (result, figure)


def decomposition_view(scale=SEED_SCALE, bits=32, fig=None):
    """Decompose ``scale`` with a ``bits``-wide multiplier and draw its binary picture.

    Returns ``(Decomposition, Figure)``.
    """
    d = decompose(scale, bits=bits)
    fig = _view_figure(fig, (9.0, 1.6))
    fig.clear()
    plotting.plot_decomposition(d, ax=fig.add_subplot())
    return d, fig


def decomposition_readout(d) -> str:
    """The HTML readout of a scalar decomposition: multiplier, shift, value, error."""
    return (
        f"<b>scale</b> {d.scale:.7g} &nbsp; <b>multiplier</b> {int(d.multiplier)} &nbsp; "
        f"<b>shift</b> {int(d.shift):+d} (right shift {int(d.right_shift)}) &nbsp; "
        f"<b>represented value</b> {float(d.value):.12g} &nbsp; "
        f"<b>error</b> {d.abs_error:+.3e} (relative {d.rel_error:+.3e})"
        + (" &nbsp; <b>flushed to zero</b>" if d.flushed else "")
    )


def requantization_view(
    scale=SEED_SCALE,
    zero_point=0,
    pow2_mode="nearest",
    *,
    acc=None,
    schemes=FAMILIES[:3],
    dtype="int8",
    fig=None,
):
    """Requantize ``acc`` (default: 20 000 random accumulators) with ``schemes`` to ``dtype``
    and draw the error per accumulator and the error histograms side by side.

    The output is clamped to ``dtype``, so the zero point moves where results saturate.

    Returns ``(ErrorAnalysis, Figure)``.
    """
    if acc is None:
        acc = analysis.random_accumulators(20_000, seed=0)
    a = analysis.error_vs_exact(
        acc,
        validate.scale("scale", scale),
        schemes,
        zero_point=zero_point,
        dtype=dtype,
        pow2_mode=pow2_mode,
    )
    fig = _view_figure(fig, (10.0, 3.4))
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    plotting.plot_requantization_error(a, ax=ax1, max_points=3000)
    plotting.plot_error_histograms(a, ax=ax2)
    return a, fig


def requantization_readout(a, pow2_mode="nearest") -> str:
    rows = a.summary()
    g = analysis.gain_error(a.scale, pow2_mode)
    return (
        f"<b>scale</b> {a.scale:.7g}, <b>zero point</b> {a.zero_point} (int8 output), "
        f"<b>pow2 gain error</b> {g:+.2%}<br>"
        + _table(
            rows,
            ["scheme", "max_abs_error", "mean_error", "mismatch_rate"],
            {"max_abs_error": "{:.3f}", "mean_error": "{:+.4f}", "mismatch_rate": "{:.2%}"},
        )
    )


def scheme_view(scheme=DEFAULT, scale=SEED_SCALE, *, acc=None, fig=None):
    """Compare ``scheme`` with exact rounding: mismatches, the error of the accumulators where
    they differ, and an ``explain`` trace of the first one.

    Returns ``(dict, Figure)`` with keys ``analysis`` (ErrorAnalysis), ``differing`` (int64 array
    of accumulators where ``scheme`` differs from exact rounding) and ``explanation`` (the
    ``explain`` trace of the first of them, or None).
    """

    if acc is None:
        acc = analysis.random_accumulators(20_000, seed=0)
    validate.choice("scheme", scheme, tuple(SCHEMES))
    scale = validate.scale("scale", scale)
    a = analysis.error_vs_exact(acc, scale, (scheme,))
    diff = np.flatnonzero(a.results[scheme] != a.exact)
    differing = a.acc[diff]
    expl = (
        explain(int(differing[0]), float(scale), scheme, dtype="int32") if differing.size else None
    )
    fig = _view_figure(fig, (10.0, 3.2))
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    frac = a.real - np.floor(a.real)
    ax1.plot(frac, a.errors[scheme], ".", ms=2, alpha=0.3, color="0.6", label="all")
    ax1.plot(
        frac[diff],
        a.errors[scheme][diff],
        ".",
        ms=4,
        color="C3",
        label=f"differs from exact ({diff.size})",
    )
    ax1.set_xlabel("fractional part of acc*scale")
    ax1.set_ylabel("result - acc*scale (LSB)")
    ax1.legend(fontsize=8, markerscale=2)
    plotting.plot_error_histograms(a, ax=ax2)
    fig.suptitle(f"{scheme}: {SCHEMES[scheme].formula}", fontsize=9)
    return {"analysis": a, "differing": differing, "explanation": expl}, fig


def scheme_readout(res, scheme) -> str:
    a = res["analysis"]
    s = SCHEMES[scheme]
    text = (
        f"<b>{html.escape(scheme)}</b> ({html.escape(s.engines)}); ties: "
        f"{html.escape(s.tie)}<br><b>mismatches vs exact rounding</b> "
        f"{a.mismatches[scheme]} of {a.acc.size} ({a.mismatches[scheme] / a.acc.size:.3%})"
    )
    if res["explanation"] is not None:
        text += (
            "<br>first differing accumulator:<pre>"
            + html.escape(str(res["explanation"]))
            + "</pre>"
        )
    return text


def sweep_view(sweeps, multiplier_bits=16, output_bits=8, metric="sqnr_db", fig=None):
    """Draw a multiplier-bits and an output-bits ``Sweep`` side by side, marking the chosen
    widths. Returns ``(dict of metric values at the marks, Figure)``."""
    mult, out = _check_sweeps(sweeps)
    validate.choice("metric", metric, tuple(plotting.METRIC_LABELS))
    for name, b, sw in (
        ("multiplier_bits", multiplier_bits, mult),
        ("output_bits", output_bits, out),
    ):
        b = validate.int_in_range(name, b, 2, 32)
        if b not in sw.bits:
            raise ValueError(
                f"{name} must be one of the sweep's points {sw.bits.tolist()}; got {b}"
            )
    fig = _view_figure(fig, (10.0, 3.4))
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    plotting.plot_sweep(mult, metric, ax=ax1, mark=multiplier_bits)
    plotting.plot_sweep(out, metric, ax=ax2, mark=output_bits)
    values = {}
    for sw, b in ((mult, multiplier_bits), (out, output_bits)):
        i = int(np.flatnonzero(sw.bits == b)[0])
        values[sw.parameter] = {s: float(getattr(sw, metric)[s][i]) for s in sw.schemes}
    return values, fig


def _check_sweeps(sweeps):
    """``(multiplier-bits Sweep, output-bits Sweep)`` or TypeError naming ``sweeps``."""
    if (
        not isinstance(sweeps, (tuple, list))
        or len(sweeps) != 2
        or not all(isinstance(sw, analysis.Sweep) for sw in sweeps)
    ):
        raise TypeError(
            "sweeps must be a pair (sweep_multiplier_bits(...), sweep_output_bits(...)); "
            f"got {type(sweeps).__name__}"
        )
    return sweeps


def threshold_view(values, threshold, *, thresholds=None, calibrated=None, bits=8, fig=None):
    """Histogram of ``|values|`` with the chosen threshold, and the clipping/rounding trade-off.

    Returns ``(dict with clip_error, round_error, total at the threshold, Figure)``.
    """
    x = validate.real_array("values", values, nonzero=True)
    threshold = validate.real("threshold", threshold, 0.0, lo_open=True)
    bits = validate.int_in_range("bits", bits, 2, 16)
    if thresholds is None:
        thresholds = np.linspace(np.abs(x).max() / 100, np.abs(x).max(), 100)
    c, r = analysis.threshold_errors(x, thresholds, bits)
    c0, r0 = analysis.threshold_errors(x, [threshold], bits)
    fig = _view_figure(fig, (10.0, 3.4))
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    marks = dict(calibrated or {})
    marks["slider"] = float(threshold)
    plotting.plot_calibration_histogram(x, marks, ax=ax1)
    plotting.plot_threshold_tradeoff(thresholds, c, r, ax=ax2, mark=float(threshold))
    res = {
        "threshold": float(threshold),
        "clip_error": float(c0[0]),
        "round_error": float(r0[0]),
        "total": float(c0[0] + r0[0]),
    }
    return res, fig


# ---------------------------------------------------------------------------------------------
# the widget boxes


def _slider_value(name, value, lo, hi, *, integer=False):
    """A constructor value checked against its slider's range: a slider would silently clamp
    it (``scale=0.0`` would show 1e-6), so a value outside is a ValueError naming both."""
    if integer:
        return validate.int_in_range(name, value, lo, hi)
    v = validate.real(name, value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in the slider's range [{lo:.6g}, {hi:.6g}]; got {v!r}")
    return v


def _scale_slider(value=SEED_SCALE, lo=-6, hi=1):
    value = _slider_value("scale", value, 10.0**lo, 10.0**hi)
    return ipywidgets.FloatLogSlider(
        value=value,
        base=10,
        min=lo,
        max=hi,
        step=0.01,
        description="scale",
        readout_format=".4g",
        continuous_update=False,
        style={"description_width": "initial"},
        layout=ipywidgets.Layout(width="460px"),
    )


class _Explorer(ipywidgets.VBox):
    """A ``VBox``: a row of controls, an HTML readout and the figure as a PNG ``Image``.

    ``update()`` recomputes (it is called on every control change); subclasses define
    ``_compute()`` returning ``(result, figure, readout_html)``. After each update,
    ``last_result`` and ``figure`` hold what was computed and drawn, ``updates`` counts them.
    """

    def _build(self, controls):
        self.readout = ipywidgets.HTML()
        self.image = ipywidgets.Image(format="png")
        self.figure = None
        self.last_result = None
        self.updates = 0
        self.children = [
            ipywidgets.HBox(controls, layout=ipywidgets.Layout(flex_flow="row wrap")),
            self.readout,
            self.image,
        ]
        for c in controls:
            c.observe(self.update, names="value")
        self.update()

    def update(self, change=None):
        result, fig, text = self._compute()
        self.last_result, self.figure = result, fig
        self.readout.value = text
        self.image.value = plotting.figure_to_png(fig)
        self.updates += 1


class DecomposeExplorer(_Explorer):
    """Scale (log slider, 1e-6..10) and multiplier bits (2..32) -> multiplier, shift, value,
    error, and the binary picture."""

    def __init__(self, scale=SEED_SCALE, bits=32):
        super().__init__()
        w = ipywidgets
        self.scale = _scale_slider(scale)
        bits = _slider_value("bits", bits, 2, 32, integer=True)
        self.bits = w.IntSlider(
            value=bits,
            min=2,
            max=32,
            description="multiplier bits",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self._fig = _figure((9.0, 1.6))
        self._build([self.scale, self.bits])

    def _compute(self):
        d, fig = decomposition_view(self.scale.value, self.bits.value, fig=self._fig)
        return d, fig, decomposition_readout(d)


class RequantizationExplorer(_Explorer):
    """Scale, zero point and pow2 mode -> errors of float32, pow2 and fixed point vs exact."""

    def __init__(self, scale=SEED_SCALE, zero_point=0, pow2_mode="nearest", acc=None):
        super().__init__()
        w = ipywidgets
        self.acc = analysis.random_accumulators(20_000, seed=0) if acc is None else acc
        self.acc = analysis._nonempty_acc(self.acc)
        self.scale = _scale_slider(scale, -4, 0)
        zero_point = _slider_value("zero_point", zero_point, -128, 127, integer=True)
        validate.choice("pow2_mode", pow2_mode, POW2_MODES)
        self.zero_point = w.IntSlider(
            value=zero_point, min=-128, max=127, description="zero point", continuous_update=False
        )
        self.pow2_mode = w.Dropdown(
            options=list(POW2_MODES), value=pow2_mode, description="pow2 mode"
        )
        self._fig = _figure((10.0, 3.4))
        self._build([self.scale, self.zero_point, self.pow2_mode])

    def _compute(self):
        a, fig = requantization_view(
            self.scale.value,
            self.zero_point.value,
            self.pow2_mode.value,
            acc=self.acc,
            fig=self._fig,
        )
        return a, fig, requantization_readout(a, self.pow2_mode.value)


class SchemeExplorer(_Explorer):
    """A dropdown of schemes (and the scale) -> mismatches vs exact rounding and a trace."""

    def __init__(self, scheme=DEFAULT, scale=SEED_SCALE, acc=None):
        super().__init__()
        w = ipywidgets
        self.acc = analysis.random_accumulators(20_000, seed=0) if acc is None else acc
        self.acc = analysis._nonempty_acc(self.acc)
        options = list(engine_schemes())
        validate.choice("scheme", scheme, tuple(options))
        self.scheme = w.Dropdown(options=options, value=scheme, description="scheme")
        self.scale = _scale_slider(scale, -4, 0)
        self._fig = _figure((10.0, 3.2))
        self._build([self.scheme, self.scale])

    def _compute(self):
        res, fig = scheme_view(self.scheme.value, self.scale.value, acc=self.acc, fig=self._fig)
        return res, fig, scheme_readout(res, self.scheme.value)


class SweepExplorer(_Explorer):
    """Multiplier-bits and output-bits sliders plus a metric dropdown over precomputed sweeps."""

    def __init__(
        self, sweeps=None, scale=SEED_SCALE, multiplier_bits=16, output_bits=8, metric="sqnr_db"
    ):
        super().__init__()
        w = ipywidgets
        if sweeps is None:
            acc = analysis.random_accumulators(20_000, seed=0)
            sweeps = (
                analysis.sweep_multiplier_bits(acc, scale, progress=False),
                analysis.sweep_output_bits(acc, scale, progress=False),
            )
        self.sweeps = sweeps
        mult, out = _check_sweeps(sweeps)
        validate.choice("metric", metric, tuple(plotting.METRIC_LABELS))
        for name, v, sw in (
            ("multiplier_bits", multiplier_bits, mult),
            ("output_bits", output_bits, out),
        ):
            v = validate.int_in_range(name, v, int(sw.bits.min()), int(sw.bits.max()))
            if v not in sw.bits:
                raise ValueError(
                    f"{name} must be one of the sweep's points {sw.bits.tolist()}; got {v}"
                )
        self.multiplier_bits = w.IntSlider(
            value=multiplier_bits,
            min=int(mult.bits.min()),
            max=int(mult.bits.max()),
            description="multiplier bits",
            style={"description_width": "initial"},
        )
        self.output_bits = w.IntSlider(
            value=output_bits,
            min=int(out.bits.min()),
            max=int(out.bits.max()),
            description="output bits",
            style={"description_width": "initial"},
        )
        self.metric = w.Dropdown(
            options=list(plotting.METRIC_LABELS), value=metric, description="metric"
        )
        self._fig = _figure((10.0, 3.4))
        self._build([self.multiplier_bits, self.output_bits, self.metric])

    def _snap(self, slider, sw):
        """Move a slider that stopped between two sweep points to the nearest point."""
        b = slider.value
        if b not in sw.bits:
            b = int(sw.bits[np.argmin(np.abs(sw.bits - b))])
            slider.value = b  # observed: runs update() again at the snapped value
        return b

    def _compute(self):
        mult, out = self.sweeps
        self._snap(self.multiplier_bits, mult)
        self._snap(self.output_bits, out)
        vals, fig = sweep_view(
            self.sweeps,
            self.multiplier_bits.value,
            self.output_bits.value,
            self.metric.value,
            fig=self._fig,
        )
        parts = []
        for param, b in (
            ("multiplier_bits", self.multiplier_bits.value),
            ("output_bits", self.output_bits.value),
        ):
            row = ", ".join(f"{s} {v:.4g}" for s, v in vals[param].items())
            parts.append(f"<b>{param.replace('_', ' ')} = {b}</b>: {self.metric.value}: {row}")
        return vals, fig, "<br>".join(parts)


class ThresholdExplorer(_Explorer):
    """A threshold slider over a tensor's values -> clipping vs rounding error."""

    def __init__(self, values, threshold=None, *, calibrated=None, bits=8):
        super().__init__()
        w = ipywidgets
        self.values = validate.real_array("values", values, nonzero=True)
        self.calibrated = calibrated
        self.bits = validate.int_in_range("bits", bits, 2, 16)
        top = float(np.abs(self.values).max())
        self.thresholds = np.linspace(top / 100, top, 100)
        if threshold is not None:
            threshold = _slider_value("threshold", threshold, top / 100, top)
        self.threshold = w.FloatSlider(
            value=top / 2 if threshold is None else threshold,
            min=top / 100,
            max=top,
            step=top / 200,
            description="threshold",
            readout_format=".4g",
            continuous_update=False,
        )
        self._fig = _figure((10.0, 3.4))
        self._build([self.threshold])

    def _compute(self):
        res, fig = threshold_view(
            self.values,
            self.threshold.value,
            thresholds=self.thresholds,
            calibrated=self.calibrated,
            bits=self.bits,
            fig=self._fig,
        )
        text = (
            f"<b>threshold</b> {res['threshold']:.4g} (scale "
            f"{res['threshold'] / (2 ** (self.bits - 1) - 1):.4g}): "
            f"<b>clipping error</b> {res['clip_error']:.3e}, <b>rounding error</b> "
            f"{res['round_error']:.3e}, <b>total</b> {res['total']:.3e}"
        )
        return res, fig, text


def decompose_explorer(scale=SEED_SCALE, bits=32):
    """Sliders for scale and multiplier bits; readout and binary picture update on change.

    Examples
    --------
    >>> e = decompose_explorer()
    >>> e.last_result.multiplier
    2071809760
    >>> e.scale.value = 0.01          # what moving the slider does
    >>> e.last_result.multiplier, e.last_result.shift
    (1374389535, -6)
    >>> "1374389535" in e.readout.value
    True
    """
    return DecomposeExplorer(scale, bits)


def requantization_explorer(scale=SEED_SCALE, zero_point=0, pow2_mode="nearest", acc=None):
    """Sliders for scale and zero point, a pow2-mode dropdown; errors per scheme update."""
    return RequantizationExplorer(scale, zero_point, pow2_mode, acc)


def scheme_explorer(scheme=DEFAULT, scale=SEED_SCALE, acc=None):
    """A dropdown of schemes and a scale slider; mismatches and an explain trace update."""
    return SchemeExplorer(scheme, scale, acc)


def sweep_explorer(
    sweeps=None, scale=SEED_SCALE, multiplier_bits=16, output_bits=8, metric="sqnr_db"
):
    """Bit-width sliders and a metric dropdown over two precomputed sweeps."""
    return SweepExplorer(sweeps, scale, multiplier_bits, output_bits, metric)


def threshold_explorer(values, threshold=None, *, calibrated=None, bits=8):
    """A threshold slider: clipping error against rounding error for ``values``."""
    return ThresholdExplorer(values, threshold, calibrated=calibrated, bits=bits)
