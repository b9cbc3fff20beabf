"""Predict, measure and fix the int16 pair saturation of x86 u8s8 kernels without VNNI.

* :func:`worst_case_pair_sums` -- from the weights alone and the activation range: the largest
  and smallest pair sum each output channel can reach under an engine's pairing, hence which
  channels *can* saturate (:func:`predict`, per preset).
* :func:`measure` -- on given inputs: the fraction of saturated pairs per channel and the output
  error they cause (model output minus exact output, in output codes).
* :func:`fixes` -- the usual remedies side by side: ``reduce_range`` (7-bit weights), the u8u8
  path (uint8 weights), s8s8 (centred activations), a VNNI CPU.
* :func:`mismatch_rows` -- each preset against exact arithmetic and, where the engine runs here
  (or can be forced to that kernel path), against the engine itself.

Layers are described by :class:`LayerCase`; :func:`make_case` builds the ones of the chapter:
uint8 activations uniform in [0, 255] with zero point 128, and either ``normal(0, sigma)``
weights or per-channel full-range weights (each output channel's max ``|w|`` = 127).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..kernels.accumulate import INT16_MAX, INT16_MIN, _pair_layout, conv2d_accumulate, get_model
from .presets import PRESETS, conv2d, detect, resolve

__all__ = [
    "LayerCase",
    "make_case",
    "full_range_weights",
    "normal_weights",
    "worst_case_pair_sums",
    "predict",
    "measure",
    "fixes",
    "mismatch_rows",
    "format_rows",
    "weight_range_sweep",
    "pair_bound",
]


def full_range_weights(shape, *, max_abs: int = 127, seed: int = 0) -> np.ndarray:
    """int8 weights, normal in shape, scaled per output channel so that its max ``|w|`` is
    ``max_abs`` (what per-channel symmetric quantization produces)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=shape)
    m = np.abs(f.reshape(shape[0], -1)).max(axis=1).reshape(-1, 1, 1, 1)
    return np.clip(np.rint(f / m * max_abs), -max_abs, max_abs).astype(np.int8)


def normal_weights(shape, *, sigma: float = 12.0, seed: int = 0) -> np.ndarray:
    """int8 weights ``round(normal(0, sigma))`` clipped to [-127, 127]."""
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rng.normal(0.0, sigma, size=shape)), -127, 127).astype(np.int8)


@dataclass
class LayerCase:
    """One quantized conv layer: integer tensors, scales and zero points, geometry."""

    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None
    x_scale: float
    w_scale: np.ndarray
    y_scale: float
    x_zero_point: int = 128
    w_zero_point: int = 0
    y_zero_point: int = 128
    stride: int = 1
    padding: int = 0
    groups: int = 1
    label: str = ""

    def kwargs(self) -> dict:
        """Keyword arguments for the runners (:mod:`fxq_explore.engines.runners`)."""
        return {
            "x_scale": self.x_scale,
            "x_zero_point": self.x_zero_point,
            "w_scale": self.w_scale,
            "w_zero_point": self.w_zero_point,
            "y_scale": self.y_scale,
            "y_zero_point": self.y_zero_point,
            "stride": self.stride,
            "padding": self.padding,
            "groups": self.groups,
        }

    def runner_case(self) -> dict:
        """A case for :func:`fxq_explore.engines.runners.run_cases_in_subprocess`."""
        return dict(self.kwargs(), x=self.x, w=self.w, bias=self.bias)

    def conv(self, **kw) -> np.ndarray:
        """:func:`fxq_explore.engines.conv2d` on this layer (``engine=`` or ``scheme=``)."""
        return conv2d(
            self.x,
            self.w,
            self.bias,
            x_scale=self.x_scale,
            w_scale=self.w_scale,
            y_scale=self.y_scale,
            x_zero_point=self.x_zero_point,
            w_zero_point=self.w_zero_point,
            out_zero_point=self.y_zero_point,
            stride=self.stride,
            padding=self.padding,
            groups=self.groups,
            **kw,
        )

    def exact(self) -> np.ndarray:
        """The exactly accumulated output with the same float32 requantization as ORT."""
        return self.conv(
            engine="onnxruntime-vnni" if self.w.dtype == np.int8 else "onnxruntime-u8u8"
        )


