"""The seed thread's two graphs, rebuilt and runnable.

"[Quantization] float multiplication after CONV" (discuss.tvm.ai/t/4135, 2019) showed two
``relay.quantize`` outputs for the same NCHW16c conv layer (TVM PR #4160 and the forum thread it cites):

graph 1, power-of-two scales (the default qconfig)::

    conv (int32) -> add bias -> relu -> add 64 -> right_shift 7 -> clip(-127, 127) -> cast uint8

graph 2, KL-calibrated scales (not powers of two), before TVM PR #4160::

    conv (int32) -> cast float32 -> multiply 0.0018843 -> round -> clip(-127, 127) -> cast int32
    -> multiply (int32 tensor) -> add (int32 tensor) -> relu
    -> cast float32 -> multiply 0.0340026 -> round -> clip(-127, 127) -> cast uint8

:func:`replay` runs both on deterministic synthetic data of the seed's shapes, plus graph 2 with
each float multiply replaced by TVM's fixed-point multiply (PR #4160, ``rounding="UPWARD"``),
and compares the three uint8 outputs.

Which fixed-point multiplier
    ``realize`` divided the two scales in **float32** (``idom_scale_imm / odom_scale_imm``), then
    ``GetFixedPointMultiplierShift`` turned that float32 value, widened to double, into a Q31
    multiplier. We take the printed constants as those float32 ratios, so the multipliers are
    ``(2071809792, -9)`` and ``(1168320384, -4)``; a double ratio would give ``(2071809760, -9)``
    and ``(1168320440, -4)`` (``ratio_precision="float64"``).

Which ``round``
    The compiled graph used ``llvm.round`` (ties away from zero); ``float_round="even"`` gives
    numpy's ``rint`` (ties to even), which is what constant folding used.

What the replay shows (``replay(0)``, 200 704 outputs): the float graph and the fixed-point
graph agree on **every** element, at both stages. A float32 product ``f32(acc)·f32(M)`` of
magnitude ~10 is off by at most ~1e-6 from the exact product, so it can round differently
only within ~1e-6 of a half-integer (expected ~0.4 elements here), and exact ties of
``acc·q·2^-40`` cannot occur with a 24-bit float32 mantissa in ``q``. Using the double ratio
instead of the float32 one changes no output either. PR #4160's change was about making the
graph integer-only, not about its values; the power-of-two graph, which approximates the
same layer (see :func:`make_inputs`), differs in ~40 % of the outputs by up to 8 codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import validate
from ..kernels.conv import conv2d

__all__ = [
    "SEED_SHAPE",
    "SEED_WEIGHT_SHAPE",
    "M1",
    "M2",
    "make_inputs",
    "replay",
    "SeedReplay",
    "fixed_point_multiplier",
]

#: Input shape of the seed layer, NCHW16c: (N, C/16, H, W, 16), uint8.
SEED_SHAPE = (1, 4, 56, 56, 16)
#: Weight shape, (K/16, C/16, R, S, 4, 16, 4), int8 (TVM's OIHW4i16o4i).
SEED_WEIGHT_SHAPE = (4, 4, 3, 3, 4, 16, 4)
#: The two float multipliers printed in graph 2.
M1 = 0.0018843
M2 = 0.0340026


def fixed_point_multiplier(ratio, ratio_precision="float32"):
    """TVM ``GetFixedPointMultiplierShift`` of a ratio: ``(q, shift)``, ``ratio ~ q·2^(shift-31)``.

    Parameters
    ----------
    ratio : float, > 0
    ratio_precision : {"float32", "float64"}
        ``"float32"``: the ratio is first rounded to binary32, as ``relay.quantize``'s realize
        computed it.

    Returns
    -------
    (int, int)
        ``q`` in ``[2^30, 2^31)`` and the signed (left) shift ``e``.

    Notes
    -----
    :math:`(f, e) = \\mathrm{frexp}(r)`, :math:`q = \\mathrm{round}(f\\cdot 2^{31})` (half away from
    zero); :math:`q = 2^{31}` is renormalised to :math:`(2^{30}, e+1)`.

    Examples
    --------
    >>> fixed_point_multiplier(0.0018843)
    (2071809792, -9)
    >>> fixed_point_multiplier(0.0018843, "float64")
    (2071809760, -9)
    """
    if ratio_precision not in ("float32", "float64"):
        raise ValueError(
            f"unknown ratio_precision {ratio_precision!r}; valid: 'float32', 'float64'"
        )
    r = float(np.float32(ratio)) if ratio_precision == "float32" else float(ratio)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"ratio must be positive and finite; got {ratio!r}")
    f, e = math.frexp(r)
    q = math.floor(f * 2**31 + 0.5)  # f > 0: half away from zero
    if q == 2**31:
        q, e = 2**30, e + 1
    return int(q), int(e)


def _fixed_point_multiply(x, q, e, rounding="UPWARD"):
    """TVM ``qnn::FixedPointMultiply(cast(x, int64), ratio, rounding)``, then cast int32.

    ``p = (x << max(e,0)) * q``, ``t = 31 + max(-e,0)``; UPWARD: ``(p + 2^(t-1)) >> t`` (one
    rounding, half up); TONEAREST: the rounder is ``2^(t-1) - 1`` for ``p < 0`` (half away
    from zero).
    """
    x = np.asarray(x, dtype=np.int64)
    left, right = max(e, 0), max(-e, 0)
    total = 31 + right
    p = (x << left) * np.int64(q)
    rounder = np.int64(1) << (total - 1)
    if rounding == "TONEAREST":
        rounder = np.where(p >= 0, rounder, rounder - 1)
    return ((p + rounder) >> total).astype(np.int32)


def _round(v, mode):
    """Round float32 ``v``: ``"away"`` = llvm.round / C ``roundf``; ``"even"`` = ``rint``."""
    if mode == "even":
        return np.rint(v)
    t = np.trunc(v)
    frac = v - t  # exact for binary floats
    return t + np.where(np.abs(frac) >= 0.5, np.sign(v), 0).astype(v.dtype)


def make_inputs(seed=0, shape=SEED_SHAPE, out_blocks=None):
    """Deterministic synthetic tensors in the seed's shapes and of realistic magnitude.

    Parameters
    ----------
    seed : int
        Seed of ``np.random.default_rng``.
    shape : tuple of 5 ints
        Input shape ``(N, C/16, H, W, 16)``; the seed's is ``(1, 4, 56, 56, 16)``.
    out_blocks : int, optional
        Output channel blocks ``K/16`` (default: ``C/16``, as in the seed).

    Returns
    -------
    dict
        ``x`` uint8 (post-ReLU-like activations in 0..127, ~40 % zeros), ``w`` int8
        ``(K/16, C/16, 3, 3, 4, 16, 4)`` (normal, sigma 12, clipped to ±127), ``bias`` int32
        ``(K/16, 1, 1, 16)`` for graph 1, ``mul`` / ``add`` int32 ``(K/16, 1, 1, 16)`` for
        graph 2. The parameters make both graphs approximate the same real layer:
        ``mul`` in 116..128 so that ``mul·M1·M2 ~ 2^-7`` (graph 1's shift) within 5 %, and
        ``add = round(bias·M1·mul)``; the outputs then differ only by each graph's rounding
        and that per-channel gain.
    """
    seed = validate.int_in_range("seed", seed, 0, 2**63 - 1)
    shape = validate.shape("shape", shape, 5)
    if shape[4] != 16:
        raise ValueError(f"shape must be (N, C/16, H, W, 16); got last entry {shape[4]}")
    kb = (
        shape[1] if out_blocks is None else validate.int_in_range("out_blocks", out_blocks, 1, 4096)
    )
    n_in = math.prod(shape)
    n_out = shape[0] * kb * shape[2] * shape[3] * 16
    # float64 draws of the input (2 x 8 bytes), the weights' normal draw, ~12 int32/float32
    # intermediates per output element of the two graphs
    validate.memory(
        "shape",
        16 * n_in + 8 * kb * shape[1] * 9 * 256 + 48 * n_out,
        f"the seed replay at shape {shape} with {kb} output blocks",
    )
    rng = np.random.default_rng(seed)
    mag = rng.exponential(20.0, size=shape)
    keep = rng.random(shape) > 0.4
    x = np.clip(np.rint(mag) * keep, 0, 127).astype(np.uint8)
    w = np.clip(
        np.rint(rng.normal(0.0, 12.0, size=(kb, shape[1], 3, 3, 4, 16, 4))), -127, 127
    ).astype(np.int8)
    bias = np.rint(rng.normal(0.0, 2000.0, size=(kb, 1, 1, 16))).astype(np.int32)
    # graph 2 should compute the same real layer as graph 1: mul * M1 * M2 ~ 2^-7 (+-5 %)
    # and add ~ bias * M1 * mul (the bias carried through the first requantization)
    mul = rng.integers(116, 129, size=(kb, 1, 1, 16)).astype(np.int32)
    add = np.rint(bias.astype(np.float64) * M1 * mul).astype(np.int32)
    return {"x": x, "w": w, "bias": bias, "mul": mul, "add": add}


def _conv_nchw16c_numpy(x, w):
    """int32 3x3 conv, stride 1, pad 1, NCHW16c / OIHW4i16o4i, in numpy (fallback)."""
    n, cb, h, wd, _ = x.shape
    kb = w.shape[0]
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)))
    # w[ko, ci, r, s, a, ki, b]: input channel ci*16 + 4a + b, output channel ko*16 + ki
    wc = w.astype(np.int64).transpose(0, 5, 1, 4, 6, 2, 3).reshape(kb, 16, cb, 16, 3, 3)
    acc = np.zeros((n, kb, h, wd, 16), dtype=np.int64)
    for r in range(3):
        for s in range(3):
            acc += np.einsum(
                "nchwi,koci->nkhwo",
                xp[:, :, r : r + h, s : s + wd, :],
                wc[:, :, :, :, r, s],
                optimize=True,
            )
    return acc.astype(np.int32)


def _conv(x, w, backend, check):
    """Run the conv on the C kernel (checked against the reference) or the numpy fallback."""
    if backend == "numpy":
        return _conv_nchw16c_numpy(x, w), "numpy (fxq_explore.seed fallback)", None
    kw = dict(scale=1.0, padding=1, stride=1, scheme=None, layout="NCHW16c")
    acc = np.asarray(conv2d(x, w, backend=backend, **kw)).astype(np.int32)
    ok = None
    if check and backend != "reference":
        ref = np.asarray(conv2d(x, w, backend="reference", **kw)).astype(np.int32)
        ok = bool(np.array_equal(acc, ref))
        if not ok:
            raise AssertionError(
                "fxq_explore.kernels.conv: C kernel and reference disagree on the seed conv"
            )
    return acc, f"fxq_explore.kernels.conv.conv2d(backend={backend!r})", ok


@dataclass
class SeedReplay:
    """Result of :func:`replay`: the three outputs, the intermediates and a comparison.

    Attributes
    ----------
    pow2, float, fixed : ndarray, uint8, shape (N, K/16, H, W, 16)
        Graph 1, graph 2 as printed, graph 2 with fixed-point multiplies.
    inputs : dict
        ``x``, ``w``, ``bias``, ``mul``, ``add`` (see :func:`make_inputs`).
    intermediates : dict
        ``fixed_other_ratio`` (uint8 output of the fixed graph with the multipliers of the
        other ``ratio_precision``), ``acc`` (int32 conv), ``pow2_relu`` (int32 after bias +
        relu), ``float_stage1`` / ``fixed_stage1`` (int32 after the first multiply, round,
        clip), ``float_stage2`` /
        ``fixed_stage2`` (int32 after multiply by ``mul``, add ``add``, relu).
    multipliers : dict
        ``(q, shift)`` used for 0.0018843 and 0.0340026.
    conv_backend : str
    """

    pow2: np.ndarray
    float: np.ndarray
    fixed: np.ndarray
    inputs: dict = field(repr=False)
    intermediates: dict = field(repr=False)
    multipliers: dict
    conv_backend: str
    conv_checked: object = None

    def table(self):
        """Rows comparing the outputs (and the two stages of float vs fixed).

        Returns
        -------
        list of dict
            ``a``, ``b``, ``elements``, ``mismatches``, ``fraction``, ``max_abs_diff``.
        """
        it = self.intermediates
        pairs = [
            ("float", "fixed", self.float, self.fixed),
            ("float", "pow2", self.float, self.pow2),
            ("fixed", "pow2", self.fixed, self.pow2),
            ("fixed", "fixed, other ratio", self.fixed, it["fixed_other_ratio"]),
            ("float stage 1 (x0.0018843)", "fixed stage 1", it["float_stage1"], it["fixed_stage1"]),
            (
                "float stage 2 (mul, add, relu)",
                "fixed stage 2",
                it["float_stage2"],
                it["fixed_stage2"],
            ),
        ]
        rows = []
        for a, b, u, v in pairs:
            d = np.abs(u.astype(np.int64) - v.astype(np.int64))
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "elements": int(d.size),
                    "mismatches": int(np.count_nonzero(d)),
                    "fraction": float(np.count_nonzero(d) / d.size),
                    "max_abs_diff": int(d.max()),
                }
            )
        return rows

    def __str__(self):
        rows = self.table()
        head = (
            f"{'a':<32} {'b':<20} {'elements':>9} {'mismatches':>10} {'fraction':>9} {'max|d|':>6}"
        )
        lines = [head, "-" * len(head)]
        for r in rows:
            lines.append(
                f"{r['a']:<32} {r['b']:<20} {r['elements']:>9} {r['mismatches']:>10} "
                f"{r['fraction']:>9.2e} {r['max_abs_diff']:>6}"
            )
        m = self.multipliers
        other = "float64" if m["ratio_precision"] == "float32" else "float32"
        lines.append(
            f"fixed-point multipliers (q, shift) from a {m['ratio_precision']} ratio: "
            f"0.0018843 -> {m['M1']}, 0.0340026 -> {m['M2']}; "
            f"other ratio ({other}): {m['M1_other']}, {m['M2_other']}"
        )
        lines.append(f"conv: {self.conv_backend}")
        return "\n".join(lines)

    def _repr_html_(self):
        rows = self.table()
        cells = "".join(
            f"<tr><td>{r['a']}</td><td>{r['b']}</td><td>{r['elements']}</td>"
            f"<td>{r['mismatches']}</td><td>{r['fraction']:.2e}</td>"
            f"<td>{r['max_abs_diff']}</td></tr>"
            for r in rows
        )
        return (
            "<table><thead><tr><th>a</th><th>b</th><th>elements</th><th>mismatches</th>"
            "<th>fraction</th><th>max |diff|</th></tr></thead><tbody>" + cells + "</tbody></table>"
        )


def replay(
    seed=0,
    *,
    shape=SEED_SHAPE,
    out_blocks=None,
    backend="c",
    check=True,
    float_round="away",
    ratio_precision="float32",
    rounding="UPWARD",
):
    """Run the seed thread's graphs on synthetic data.

    Parameters
    ----------
    seed : int
        Seed for :func:`make_inputs`.
    shape : tuple of 5 ints
        Input shape ``(N, C/16, H, W, 16)``; small shapes run the same graphs quickly.
    out_blocks : int, optional
        Output channel blocks (default ``C/16``).
    backend : {"c", "reference", "numpy"}
        Conv implementation: ``fxq_explore.conv.conv2d`` with ``layout="NCHW16c"`` (``"c"``
        falls back to this module's numpy conv if ``fxq_explore.conv`` is missing), or the numpy
        fallback.
    check : bool
        With ``backend="c"``, also run ``backend="reference"`` and raise if they differ.
    float_round : {"away", "even"}
        ``round`` in graph 2: ``llvm.round`` (ties away, the compiled graph) or ``rint``.
    ratio_precision : {"float32", "float64"}
        Precision of the ratio given to the fixed-point multiplier (see the module docstring).
    rounding : {"UPWARD", "TONEAREST"}
        The qconfig ``rounding`` of PR #4160 used by the fixed graph (default ``"UPWARD"``).

    Returns
    -------
    SeedReplay

    Examples
    --------
    >>> r = replay(0, shape=(1, 1, 6, 6, 16), backend="numpy")
    >>> r.fixed.shape, r.fixed.dtype
    ((1, 1, 6, 6, 16), dtype('uint8'))
    """
    validate.flag("check", check)
    if float_round not in ("away", "even"):
        raise ValueError(f"unknown float_round {float_round!r}; valid: 'away', 'even'")
    if rounding not in ("UPWARD", "TONEAREST"):
        raise ValueError(f"unknown rounding {rounding!r}; valid: 'UPWARD', 'TONEAREST'")
    if ratio_precision not in ("float32", "float64"):
        raise ValueError(
            f"unknown ratio_precision {ratio_precision!r}; valid: 'float32', 'float64'"
        )
    if backend not in ("c", "reference", "numpy"):
        raise ValueError(f"unknown backend {backend!r}; valid: 'c', 'reference', 'numpy'")
    inp = make_inputs(seed, shape, out_blocks)
    acc, conv_backend, ok = _conv(inp["x"], inp["w"], backend, check)
    bias, mul, add = inp["bias"], inp["mul"], inp["add"]  # (K/16, 1, 1, 16) broadcast

    # graph 1: power-of-two scales
    g1 = np.maximum(acc + bias, 0)
    pow2 = np.clip((g1 + 64) >> 7, -127, 127).astype(np.uint8)

    # graph 2 as printed: float32 multiplies
    m1, m2 = np.float32(M1), np.float32(M2)
    f1 = np.clip(_round(acc.astype(np.float32) * m1, float_round), -127, 127).astype(np.int32)
    f2 = np.maximum(f1 * mul + add, 0)
    out_float = np.clip(_round(f2.astype(np.float32) * m2, float_round), -127, 127)
    out_float = out_float.astype(np.uint8)

    # graph 2 after PR #4160: fixed-point multiplies, rounding UPWARD
    q1 = fixed_point_multiplier(M1, ratio_precision)
    q2 = fixed_point_multiplier(M2, ratio_precision)
    x1 = np.clip(_fixed_point_multiply(acc, *q1, rounding), -127, 127).astype(np.int32)
    x2 = np.maximum(x1 * mul + add, 0)
    out_fixed = np.clip(_fixed_point_multiply(x2, *q2, rounding), -127, 127).astype(np.uint8)

    d1 = fixed_point_multiplier(M1, "float64" if ratio_precision == "float32" else "float32")
    d2 = fixed_point_multiplier(M2, "float64" if ratio_precision == "float32" else "float32")
    y1 = np.clip(_fixed_point_multiply(acc, *d1, rounding), -127, 127).astype(np.int32)
    y2 = np.maximum(y1 * mul + add, 0)
    out_alt = np.clip(_fixed_point_multiply(y2, *d2, rounding), -127, 127).astype(np.uint8)

    inter = {
        "fixed_other_ratio": out_alt,
        "acc": acc,
        "pow2_relu": g1,
        "float_stage1": f1,
        "fixed_stage1": x1,
        "float_stage2": f2,
        "fixed_stage2": x2,
    }
    mults = {
        "M1": q1,
        "M2": q2,
        "M1_other": d1,
        "M2_other": d2,
        "ratio_precision": ratio_precision,
        "rounding": rounding,
    }
    return SeedReplay(pow2, out_float, out_fixed, inp, inter, mults, conv_backend, ok)
