r"""Readable numpy int8 convolution: the oracle for the C kernel.

The integer convolution of TFLite's ``reference/integer_ops/conv.h``, written for reading, not
speed:

.. math::  acc[n,k,i,j] = \sum_{c,r,s} \big(x_{pad}[n, c, i\,s_h + r, j\,s_w + s] - z_x\big)\,
           w[k, c, r, s] + bias[k]

with the input padded by its zero point ``z_x`` (so a padded pixel contributes exactly 0, as in
ONNX Runtime and TFLite), symmetric int8 weights (zero point 0), no dilation. With ``groups`` g,
output channel k sees only the input channels of its group, ``c`` in
``[(k // (K/g)) (C/g), (k // (K/g) + 1) (C/g))`` (``groups = C = K`` is a depthwise convolution).
:func:`fully_connected_reference` is the same sum for a (N, C) input and (K, C) weights.
Accumulation is in int64, so the result is exact; it is returned as int32 after checking the
range. Requantize the result with :func:`fxq_explore.requantize` (``axis=1``) to get the output of
a quantized convolution.
"""

from __future__ import annotations

import numpy as np


def _pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def conv2d_reference(x, w, bias=None, *, x_zero_point=0, stride=1, padding=0, groups=1):
    """Exact int8 convolution in NCHW / OIHW, int64 accumulation, int32 result.

    Parameters
    ----------
    x : ndarray of uint8 or int8, shape (N, C, H, W)
    w : ndarray of int8, shape (K, C / groups, R, S)
    bias : ndarray of int32, shape (K,), or None
    x_zero_point : int
        Input zero point; also the value of the padded pixels.
    stride, padding : int or (int, int)
    groups : int
        Divides C and K; output channel k convolves the input channels of group
        ``k // (K / groups)`` only.

    Returns
    -------
    ndarray of int32, shape (N, K, OH, OW), ``OH = (H + 2*pad_h - R) // stride_h + 1``.

    Examples
    --------
    >>> x = np.array([[[[130, 128], [126, 129]]]], dtype=np.uint8)   # 1x1x2x2, zero point 128
    >>> w = np.array([[[[2]]]], dtype=np.int8)                        # 1x1 kernel
    >>> conv2d_reference(x, w, np.array([1], np.int32), x_zero_point=128)[0, 0].tolist()
    [[5, 1], [-3, 3]]
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    x = np.asarray(x)
    w = np.asarray(w)
    n, c, h, wd = x.shape
    k, c2, r, s = w.shape
    g = int(groups)
    if g < 1 or c % g or k % g:
        raise ValueError(f"groups={groups} must divide C={c} and K={k}")
    if c2 * g != c:
        raise ValueError(f"w has {c2} input channels per group, x has {c} / groups={g}")
    oh = (h + 2 * ph - r) // sh + 1
    ow = (wd + 2 * pw - s) // sw + 1
    # subtract the zero point first, then pad with 0: the same as padding with the zero point
    xc = x.astype(np.int64) - int(x_zero_point)
    xp = np.pad(xc, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    acc = np.zeros((n, k, oh, ow), dtype=np.int64)
    for i in range(r):
        for j in range(s):
            # the input pixels that kernel tap (i, j) meets, for every output pixel
            patch = xp[
                :, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw
            ]  # (N,C,OH,OW)
            tap = w[:, :, i, j].astype(np.int64)  # (K, C/g)
            kg, cg = k // g, c // g
            for gi in range(g):  # each group: its outputs, its inputs
                acc[:, gi * kg : (gi + 1) * kg] += np.einsum(
                    "nchw,kc->nkhw",
                    patch[:, gi * cg : (gi + 1) * cg],
                    tap[gi * kg : (gi + 1) * kg],
                    optimize=True,
                )
    if bias is not None:
        acc += np.asarray(bias, dtype=np.int64)[None, :, None, None]
    if acc.size and (acc.min() < -(2**31) or acc.max() > 2**31 - 1):
        raise ValueError("accumulators overflow int32")
    return acc.astype(np.int32)


def fully_connected_reference(x, w, bias=None, *, x_zero_point=0):
    """Exact int8 fully connected layer: ``acc[n, k] = sum_c (x[n, c] - z_x) w[k, c] + bias[k]``.

    Parameters
    ----------
    x : ndarray of uint8 or int8, shape (N, C)
    w : ndarray of int8, shape (K, C)
    bias : ndarray of int32, shape (K,), or None
    x_zero_point : int

    Returns
    -------
    ndarray of int32, shape (N, K) (int64 accumulation, range-checked).

    Examples
    --------
    >>> x = np.array([[130, 126]], dtype=np.uint8)
    >>> w = np.array([[1, 2], [-3, 1]], dtype=np.int8)
    >>> fully_connected_reference(x, w, x_zero_point=128).tolist()
    [[-2, -8]]
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x (N, C) and w (K, C) do not match: {x.shape}, {w.shape}")
    acc = (x.astype(np.int64) - int(x_zero_point)) @ w.astype(np.int64).T
    if bias is not None:
        acc += np.asarray(bias, dtype=np.int64)[None, :]
    if acc.size and (acc.min() < -(2**31) or acc.max() > 2**31 - 1):
        raise ValueError("accumulators overflow int32")
    return acc.astype(np.int32)