def make_case(
    c: int = 64,
    k: int = 64,
    r: int = 3,
    hw: int = 56,
    *,
    stride: int = 1,
    padding: int | None = None,
    groups: int = 1,
    weights: str = "full_range",
    max_abs: int = 127,
    sigma: float = 12.0,
    bias: bool = True,
    seed: int = 0,
) -> LayerCase:
    """A layer like the seed layer (default: 3x3, 64 -> 64, 56x56, zero point 128).

    Activations uniform in [0, 255]; ``weights="full_range"`` (per-channel max ``|w|`` =
    ``max_abs``) or ``"normal"`` (``normal(0, sigma)``); per-channel weight scales chosen so the
    output spreads over the uint8 range; int32 bias in [-1000, 1000] if ``bias``.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(1, c, hw, hw), dtype=np.uint8)
    shape = (k, c // groups, r, r)
    if weights == "full_range":
        w = full_range_weights(shape, max_abs=max_abs, seed=seed + 1)
    elif weights == "normal":
        w = normal_weights(shape, sigma=sigma, seed=seed + 1)
    else:
        raise ValueError(f"weights must be 'full_range' or 'normal', got {weights!r}")
    pad = (r - 1) // 2 if padding is None else padding
    n_in = (c // groups) * r * r
    # output scale: the accumulator's spread (~ 74 * sqrt(n_in) * mean|w|) over ~ 4 sigma codes
    wabs = max(float(np.abs(w.astype(np.float64)).mean()), 1.0)
    x_scale = np.float32(0.02)
    w_scale = rng.uniform(0.8, 1.25, size=k).astype(np.float32) * np.float32(0.003)
    acc_sd = 74.0 * np.sqrt(n_in) * wabs
    y_scale = np.float32(float(x_scale) * 0.003 * acc_sd / 32.0)
    b = rng.integers(-1000, 1001, size=k).astype(np.int32) if bias else None
    label = f"{r}x{r} {c}->{k} {hw}x{hw} s{stride} p{pad} g{groups} {weights}"
    return LayerCase(
        x, w, b, float(x_scale), w_scale, float(y_scale), 128, 0, 128, stride, pad, groups, label
    )


def pair_bound(x_max: int, w_max: int) -> int:
    """Largest pair sum ``2 * x_max * w_max`` of two u8 x s8 products."""
    return 2 * int(x_max) * int(w_max)


def worst_case_pair_sums(w, *, accumulate="pairs_flat_k", x_range=(0, 255)) -> dict:
    """Worst-case pair sums per output channel, from the weights alone.

    For each pair ``(w0, w1)`` of the model's packing, the largest sum of ``x0*w0 + x1*w1`` over
    activations in ``x_range`` puts ``x = hi`` on positive weights and ``lo`` on negative ones
    (the smallest sum the reverse).

    Parameters
    ----------
    w : ndarray of int8, (K, C/groups, R, S)
    accumulate : str
        A pairing model (``"pairs_flat_k"``, ``"mlas_u8s8"``, ``"pairs_per_tap"``, ...).
    x_range : (int, int)
        Raw activation range (0..255 for uint8; include the zero point if padding occurs).

    Returns
    -------
    dict
        ``max``, ``min`` (K,) int64: extreme pair sums; ``pairs_at_risk`` (K,) int64: pairs that
        can leave [-32768, 32767]; ``can_saturate`` (K,) bool.

    Examples
    --------
    >>> w = np.array([[[[127]], [[127]]]], np.int8)          # one channel, pair (127, 127)
    >>> worst_case_pair_sums(w)["max"].tolist()
    [64770]
    >>> worst_case_pair_sums(w // 2)["can_saturate"].tolist() # 7-bit weights: 2*255*63 fits
    [False]
    """
    model = get_model(accumulate)
    w = np.asarray(w)
    k, cg, r, s = w.shape
    lo, hi = int(x_range[0]), int(x_range[1])
    if model.pairing == "none":
        z = np.zeros(k, np.int64)
        return {"max": z, "min": z, "pairs_at_risk": z, "can_saturate": np.zeros(k, bool)}
    layout = _pair_layout(model.pairing, r, s, cg)
    flat = w.astype(np.int64).transpose(0, 2, 3, 1).reshape(k, -1)
    safe = np.where(layout < 0, 0, layout)
    wl = flat[:, safe] * (layout >= 0)
    hi_sum = np.where(wl > 0, hi * wl, lo * wl)
    lo_sum = np.where(wl > 0, lo * wl, hi * wl)
    pmax = hi_sum[:, 0::2] + hi_sum[:, 1::2]
    pmin = lo_sum[:, 0::2] + lo_sum[:, 1::2]
    risk = (pmax > INT16_MAX) | (pmin < INT16_MIN)
    return {
        "max": pmax.max(axis=1),
        "min": pmin.min(axis=1),
        "pairs_at_risk": risk.sum(axis=1),
        "can_saturate": risk.any(axis=1),
    }


def predict(case: LayerCase, presets=None, *, x_range=(0, 255)) -> dict:
    """Which output channels can saturate on which presets (from the weights alone).

    Returns
    -------
    dict
        preset name -> (K,) bool array (all False for presets that cannot saturate on this
        layer shape, e.g. VNNI paths or MLAS depthwise).
    """
    names = list(PRESETS) if presets is None else list(presets)
    out = {}
    for name in names:
        p = resolve(name, w_dtype=case.w.dtype)
        model = p.model
        if not model.saturates_on(case.w.shape, case.stride, case.padding, case.groups):
            out[name] = np.zeros(case.w.shape[0], bool)
        else:
            out[name] = worst_case_pair_sums(case.w, accumulate=model, x_range=x_range)[
                "can_saturate"
            ]
    return out


@dataclass
class Measurement:
    """Saturation measured on one layer under one accumulation model."""

    model: str
    fraction: np.ndarray
    saturated: np.ndarray
    pairs: int
    output_diff: np.ndarray
    stats: object = field(repr=False, default=None)

    @property
    def mismatches(self) -> int:
        """Outputs that differ from the exactly accumulated output."""
        return int(np.count_nonzero(self.output_diff))

    @property
    def max_abs_diff(self) -> int:
        """Largest output difference, in output codes."""
        return int(np.abs(self.output_diff).max()) if self.output_diff.size else 0


def measure(case: LayerCase, engine: str = "onnxruntime-avx2") -> Measurement:
    """Fraction of saturated pairs per channel and the output error on this layer's inputs."""
    p = resolve(engine, w_dtype=case.w.dtype)
    _, stats = conv2d_accumulate(
        case.x,
        case.w,
        x_zero_point=case.x_zero_point,
        w_zero_point=case.w_zero_point,
        stride=case.stride,
        padding=case.padding,
        groups=case.groups,
        accumulate=p.model,
        return_stats=True,
    )
    y = case.conv(engine=p.name).astype(np.int64)
    y0 = case.exact().astype(np.int64)
    return Measurement(p.accumulate, stats.fraction, stats.saturated, stats.pairs, y - y0, stats)


def fixes(case: LayerCase, engine: str = "onnxruntime-avx2") -> list[dict]:
    """The remedies side by side on this layer: saturated pairs and outputs that differ.

    Rows: the u8s8 path without VNNI (``engine``); ``reduce_range`` (weights requantized to
    7 bits, [-64, 63], with twice the scale: no pair can exceed ``2*255*64``); the u8u8 path
    (weights + 128 as uint8, zero point 128: same real weights, exact accumulation); s8s8
    (activations - 128 as int8: a pair of products is at most ``2*128*127``); a VNNI CPU.

    Each row: ``fix``, ``saturated_pairs``, ``vs_exact`` (outputs differing from the exactly
    accumulated 8-bit result), ``max_diff``, ``note``. The s8s8 row gives the bound only
    (``vs_exact`` None): the engines' s8s8 kernels are not modelled. ``reduce_range`` differs from the 8-bit
    result through its coarser weights, not through saturation.
    """
    y0 = case.exact().astype(np.int64)
    rows = []

    def row(fix, y, nsat, note):
        d = None if y is None else np.asarray(y).astype(np.int64) - y0
        rows.append(
            {
                "fix": fix,
                "saturated_pairs": int(nsat),
                "vs_exact": None if d is None else int(np.count_nonzero(d)),
                "max_diff": None if d is None else int(np.abs(d).max()),
                "note": note,
            }
        )

    m = measure(case, engine)
    row("none (u8s8, no VNNI)", y0 + m.output_diff, m.saturated.sum(), resolve(engine).name)
    w7 = np.clip(np.rint(case.w.astype(np.float64) / 2.0), -64, 63).astype(np.int8)
    c7 = replace(case, w=w7, w_scale=(case.w_scale * np.float32(2)).astype(np.float32))
    m7 = measure(c7, engine)
    y7 = c7.conv(engine=resolve(engine).name)
    row("reduce_range (7-bit weights)", y7, m7.saturated.sum(), "coarser weights, no saturation")
    wu = (case.w.astype(np.int16) + 128).astype(np.uint8)
    cu = replace(case, w=wu, w_zero_point=128)
    row("u8u8 (uint8 weights)", cu.conv(engine="onnxruntime-u8u8"), 0, "onnxruntime-u8u8")
    bound = pair_bound(128, int(np.abs(case.w.astype(np.int64)).max()))
    row(
        "s8s8 (int8 activations)",
        None,
        0,
        f"centred pairs bounded by {bound} <= 32767 (computed; engine kernels not modelled)",
    )
    row("VNNI CPU", case.conv(engine="onnxruntime-vnni"), 0, "vpdpbusd: exact")
    return rows


def mismatch_rows(case: LayerCase, presets=None, *, run_engines: bool = True) -> list[dict]:
    """Each x86 preset against exact arithmetic and, where possible, against its engine.

    An engine is run when its preset is the one :func:`detect` picks on this CPU (in this
    process), or when the preset carries an environment override that forces that kernel path
    (``FBGEMM_ENABLE_INSTRUCTIONS``, ``ONEDNN_MAX_CPU_ISA``: run in a subprocess). Otherwise
    ``engine_vs_preset`` is ``None`` with the reason in ``note``.

    Returns
    -------
    list of dict
        ``preset``; ``preset_vs_exact`` (outputs differing from exact accumulation with
        ORT's float32 requantization, fxq's ``float32_rne``) and its ``max_diff``;
        ``saturation_only`` (differing from the same preset with exact accumulation: what the
        pairs alone change); ``engine_vs_preset``, ``engine_vs_exact``; ``outputs``; ``note``.
    """
    from .runners import EngineUnavailable, available, run_cases_in_subprocess, run_engine

    if presets is None:
        presets = [
            n
            for n, p in PRESETS.items()
            if p.runner is not None and np.dtype(case.w.dtype).name in p.w_dtypes
        ]
    here = {d.preset for d in detect().values()}
    y0 = case.exact().astype(np.int64)
    rows = []
    for name in presets:
        p = PRESETS[name]
        y = case.conv(engine=name).astype(np.int64)
        y_acc = case.conv(engine=replace(p, accumulate="exact")).astype(np.int64)
        r = {
            "preset": name,
            "preset_vs_exact": int(np.count_nonzero(y != y0)),
            "max_diff": int(np.abs(y - y0).max()),
            "saturation_only": int(np.count_nonzero(y != y_acc)),
            "engine_vs_preset": None,
            "engine_vs_exact": None,
            "outputs": int(y.size),
            "note": "",
        }
        ok, why = available(p.runner) if p.runner else (False, "no runner")
        if not run_engines:
            r["note"] = "engines not run"
        elif not ok:
            r["note"] = why
        elif name in here or p.env:
            try:
                if name in here:
                    ye = run_engine(p.runner, case.x, case.w, case.bias, **case.kwargs())
                    r["note"] = "this CPU"
                else:
                    ye = run_cases_in_subprocess(p.runner, [case.runner_case()], env=p.env)[0]
                    r["note"] = " ".join(f"{k}={v}" for k, v in p.env.items())
                ye = ye.astype(np.int64)
                r["engine_vs_preset"] = int(np.count_nonzero(ye != y))
                r["engine_vs_exact"] = int(np.count_nonzero(ye != y0))
            except EngineUnavailable as e:
                r["note"] = str(e)[:200]
        else:
            r["note"] = "kernel path not available on this CPU (preset only)"
        rows.append(r)
    return rows


def format_rows(rows, cols=None) -> str:
    """A list of dicts as a fixed-width text table."""
    if not rows:
        return ""
    cols = list(rows[0]) if cols is None else cols
    cell = [[("-" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cell)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(cols))]
    lines.append("  ".join("-" * wd for wd in widths))
    lines += ["  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip() for row in cell]
    return "\n".join(lines)


def weight_range_sweep(max_abs_values, *, engine="onnxruntime-avx2", **case_kw) -> dict:
    """Mismatch rate (outputs differing from exact) and saturated-pair fraction against the
    per-channel weight range ``max |w|``.

    Returns
    -------
    dict
        ``max_abs`` (list), ``mismatch_rate`` (list of float), ``pair_fraction`` (list).
    """
    rates, fracs = [], []
    vals = [int(v) for v in max_abs_values]
    for v in vals:
        case = make_case(weights="full_range", max_abs=v, **case_kw)
        m = measure(case, engine)
        rates.append(m.mismatches / m.output_diff.size)
        fracs.append(float(m.saturated.sum()) / max(m.pairs * case.w.shape[0], 1))
    return {"max_abs": vals, "mismatch_rate": rates, "pair_fraction": fracs}
