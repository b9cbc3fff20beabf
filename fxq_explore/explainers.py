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

from . import _validate
from .requantize import SCHEMES, requantize, scheme_parameters

DEFAULT_SCHEMES = (
    "float32_rne",
    "tvm_2019_float",
    "pow2",
    "tflite",
    "tflite_optimized",
    "tflite_single",
    "tvm_tonearest",
    "xnnpack_rndnu",
)


def _frac_str(v: Fraction) -> str:
    return f"{float(v):.6f}" if v.denominator != 1 else str(v.numerator)


def _dropped(value: int, nbits: int) -> str:
    """Describe the low ``nbits`` bits a right shift by ``nbits`` drops, versus one half."""
    if nbits <= 0:
        return "nothing dropped"
    rem = value & ((1 << nbits) - 1)
    half = 1 << (nbits - 1)
    rel = (
        "exactly one half: a TIE"
        if rem == half
        else ("above one half" if rem > half else "below one half")
    )
    shown = format(rem, f"0{nbits}b") if nbits <= 40 else f"{rem:#x}"
    return f"drops the low {nbits} bits 0b{shown} = {rem}/2^{nbits}, {rel}"


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
    scheme: str = "tflite",
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
    _validate.choice("scheme", scheme, tuple(SCHEMES))
    a = _validate.accumulators("acc", acc)
    if a.ndim != 0 and a.size != 1:
        raise ValueError(
            f"acc must be a single accumulator for explain(); got shape {a.shape} "
            f"(use compare() for arrays)"
        )
    a = int(a.ravel()[0])
    s_arr, scalar = _validate.scales("scale", scale)
    if not scalar and s_arr.size != 1:
        raise ValueError("scale must be a single number for explain()")
    s = float(s_arr.ravel()[0])
    result = int(
        requantize([a], s, scheme, zero_point=zero_point, dtype=dtype, pow2_mode=pow2_mode)[0]
    )
    qmin, qmax, *_ = _validate.dtype_range("dtype", dtype)
    ex = Explanation(
        a, s, scheme, zero_point, dtype, exact=Fraction(a) * Fraction(s), result=result
    )
    st = ex.steps.append
    info = SCHEMES[scheme]
    p = {k: v[0] for k, v in scheme_parameters(s, scheme, pow2_mode=pow2_mode).items()}
    if scheme in ("float32_rne", "tvm_2019_float"):
        fa = np.float32(a)
        fs = p["scale_f32"]
        v = np.float32(fa * fs)
        st(
            (
                "float32(acc)",
                f"{a} -> {float(fa)!r}" + ("" if int(fa) == a else "  (rounded: |acc| > 2^24)"),
            )
        )
        st(
            (
                "float32(scale)",
                f"{s!r} -> {float(fs)!r} (rel. error "
                f"{float((Fraction(float(fs)) - Fraction(s)) / Fraction(s)):.2e})",
            )
        )
        st(
            (
                "multiply in binary32",
                f"{float(fa)!r} * {float(fs)!r} = {float(v)!r} "
                f"(exact product {float(Fraction(float(fa)) * Fraction(float(fs)))!r})",
            )
        )
        rule = (
            "half to even (rint / cvtps2dq)"
            if scheme == "float32_rne"
            else "half away from zero (llvm.round)"
        )
        r = (
            int(np.rint(float(v)))
            if scheme == "float32_rne"
            else int(np.sign(float(v)) * np.floor(abs(float(v)) + 0.5))
        )
        frac = Fraction(float(v)) - int(np.floor(float(v)))
        st(
            (
                "round",
                f"{float(v)!r} -> {r}, {rule}"
                + ("; this is a TIE" if frac == Fraction(1, 2) else ""),
            )
        )
    elif scheme == "pow2":
        e = int(p["exponent"])
        st(
            (
                "power of two",
                f"scale {s!r} -> 2^{e} = {2.0**e!r} ({pow2_mode}); gain error "
                f"{float(Fraction(2) ** e / Fraction(s) - 1):+.2%}",
            )
        )
        if e >= 0:
            st(("left shift", f"{a} << {e} = {a << e} (saturated to int32)"))
            r = max(-(2**31), min(2**31 - 1, a << e))
        else:
            n = -e
            if pow2_mode == "truncate":
                r = a >> n
                st(("truncating shift", f"{a} >> {n} = {r}; {_dropped(a, n)}, floor"))
            else:
                r = (a + (1 << (n - 1))) >> n
                st(("add half", f"{a} + 2^{n - 1} = {a + (1 << (n - 1))}"))
                st(("right shift", f">> {n} = {r}; {_dropped(a, n)}; ties up (round_for_shift)"))
    elif scheme in ("tflite", "tflite_optimized", "tflite_single", "tvm_tonearest"):
        q, e = int(p["multiplier"]), int(p["shift"])
        conv = "tvm" if scheme == "tvm_tonearest" else "tflite"
        st(
            (
                "decompose",
                f"scale {s!r} -> multiplier {q} (0x{q:08X}), shift {e:+d} "
                f"[{conv}]: {q} * 2^{e - 31} = {float(Fraction(q) * Fraction(2) ** (e - 31))!r}"
                + (
                    " (shift capped at 30 for single rounding)"
                    if scheme == "tflite_single" and e == 30
                    else ""
                ),
            )
        )
        if scheme in ("tflite", "tflite_optimized"):
            left, right = max(e, 0), max(-e, 0)
            x = a << left
            st(
                (
                    "left shift",
                    f"acc << {left} = {x}"
                    + ("" if -(2**31) <= x < 2**31 else "  OVERFLOWS int32 (undefined in C)"),
                )
            )
            prod = x * q
            y = (prod + (1 << 30)) >> 31 if not (x == q == -(2**31)) else 2**31 - 1
            st(
                (
                    "SRDHM (stage 1)",
                    f"{x} * {q} = {prod} (64-bit); (p + 2^30) >> 31 = {y}; "
                    f"{_dropped(prod, 31)}; ties up",
                )
            )
            if scheme == "tflite":
                mask = (1 << right) - 1
                thr = (mask >> 1) + (1 if y < 0 else 0)
                r = (y >> right) + (1 if (y & mask) > thr else 0)
                st(
                    (
                        "RoundingDivideByPOT (stage 2)",
                        f"{y} / 2^{right} -> {r}; {_dropped(y, right)}; ties away from zero",
                    )
                )
            else:
                r = (y + (1 << (right - 1))) >> right if right else y
                st(
                    (
                        "rounding shift (stage 2)",
                        f"({y} + 2^{right - 1}) >> {right} = {r}; {_dropped(y, right)}; ties up"
                        if right
                        else f"no shift: {y}",
                    )
                )
            r = max(-(2**31), min(2**31 - 1, r))
        else:
            t = 31 - e
            prod = a * q
            if scheme == "tflite_single":
                r = (prod + (1 << (t - 1))) >> t
                st(("product", f"{a} * {q} = {prod} (64-bit)"))
                st(
                    (
                        "single rounding",
                        f"(p + 2^{t - 1}) >> {t} = {r}; {_dropped(prod, t)}; ties up",
                    )
                )
            else:
                if t <= 0:
                    r = prod << -t
                    st(("product", f"{a} * {q} << {-t} = {r}: no rounding"))
                else:
                    fl = prod >> t
                    rem = prod - (fl << t)
                    half = 1 << (t - 1)
                    r = fl + (1 if rem > half or (rem == half and prod >= 0) else 0)
                    st(("product", f"{a} * {q} = {prod} (64-bit)"))
                    st(
                        (
                            "single rounding",
                            f"round(p / 2^{t}) = {r}; {_dropped(prod, t)}; ties away from zero",
                        )
                    )
            r = max(-(2**31), min(2**31 - 1, r))
    elif scheme == "xnnpack_rndnu":
        m, k = int(p["mantissa"]), int(p["right_shift"])
        prod = a * m
        r = max(-(2**31), min(2**31 - 1, (prod + (1 << (k - 1))) >> k))
        st(("decompose", f"float32(scale) = {m} * 2^-{k} exactly (24-bit mantissa)"))
        st(("product", f"{a} * {m} = {prod} (64-bit)"))
        st(("single rounding", f"(p + 2^{k - 1}) >> {k} = {r}; {_dropped(prod, k)}; ties up"))
    else:  # exact
        v = ex.exact
        r = int(requantize([a], s, "exact", dtype="int32")[0])
        st(("exact product", f"{a} * {s!r} = {v} = {float(v)!r}"))
        st(("round", f"-> {r}, ties away from zero"))
    ex.rounded = int(r)
    st(
        (
            "zero point and clamp",
            f"{r} + {zero_point} = {r + zero_point} -> clamp to "
            f"[{qmin}, {qmax}] = {result}"
            + ("  (after clipping to the symmetric range)" if scheme == "tvm_2019_float" else ""),
        )
    )
    st(("engines", info.engines))
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
        _validate.choice("schemes", s, tuple(SCHEMES))
    a = np.atleast_1d(_validate.accumulators("acc", acc)).ravel()
    s_arr, scalar = _validate.scales("scale", scale)
    if not scalar and s_arr.size != 1:
        raise ValueError("scale must be a single number for compare()")
    s = float(s_arr.ravel()[0])
    kw = dict(zero_point=zero_point, dtype=dtype)
    exact = requantize(a, s, "exact", **kw).astype(np.int64)
    outs = {
        name: requantize(a, s, name, pow2_mode=pow2_mode, **kw).astype(np.int64) for name in schemes
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
