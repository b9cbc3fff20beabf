"""Calibration: where a requantization scale comes from.

A calibrator looks at the values a tensor takes on a calibration set and returns a clipping
threshold ``T``; the tensor is then quantized with a scale derived from ``T`` and the bit width
(:func:`threshold_to_scale`). The seed thread's multiplier 0.0018843 is a ratio of two such
scales, produced by TVM's KL-divergence calibration.

Methods (``calibrate(values, method=...)``)

``"max"``
    ``T = max|x|``. Nothing is clipped; one outlier stretches every step.
``"percentile"``
    ``T`` = a quantile of ``|x|``. ``variant="tvm"`` (default): the sample at index
    ``int(n·p/100)`` of the sorted ``|x|`` (TVM ``_find_scale_by_percentile``, ``np.partition``);
    ``variant="histogram"``: NVIDIA pytorch-quantization, the left edge of the bin of a 2048-bin
    ``|x|`` histogram where the CDF crosses ``p``.
``"mse"``
    pytorch-quantization ``_compute_amax_mse``: candidates = bin centres ``i >= start_bin`` of a
    2048-bin ``|x|`` histogram; minimise the count-weighted squared error of fake-quantizing the
    bin centres.
``"kl"``
    Entropy calibration (Migacz, GTC 2017), as each engine computes it:

    * ``variant="tvm"`` (default; = MXNet's C++ op): 8001 signed bins over ``±max|x|``, 255
      levels, eps-smoothing, first minimum, ``T`` = right edge of the window;
    * ``variant="tensorrt"``: 2048 bins of ``|x|``, 128 levels, candidates from bin 128, no
      smoothing, last minimum, ``T`` = ``edges[i]``; re-binning and expansion as in NVIDIA's
      pytorch-quantization (the slides do not specify them). ``zero_bin_fix=True`` adds
      pytorch-quantization's ``bins[0] = bins[1]``;
    * ``variant="onnxruntime"``: ONNX Runtime's ``EntropyCalibrater`` defaults (128 bins,
      128 levels). With these defaults there is exactly one candidate and the result is the
      clipped min/max, i.e. ``"max"`` (issue onnxruntime#9597).

The engines' own sources are cited at each function. Every function here is plain numpy;
:class:`HistogramCollector` merges batches the way the engines do.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from ..core import validate

__all__ = [
    "CALIBRATORS",
    "METHODS",
    "VARIANTS",
    "HistogramCollector",
    "KLSearch",
    "calibrate",
    "calibrate_all",
    "kl_search",
    "threshold_to_scale",
    "scale_to_threshold",
]

#: Calibration methods accepted by :func:`calibrate`.
METHODS = ("max", "percentile", "mse", "kl")

#: Variants per method; the first one is the default.
VARIANTS = {
    "max": (None,),
    "percentile": ("tvm", "histogram"),
    "mse": ("histogram",),
    "kl": ("tvm", "tensorrt", "onnxruntime"),
}

#: Default number of histogram bins per (method, variant).
DEFAULT_NUM_BINS = {
    ("kl", "tvm"): 8001,
    ("kl", "tensorrt"): 2048,
    ("kl", "onnxruntime"): 128,
    ("mse", "histogram"): 2048,
    ("percentile", "histogram"): 2048,
}

#: Histogram domain each histogram-based variant needs.
_HIST_MODE = {
    ("kl", "tvm"): "signed",
    ("kl", "onnxruntime"): "signed",
    ("kl", "tensorrt"): "abs",
    ("mse", "histogram"): "abs",
    ("percentile", "histogram"): "abs",
}

SCALE_CONVENTIONS = ("tflite", "tensorrt", "tvm")


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------


# The checks themselves live in fxq_explore.core.validate (one validation layer); these names
# bind them to this module's arguments and bounds.

#: The most bins a histogram may have (a grown histogram included): 4 Mi bins, 64 MiB of
#: counts and edges.
MAX_HIST_BINS = 1 << 22
#: The most element operations one threshold search may take: the KL and MSE searches are
#: quadratic in the number of bins (about 8 times the default TVM search, a few seconds).
MAX_SEARCH_WORK = float(1 << 27)
#: ``max|x|`` a histogram accepts: above it squared errors overflow float64; below the lower
#: bound the bin width underflows.
HIST_MAX_ABS = 2.0**500
HIST_MIN_ABS = 2.0**-900


def _choice(name, value, allowed):
    if value in allowed and (value is None or isinstance(value, str)):
        return value  # e.g. variant None, the only variant of "max"
    return validate.choice(name, value, tuple(a for a in allowed if a is not None))


def _check_bits(bits):
    return validate.int_in_range("bits", bits, 2, 16)


def _check_values(values, name="values"):
    """``values`` as a flat float64 array; rejects empty, non-numeric, ragged, NaN and inf."""
    return validate.real_array(name, values)


def _check_positive_int(name, value, lo=1):
    return validate.int_in_range(name, value, lo, MAX_HIST_BINS)


def _check_search(name, value, nb, cost, what):
    validate.work(
        name,
        value,
        cost,
        MAX_SEARCH_WORK,
        f"the {what} search over {nb} bins",
    )


def _check_range(th, name="values"):
    if th > HIST_MAX_ABS or th < HIST_MIN_ABS:
        raise ValueError(
            f"{name}: max|x| = {th!r} is outside [2^-900, 2^500], the range a histogram "
            f"calibration handles in float64 (bin widths underflow, squared errors overflow); "
            f"rescale the values first (thresholds scale with them: calibrate(x / c) * c)"
        )


# ---------------------------------------------------------------------------------------------
# threshold <-> scale
# ---------------------------------------------------------------------------------------------


def _levels(bits, signed, convention):
    if convention in ("tflite", "tensorrt"):
        return float(2 ** (bits - 1) - 1) if signed else float(2**bits - 1)
    # TVM relay.quantize: dom_scale = T / 2^(nbit - sign)
    return float(2 ** (bits - 1)) if signed else float(2**bits)


def threshold_to_scale(threshold, bits=8, *, signed=True, convention="tflite"):
    """Turn a clipping threshold ``T`` into a quantization scale.

    Parameters
    ----------
    threshold : float
        Clipping threshold, ``T > 0`` and finite.
    bits : int, 2..16
        Bit width of the quantized tensor.
    signed : bool
        Signed (``int8``-like, symmetric around 0) or unsigned (``uint8``-like, ``[0, T]``).
    convention : {"tflite", "tensorrt", "tvm"}
        ``"tflite"`` / ``"tensorrt"``: ``T`` maps to the largest code,
        ``s = T/(2^(bits-1) - 1)`` signed (``T/127``), ``s = T/(2^bits - 1)`` unsigned (``T/255``).
        ``"tvm"`` (``relay.quantize`` ``_calibrate._set_params``): ``s = T / 2^(nbit - sign)``, i.e.
        ``T/128`` signed and ``T/256`` unsigned; the clip at ±127 then cuts the top step, so the
        largest representable value is ``127·T/128``.

    Returns
    -------
    float
        The scale ``s``: real value = ``s · q``.

    Notes
    -----
    .. math:: s = T / L,\\quad L = \\begin{cases} 2^{b-1}-1 \\text{ or } 2^b - 1 & \\text{TFLite,
              TensorRT} \\\\ 2^{b-\\mathrm{sign}} & \\text{TVM} \\end{cases}

    Examples
    --------
    >>> threshold_to_scale(127.0), threshold_to_scale(128.0, convention="tvm")
    (1.0, 1.0)
    >>> threshold_to_scale(255.0, signed=False)
    1.0

    The seed's second scale, 0.0340026, read back as a TVM threshold:

    >>> round(scale_to_threshold(0.0340026, convention="tvm"), 7)
    4.3523328
    """
    bits = _check_bits(bits)
    _choice("convention", convention, SCALE_CONVENTIONS)
    t = validate.real("threshold", threshold, 0.0, lo_open=True)
    levels = _levels(bits, validate.flag("signed", signed), convention)
    s = t / levels
    if not s >= np.finfo(np.float64).tiny:
        raise ValueError(
            f"threshold {t!r} is too small: threshold / {levels:g} = {s!r} is not a normal "
            f"double (threshold must be >= {levels * np.finfo(np.float64).tiny:.3g})"
        )
    return s


def scale_to_threshold(scale, bits=8, *, signed=True, convention="tflite"):
    """Inverse of :func:`threshold_to_scale`: ``T = s · L``.

    Examples
    --------
    >>> scale_to_threshold(1.0), scale_to_threshold(1.0, convention="tvm")
    (127.0, 128.0)
    """
    bits = _check_bits(bits)
    _choice("convention", convention, SCALE_CONVENTIONS)
    s = validate.real("scale", scale, 0.0, lo_open=True)
    levels = _levels(bits, validate.flag("signed", signed), convention)
    t = s * levels
    if not math.isfinite(t):
        raise ValueError(
            f"scale {s!r} is too large: scale * {levels:g} overflows (scale must be <= "
            f"{np.finfo(np.float64).max / levels:.3g})"
        )
    return t


# ---------------------------------------------------------------------------------------------
# histograms
# ---------------------------------------------------------------------------------------------


class HistogramCollector:
    """Streaming histogram of a tensor's values, merged batch by batch as the engines do.

    Parameters
    ----------
    num_bins : int, >= 1
        Initial number of bins (8001 for TVM/MXNet KL, 2048 for TensorRT KL, MSE and histogram
        percentile, 128 for ONNX Runtime). The count grows when a later batch exceeds the range.
    mode : {"signed", "abs"}
        ``"signed"`` (MXNet ``combine_histogram`` / ONNX Runtime ``merge_histogram``): signed
        values over ``[-th, th]``, ``th`` = first batch's ``max|x|``; a later batch with a larger
        ``max|x|`` grows the range symmetrically by whole old-width bins (the count stays odd if
        it was odd) and old counts are added into the centre. ``"abs"``
        (pytorch-quantization ``HistogramCalibrator``): ``|x|`` over ``[0, max|x|]``; a larger
        later batch appends bins of the same width.
    progress : bool or None
        Show a tqdm bar in :meth:`collect`. ``None`` (default): only when stderr is a terminal;
        the bar then appears after one second, so short runs print nothing.

    Notes
    -----
    Batches that are entirely zero before any non-zero batch has fixed the range are counted
    and put into the bin that contains 0 once the range is known. NaN/inf or empty batches
    raise ``ValueError``.

    Examples
    --------
    >>> hc = HistogramCollector(num_bins=5).update([-1.0, 0.0, 1.0]).update([3.0])
    >>> hc.hist.tolist(), hc.edges[[0, -1]].tolist()
    ([0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1], [-3.0, 3.0])
    """

    def __init__(self, num_bins=8001, *, mode="signed", progress=None):
        self.num_bins = _check_positive_int("num_bins", num_bins)
        self.mode = _choice("mode", mode, ("signed", "abs"))
        self.progress = progress
        self.hist = None
        self.edges = None
        self.min = math.inf
        self.max = -math.inf
        self.count = 0
        self._pending_zeros = 0

    # -- properties ---------------------------------------------------------------------------
    @property
    def max_abs(self):
        """``max|x|`` over everything seen so far."""
        return max(abs(self.min), abs(self.max)) if self.count else 0.0

    @property
    def threshold(self):
        """Half-width (signed) or upper end (abs) of the histogram's range."""
        return 0.0 if self.edges is None else float(self.edges[-1])

    # -- collection ---------------------------------------------------------------------------
    def update(self, values):
        """Add one batch; returns ``self``."""
        x = _check_values(values)
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        self.count += x.size
        if self.mode == "abs":
            x = np.abs(x)
        th = float(np.abs(x).max())
        if th == 0.0 and self.hist is None:
            self._pending_zeros += x.size
            return self
        if th > 0.0:
            _check_range(th)
        if self.hist is None:
            lo = -th if self.mode == "signed" else 0.0
            self.hist, self.edges = np.histogram(x, bins=self.num_bins, range=(lo, th))
        elif self.mode == "signed":
            self._merge_signed(x, th)
        else:
            self._merge_abs(x, th)
        if self._pending_zeros:
            k = int(np.searchsorted(self.edges, 0.0, side="right")) - 1
            self.hist[min(max(k, 0), len(self.hist) - 1)] += self._pending_zeros
            self._pending_zeros = 0
        return self

    def _merge_signed(self, x, th):
        old_hist, old_th = self.hist, float(self.edges[-1])
        if th <= old_th:
            hist, _ = np.histogram(x, bins=len(old_hist), range=(-old_th, old_th))
            self.hist = old_hist + hist
            return
        nb = len(old_hist)
        step = 2 * old_th / nb
        half_f = (th - old_th) // step + 1
        self._check_growth(2 * half_f + nb, th, old_th)
        half = int(half_f)
        new_nb = 2 * half + nb
        new_th = half * step + old_th
        hist, self.edges = np.histogram(x, bins=new_nb, range=(-new_th, new_th))
        hist[half : new_nb - half] += old_hist
        self.hist = hist

    def _merge_abs(self, x, th):
        edges = self.edges
        if th > edges[-1]:
            width = edges[1] - edges[0]
            with np.errstate(over="ignore"):  # an inf bin count is refused by the check
                grown = len(edges) + (th - edges[-1]) / width + 1
            self._check_growth(grown, th, float(edges[-1]))
            # like pytorch-quantization: np.arange may add one bin past the one holding th
            new = np.arange(edges[-1] + width, th + width, width)
            edges = np.hstack((edges, new))
        hist, self.edges = np.histogram(x, bins=edges)
        hist[: len(self.hist)] += self.hist
        self.hist = hist

    def _check_growth(self, new_bins, th, old_th):
        """Refuse growing the histogram beyond ``MAX_HIST_BINS`` before allocating it."""
        if new_bins > MAX_HIST_BINS:
            with np.errstate(over="ignore"):
                size = (
                    validate._fmt_bytes(new_bins * 16) if new_bins < 1e300 else "beyond 1e300 bytes"
                )
            raise ValueError(
                f"values: this batch's max|x| = {th:.6g} is {th / old_th:.3g} times the "
                f"histogram's range ({old_th:.6g}); growing it by whole bins would need "
                f"{new_bins:.3g} bins ({size}), above the limit "
                f"of {MAX_HIST_BINS} bins; update() first with the batch that has the largest "
                f"|x|, or collect with fewer num_bins"
            )

    def collect(self, batches, *, total=None):
        """Add every batch of an iterable; a tqdm bar shows progress on long interactive runs."""
        from tqdm.auto import tqdm

        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if total is None and hasattr(batches, "__len__"):
            total = len(batches)
        for b in tqdm(
            batches,
            total=total,
            disable=not show,
            delay=1.0,
            desc="calibration histogram",
            leave=False,
        ):
            self.update(b)
        return self

    def histogram(self):
        """Return ``(hist, edges)``; raise ``ValueError`` when nothing non-zero was seen."""
        if self.hist is None:
            if self.count:
                raise ValueError(
                    "values: all zero; a zero threshold has no scale "
                    "(quantize this tensor as constant 0 instead)"
                )
            raise ValueError("values: the collector is empty; call update() first")
        return self.hist, self.edges

    def __repr__(self):
        n = 0 if self.hist is None else len(self.hist)
        return (
            f"HistogramCollector(mode={self.mode!r}, bins={n}, count={self.count}, "
            f"min={self.min:.6g}, max={self.max:.6g})"
        )


