"""Step-by-step traces of one requantization, and tables of where schemes disagree.

:func:`explain` follows one accumulator through a scheme the way the engine's code does -- the
decomposition, the 64-bit product, each rounding with the bits it drops and the tie rule it
applies, the zero point and the clamp -- and puts the exact value beside it. :func:`compare` runs
many accumulators through many schemes and says where and by how much they differ.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..core import validate
from ..requantization import requantize
from ..schemes import DEFAULT, EXACT, POW2_MODES, SCHEMES, Context, engine_schemes, get

DEFAULT_SCHEMES = engine_schemes()


def _frac_str(v: Fraction) -> str:
    return f"{float(v):.6f}" if v.denominator != 1 else str(v.numerator)


@dataclass
class Explanation:
    """A trace of one accumulator through one scheme (``str()`` as text, HTML in notebooks)."""

    acc: int
    scale: float
    scheme: str
    zero_point: int
    dtype: str
    steps: list = field(default_factory=list)
    result: int = 0
    exact: Fraction = Fraction(0)
    rounded: int = 0  # the traced value before the zero point and clamp

    def __str__(self) -> str:
        lines = [
            f"explain(acc={self.acc}, scale={self.scale!r}, scheme={self.scheme!r}, "
            f"zero_point={self.zero_point}, dtype={self.dtype!r})"
        ]
        for i, (title, text) in enumerate(self.steps, 1):
            lines.append(f"  {i}. {title}: {text}")
        lines.append(f"  => result {self.result}   (exact acc*scale = {_frac_str(self.exact)})")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i}</td><td><b>{html.escape(t)}</b></td>"
            f"<td><code>{html.escape(x)}</code></td></tr>"
            for i, (t, x) in enumerate(self.steps, 1)
        )
        return (
            f"<p><b>{html.escape(self.scheme)}</b>: acc={self.acc}, scale={self.scale!r}, "
            f"zero point {self.zero_point}, {html.escape(self.dtype)}</p>"
            f"<table>{rows}</table><p>result <b>{self.result}</b> &mdash; exact "
            f"acc&middot;scale = {_frac_str(self.exact)}</p>"
        )


def explain(
    acc,
    scale,
    scheme: str = DEFAULT,
    *,
    zero_point: int = 0,
    dtype: str = "int8",
    pow2_mode: str = "nearest",
) -> Explanation:
    """Trace one accumulator through ``scheme`` step by step.

    Parameters
    ----------
    acc : int, in the int32 range
    scale : float, positive
    scheme : str, one of ``SCHEMES`` (``"exact"`` uses ties away from zero)
    zero_point, dtype, pow2_mode : as in :func:`fxq_explore.requantize`

    Returns
    -------
    Explanation
        ``.steps`` (title, text) pairs, ``.result`` (equal to ``requantize`` on the same
        input), ``.exact`` (the exact ``acc * scale`` as a Fraction).

    Examples
    --------
    >>> e = explain(265, 0.0018843, "tflite")
    >>> e.result, float(e.exact) < 0.5
    (1, True)
    >>> [t for t, _ in e.steps][:3]
    ['decompose', 'left shift', 'SRDHM (stage 1)']
    """
    sch = get(scheme)
    validate.choice("pow2_mode", pow2_mode, POW2_MODES)
    arr = validate.accumulators("acc", acc)
    if arr.ndim != 0 and arr.size != 1:
        raise ValueError(
            f"acc must be a single accumulator for explain(); got shape {arr.shape} "
            f"(use compare() for arrays)"
        )
    a = int(arr.ravel()[0])
    s_arr, scalar = validate.scales("scale", scale)
    if not scalar and s_arr.size != 1:
        raise ValueError("scale must be a single number for explain()")
    s = float(s_arr.ravel()[0])
    qmin, qmax, _, obits, signed = validate.dtype_range("dtype", dtype)
    zero_point = validate.int_in_range("zero_point", zero_point, qmin, qmax)
    p = sch.params(np.array([s]), pow2_mode=pow2_mode)
    narrow = 2 ** (obits - 1) - 1 if signed else 2**obits - 1
    ctx = Context(qmin - zero_point, qmax - zero_point, narrow)
    # the result comes from the trace itself: the scheme's primitives, recorded one by one
    rounded, steps = sch.trace(a, p, ctx)
    result = int(sch.finish(np.array(rounded, dtype=np.int64), zero_point, qmin, qmax, ctx))
    ex = Explanation(
        a, s, sch.name, zero_point, dtype, exact=Fraction(a) * Fraction(s), result=result
    )
    ex.steps = sch.describe(p, s) + steps
    ex.rounded = rounded
    ex.steps.append(
        (
            "zero point and clamp",
            f"{rounded} + {zero_point} = {rounded + zero_point} -> clamp to "
            f"[{qmin}, {qmax}] = {result}",
        )
    )
    ex.steps.append(("engines", sch.engines))
    return ex


@dataclass
class Comparison:
    """Where schemes disagree with the exactly rounded result (``str()`` / HTML table)."""

    scale: float
    schemes: tuple
    rows: list
    differing_acc: np.ndarray
    outputs: dict
    exact_outputs: np.ndarray
    n: int

    def __str__(self) -> str:
        head = f"{'scheme':<17} {'mismatches':>10} {'rate':>9} {'max|diff|':>9} {'mean diff':>10}"
        lines = [
            f"compare: {self.n} accumulators at scale {self.scale!r}, versus exact "
            f"rounding (ties away from zero)",
            head,
        ]
        for r in self.rows:
            lines.append(
                f"{r['scheme']:<17} {r['mismatches']:>10d} {r['mismatch_rate']:>9.3%} "
                f"{r['max_abs_diff']:>9d} {r['mean_diff']:>+10.2e}"
            )
        if len(self.differing_acc):
            k = min(8, len(self.differing_acc))
            lines.append(
                f"first {k} of {len(self.differing_acc)} accumulators where a scheme differs:"
            )
            lines.append(
                f"{'acc':>12} {'exact':>6} " + " ".join(f"{s[:10]:>10}" for s in self.schemes)
            )
            for i in range(k):
                lines.append(
                    f"{int(self.differing_acc[i]):>12d} {int(self.exact_outputs[i]):>6d} "
                    + " ".join(f"{int(self.outputs[s][i]):>10d}" for s in self.schemes)
                )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td>{r['scheme']}</td><td>{r['mismatches']}</td>"
            f"<td>{r['mismatch_rate']:.3%}</td><td>{r['max_abs_diff']}</td>"
            f"<td>{r['mean_diff']:+.2e}</td><td>{html.escape(r['engines'])}</td></tr>"
            for r in self.rows
        )
        return (
            f"<p>{self.n} accumulators at scale {self.scale!r}, versus exact rounding</p>"
            "<table><tr><th>scheme</th><th>mismatches</th><th>rate</th><th>max |diff|</th>"
            f"<th>mean diff</th><th>engines</th></tr>{body}</table>"
        )


def compare(
    acc,
    scale,
    schemes=None,
    *,
    zero_point: int = 0,
    dtype: str = "int8",
    pow2_mode: str = "nearest",
) -> Comparison:
    """Run accumulators through several schemes and tabulate where they differ from exact.

    Parameters
    ----------
    acc : int or array_like of int (int32 range)
    scale : float, positive
    schemes : sequence of str, optional
        Defaults to every engine scheme (all but ``"exact"``).
    zero_point, dtype, pow2_mode : as in :func:`fxq_explore.requantize`

    Returns
    -------
    Comparison
        ``.rows``: per scheme the mismatch count and rate, the largest ``|difference|`` and the mean
        difference (the bias) against exact rounding (ties away from zero), in output units;
        ``.differing_acc`` and ``.outputs``: the accumulators where any scheme differs.

    Examples
    --------
    >>> c = compare([265, 1000, -1000], 0.0018843, ["tflite", "tflite_single"])
    >>> [(r["scheme"], r["mismatches"]) for r in c.rows]
    [('tflite', 1), ('tflite_single', 0)]
    >>> c.differing_acc.tolist()
    [265]
    """
    schemes = tuple(
        DEFAULT_SCHEMES if schemes is None else ([schemes] if isinstance(schemes, str) else schemes)
    )
    for s in schemes:
        validate.choice("schemes", s, tuple(SCHEMES))
    a = np.atleast_1d(validate.accumulators("acc", acc)).ravel()
    validate.memory(
        "acc",
        a.size * (17 + 16 * len(schemes)),
        f"comparing {len(schemes)} scheme(s) with exact rounding on {a.size} accumulators",
    )
    s_arr, scalar = validate.scales("scale", scale)
    if not scalar and s_arr.size != 1:
        raise ValueError("scale must be a single number for compare()")
    s = float(s_arr.ravel()[0])
    exact = requantize(a, s, EXACT.name, zero_point=zero_point, dtype=dtype).astype(np.int64)
    outs = {
        name: requantize(
            a, s, name, zero_point=zero_point, dtype=dtype, pow2_mode=pow2_mode
        ).astype(np.int64)
        for name in schemes
    }
    rows = []
    any_diff = np.zeros(a.shape, dtype=bool)
    for name in schemes:
        d = outs[name] - exact
        any_diff |= d != 0
        rows.append(
            dict(
                scheme=name,
                engines=SCHEMES[name].engines,
                mismatches=int(np.count_nonzero(d)),
                mismatch_rate=float(np.count_nonzero(d) / max(a.size, 1)),
                max_abs_diff=int(np.abs(d).max()) if a.size else 0,
                mean_diff=float(d.mean()) if a.size else 0.0,
            )
        )
    idx = np.flatnonzero(any_diff)
    return Comparison(
        s, schemes, rows, a[idx], {k: v[idx] for k, v in outs.items()}, exact[idx], int(a.size)
    )
