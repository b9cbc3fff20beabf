r"""Errors of requantization schemes against exact arithmetic, and bit-width sweeps.

Everything here returns dataclasses of numpy arrays (no plotting): ``fxq_explore.plotting``
draws them. Errors are measured in output LSB against the exact real value
``acc * scale + zero_point``; "mismatch" means a result that differs from the exactly rounded
one (ties away from zero); the signal-to-quantization-noise ratio is

.. math:: \mathrm{SQNR} = 10 \log_{10} \frac{\sum_i (acc_i\, s)^2}{\sum_i (q_i - z - acc_i\, s)^2}.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..core import validate
from ..requantization import requantize
from ..schemes import (
    BIT_SWEEP,
    EXACT,
    FAMILIES,
    OUTPUT_SWEEP,
    SCHEMES,
    multiplier_bit_schemes,
    pow2_exponent,
)

SWEEP_FIXED_SCHEMES = BIT_SWEEP
SWEEP_OUTPUT_SCHEMES = OUTPUT_SWEEP


def random_accumulators(n: int, seed: int = 0, spread: int = 67000) -> np.ndarray:
    """``n`` deterministic accumulators, uniform in ``[-spread, spread]`` (int64).

    ``spread = 67000`` fills the int8 range at scale 0.0018843 (127 / 0.0018843 = 67399)
    without clipping.

    Examples
    --------
    >>> random_accumulators(3, seed=1).tolist() == random_accumulators(3, seed=1).tolist()
    True
    """
    n = validate.int_in_range("n", n, 1, 10**9)
    spread = validate.int_in_range("spread", spread, 1, 2**31 - 1)
    return np.random.default_rng(seed).integers(-spread, spread, size=n, endpoint=True)


def _nonempty_acc(acc) -> np.ndarray:
    """``acc`` checked, flat int64, with at least one accumulator (statistics need one)."""
    a = np.atleast_1d(validate.accumulators("acc", acc)).ravel()
    if a.size == 0:
        raise ValueError("acc must not be empty: there is nothing to measure")
    return a


def gain_error(scale, pow2_mode: str = "nearest") -> float:
    """Relative gain error of replacing ``scale`` by its power of two.

    Examples
    --------
    >>> round(gain_error(0.0018843), 4)      # 2^-9 / 0.0018843 - 1
    0.0365
    """
    s = validate.scale("scale", scale)
    e = int(pow2_exponent(s, pow2_mode))
    # exact: 2.0**e overflows for scales near 1.8e308 (e = 1024); the ratio itself is < 2
    return float(Fraction(2) ** e / Fraction(s) - 1)


def _sqnr_db(signal, noise) -> float:
    ps, pn = float(np.sum(signal * signal)), float(np.sum(noise * noise))
    if pn == 0:
        return float("inf")
    if ps == 0:
        return float("-inf")
    return 10.0 * np.log10(ps / pn)


def _progress(iterable, progress, desc):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)


@dataclass
class ErrorAnalysis:
    """Per-scheme results and errors against exact arithmetic for one scale."""

    acc: np.ndarray
    scale: float
    zero_point: int
    real: np.ndarray
    results: dict
    errors: dict
    mismatches: dict
    exact: np.ndarray

    def summary(self) -> list:
        """One dict per scheme: max ``|error|``, mean error (bias), RMS error (LSB), mismatches."""
        rows = []
        for name, err in self.errors.items():
            rows.append(
                dict(
                    scheme=name,
                    max_abs_error=float(np.abs(err).max()),
                    mean_error=float(err.mean()),
                    rms_error=float(np.sqrt(np.mean(err * err))),
                    mismatches=int(self.mismatches[name]),
                    mismatch_rate=float(self.mismatches[name] / self.acc.size),
                )
            )
        return rows

    def worst(self, scheme: str, n: int = 5) -> list:
        """The ``n`` accumulators with the largest ``|error|`` for ``scheme``: (acc, result, real)."""
        validate.choice("scheme", scheme, tuple(self.errors))
        idx = np.argsort(-np.abs(self.errors[scheme]), kind="stable")[:n]
        return [(int(self.acc[i]), int(self.results[scheme][i]), float(self.real[i])) for i in idx]

    def histogram(self, scheme: str, bins=41, range_=(-1.0, 1.0)):
        """Histogram of the error (LSB) of ``scheme``: (counts, edges)."""
        return np.histogram(self.errors[scheme], bins=bins, range=range_)

    def __str__(self) -> str:
        lines = [
            f"errors vs exact acc*scale at scale {self.scale!r} over {self.acc.size} "
            f"accumulators (LSB)",
            f"{'scheme':<17} {'max|err|':>9} {'bias':>10} {'rms':>7} {'mismatches':>10}",
        ]
        for r in self.summary():
            lines.append(
                f"{r['scheme']:<17} {r['max_abs_error']:>9.4f} {r['mean_error']:>+10.2e}"
                f" {r['rms_error']:>7.4f} {r['mismatches']:>10d}"
            )
        return "\n".join(lines)


def error_vs_exact(
    acc,
    scale,
    schemes=None,
    *,
    zero_point: int = 0,
    dtype: str = "int32",
    pow2_mode: str = "nearest",
) -> ErrorAnalysis:
    """Run ``schemes`` on ``acc`` and measure each against exact arithmetic.

    Parameters
    ----------
    acc : array_like of int (int32 range)
    scale : float, positive
    schemes : sequence of str, default ``("float32_rne", "pow2", "tflite", "tflite_single")``
    zero_point : int
    dtype : str, default ``"int32"`` (no clamping, so errors show the rounding alone)
    pow2_mode : str

    Returns
    -------
    ErrorAnalysis

    Examples
    --------
    >>> a = error_vs_exact(random_accumulators(200_000), 0.0018843)
    >>> {r["scheme"]: r["mismatches"] for r in a.summary()}["float32_rne"]
    0
    >>> a.mismatches["tflite"] > 0 and a.mismatches["tflite_single"] == 0
    True
    """
    schemes = tuple(schemes or FAMILIES)
    a = _nonempty_acc(acc)
    validate.memory(
        "acc",
        a.size * (24 + 16 * len(schemes)),
        f"keeping the exact value, the result and the error of {len(schemes)} scheme(s) for "
        f"{a.size} accumulators",
    )
    s = validate.scale("scale", scale)
    exact = requantize(a, s, EXACT.name, zero_point=zero_point, dtype=dtype).astype(np.int64)
    real = a.astype(np.float64) * s + zero_point
    results, errors, mism = {}, {}, {}
    for name in schemes:
        r = requantize(a, s, name, zero_point=zero_point, dtype=dtype, pow2_mode=pow2_mode).astype(
            np.int64
        )
        results[name] = r
        errors[name] = r - real
        mism[name] = int(np.count_nonzero(r != exact))
    return ErrorAnalysis(a, s, zero_point, real, results, errors, mism, exact)


@dataclass
class Sweep:
    """Metrics over a swept bit width: each metric is a dict scheme -> array over ``bits``."""

    parameter: str
    bits: np.ndarray
    schemes: tuple
    max_abs_error: dict = field(default_factory=dict)
    mismatch_rate: dict = field(default_factory=dict)
    bias: dict = field(default_factory=dict)
    sqnr_db: dict = field(default_factory=dict)

    def table(self, metric: str = "sqnr_db") -> str:
        """A text table of one metric: a row per bit width, a column per scheme."""
        validate.choice("metric", metric, ("max_abs_error", "mismatch_rate", "bias", "sqnr_db"))
        data = getattr(self, metric)
        lines = [f"{self.parameter:>15} " + " ".join(f"{s:>14}" for s in self.schemes)]
        for i, b in enumerate(self.bits):
            lines.append(f"{int(b):>15d} " + " ".join(f"{data[s][i]:>14.5g}" for s in self.schemes))
        return "\n".join(lines)

    __str__ = table


def _sweep(parameter, bits, schemes, progress, run):
    bits = np.array([validate.int_in_range(parameter, b, 2, 32) for b in bits], dtype=np.int64)
    if bits.size == 0:
        raise ValueError(f"{parameter} must not be empty")
    sw = Sweep(parameter, bits, tuple(schemes))
    for name in sw.schemes:
        for metric in ("max_abs_error", "mismatch_rate", "bias", "sqnr_db"):
            getattr(sw, metric)[name] = np.empty(bits.size)
    for i, b in enumerate(_progress(bits, progress, parameter)):
        for name in sw.schemes:
            r, real, exact = run(int(b), name)
            err = r - real
            sw.max_abs_error[name][i] = float(np.abs(err).max())
            sw.mismatch_rate[name][i] = float(np.count_nonzero(r != exact) / r.size)
            sw.bias[name][i] = float(err.mean())
            sw.sqnr_db[name][i] = _sqnr_db(real, err)
    return sw


def sweep_multiplier_bits(
    acc, scale, *, schemes=SWEEP_FIXED_SCHEMES, bits=range(2, 33), progress=None
) -> Sweep:
    """Shrink the fixed-point multiplier from 32 bits down: how much accuracy is lost?

    Results are int32 (no output clamping) so the error is the multiplier's and the rounding's.

    Examples
    --------
    >>> sw = sweep_multiplier_bits(random_accumulators(10_000), 0.0018843, bits=[8, 16, 32])
    >>> bool(sw.sqnr_db["tflite_single"][0] < sw.sqnr_db["tflite_single"][2])
    True
    """
    for s in schemes:
        validate.choice("schemes", s, multiplier_bit_schemes())
    a = _nonempty_acc(acc)
    validate.memory("acc", a.size * 48, f"a multiplier-bits sweep over {a.size} accumulators")
    s = validate.scale("scale", scale)
    real = a.astype(np.float64) * s
    exact = requantize(a, s, EXACT.name, dtype="int32").astype(np.int64)

    def run(b, name):
        r = requantize(a, s, name, dtype="int32", multiplier_bits=b).astype(np.int64)
        return r, real, exact

    return _sweep("multiplier_bits", bits, schemes, progress, run)


def sweep_output_bits(
    acc, scale, *, schemes=SWEEP_OUTPUT_SCHEMES, bits=range(2, 17), progress=None
) -> Sweep:
    """Narrow the output from 16 bits down to 2, keeping the same real range.

    At ``b`` output bits the scale becomes ``scale * (2^(b-1) - 1) / 127`` so that the range an
    int8 output covers at ``scale`` is spread over the signed ``b``-bit grid; each scheme then
    requantizes to ``int{b}``.

    Examples
    --------
    >>> sw = sweep_output_bits(random_accumulators(10_000), 0.0018843, bits=[4, 8])
    >>> bool(sw.sqnr_db["float32_rne"][1] > sw.sqnr_db["float32_rne"][0] + 20)
    True
    """

    for s in schemes:
        validate.choice("schemes", s, tuple(SCHEMES))
    bits = list(bits)
    for b in bits:
        validate.int_in_range("output_bits", b, 2, 16)
    a = _nonempty_acc(acc)
    validate.memory("acc", a.size * 48, f"an output-bits sweep over {a.size} accumulators")
    scale = validate.scale("scale", scale)

    def run(b, name):
        sb = scale * (2 ** (b - 1) - 1) / 127.0
        real = a.astype(np.float64) * sb
        exact = requantize(a, sb, EXACT.name, dtype=f"int{b}").astype(np.int64)
        r = requantize(a, sb, name, dtype=f"int{b}").astype(np.int64)
        return r, real, exact

    return _sweep("output_bits", bits, schemes, progress, run)


def disagreement_rate(acc, scale, scheme_a: str, scheme_b: str, **kwargs) -> float:
    """Fraction of accumulators on which two schemes give different outputs.

    Examples
    --------
    >>> r = disagreement_rate(random_accumulators(200_000), 0.0018843, "tflite", "tflite_single")
    >>> round(r, 3)          # about 0.1 % at this scale (2^-(R+1) with R = 9)
    0.001
    """
    a = _nonempty_acc(acc)
    ra = requantize(a, scale, scheme_a, **kwargs)
    rb = requantize(a, scale, scheme_b, **kwargs)
    return float(np.count_nonzero(ra != rb) / ra.size)


def threshold_errors(values, thresholds, bits=8):
    """Clipping and rounding error of symmetric ``bits``-bit quantization at each threshold.

    The scale is ``T / (2^(bits-1) - 1)``; values beyond ``T`` contribute their clipping error,
    values inside their rounding error; both are mean squared errors per element.

    Returns ``(clip_error, round_error)`` as float64 arrays over ``thresholds``.
    """
    x = validate.real_array("values", values)
    bits = validate.int_in_range("bits", bits, 2, 16)
    ts, _ = validate.scales("thresholds", thresholds)
    levels = 2 ** (bits - 1) - 1
    clip_e, round_e = [], []
    for t in np.atleast_1d(ts).ravel():
        s = t / levels
        q = np.clip(np.rint(x / s), -levels, levels) * s
        err2 = (q - x) ** 2
        inside = np.abs(x) <= t
        clip_e.append(float(err2[~inside].sum() / x.size))
        round_e.append(float(err2[inside].sum() / x.size))
    return np.array(clip_e), np.array(round_e)