def _histogram_for(values, mode, num_bins):
    if isinstance(values, HistogramCollector):
        if values.mode != mode:
            raise ValueError(
                f"values: this method needs a HistogramCollector with "
                f"mode={mode!r}; got mode={values.mode!r}"
            )
        hist, edges = values.histogram()
        return hist, edges, values.min, values.max
    hc = HistogramCollector(num_bins, mode=mode, progress=False).update(values)
    hist, edges = hc.histogram()
    return hist, edges, hc.min, hc.max


# ---------------------------------------------------------------------------------------------
# KL searches
# ---------------------------------------------------------------------------------------------


@dataclass
class KLSearch:
    """Every candidate of a KL search.

    Attributes
    ----------
    thresholds : ndarray, float64
        Candidate thresholds ``T``, ascending.
    divergences : ndarray, float64
        ``KL(P||Q)`` per candidate (``inf`` for invalid candidates).
    index : int
        Index of the chosen candidate (first or last minimum, per variant).
    variant : str
    hist, edges : ndarray
        The histogram searched.
    """

    thresholds: np.ndarray
    divergences: np.ndarray
    index: int
    variant: str
    hist: np.ndarray = field(repr=False)
    edges: np.ndarray = field(repr=False)

    @property
    def threshold(self):
        """The chosen threshold ``T``."""
        return float(self.thresholds[self.index])


