r"""Accumulation models: the int32 accumulator of a u8 x s8 convolution as each engine forms it.

On x86 without VNNI, the u8s8 kernels of ONNX Runtime (MLAS), FBGEMM and oneDNN multiply with
``vpmaddubsw``: it multiplies 32 (AVX2) or 64 (AVX-512BW) unsigned bytes of the activations by
signed bytes of the weights and adds **adjacent pairs** of products, saturating each pair sum to
int16; ``vpmaddwd`` with ones then widens to int32 exactly. Which two products form a pair is
fixed by how the engine packs the reduction dimension:

``pairs_flat_k``
    The reduction index runs over ``(kh, kw, c)`` with the channel fastest (an NHWC im2col), per
    group, and products ``2j`` and ``2j + 1`` are paired, the tail padded with zeros to a multiple
    of 4. Padded image pixels hold the raw input zero point. MLAS: ``qlinearconv.cc``
    (``ReorderFilter`` OIHW -> HWIO, ``math::Im2col<..., NHWC>`` filled with
    ``X_zero_point_value``), ``qgemm_kernel_avx2.cpp`` / ``QgemmU8X8KernelAvx2.S`` (PackedK = 4,
    ``vpbroadcastd`` of 4 A bytes, ``vpmaddubsw``, ``vpmaddwd`` by ones); ``convsym.cpp``
    (``MlasConvSymPackW``: 4 input channels of one tap per output channel; the kernel in
    ``ConvSymKernelAvx2.S`` ``MultiplyAccumulateRowAvx2`` pairs channels (c, c+1) of one tap,
    which is the same pairing since ConvSym needs ``C % 4 == 0``). FBGEMM: ``PackAWithIm2Col.cc``
    (``(r, s, ic)`` columns, padding = ``a_zero_pt``, columns padded to ``row_interleave = 4``
    with 0), ``PackingTraits-inl.h`` (``ROW_INTERLEAVE = 4``, ``KCB`` a multiple of 4),
    ``GenerateKernelU8S8S32ACC32.cc`` (``genComputeBlock``: ``vpbroadcastd``, ``vpmaddubsw``,
    ``vpmaddwd``), and its depthwise JIT ``GenerateI8Depthwise.cc`` (``genMaddEpi16xNPacked``:
    taps ``(kh, kw)`` in row-major order, 4 at a time, interleaved byte-wise so that taps
    ``(2j, 2j + 1)`` of one channel are paired; padded taps load the zero point) -- the same rule
    with one channel per group.
``mlas_u8s8``
    ``pairs_flat_k``, except depthwise convolutions, which MLAS computes exactly
    (``ConvSymKernelAvx2.S`` ``DepthwiseMultiplyAccumulateCellAvx2``: bytes widened to int32,
    ``vpmaddwd``; ``MlasConvDepthwise`` likewise widens before multiplying).
``pairs_per_tap``
    Channels ``(c, c+1)`` of the same tap are paired, each tap's channels padded with zeros to a
    multiple of 4, and padded pixels contribute nothing (oneDNN's jit kernels skip padded taps
    and fold the source zero point into a compensation term). This is the oneDNN model.
``exact``
    int64 sum of ``(x - z_x)(w - z_w)``: what VNNI (``vpdpbusd``), AMX, the u8u8 path (operands
    widened to int16, ``vpmaddwd``) and the reference kernels compute.

Everything except the pair saturation is exact int32 arithmetic in the engines (zero-point
corrections, row/column sums, bias), so a model's accumulator is the exact one plus
``sum(saturated pair sums) - sum(pair sums)`` over the raw operands the kernel multiplies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AccumulationModel",
    "MODELS",
    "get_model",
    "conv2d_accumulate",
    "PairStats",
    "im2col",
    "fbgemm_depthwise_fast_path",
]

INT16_MIN = -32768
INT16_MAX = 32767


@dataclass(frozen=True)
class AccumulationModel:
    """How an engine forms the int32 accumulator.

    Attributes
    ----------
    name : str
    pairing : {"none", "flat_k", "per_tap"}
        ``"none"``: exact. ``"flat_k"``: pairs ``(2j, 2j+1)`` of the ``(kh, kw, c)`` reduction
        index of each group. ``"per_tap"``: pairs of channels ``(c, c+1)`` within one tap.
    padded_pixel : {"zero_point", "zero"}
        Raw value the kernel multiplies at padded image positions.
    applies : {"all", "not_depthwise", "fbgemm_depthwise_fast_path"}
        Which layers saturate: all of them, all but depthwise ones (one input and one output
        channel per group), or only those that FBGEMM sends to its depthwise fast path
        (``FbgemmConv.cc`` ``takeDepthWiseFastPath``; its AVX2 JIT runs on VNNI CPUs too).
    description : str
    """

    name: str
    pairing: str
    padded_pixel: str = "zero_point"
    applies: str = "all"
    description: str = ""

    def saturates_on(self, wshape, stride, padding, groups) -> bool:
        """Whether this model pairs (and may saturate) on a layer of this shape."""
        if self.pairing == "none":
            return False
        k, cg, r, s = wshape
        depthwise = cg == 1 and k == groups
        if self.applies == "not_depthwise":
            return not depthwise
        if self.applies == "fbgemm_depthwise_fast_path":
            return fbgemm_depthwise_fast_path(wshape, stride, padding, groups)
        return True

    @property
    def saturates(self) -> bool:
        """Whether this model can saturate at all."""
        return self.pairing != "none"


MODELS: dict[str, AccumulationModel] = {
    m.name: m
    for m in (
        AccumulationModel(
            "exact", "none", description="exact int64 sum (VNNI, AMX, u8u8, reference)"
        ),
        AccumulationModel(
            "pairs_flat_k",
            "flat_k",
            "zero_point",
            "all",
            "int16-saturated pairs (2j, 2j+1) of the (kh, kw, c) reduction index (FBGEMM)",
        ),
        AccumulationModel(
            "mlas_u8s8",
            "flat_k",
            "zero_point",
            "not_depthwise",
            "pairs_flat_k; depthwise exact (ONNX Runtime MLAS without VNNI)",
        ),
        AccumulationModel(
            "fbgemm_vnni",
            "flat_k",
            "zero_point",
            "fbgemm_depthwise_fast_path",
            "exact, except FBGEMM's depthwise fast path (AVX2 JIT): pairs_flat_k",
        ),
        AccumulationModel(
            "pairs_per_tap",
            "per_tap",
            "zero",
            "all",
            "int16-saturated pairs of channels (c, c+1) of one tap; padded taps skipped (oneDNN)",
        ),
    )
}


def fbgemm_depthwise_fast_path(wshape, stride=1, padding=0, groups=1) -> bool:
    """FBGEMM ``takeDepthWiseFastPath`` (``src/FbgemmConv.cc``) for a 2-D conv.

    G == IC == OC (channel multiplier 1), G % 8 == 0, square 3x3 / 5x5 / 7x7 kernel, stride 1
    or 2, padding (R - 1) / 2 on every side, no dilation.
    """
    k, cg, r, s = wshape
    st = _pair("stride", stride)
    pd = _pair("padding", padding)
    return (
        cg == 1
        and k == groups
        and groups % 8 == 0
        and r == s
        and r in (3, 5, 7)
        and all(v in (1, 2) for v in st)
        and all(p == (r - 1) // 2 for p in pd)
    )


def get_model(model) -> AccumulationModel:
    """Resolve a model name (or pass an :class:`AccumulationModel` through)."""
    if isinstance(model, AccumulationModel):
        return model
    if model not in MODELS:
        raise ValueError(f"accumulate must be one of {sorted(MODELS)}, got {model!r}")
    return MODELS[model]


def _pair(name, v):
    if np.ndim(v) == 0:
        v = (v, v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    a, b = int(v[0]), int(v[1])
    return a, b


def im2col(x, r: int, s: int, *, stride=1, padding=0, pad_value=0):
    """Windows of an NCHW tensor, padded with ``pad_value``: shape (N, OH, OW, C, R, S).

    A view where possible (no copy of the windows).
    """
    (sh, sw), (ph, pw) = _pair("stride", stride), _pair("padding", padding)
    x = np.asarray(x)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(xp, (r, s), axis=(2, 3))
    win = win[:, :, ::sh, ::sw]  # (N, C, OH, OW, R, S)
    return win.transpose(0, 2, 3, 1, 4, 5)


@dataclass
class PairStats:
    """Pair statistics of one saturating accumulation.

    Attributes
    ----------
    saturated : ndarray of int64, (K,)
        Number of saturated pair sums per output channel (over all output positions).
    pairs : int
        Number of pair sums per output channel (output positions x pairs per output).
    error : ndarray of int64, (N, K, OH, OW)
        Model accumulator minus the exact accumulator.
    per_output : ndarray of int64, (N, K, OH, OW)
        Saturated pairs in each output's sum.
    per_pair : list of ndarray of int64, one (K/groups, P) array per group
        How often each pair slot ``j`` (products ``2j``, ``2j+1`` of the packed reduction
        vector) saturated, per output channel.
    layout : ndarray of int
        The packed reduction vector: indices into the ``(r, s, c)`` order, -1 = zero slot.
    """

    saturated: np.ndarray
    pairs: int
    error: np.ndarray
    per_output: np.ndarray | None = None
    per_pair: list | None = None
    layout: np.ndarray | None = None

    @property
    def fraction(self) -> np.ndarray:
        """Fraction of saturated pairs per output channel."""
        return self.saturated / max(self.pairs, 1)


def _pair_layout(pairing: str, r: int, s: int, cg: int) -> np.ndarray:
    """Indices into the flat (r, s, c) reduction vector, -1 = a zero slot; consecutive entries
    (2j, 2j+1) form a pair."""
    flat = np.arange(r * s * cg).reshape(r * s, cg)
    if pairing == "flat_k":
        idx = flat.ravel()
        pad = (-idx.size) % 4
        return np.concatenate([idx, -np.ones(pad, dtype=idx.dtype)])
    # per_tap: each tap's channels padded to a multiple of 4
    pad = (-cg) % 4
    return np.concatenate([flat, -np.ones((r * s, pad), dtype=flat.dtype)], axis=1).ravel()


def _saturated_sums(cols, wk, layout, chunk_elems=1 << 22):
    """sum over pairs of clamp16(x0*w0 + x1*w1) and the count of clamped pairs per column.

    cols : (M, Kflat) int32 raw activations; wk : (OC, Kflat) int32 raw weights.
    Returns (sums (M, OC) int64, saturated (OC,), per output (M, OC), per pair (OC, P)).
    """
    m = cols.shape[0]
    oc = wk.shape[0]
    safe = np.where(layout < 0, 0, layout)
    keep = (layout >= 0).astype(np.int32)
    xs = cols[:, safe] * keep  # (M, 2P)
    ws = wk[:, safe] * keep  # (OC, 2P)
    p = xs.shape[1] // 2
    x0, x1 = xs[:, 0::2], xs[:, 1::2]
    w0, w1 = ws[:, 0::2], ws[:, 1::2]
    out = np.empty((m, oc), dtype=np.int64)
    per_out = np.empty((m, oc), dtype=np.int64)
    per_pair = np.zeros((oc, p), dtype=np.int64)
    step = max(1, chunk_elems // max(1, oc * p))
    for a in range(0, m, step):
        b = min(m, a + step)
        ps = x0[a:b, None, :] * w0[None] + x1[a:b, None, :] * w1[None]  # (mb, OC, P) int32
        cl = np.clip(ps, INT16_MIN, INT16_MAX)
        hit = cl != ps
        per_out[a:b] = hit.sum(axis=2)
        per_pair += hit.sum(axis=0)
        out[a:b] = cl.sum(axis=2, dtype=np.int64)
    return out, per_out.sum(axis=0), per_out, per_pair


def conv2d_accumulate(
    x,
    w,
    *,
    x_zero_point: int = 0,
    w_zero_point=0,
    stride=1,
    padding=0,
    groups: int = 1,
    accumulate="exact",
    return_stats: bool = False,
):
    r"""int32 accumulators of a quantized NCHW convolution under an accumulation model.

    .. math:: acc[n,k,i,j] = \sum_{c,r,s} (x_{pad} - z_x)(w[k,c,r,s] - z_w[k])
              \;+\; \sum_{pairs} \big(\mathrm{clamp}_{16}(p_0 + p_1) - (p_0 + p_1)\big)

    where the second sum (zero for ``"exact"``) runs over the raw u8 x s8 products the engine
    pairs (see the module docstring). Bias is *not* included.

    Parameters
    ----------
    x : ndarray of uint8 or int8, (N, C, H, W)
    w : ndarray of int8 or uint8, (K, C // groups, R, S)
    x_zero_point : int
    w_zero_point : int or ndarray (K,)
    stride, padding : int or (int, int), stride >= 1, padding >= 0
    groups : int, divides C and K
    accumulate : str or AccumulationModel
        One of :data:`MODELS`.
    return_stats : bool
        Also return a :class:`PairStats` (``None`` for exact models).

    Returns
    -------
    ndarray of int64, (N, K, OH, OW)  [, PairStats or None]

    Examples
    --------
    >>> x = np.full((1, 2, 1, 1), 255, np.uint8); w = np.full((1, 2, 1, 1), 127, np.int8)
    >>> int(conv2d_accumulate(x, w)[0, 0, 0, 0])                          # 2 * 255 * 127
    64770
    >>> int(conv2d_accumulate(x, w, accumulate="pairs_flat_k")[0, 0, 0, 0])  # int16 max
    32767
    """
    model = get_model(accumulate)
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"x and w must be 4-D (NCHW, OIHW); got shapes {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    groups = int(groups)
    if groups < 1 or c % groups or k % groups or c // groups != cg:
        raise ValueError(
            f"groups={groups} does not fit x with {c} channels and w of shape {w.shape} "
            "(need C % groups == 0, K % groups == 0, w.shape[1] == C // groups)"
        )
    (sh, sw), (ph, pw) = _pair("stride", stride), _pair("padding", padding)
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got {stride!r}, {padding!r}")
    oh = (h + 2 * ph - r) // sh + 1
    ow = (wd + 2 * pw - s) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {r}x{s} larger than the padded input {h}x{wd}")
    xzp = int(x_zero_point)
    wzp = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64), (k,))
    kg = k // groups
    # exact part: (x - zx) padded with 0, (w - zw); float64 matmul is exact here (< 2^53)
    win = im2col(x.astype(np.int64) - xzp, r, s, stride=(sh, sw), padding=(ph, pw))
    m = n * oh * ow
    acc = np.empty((m, k), dtype=np.int64)
    wc = w.astype(np.int64) - wzp[:, None, None, None]
    for g in range(groups):
        cols = win[..., g * cg : (g + 1) * cg, :, :].reshape(m, cg * r * s)
        wg = wc[g * kg : (g + 1) * kg].reshape(kg, cg * r * s)
        acc[:, g * kg : (g + 1) * kg] = np.rint(
            cols.astype(np.float64) @ wg.T.astype(np.float64)
        ).astype(np.int64)
    stats = None
    if model.saturates_on(w.shape, (sh, sw), (ph, pw), groups):
        pad_raw = xzp if model.padded_pixel == "zero_point" else 0
        raw = im2col(x.astype(np.int32), r, s, stride=(sh, sw), padding=(ph, pw), pad_value=pad_raw)
        layout = _pair_layout(model.pairing, r, s, cg)
        err = np.empty((m, k), dtype=np.int64)
        nsat = np.zeros(k, dtype=np.int64)
        per_out = np.empty((m, k), dtype=np.int64)
        per_pair = []
        for g in range(groups):
            # (M, R, S, Cg) -> flat (r, s, c), channel fastest
            cols = raw[..., g * cg : (g + 1) * cg, :, :].transpose(0, 1, 2, 4, 5, 3)
            cols = np.ascontiguousarray(cols.reshape(m, r * s * cg))
            wg = w[g * kg : (g + 1) * kg].astype(np.int32).transpose(0, 2, 3, 1).reshape(kg, -1)
            sat, ns, po, pp = _saturated_sums(cols, wg, layout)
            plain = cols.astype(np.float64) @ wg.T.astype(np.float64)  # exact (< 2^53)
            err[:, g * kg : (g + 1) * kg] = sat - np.rint(plain).astype(np.int64)
            nsat[g * kg : (g + 1) * kg] = ns
            per_out[:, g * kg : (g + 1) * kg] = po
            per_pair.append(pp)
        acc += err
        stats = PairStats(
            saturated=nsat,
            pairs=m * (layout.size // 2),
            error=err.reshape(n, oh, ow, k).transpose(0, 3, 1, 2),
            per_output=per_out.reshape(n, oh, ow, k).transpose(0, 3, 1, 2),
            per_pair=per_pair,
            layout=layout,
        )
    out = acc.reshape(n, oh, ow, k).transpose(0, 3, 1, 2)
    if return_stats:
        if stats is None:
            stats = PairStats(
                saturated=np.zeros(k, np.int64),
                pairs=0,
                error=np.zeros_like(out),
                per_output=np.zeros_like(out),
            )
        return out, stats
    return out
