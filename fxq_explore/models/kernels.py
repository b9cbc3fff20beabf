"""Integer kernels for replay: grouped / depthwise / strided / dilated convolution and matmul
in exact int64 (numpy), NHWC. Accumulation here is exact: what VNNI CPUs, the s8s8 and u8u8
kernels and the reference kernels compute. The x86 int16 pair saturation of u8 x s8 kernels
without VNNI is not in these kernels: ONNX replay under ``onnxruntime-avx2`` takes its
accumulators from :mod:`fxq_explore.kernels.accumulate` (``mlas_u8s8``, via
``fxq_explore.engines``' accumulators) instead (see ``onnx_qlinearconv`` / ``onnx_qgemm`` in
:mod:`fxq_explore.models.ops`); inspect() flags the risk. :func:`conv_nchw_exact` (QLinearConv)
takes its exact accumulators from fxq's C convolution where that kernel applies."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_nhwc(x, w, *, stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0), groups=1):
    """Exact integer convolution.

    Parameters
    ----------
    x : ndarray, (N, H, W, C) integer, the input *minus its zero point*
    w : ndarray, (O, KH, KW, C // groups) integer, the weights *minus their zero point*
    stride, dilation : (int, int)
    pads : (top, left, bottom, right), zero padding (zero in the offset domain = the zero point)
    groups : int, C and O divisible by it (groups == C: depthwise)

    Returns
    -------
    ndarray of int64, (N, Ho, Wo, O): the accumulators without bias.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    if c % groups or o % groups or c // groups != cg:
        raise ValueError(
            f"conv: input channels {c}, weight {w.shape} and groups {groups} do not match"
        )
    t, left, b, r = pads
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    win = sliding_window_view(xp, (ekh, ekw), axis=(1, 2))  # N,Ho',Wo',C,ekh,ekw
    win = win[:, :: stride[0], :: stride[1], :, :: dilation[0], :: dilation[1]]
    og = o // groups
    if cg == 1 and og == 1:  # depthwise, multiplier 1
        return np.einsum("nhwckl,ckl->nhwc", win, w[:, :, :, 0], optimize=True)
    outs = []
    for g in range(groups):
        xs = win[:, :, :, g * cg : (g + 1) * cg]
        ws = w[g * og : (g + 1) * og]
        outs.append(np.einsum("nhwckl,oklc->nhwo", xs, ws, optimize=True))
    return np.concatenate(outs, axis=-1)


def conv_nchw_exact(x, x_zero_point, w, w_zero_point, *, stride=(1, 1), dilation=(1, 1),
                    pads=(0, 0, 0, 0), groups=1):  # fmt: skip
    """Exact accumulators ``sum (x - x_zp) * (w - w_zp)`` of an NCHW convolution (no bias).

    Parameters
    ----------
    x : ndarray, (N, C, H, W) uint8 or int8, the raw input
    x_zero_point : int, in the range of x's dtype
    w : ndarray, (O, C // groups, KH, KW) int8 (or any integer), the raw weights
    w_zero_point : ndarray of int, length 1 or O
    stride, dilation, pads, groups : as :func:`conv_nhwc` (pads (top, left, bottom, right))

    Returns
    -------
    ndarray of int64, (N, O, Ho, Wo)

    Notes
    -----
    Where the C convolution of :func:`fxq_explore.kernels.conv.conv2d` computes the same
    numbers -- uint8 / int8 ``x``, int8 weights with zero point 0, no dilation, symmetric
    padding, and ``C * KH * KW * 255 * 128 < 2^31`` (its int32 accumulators cannot overflow) --
    the accumulators come from it (int32, exact); otherwise from :func:`conv_nhwc` (int64
    numpy). Both are exact, so the choice changes the speed only (tests/models checks every
    committed model against the engines).
    """
    zw = np.asarray(w_zero_point, dtype=np.int64).reshape(-1)
    t, left, b, r = pads
    kh, kw = w.shape[2], w.shape[3]
    ho = (x.shape[2] + t + b - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (x.shape[3] + left + r - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if (
        x.dtype in (np.uint8, np.int8)
        and w.dtype == np.int8
        and not zw.any()
        and tuple(dilation) == (1, 1)
        and (t, left) == (b, r)
        and ho > 0
        and wo > 0
        and x.shape[1] * kh * kw * 255 * 128 < 2**31
    ):
        try:
            from ..kernels.conv import conv2d

            acc = conv2d(
                x, w, None, x_zero_point=int(x_zero_point), stride=tuple(stride),
                padding=(t, left), groups=groups, scheme=None, layout="NCHW",
            )  # fmt: skip
            return np.asarray(acc).astype(np.int64)
        except ImportError:  # the C extension is not built: the numpy kernel below
            pass
    wn = w.astype(np.int64) - (zw.reshape(-1, 1, 1, 1) if zw.size > 1 else zw[0])
    xn = x.astype(np.int64).transpose(0, 2, 3, 1) - int(x_zero_point)
    return conv_nhwc(xn, wn.transpose(0, 2, 3, 1), stride=stride, dilation=dilation, pads=pads,
                     groups=groups).transpose(0, 3, 1, 2)  # fmt: skip


def same_pads(in_hw, k_hw, stride, dilation):
    """TFLite SAME padding (``ComputePaddingHeightWidth``): (top, left, bottom, right)."""
    pads = []
    for i in range(2):
        out = -(-in_hw[i] // stride[i])
        ek = dilation[i] * (k_hw[i] - 1) + 1
        total = max((out - 1) * stride[i] + ek - in_hw[i], 0)
        pads.append((total // 2, total - total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
