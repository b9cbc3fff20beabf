"""Tables the tutorial chapters print, computed here so that the chapters stay short calls.

* :func:`requantize_cost` -- chapter 05: what a separate requantization pass over int32
  accumulators costs per scheme, next to a plain memory copy and to the float epilogue, with the
  spread over repeated blocks; the C kernel alone and behind the public ``requantize`` wrapper.
* :func:`double_rounding_by_layer` and :func:`logit_gain` -- chapter 07: why the network's
  double-rounding mismatch rate is not chapter 03's ~0.1 %, and what a 4-bit calibration that
  clips does to the logits.

No scheme is named here: the chapters pass the scheme names they want to show.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable, Sequence

import numpy as np

from ..core.multiplier import decompose
from ..core.validate import dtype_range
from ..kernels import _ffi as kernels
from ..requantization import requantize
from ..studies import e2e

__all__ = [
    "time_blocks",
    "requantize_cost",
    "format_cost",
    "double_rounding_by_layer",
    "format_layers",
    "logit_gain",
]


def time_blocks(
    candidates: dict[str, Callable[[], object]], *, repeats: int = 7, block_s: float = 0.004
) -> dict[str, np.ndarray]:
    """Time each candidate in blocks of calls, the blocks of all candidates interleaved.

    Parameters
    ----------
    candidates : dict of str to callable
        Zero-argument callables.
    repeats : int, >= 1
        Blocks per candidate; the spread over them is the noise of the machine.
    block_s : float, > 0
        Target duration of one block (the number of calls per block is chosen from a warm-up).

    Returns
    -------
    dict of str to ndarray of float, shape (repeats,)
        Seconds per call in each block.
    """
    if repeats < 1 or block_s <= 0:
        raise ValueError(f"repeats must be >= 1 and block_s > 0; got {repeats}, {block_s}")
    number = {}
    for name, fn in candidates.items():
        fn()  # warm up (and fill caches of the wrapper)
        t = timeit.timeit(fn, number=1)
        number[name] = int(np.clip(block_s / max(t, 1e-9), 1, 2000))
    out = {name: np.empty(repeats) for name in candidates}
    for r in range(repeats):
        for name, fn in candidates.items():
            out[name][r] = timeit.timeit(fn, number=number[name]) / number[name]
    return out


def requantize_cost(
    acc: np.ndarray,
    scale: float,
    schemes: Sequence[str],
    *,
    baseline: str,
    repeats: int = 7,
) -> list[dict]:
    """Cost of requantizing ``acc`` once per scheme, relative to a memory copy and to ``baseline``.

    Three implementations per scheme: the C kernel called directly
    (``fxq_explore.kernels.requantize``, whose fast path skips the argument checks for an
    int32 C-contiguous array), the public ``fxq_explore.requantize(..., backend="c")`` (which
    checks and converts every accumulator first), and the numpy implementation. Two reference
    rows: a copy of the int32 array into a preallocated array (``memcpy`` speed) and a cast into a
    preallocated int8 array (read 4 bytes, write 1: the memory traffic of any requantization).

    Parameters
    ----------
    acc : ndarray of int32, C-contiguous
        The accumulators (e.g. the seed layer's 200 704).
    scale : float
        Per-tensor scale.
    schemes : sequence of str
        Schemes with a C kernel.
    baseline : str
        The float epilogue the ``vs_float`` column divides by (one of ``schemes``).
    repeats : int
        Blocks per row (:func:`time_blocks`).

    Returns
    -------
    list of dict
        ``name``, ``impl`` (``"reference"``, ``"C kernel"``, ``"requantize(backend='c')"``,
        ``"numpy"``), ``scheme``, ``median_us``, ``min_us``, ``max_us``, ``vs_copy`` (median over
        the copy's median) and ``vs_float`` (median over ``baseline``'s median in the same impl).
    """

    acc = np.ascontiguousarray(acc, dtype=np.int32)
    if baseline not in schemes:
        raise ValueError(f"baseline {baseline!r} must be one of schemes {list(schemes)}")
    copy_dst = np.empty_like(acc)
    cast_dst = np.empty(acc.shape, dtype=np.int8)
    cands: dict[str, Callable[[], object]] = {
        "memory copy int32 -> int32": lambda: np.copyto(copy_dst, acc),
        "cast int32 -> int8": lambda: np.copyto(cast_dst, acc, casting="unsafe"),
    }
    meta = {
        "memory copy int32 -> int32": ("reference", None),
        "cast int32 -> int8": ("reference", None),
    }
    impls = {
        "C kernel": lambda sch: lambda: kernels.requantize(acc, scale, sch),
        "requantize(backend='c')": lambda sch: lambda: requantize(acc, scale, sch, backend="c"),
        "numpy": lambda sch: lambda: requantize(acc, scale, sch),
    }
    for impl, make in impls.items():
        for sch in schemes:
            name = f"{impl}, {sch}"
            cands[name] = make(sch)
            meta[name] = (impl, sch)
    times = time_blocks(cands, repeats=repeats)
    med = {name: float(np.median(t)) for name, t in times.items()}
    copy = med["memory copy int32 -> int32"]
    rows = []
    for name, t in times.items():
        impl, sch = meta[name]
        base = med[f"{impl}, {baseline}"] if sch is not None else None
        rows.append(
            {
                "name": name,
                "impl": impl,
                "scheme": sch,
                "median_us": 1e6 * med[name],
                "min_us": 1e6 * float(t.min()),
                "max_us": 1e6 * float(t.max()),
                "vs_copy": med[name] / copy,
                "vs_float": None if base is None else med[name] / base,
            }
        )
    return rows


def format_cost(rows: list[dict]) -> str:
    """Plain-text table of :func:`requantize_cost` rows."""
    lines = [
        f"{'':<40} {'median us':>10} {'min..max us':>17} {'x copy':>8} {'x float':>8}",
    ]
    for r in rows:
        spread = f"{r['min_us']:.0f}..{r['max_us']:.0f}"
        vs_float = "" if r["vs_float"] is None else f"{r['vs_float']:.2f}"
        lines.append(
            f"{r['name']:<40} {r['median_us']:>10.1f} {spread:>17} {r['vs_copy']:>8.1f} "
            f"{vs_float:>8}"
        )
    return "\n".join(lines)


def double_rounding_by_layer(qm, q0: np.ndarray, double: str, reference: str) -> list[dict]:
    """Per layer of the digits network: how often ``double`` differs from ``reference``.

    Parameters
    ----------
    qm : fxq_explore.e2e.QuantizedModel
    q0 : ndarray of uint8, (N, 1, 8, 8)
        Quantized input images.
    double, reference : str
        The two schemes (e.g. a double-rounding scheme and exact rounding).

    Returns
    -------
    list of dict
        One row per layer: ``layer``; ``R_min``, ``R_max`` (the second rounding's right shift
        ``R = -shift`` over the output channels); ``inside`` (share of outputs not clamped);
        ``predicted`` (mean of ``2^-(R+1)`` over the unclamped outputs); ``local`` (measured on
        this layer's own accumulators, computed from the ``reference`` network's inputs);
        ``in_network`` (measured when the whole network runs with ``double``, so differences of
        earlier layers propagate) and ``size`` (outputs of the layer).
    """

    ref = e2e.replay_integer(qm, q0, reference)
    ref_outs = [ref.tensors[t] for t in e2e.TENSORS[1:4]]
    _, dbl_outs = e2e.run_integer(qm, q0, double)
    rows = []
    for i, (name, _, _) in enumerate(e2e.LAYERS):
        # the layer's accumulators (bias included) from the reference network's inputs
        acc = ref.sites[name]["acc"].astype(np.int32)
        m = np.asarray(qm.multipliers(i), dtype=np.float64)
        r_shift = -np.asarray(decompose(m).shift, dtype=np.int64)
        dt = qm.out_dtypes[i]
        qmin, qmax = dtype_range("dtype", dt)[:2]
        a = requantize(acc, m, reference, dtype=dt, axis=1)
        b = requantize(acc, m, double, dtype=dt, axis=1)
        real = acc * m[None, :, None, None]
        inside = (real > qmin - 0.5) & (real < qmax + 0.5)
        pred = np.where(inside, 2.0 ** -(r_shift[None, :, None, None] + 1.0), 0.0)
        rows.append(
            {
                "layer": name,
                "R_min": int(r_shift.min()),
                "R_max": int(r_shift.max()),
                "inside": float(inside.mean()),
                "predicted": float(pred.mean()),
                "local": float(np.mean(a != b)),
                "in_network": float(np.mean(dbl_outs[i] != ref_outs[i])),
                "size": int(a.size),
            }
        )
    return rows


def format_layers(rows: list[dict]) -> str:
    """Plain-text table of :func:`double_rounding_by_layer` rows."""
    lines = [
        f"{'layer':<6} {'R':>6} {'unclamped':>10} {'2^-(R+1)':>9} {'own acc':>8} "
        f"{'in network':>10} {'outputs':>8}"
    ]
    for r in rows:
        rr = f"{r['R_min']}..{r['R_max']}"
        lines.append(
            f"{r['layer']:<6} {rr:>6} {r['inside']:>10.1%} {r['predicted']:>9.3%} "
            f"{r['local']:>8.3%} {r['in_network']:>10.3%} {r['size']:>8}"
        )
    return "\n".join(lines)


def logit_gain(params: dict, qm, x: np.ndarray, scheme: str) -> dict:
    """How large the integer network's logits are next to fp32's, and what a gain would fix.

    Parameters
    ----------
    params : dict
        fp32 weights (``fxq_explore.e2e.load_params()``).
    qm : fxq_explore.e2e.QuantizedModel
    x : ndarray of float, (N, 1, 8, 8)
        Test images.
    scheme : str

    Returns
    -------
    dict
        ``norm_ratio`` (``||z_int|| / ||z_fp32||``), ``sqnr_db``, ``best_gain`` (the scalar
        ``g`` minimising ``||g·z_int - z_fp32||``) and ``sqnr_after_gain_db``.
    """

    z = e2e.forward_fp32(params, x)
    lq, _ = e2e.run_integer(qm, e2e.quantize_input(x), scheme)
    zh = lq.astype(np.float64) * qm.act_scales[3]
    g = float(np.sum(z * zh) / np.sum(zh * zh))

    def sqnr(approx):
        return float(10 * np.log10(np.sum(z**2) / np.sum((approx - z) ** 2)))

    return {
        "norm_ratio": float(np.linalg.norm(zh) / np.linalg.norm(z)),
        "sqnr_db": sqnr(zh),
        "best_gain": g,
        "sqnr_after_gain_db": sqnr(g * zh),
    }