def _smooth(p, eps):
    """MXNet/TVM/ORT ``_smooth_distribution`` (float32 storage); ``None`` if invalid."""
    is_zero = p == 0
    n_zero = int(np.count_nonzero(is_zero))
    n_nonzero = p.size - n_zero
    if n_nonzero == 0:
        return None
    eps1 = np.float32(eps) * np.float32(n_zero) / np.float32(n_nonzero)
    if eps1 >= 1.0:
        return None
    out = p.astype(np.float32)
    out += np.where(is_zero, np.float32(eps), -eps1).astype(np.float32)
    return out


def _kl(p, q):
    """scipy ``stats.entropy(p, q)``: normalizes both, ``inf`` where q = 0 < p."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    ps, qs = p.sum(), q.sum()
    if ps <= 0 or qs <= 0:
        return math.inf
    p = p / ps
    q = q / qs
    m = p > 0
    if np.any(q[m] == 0):
        return math.inf
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def _search_tvm(hist, edges, nq, eps):
    """TVM ``MinimizeKL`` (src/relay/quantize/calibrate.cc, = MXNet C++ op)."""
    nb = len(hist)
    zero = nb // 2
    half = nq // 2
    _check_search("num_bins", nb, nb, float(nb) ** 2 / 4, "KL (tvm)")
    if nb % 2 == 0:
        raise ValueError(
            f"num_bins must be odd for variant 'tvm' (the histogram is centred on a zero bin, "
            f"as in TVM/MXNet, default 8001); got {nb}"
        )
    hist = hist.astype(np.int64)
    csum = np.concatenate(([0], np.cumsum(hist)))
    nzsum = np.concatenate(([0], np.cumsum(hist != 0)))
    total = int(csum[-1])
    n_cand = zero + 1 - half
    if n_cand < 1:
        raise ValueError(
            f"num_bins={nb} is too small for num_quantized_bins={nq} "
            f"(need num_bins//2 >= num_quantized_bins//2)"
        )
    edges32 = edges.astype(np.float32).astype(np.float64)
    thresholds = edges32[zero + np.arange(half, zero + 1) + 1]
    div = np.empty(n_cand)
    eps32 = np.float32(eps)
    jq = np.arange(nq + 1)
    for c, i in enumerate(range(half, zero + 1)):
        start, stop = zero - i, zero + i + 1
        n = stop - start
        m = n // nq
        # P: the window; bin `start` and everything left of it -> p[0] (the C++ loop's
        # `j <= p_bin_idx_start`), everything right of the window -> p[-1]
        p = hist[start:stop].astype(np.float32)
        p[0] = csum[start + 1]
        p[-1] += total - csum[stop]
        # Q: the window without outliers (bin `start` zeroed) in nq groups of m bins, the last
        # group taking the remainder; each total spread over its non-empty bins, 0 where p = 0
        bnd = start + jq * m
        bnd[-1] = stop
        gsum = csum[bnd[1:]] - csum[bnd[:-1]]
        gnz = nzsum[bnd[1:]] - nzsum[bnd[:-1]]
        gsum[0] -= hist[start]
        gnz[0] -= hist[start] != 0
        spread = gsum.astype(np.float32) / np.maximum(gnz, 1).astype(np.float32)
        sizes = np.full(nq, m)
        sizes[-1] = n - (nq - 1) * m
        q = np.repeat(spread, sizes)
        pz = p == 0
        q[pz] = 0
        # smoothing (eps in counts) and KL, as _smooth() / _kl() below
        n_pz = int(np.count_nonzero(pz))
        qz = q == 0
        n_qz = int(np.count_nonzero(qz))
        if n_pz == n or n_qz == n:
            div[c] = math.inf
            continue
        e1p = eps32 * np.float32(n_pz) / np.float32(n - n_pz)
        e1q = eps32 * np.float32(n_qz) / np.float32(n - n_qz)
        if e1p >= 1 or e1q >= 1:
            div[c] = math.inf
            continue
        ps = np.where(pz, eps32, p - e1p).astype(np.float64)
        qs = np.where(qz, eps32, q - e1q).astype(np.float64)
        ps /= ps.sum()
        qs /= qs.sum()
        div[c] = float(np.dot(ps, np.log(ps / qs)))
    return thresholds, div, int(np.argmin(div))  # first minimum


def _search_onnxruntime(hist, edges, nq, eps, vmin, vmax):
    """ONNX Runtime ``HistogramCalibrater.get_entropy_threshold``."""
    nb = len(hist)
    zero = nb // 2
    half = nq // 2
    _check_search("num_bins", nb, nb, float(nb) * (nb + nq) / 2, "KL (onnxruntime)")
    hist = hist.astype(np.int64)
    n_cand = zero - half + 1
    if n_cand < 1:
        raise ValueError(f"num_bins={nb} is too small for num_quantized_bins={nq}")
    lo = np.empty(n_cand)
    hi = np.empty(n_cand)
    div = np.empty(n_cand)
    for c, i in enumerate(range(half, zero + 1)):
        start = zero - i
        end = min(zero + i + 1, nb)
        lo[c], hi[c] = edges[start], edges[end]
        sliced = hist[start:end]
        p = sliced.copy()
        p[0] += hist[:start].sum()
        p[-1] += hist[end:].sum()
        nonzeros = (p != 0).astype(np.int64)
        m = sliced.size // nq
        qb = np.array([sliced[j * m : (j + 1) * m].sum() for j in range(nq)], dtype=np.int64)
        qb[-1] += sliced[nq * m :].sum()
        q = np.zeros(p.size, dtype=np.int64)
        for j in range(nq):
            norm = nonzeros[j * m : (j + 1) * m].sum()
            if norm != 0:
                q[j * m : (j + 1) * m] = int(float(qb[j]) / float(norm))  # int64 truncation
        ps, qs = _smooth(p, eps), _smooth(q, eps)
        div[c] = math.inf if ps is None or qs is None else _kl(ps, qs)
    k = int(np.argmin(div))
    lo_k, hi_k = max(lo[k], vmin), min(hi[k], vmax)
    thresholds = np.maximum(np.abs(np.maximum(lo, vmin)), np.abs(np.minimum(hi, vmax)))
    thresholds[k] = max(abs(lo_k), abs(hi_k))
    return thresholds, div, k


def _search_tensorrt(hist, edges, nlev, start_bin, zero_bin_fix):
    """pytorch-quantization ``_compute_amax_entropy`` (stride 1)."""
    bins = hist.astype(np.float64).copy()
    if zero_bin_fix and len(bins) > 1:
        bins[0] = bins[1]
    nb = len(bins)
    _check_search("num_bins", nb, nb, float(nb) ** 2 / 2, "KL (tensorrt)")
    if start_bin > nb:
        raise ValueError(f"start_bin={start_bin} exceeds the number of bins ({nb})")
    csum = np.concatenate(([0.0], np.cumsum(bins)))
    cand = np.arange(start_bin, nb + 1)
    div = np.empty(len(cand))
    for c, i in enumerate(cand):
        b = bins[:i]
        lev = (np.arange(i) * nlev) // i  # = np.digitize(range(i), linspace(0, i, nlev+1))-1
        nz = b != 0
        lsum = np.bincount(lev, weights=b, minlength=nlev)
        lcnt = np.bincount(lev[nz], minlength=nlev)
        q = np.where(nz, lsum[lev] / np.maximum(lcnt[lev], 1), 0.0)
        p = b.copy()
        p[-1] += csum[-1] - csum[i]
        d = _kl(p, q)
        div[c] = math.inf if math.isnan(d) else d
    k = len(div) - 1 - int(np.argmin(div[::-1]))  # last minimum
    return edges[cand].astype(np.float64), div, k


def kl_search(
    values,
    variant="tvm",
    *,
    bits=8,
    unsigned=None,
    num_bins=None,
    num_quantized_bins=None,
    start_bin=128,
    zero_bin_fix=False,
    eps=1e-4,
):
    """Run a KL (entropy) threshold search and return every candidate.

    Parameters
    ----------
    values : array_like of float, or HistogramCollector
        Calibration values (any shape, finite, not all zero), or a collector of the mode the
        variant needs (``"signed"`` for tvm/onnxruntime, ``"abs"`` for tensorrt).
    variant : {"tvm", "tensorrt", "onnxruntime"}
        See the module docstring.
    bits : int, 2..16
        Target bit width; sets the number of levels: tvm ``2^bits - 1`` (255), or
        ``2·(2^bits - 1) + 1`` (511) when ``unsigned``; tensorrt ``2^(bits-1+unsigned)`` (128 or
        256, pytorch-quantization's formula). The engines themselves only do 8 bits.
        onnxruntime ignores ``bits`` (``num_quantized_bins=128``).
    unsigned : bool or None
        Quantize to an unsigned type. ``None``: the engines' default, ``False`` (relay.quantize
        passes ``int8``; TensorRT is symmetric).
    num_bins, num_quantized_bins : int, optional
        Override the variant's defaults (8001/255, 2048/128, 128/128). ``"tvm"`` needs an odd
        ``num_bins`` (its histogram is centred on a zero bin). The searches are quadratic in
        ``num_bins``: more than ``MAX_SEARCH_WORK`` element operations (about 23,000 bins for
        tvm, 16,000 for tensorrt, 11,000 for mse) is refused with a ValueError, as is a
        histogram of more than ``MAX_HIST_BINS`` bins.
    start_bin : int
        First candidate bin for tensorrt (default 128).
    zero_bin_fix : bool
        tensorrt only: pytorch-quantization's ``bins[0] = bins[1]``, which removes the spike of
        exact zeros (e.g. after ReLU) before the search.
    eps : float
        Smoothing, in counts (tvm, onnxruntime).

    Returns
    -------
    KLSearch

    Notes
    -----
    For each candidate, ``P`` is the histogram cut at ``T`` with the clipped tail(s) added to
    the edge bin(s), ``Q`` the part below ``T`` merged into the levels and spread back over the
    non-empty bins, and

    .. math:: D(T) = \\sum_i p_i \\log (p_i / q_i),\\qquad T^* = \\arg\\min_T D(T).

    Sums are float64 (the C++ accumulates in float32), so a near-tie can in rare cases
    pick the neighbouring candidate.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=20_000)
    >>> r = kl_search(x, "tensorrt")
    >>> len(r.thresholds), bool(r.threshold < np.abs(x).max())
    (1921, True)
    """
    variant = _choice("variant", variant, VARIANTS["kl"])
    bits = _check_bits(bits)
    unsigned = validate.flag("unsigned", unsigned) if unsigned is not None else False
    zero_bin_fix = validate.flag("zero_bin_fix", zero_bin_fix)
    nb = num_bins if num_bins is not None else DEFAULT_NUM_BINS[("kl", variant)]
    nb = _check_positive_int("num_bins", nb)
    start_bin = _check_positive_int("start_bin", start_bin, lo=1)
    eps = validate.real("eps", eps, 0.0, 1.0, lo_open=True, hi_open=True)
    if variant == "tvm" and nb % 2 == 0 and not isinstance(values, HistogramCollector):
        raise ValueError(
            f"num_bins must be odd for variant 'tvm' (the histogram is centred on a zero bin, "
            f"as in TVM/MXNet, default 8001); got {nb}"
        )
    hist, edges, vmin, vmax = _histogram_for(values, _HIST_MODE[("kl", variant)], nb)
    if variant == "tvm" and not 2.0**-100 <= float(edges[-1]) <= 2.0**127:
        # TVM's MinimizeKL keeps the bin edges in float32
        raise ValueError(
            f"values: max|x| = {float(edges[-1])!r} is outside [2^-100, 2^127]: variant 'tvm' "
            f"keeps its bin edges in float32, as TVM does; rescale the values first "
            f"(thresholds scale with them: calibrate(x / c) * c)"
        )
    if variant == "tvm":
        nq = num_quantized_bins if num_quantized_bins is not None else 2**bits - 1
        nq = _check_positive_int("num_quantized_bins", nq, lo=2)
        if unsigned and num_quantized_bins is None:
            nq = 2 * nq + 1
        th, div, k = _search_tvm(hist, edges, nq, eps)
    elif variant == "onnxruntime":
        nq = num_quantized_bins if num_quantized_bins is not None else 128
        nq = _check_positive_int("num_quantized_bins", nq, lo=2)
        th, div, k = _search_onnxruntime(hist, edges, nq, eps, vmin, vmax)
    else:
        nlev = num_quantized_bins if num_quantized_bins is not None else 2 ** (bits - 1 + unsigned)
        nlev = _check_positive_int("num_quantized_bins", nlev, lo=2)
        th, div, k = _search_tensorrt(hist, edges, nlev, start_bin, zero_bin_fix)
    return KLSearch(th, div, k, variant, hist, edges)


# ---------------------------------------------------------------------------------------------
# the other methods
# ---------------------------------------------------------------------------------------------


def _percentile_samples(x, percentile):
    a = np.abs(x)
    k = min(int(a.size * percentile / 100.0), a.size - 1)
    return float(np.partition(a, k)[k])


def _percentile_hist(hist, edges, percentile):
    cdf = np.cumsum(hist / hist.sum())
    idx = int(np.searchsorted(cdf, percentile / 100.0))
    return float(edges[min(idx, len(edges) - 1)])


def _mse_hist(hist, edges, bits, unsigned, start_bin):
    counts = hist.astype(np.float64)
    centers = (edges[1:] + edges[:-1]) / 2
    if start_bin >= len(centers):
        raise ValueError(f"start_bin={start_bin} must be below the number of bins ({len(centers)})")
    nb = len(centers)
    _check_search("num_bins", nb, nb, float(nb - start_bin) * nb, "MSE")
    max_bound = 2.0 ** (bits - 1 + int(unsigned)) - 1
    best, best_i = math.inf, start_bin
    for i in range(start_bin, len(centers)):
        amax = centers[i]
        scale = max_bound / amax
        qc = np.clip(np.rint(centers * scale), -max_bound - 1, max_bound) / scale
        mse = float(np.mean((qc - centers) ** 2 * counts))
        if mse < best:  # first minimum (np.argmin)
            best, best_i = mse, i
    return float(centers[best_i])


def calibrate(
    values,
    method="max",
    *,
    variant=None,
    bits=8,
    percentile=99.99,
    unsigned=None,
    num_bins=None,
    num_quantized_bins=None,
    start_bin=128,
    zero_bin_fix=False,
    eps=1e-4,
):
    """Return the clipping threshold ``T`` a calibrator picks for ``values``.

    Parameters
    ----------
    values : array_like of float, or HistogramCollector
        Calibration values of one tensor (any shape; flattened). Must be non-empty, finite and
        not all zero. A :class:`HistogramCollector` may be passed for every method except
        ``percentile`` with ``variant="tvm"`` (which needs the samples).
    method : {"max", "percentile", "mse", "kl"}
    variant : str or None
        ``percentile``: ``"tvm"`` (default, sample quantile) or ``"histogram"``;
        ``mse``: ``"histogram"``; ``kl``: ``"tvm"`` (default), ``"tensorrt"``, ``"onnxruntime"``.
    bits : int, 2..16
        Target bit width (used by ``mse`` and ``kl``).
    percentile : float, (0, 100]
        Quantile of ``|x|`` in percent (``percentile`` only). pytorch-quantization's default
        99.99; TVM and ONNX Runtime use 99.999.
    unsigned : bool or None
        Target type is unsigned (``mse``, ``kl``); ``None`` = signed, the engines' default.
    num_bins, num_quantized_bins, start_bin, zero_bin_fix, eps
        Histogram and search parameters, see :func:`kl_search`.

    Returns
    -------
    float
        ``T > 0``. Turn it into a scale with :func:`threshold_to_scale`.

    Raises
    ------
    ValueError
        Empty input, NaN/inf, all-zero input, ``bits`` outside 2..16, an unknown ``method`` or
        ``variant`` (the message lists the valid ones).

    Notes
    -----
    ``max``: :math:`T = \\max_i |x_i|`. ``percentile`` (tvm): :math:`T = |x|_{(\\lfloor n p
    \\rfloor)}`, the order statistic. ``mse``:
    :math:`T = \\arg\\min_{c_i} \\sum_j n_j (Q_{c_i}(c_j) - c_j)^2` over bin centres
    :math:`c`. ``kl``: see :func:`kl_search`.

    Examples
    --------
    >>> x = np.concatenate([np.random.default_rng(0).normal(size=10_000), [50.0]])  # outlier
    >>> calibrate(x, "max")
    50.0
    >>> round(calibrate(x, "percentile", percentile=99.9), 3)
    3.197
    >>> round(calibrate(x, "kl"), 3), round(calibrate(x, "kl", variant="tensorrt"), 3)
    (3.393, 3.418)

    MSE keeps the outlier: clipping it would cost its squared distance.

    >>> round(calibrate(x, "mse"), 2)
    47.84
    >>> calibrate(x, "median")
    Traceback (most recent call last):
    ...
    ValueError: unknown method 'median'; valid: 'max', 'percentile', 'mse', 'kl'
    """
    method = _choice("method", method, METHODS)
    variant = VARIANTS[method][0] if variant is None else variant
    _choice(f"variant (for method={method!r})", variant, VARIANTS[method])
    bits = _check_bits(bits)
    if method == "percentile":
        percentile = validate.real("percentile", percentile, 0.0, 100.0, lo_open=True)
    if unsigned is not None:
        unsigned = validate.flag("unsigned", unsigned)
    if num_bins is not None:
        num_bins = _check_positive_int("num_bins", num_bins)
    collector = isinstance(values, HistogramCollector)
    if not collector:
        values = _check_values(values)
        if not np.any(values):
            raise ValueError(
                "values: all zero; a zero threshold has no scale "
                "(quantize this tensor as constant 0 instead)"
            )
    if method == "max":
        if collector:
            values.histogram()  # raises if empty / all zero
            return float(values.max_abs)
        return float(np.abs(values).max())
    if method == "percentile" and variant == "tvm":
        if collector:
            raise ValueError(
                "values: percentile with variant='tvm' needs the samples, not a "
                "HistogramCollector; use variant='histogram'"
            )
        t = _percentile_samples(values, float(percentile))
    elif method == "percentile":
        nb = num_bins or DEFAULT_NUM_BINS[(method, variant)]
        hist, edges, _, _ = _histogram_for(values, "abs", nb)
        t = _percentile_hist(hist, edges, float(percentile))
    elif method == "mse":
        nb = num_bins or DEFAULT_NUM_BINS[(method, variant)]
        hist, edges, _, _ = _histogram_for(values, "abs", nb)
        t = _mse_hist(
            hist, edges, bits, bool(unsigned), _check_positive_int("start_bin", start_bin, 0)
        )
    else:
        t = kl_search(
            values,
            variant,
            bits=bits,
            unsigned=unsigned,
            num_bins=num_bins,
            num_quantized_bins=num_quantized_bins,
            start_bin=start_bin,
            zero_bin_fix=zero_bin_fix,
            eps=eps,
        ).threshold
    if not t > 0:
        # e.g. a 99.99th percentile of a tensor that is mostly exact zeros
        raise ValueError(
            f"values: {method} ({variant}) calibration gave T = {t}; more than "
            f"the requested share of |x| is zero"
        )
    return float(t)


#: The calibrators compared in notebooks and in ``fxq_explore.e2e``:
#: label -> (method, variant, extra keyword arguments of :func:`calibrate`).
CALIBRATORS = {
    "max": ("max", None, {}),
    "percentile": ("percentile", "tvm", {}),
    "mse": ("mse", "histogram", {}),
    "kl_tvm": ("kl", "tvm", {}),
    "kl_tensorrt": ("kl", "tensorrt", {}),
    "kl_tensorrt_zfix": ("kl", "tensorrt", {"zero_bin_fix": True}),
}


def calibrate_all(values, *, bits=8, unsigned=None, percentile=99.99, calibrators=None):
    """Run every calibrator of :data:`CALIBRATORS` (or ``calibrators``) on the same values.

    Returns
    -------
    dict
        label -> threshold ``T``.

    Examples
    --------
    >>> ts = calibrate_all(np.linspace(-1, 1, 2001))
    >>> sorted(ts)
    ['kl_tensorrt', 'kl_tensorrt_zfix', 'kl_tvm', 'max', 'mse', 'percentile']
    >>> ts["max"]
    1.0
    """
    cals = CALIBRATORS if calibrators is None else calibrators
    values = values if isinstance(values, HistogramCollector) else _check_values(values)
    return {
        label: calibrate(
            values, m, variant=v, bits=bits, unsigned=unsigned, percentile=percentile, **kw
        )
        for label, (m, v, kw) in cals.items()
    }
