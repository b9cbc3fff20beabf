"""Quantized 2-D convolution with fused requantization: the friendly API over the C kernel.

:func:`conv2d` checks every argument, then runs either the C kernel (``backend="c"``: AVX-512 VNNI,
AVX2 or scalar, see :mod:`fxq_explore.kernels`) or the readable numpy oracle
(``backend="reference"``: :func:`fxq_explore.reference.conv2d_reference` followed by
:func:`fxq_explore.requantize`). Both give bit-identical results.

Layouts
-------
``"NCHW"``
    x ``(N, C, H, W)``, w ``(K, C, R, S)`` (OIHW), output ``(N, K, OH, OW)``.
``"NCHW16c"``
    The seed's blocked layouts: x ``(N, C/16, H, W, 16)``, w ``(K/16, C/16, R, S, 4, 16, 4)``
    (OIHW4i16o4i: ``w16[ko, ci, r, s, a, k, b] = w[16 ko + k, 16 ci + 4 a + b, r, s]``, the order
    ``vpdpbusd`` consumes), output ``(N, K/16, OH, OW, 16)``. ``C`` and ``K`` are multiples of 16.
    :func:`nchw_to_nchw16c`, :func:`oihw_to_oihw4i16o4i` and their inverses convert.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..core import validate as _validate
from ..schemes import POW2_MODES, SCHEMES
from ..schemes import requantize_numpy as requantize
from . import _ffi as kernels
from ._ffi import FUSED_SCHEMES
from .reference import conv2d_reference, fully_connected_reference

__all__ = [
    "conv2d",
    "Conv2d",
    "nchw_to_nchw16c",
    "nchw16c_to_nchw",
    "oihw_to_oihw4i16o4i",
    "oihw4i16o4i_to_oihw",
    "LAYOUTS",
    "FUSED_SCHEMES",
    "fully_connected",
    "linear",
    "FullyConnected",
]

LAYOUTS = ("NCHW", "NCHW16c")
BACKENDS = ("c", "reference")
# FUSED_SCHEMES (from kernels): schemes requantized in registers inside the C convolution; the
# others run conv, then numpy.  Whether a call fuses is kernels.fusion_plan's decision.
_INT31 = 2**31


# ---------------------------------------------------------------------------------------------
# layout converters


def _need_array(name, a, ndim):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy ndarray; got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have rank {ndim}; got shape {a.shape}")


def nchw_to_nchw16c(x):
    """``(N, C, H, W)`` -> ``(N, C/16, H, W, 16)`` (a C-contiguous copy); C a multiple of 16."""
    _need_array("x", x, 4)
    n, c, h, w = x.shape
    if c % 16:
        raise ValueError(f"x must have a channel count that is a multiple of 16; got C={c}")
    return np.ascontiguousarray(x.reshape(n, c // 16, 16, h, w).transpose(0, 1, 3, 4, 2))


def nchw16c_to_nchw(x):
    """``(N, C/16, H, W, 16)`` -> ``(N, C, H, W)`` (a C-contiguous copy)."""
    _need_array("x", x, 5)
    n, cb, h, w, b = x.shape
    if b != 16:
        raise ValueError(f"x must have 16 as its last dimension; got shape {x.shape}")
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(n, cb * 16, h, w))


def oihw_to_oihw4i16o4i(w):
    """``(K, C, R, S)`` -> ``(K/16, C/16, R, S, 4, 16, 4)``; K and C multiples of 16."""
    _need_array("w", w, 4)
    k, c, r, s = w.shape
    if k % 16 or c % 16:
        raise ValueError(f"w must have K and C multiples of 16; got K={k}, C={c}")
    # index (kb, k16, cb, a, b, r, s) -> (kb, cb, r, s, a, k16, b)
    return np.ascontiguousarray(
        w.reshape(k // 16, 16, c // 16, 4, 4, r, s).transpose(0, 2, 5, 6, 3, 1, 4)
    )


def oihw4i16o4i_to_oihw(w):
    """``(K/16, C/16, R, S, 4, 16, 4)`` -> ``(K, C, R, S)``."""
    _need_array("w", w, 7)
    kb, cb, r, s, a, k16, b = w.shape
    if (a, k16, b) != (4, 16, 4):
        raise ValueError(f"w must end in (4, 16, 4); got shape {w.shape}")
    return np.ascontiguousarray(w.transpose(0, 5, 1, 4, 6, 2, 3).reshape(kb * 16, cb * 16, r, s))


# ---------------------------------------------------------------------------------------------
# argument checks


def _pair(name, v, lo):
    if type(v) is int:  # fast path for the common case
        if not lo <= v < _INT31:
            raise ValueError(f"{name} must be >= {lo} (and < 2^31); got {(v, v)}")
        return (v, v)
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a pair of ints >= {lo}; got {v!r}")
    elif isinstance(v, numbers.Integral):
        v = (v, v)
    try:
        v = tuple(v)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints >= {lo}; got {v!r}") from None
    if len(v) != 2 or any(
        isinstance(e, (bool, np.bool_)) or not isinstance(e, numbers.Integral) for e in v
    ):
        raise TypeError(f"{name} must be an int or a pair of ints >= {lo}; got {v!r}")
    v = (int(v[0]), int(v[1]))
    if min(v) < lo or max(v) >= _INT31:
        raise ValueError(f"{name} must be >= {lo} (and < 2^31); got {v}")
    return v


_DT = {np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8", np.dtype(np.int32): "int32"}


def _array(name, a, dtypes):
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy ndarray of dtype {' or '.join(dtypes)}; got {type(a).__name__}"
        )
    if _DT.get(a.dtype) not in dtypes:
        raise TypeError(f"{name} must have dtype {' or '.join(dtypes)}; got {a.dtype}")
    return a


@dataclass(frozen=True, slots=True, eq=False)
class _Static:
    """Checked arguments that do not depend on the input tensor (made once by _check_static)."""

    w: np.ndarray  # int8, C-contiguous
    bias: np.ndarray | None  # int32 (K,), C-contiguous
    scale: float | np.ndarray | None  # a float, or a read-only float64 copy (K,)
    x_dtype: str  # "uint8" or "int8"
    x_zero_point: int
    out_zero_point: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    scheme: str | None
    out_dtype: str
    layout: str
    backend: str
    pow2_mode: str
    k: int  # output channels
    c: int  # all input channels (w holds c // groups per output)
    r: int
    s: int
    groups: int


def _frozen_copy(a):
    """A private read-only copy of a checked array: later changes to the caller's array must not
    reach a layer (or the conv2d memo) that was built from it."""
    a = np.array(a, order="C", copy=True)
    a.flags.writeable = False
    return a


def _check_static(
    w,
    bias,
    scale,
    x_dtype,
    x_zero_point,
    out_zero_point,
    stride,
    padding,
    scheme,
    out_dtype,
    layout,
    backend,
    pow2_mode,
    groups=1,
):

    if type(out_dtype) is not str:
        out_dtype = kernels.dtype_name(out_dtype)  # np.dtype("uint8") and np.uint8 too
    if layout not in LAYOUTS:
        _validate.choice("layout", layout, LAYOUTS)
    if backend not in BACKENDS:
        _validate.choice("backend", backend, BACKENDS)
    if pow2_mode not in POW2_MODES:
        _validate.choice("pow2_mode", pow2_mode, POW2_MODES)
    if scheme is not None and scheme not in SCHEMES:
        _validate.choice("scheme", scheme, tuple(SCHEMES))
    w = _array("w", w, ("int8",))
    if type(groups) is not int:
        groups = _validate.int_in_range("groups", groups, 1, _INT31 - 1)
    if groups < 1:
        raise ValueError(f"groups must be >= 1; got {groups}")
    if layout == "NCHW":
        if w.ndim != 4:
            raise ValueError(
                f"w must have rank 4 (K, C/groups, R, S) for layout 'NCHW'; got shape {w.shape}"
            )
        k, c, r, s = w.shape
        if k % groups:
            raise ValueError(f"groups={groups} must divide the output channel count K={k}")
    else:
        if groups != 1:
            raise ValueError(f"groups must be 1 for layout 'NCHW16c'; got {groups}")
        if w.ndim != 7 or w.shape[4:] != (4, 16, 4):
            raise ValueError(
                f"w must have shape (K/16, C/16, R, S, 4, 16, 4) for layout "
                f"'NCHW16c'; got {w.shape}"
            )
        k, c, r, s = w.shape[0] * 16, w.shape[1] * 16, w.shape[2], w.shape[3]
    if min(k, c, r, s) < 1:
        raise ValueError(f"w must not be empty; got shape {w.shape}")
    xlo, xhi = (0, 255) if x_dtype == "uint8" else (-128, 127)
    if type(x_zero_point) is not int or not xlo <= x_zero_point <= xhi:
        x_zero_point = _validate.int_in_range("x_zero_point", x_zero_point, xlo, xhi)
    stride = _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    bmax = 0
    if bias is not None:
        bias = _array("bias", bias, ("int32",))
        if bias.shape != (k,):
            raise ValueError(
                f"bias must have shape ({k},) (one per output channel); got {bias.shape}"
            )
        bmax = max(-int(bias.min()), int(bias.max()))
    bound = c * r * s * 255 * 128 + bmax
    if bound >= _INT31:
        raise ValueError(
            f"accumulator bound C*R*S*255*128 + max|bias| = {bound} must be < 2^31 "
            f"(C={c}, R={r}, S={s}, max|bias|={bmax}): int32 could overflow"
        )
    if scheme is None:
        if scale is not None:
            scales, scalar = _validate.scales("scale", scale)
            scale = float(scales) if scalar else _frozen_copy(scales)
        out_dtype = "int32"
    else:
        if scale is None:
            raise ValueError(f"scale is required for scheme {scheme!r}")
        if type(scale) is float and 0.0 < scale < float("inf"):
            pass  # fast path: a plain positive float
        else:
            scales, scalar = _validate.scales("scale", scale)
            if not scalar and not (scales.ndim == 1 and scales.size in (1, k)):
                raise ValueError(
                    f"scale must be a float or have shape ({k},) (per output "
                    f"channel); got shape {scales.shape}"
                )
            if scalar or scales.size == 1:
                scale = float(scales.flat[0])  # one value: per tensor (axis=1 needs K of them)
            else:
                scale = _frozen_copy(scales)
        if out_dtype == "uint8":
            qmin, qmax = 0, 255
        elif out_dtype == "int8":
            qmin, qmax = -128, 127
        else:
            qmin, qmax, _, _, _ = _validate.dtype_range("out_dtype", out_dtype)
        if type(out_zero_point) is not int or not qmin <= out_zero_point <= qmax:
            out_zero_point = _validate.int_in_range("out_zero_point", out_zero_point, qmin, qmax)
    # contiguity: C needs C-contiguous arrays; anything else is copied here (documented)
    return _Static(
        w=w if w.flags.c_contiguous else np.ascontiguousarray(w),
        bias=bias if bias is None or bias.flags.c_contiguous else np.ascontiguousarray(bias),
        scale=scale,
        x_dtype=x_dtype,
        x_zero_point=x_zero_point,
        out_zero_point=out_zero_point,
        stride=stride,
        padding=padding,
        scheme=scheme,
        out_dtype=out_dtype,
        layout=layout,
        backend=backend,
        pow2_mode=pow2_mode,
        # c: input channels per group (what one output sums over); the field: all of them
        k=k,
        c=c * groups,
        r=r,
        s=s,
        groups=groups,
    )


def _x_dtype(x):
    x = _array("x", x, ("uint8", "int8"))
    return _DT[x.dtype]


def _check_input(x, st):
    """Check x against the static arguments; return (contiguous x, out_shape)."""
    if _DT.get(getattr(x, "dtype", None)) != st.x_dtype:
        _array("x", x, (st.x_dtype,))
    if st.layout == "NCHW":
        if x.ndim != 4:
            raise ValueError(
                f"x must have rank 4 (N, C, H, W) for layout 'NCHW'; got shape {x.shape}"
            )
        n, c, h, wd = x.shape
    else:
        if x.ndim != 5 or x.shape[4] != 16:
            raise ValueError(
                f"x must have shape (N, C/16, H, W, 16) for layout 'NCHW16c'; got {x.shape}"
            )
        n, cb, h, wd, _ = x.shape
        c = cb * 16
    if min(n, c, h, wd) < 1:
        raise ValueError(f"x must not be empty; got shape {x.shape}")
    if c != st.c:
        raise ValueError(
            f"w must have the input channel count of x ({c}); got {st.c} (= w's {st.c // st.groups}"
            f" x groups={st.groups}; x shape {x.shape})"
        )
    (sh, sw), (ph, pw) = st.stride, st.padding
    if h + 2 * ph < st.r or wd + 2 * pw < st.s:
        raise ValueError(
            f"the output would be empty: input {h}x{wd} with padding {st.padding} is "
            f"smaller than the kernel {st.r}x{st.s}"
        )
    oh = (h + 2 * ph - st.r) // sh + 1
    ow = (wd + 2 * pw - st.s) // sw + 1
    if ph or pw:
        _check_padding_memory(n, c, h, wd, st)
    out_shape = (n, st.k, oh, ow) if st.layout == "NCHW" else (n, st.k // 16, oh, ow, 16)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return x, out_shape


#: What padding may add to one call's working memory (bytes): the padded input the C kernel
#: builds (and its two scratch copies) and the output that the padding enlarges.
PADDING_MAX_BYTES = _validate.MAX_BYTES


def _padded_bytes(n, c, h, wd, st, ph, pw):
    """Working memory of a call with padding ``(ph, pw)``, as the C kernel lays it out: the input
    padded to 16-channel blocks, held three times (packed + two scratch), and the output at up
    to 5 bytes per value (int32 accumulators, then the 8-bit result when not fused)."""
    hp, wp = h + 2 * ph, wd + 2 * pw
    oh = (hp - st.r) // st.stride[0] + 1
    ow = (wp - st.s) // st.stride[1] + 1
    return 3 * n * -(-c // 16) * 16 * hp * wp + 5 * n * st.k * oh * ow


def _check_padding_memory(n, c, h, wd, st):
    """Refuse, before anything is allocated, a padding that alone adds more than
    :data:`PADDING_MAX_BYTES` to the working memory (padding=2**16 on a 1x1 input would ask for
    tens of GiB of padding pixels); the message gives the padding range that fits."""
    ph, pw = st.padding
    base = _padded_bytes(n, c, h, wd, st, 0, 0)
    extra = _padded_bytes(n, c, h, wd, st, ph, pw) - base
    if extra <= PADDING_MAX_BYTES:
        return
    lo, hi = 0, max(ph, pw)  # the largest p with (p, p) within the limit: extra grows with p
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _padded_bytes(n, c, h, wd, st, mid, mid) - base <= PADDING_MAX_BYTES:
            lo = mid
        else:
            hi = mid - 1
    raise ValueError(
        f"padding={st.padding} would add {extra / 2**30:.1f} GiB of working memory (a padded "
        f"{h + 2 * ph}x{wd + 2 * pw} input for a {st.r}x{st.s} kernel), above the limit of "
        f"{PADDING_MAX_BYTES / 2**30:.1f} GiB; for this input padding must be in [0, {lo}] "
        f"in each dimension"
    )


def _check_args(
    x,
    w,
    bias,
    scale,
    x_zero_point,
    out_zero_point,
    stride,
    padding,
    scheme,
    out_dtype,
    layout,
    backend,
    pow2_mode,
):
    """All checks of :func:`conv2d` (kept for callers that want the normalized arguments)."""
    st = _check_static(
        w,
        bias,
        scale,
        _x_dtype(x),
        x_zero_point,
        out_zero_point,
        stride,
        padding,
        scheme,
        out_dtype,
        layout,
        backend,
        pow2_mode,
    )
    x, out_shape = _check_input(x, st)
    return x, st, out_shape


# ---------------------------------------------------------------------------------------------
# the function


def conv2d(
    x,
    w,
    bias=None,
    *,
    scale=None,
    x_zero_point=0,
    out_zero_point=0,
    stride=1,
    padding=0,
    scheme=None,
    out_dtype="uint8",
    layout="NCHW",
    backend="c",
    pow2_mode="nearest",
    path=None,
    groups=1,
):
    """Quantized conv2d: ``requantize(sum (x - x_zp) * w + bias)``, optionally grouped.

    Parameters
    ----------
    x : ndarray of uint8 or int8
        ``(N, C, H, W)``, or ``(N, C/16, H, W, 16)`` for ``layout="NCHW16c"``.
    w : ndarray of int8
        Symmetric weights (zero point 0), ``(K, C, R, S)`` or ``(K/16, C/16, R, S, 4, 16, 4)``.
    bias : ndarray of int32, shape (K,), or None
    scale : float or ndarray of float, shape (K,)
        Effective requantization scale ``s_x * s_w / s_out``, per tensor or per output channel;
        positive and finite. Not used (may be None) when ``scheme`` is None.
    x_zero_point : int
        Input zero point in the range of x's dtype; padded pixels hold it, so they add 0.
    out_zero_point : int
        Output zero point in the range of ``out_dtype``.
    stride : int or (int, int), >= 1
    padding : int or (int, int), >= 0
    scheme : str or None
        None returns the int32 accumulators. Any scheme of :mod:`fxq_explore.requantize`;
        ``float32_rne``, ``pow2``, ``tflite`` and ``tflite_single`` to int8/uint8 are fused in
        registers by the C kernel (except ``tflite`` with a left shift, i.e. scale >= 1/2, and
        ``pow2_mode="truncate"``, which run conv then numpy requantize, as every other scheme).
    out_dtype : str
        Output dtype for ``requantize`` (``"uint8"``, ``"int8"``, ...).
    layout : {"NCHW", "NCHW16c"}
    backend : {"c", "reference"}
    pow2_mode : {"nearest", "ceil", "floor", "truncate"}
    path : {None, "auto", "scalar", "avx2", "avx512"}
        SIMD path of the C kernel (None: ``$FXQ_KERNEL_PATH`` or the best available).
    groups : int
        Grouped convolution: ``w`` is ``(K, C/groups, R, S)`` and output channel k sums over the
        input channels of group ``k // (K/groups)``. ``groups = C = K`` (depthwise) has its own
        SIMD kernels; other groups > 1 run the dense SIMD kernel once per image and group (on
        the scalar path: a portable C loop). NCHW layout only.

    Returns
    -------
    ndarray
        int32 accumulators (``scheme=None``) or the requantized output, ``(N, K, OH, OW)`` or
        ``(N, K/16, OH, OW, 16)``; bit-identical to
        ``requantize(conv2d_reference(...), scale, scheme, zero_point=out_zero_point,
        dtype=out_dtype, axis=1)``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument and the allowed range: wrong dtype or rank, channel counts that do
        not match, bias/scale of the wrong length, stride < 1, padding < 0, an empty output,
        zero points out of range, or ``C*R*S*255*128 + max|bias| >= 2^31`` (int32 could overflow).

    Notes
    -----
    Non-contiguous ``x``, ``w`` or ``bias`` are copied to C-contiguous arrays first. With
    ``backend="c"`` the function keeps the packed weights of the last 8 weight tensors (a
    :class:`Conv2d` each) and reuses them when all arguments are equal and ``w``/``bias`` still
    hold the same values (compared element by element on every call), so repeated calls skip the
    packing; use :class:`Conv2d` directly to control this.

    Inside the C call the input is packed into a zero-point-padded NCHW16c buffer (int8 input
    shifted by +128, since ``vpdpbusd`` multiplies unsigned by signed bytes) and the weights into
    OIHW4i16o4i, with ``bias - x_zp_u * sum(w)`` precomputed per output channel.

    Examples
    --------
    >>> x = np.full((1, 1, 3, 3), 130, np.uint8)
    >>> w = np.ones((1, 1, 3, 3), np.int8)
    >>> conv2d(x, w, x_zero_point=128, padding=1)[0, 0].tolist()
    [[8, 12, 8], [12, 18, 12], [8, 12, 8]]
    >>> conv2d(x, w, x_zero_point=128, padding=1, scale=0.5, scheme="tflite",
    ...        out_zero_point=128)[0, 0].tolist()
    [[132, 134, 132], [134, 137, 134], [132, 134, 132]]
    """
    key = _layer_key(
        x,
        w,
        bias,
        scale,
        x_zero_point,
        out_zero_point,
        stride,
        padding,
        scheme,
        out_dtype,
        layout,
        backend,
        pow2_mode,
        path,
        groups,
    )
    if key is not None:
        hit = _LAYERS.get(key)
        if hit is not None and _same_weights(hit, w, bias):
            return hit(x)
    st = _check_static(
        w,
        bias,
        scale,
        _x_dtype(x),
        x_zero_point,
        out_zero_point,
        stride,
        padding,
        scheme,
        out_dtype,
        layout,
        backend,
        pow2_mode,
        groups,
    )
    x, out_shape = _check_input(x, st)
    if key is None:
        return _run(x, st, out_shape, path, None)
    layer = Conv2d(
        w,
        bias,
        scale=scale,
        x_dtype=st.x_dtype,
        x_zero_point=x_zero_point,
        out_zero_point=out_zero_point,
        stride=stride,
        padding=padding,
        scheme=scheme,
        out_dtype=out_dtype,
        layout=layout,
        backend=backend,
        pow2_mode=pow2_mode,
        path=path,
        groups=groups,
    )
    if len(_LAYERS) >= _LAYERS_MAX:
        _LAYERS.pop(next(iter(_LAYERS)))  # oldest first
    _LAYERS[key] = layer
    return layer(x)


# conv2d memo: the packed weights of the last few weight tensors.  A hit needs equal arguments of
# the same types (see _typed), the scale's exact bytes, *and* weights/bias equal, element by
# element, to the layer's private copies, so changing the caller's arrays in place is always seen;
# the check costs far less than re-packing.  Each layer holds copies of w, bias and the scale.
_LAYERS: dict = {}
_LAYERS_MAX = 8


def _layer_key(
    x,
    w,
    bias,
    scale,
    x_zero_point,
    out_zero_point,
    stride,
    padding,
    scheme,
    out_dtype,
    layout,
    backend,
    pow2_mode,
    path,
    groups=1,
):
    if backend != "c" or type(x) is not np.ndarray or type(w) is not np.ndarray:
        return None
    if bias is not None and type(bias) is not np.ndarray:
        return None
    skey: object
    if scale is None:
        skey = None
    elif isinstance(scale, float):  # float and numpy.float64
        skey = float(scale)
    elif type(scale) is np.ndarray:
        skey = (scale.dtype.str, scale.shape, scale.tobytes())
    else:
        return None
    key = (
        w.shape,
        w.dtype.str,
        None if bias is None else (bias.shape, bias.dtype.str),
        skey,
        x.dtype.str,
        _typed(x_zero_point),
        _typed(out_zero_point),
        _typed(stride),
        _typed(padding),
        _typed(scheme),
        _typed(out_dtype),
        _typed(layout),
        _typed(pow2_mode),
        _typed(path),
        _typed(groups),
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _typed(v):
    """``v`` with the type of every scalar in it, for the memo key: ``1``, ``1.0``, ``True`` and
    ``np.dtype("uint8") == "uint8"`` compare (and hash) equal, yet the checks accept some and
    refuse others -- so a hit only ever stands for a call with the same types as the miss that
    was checked (and a hit is then validated exactly like that miss)."""
    if type(v) is tuple:
        return tuple(_typed(e) for e in v)
    return (type(v), v)


def _same_weights(layer, w, bias):
    st = layer._st
    if not np.array_equal(st.w, w):
        return False
    if bias is None or st.bias is None:
        return bias is None and st.bias is None
    return np.array_equal(st.bias, bias)


def _run(x, st, out_shape, path, packed):
    if st.backend == "reference":
        return _conv2d_reference(
            x,
            st.w,
            st.bias,
            st.scale,
            st.x_zero_point,
            st.out_zero_point,
            st.stride,
            st.padding,
            st.scheme,
            st.out_dtype,
            st.layout,
            st.pow2_mode,
            st.groups,
        )

    common = dict(
        groups=st.groups,
        layout=st.layout,
        x_zero_point=st.x_zero_point,
        stride=st.stride,
        padding=st.padding,
        out_shape=out_shape,
        path=path,
        packed=packed,
    )
    scheme = st.scheme
    plan = (
        kernels.fusion_plan(scheme, st.scale, st.out_dtype, st.pow2_mode)
        if scheme is not None
        else None
    )
    if plan is not None:
        arrays, n = plan
        return kernels.conv2d_c(
            x,
            st.w,
            st.bias,
            scheme=scheme,
            arrays=arrays,
            n_channels=n,
            out_dtype=st.out_dtype,
            out_zero_point=st.out_zero_point,
            **common,
        )
    acc = kernels.conv2d_c(x, st.w, st.bias, **common)
    if scheme is None:
        return acc
    return _requantize_layout(
        acc, st.scale, scheme, st.out_zero_point, st.out_dtype, st.layout, st.pow2_mode
    )


class Conv2d:
    """A quantized convolution with its weights packed once, called on many inputs.

    Same arguments and results as :func:`conv2d`, split the way an inference session splits
    them: everything but the input is checked and (for ``backend="c"``) packed into the kernel's
    OIHW4i16o4i layout with the zero-point correction ``bias - x_zp * sum(w)`` at construction;
    each call only checks ``x`` (dtype ``x_dtype``, channel count, non-empty output) and runs.

    Examples
    --------
    >>> w = np.ones((1, 1, 3, 3), np.int8)
    >>> layer = Conv2d(w, x_zero_point=128, padding=1, scale=0.5, scheme="tflite",
    ...                out_zero_point=128)
    >>> layer(np.full((1, 1, 3, 3), 130, np.uint8))[0, 0].tolist()
    [[132, 134, 132], [134, 137, 134], [132, 134, 132]]
    """

    def __init__(
        self,
        w,
        bias=None,
        *,
        scale=None,
        x_dtype="uint8",
        x_zero_point=0,
        out_zero_point=0,
        stride=1,
        padding=0,
        scheme=None,
        out_dtype="uint8",
        layout="NCHW",
        backend="c",
        pow2_mode="nearest",
        path=None,
        groups=1,
    ):
        x_dtype = kernels.dtype_name(x_dtype)
        if x_dtype not in ("uint8", "int8"):
            raise ValueError(f"x_dtype must be 'uint8' or 'int8'; got {x_dtype!r}")
        # copies: later changes to the caller's arrays must not change the layer (the scale is
        # copied by _check_static)
        w = _frozen_copy(w) if isinstance(w, np.ndarray) else w
        bias = _frozen_copy(bias) if isinstance(bias, np.ndarray) else bias
        self._st = _check_static(
            w,
            bias,
            scale,
            x_dtype,
            x_zero_point,
            out_zero_point,
            stride,
            padding,
            scheme,
            out_dtype,
            layout,
            backend,
            pow2_mode,
            groups,
        )
        self.path = path
        self._packed = None
        self._calls = {}
        # the last call's (shape, dtype, $FXQ_KERNEL_PATH value, runner), compared by identity
        # for dtype and path value (a live reference, so never a stale match); else _calls
        self._last = None
        if backend == "c":
            kernels.resolve_path(path)
            st = self._st
            self._packed = kernels.PackedWeights(
                st.w,
                st.bias,
                layout=layout,
                x_dtype=x_dtype,
                x_zero_point=st.x_zero_point,
                groups=st.groups,
            )
            if scheme is not None:
                kernels.fusion_plan(scheme, st.scale, st.out_dtype, pow2_mode)  # warm the cache

    def __call__(self, x):
        if type(x) is np.ndarray and x.flags.c_contiguous:  # fast path: a known input shape
            env, last = kernels.kernel_path_env(), self._last
            if last is not None and x.dtype is last[1] and env is last[2] and x.shape == last[0]:
                return last[3](x)
            call = self._calls.get((x.shape, x.dtype, env))
            if call is not None:
                self._last = (x.shape, x.dtype, env, call)
                return call(x)
        x, out_shape = _check_input(x, self._st)
        if self._packed is not None:
            call = self._make_call(x, out_shape)
            if call is not None:
                if len(self._calls) > 16:
                    self._calls.clear()
                run = call.runner()  # one C call per later call of this shape
                self._calls[(x.shape, x.dtype, kernels.kernel_path_env())] = run
                return call.run(x)
        return _run(x, self._st, out_shape, self.path, self._packed)

    def _make_call(self, x, out_shape):
        """A cached C call for this input shape, or None where the call is not a single C kernel
        (schemes requantized in numpy after the conv)."""

        st = self._st
        common = dict(
            stride=st.stride,
            padding=st.padding,
            out_shape=out_shape,
            pid=kernels.resolve_path(self.path),
        )
        if st.scheme is None:
            return kernels.ConvCall(x.shape, st.x_dtype, self._packed, **common)
        plan = kernels.fusion_plan(st.scheme, st.scale, st.out_dtype, st.pow2_mode)
        if plan is not None:
            arrays, n = plan
            return kernels.ConvCall(
                x.shape,
                st.x_dtype,
                self._packed,
                scheme=st.scheme,
                arrays=arrays,
                n_channels=n,
                out_dtype=st.out_dtype,
                out_zero_point=st.out_zero_point,
                **common,
            )
        return None


def _requantize_layout(acc, scale, scheme, ozp, out_dtype, layout, pow2_mode):

    if layout == "NCHW16c":
        acc = nchw16c_to_nchw(acc)
    out = requantize(
        acc, scale, scheme, zero_point=ozp, dtype=out_dtype, axis=1, pow2_mode=pow2_mode
    )
    return nchw_to_nchw16c(out) if layout == "NCHW16c" else out


def _conv2d_reference(
    x, w, bias, scale, xzp, ozp, stride, padding, scheme, out_dtype, layout, pow2_mode, groups=1
):

    if layout == "NCHW16c":
        x = nchw16c_to_nchw(x)
        w = oihw4i16o4i_to_oihw(w)
    acc = conv2d_reference(
        x, w, bias, x_zero_point=xzp, stride=stride, padding=padding, groups=groups
    )
    if scheme is not None:
        acc = requantize(
            acc, scale, scheme, zero_point=ozp, dtype=out_dtype, axis=1, pow2_mode=pow2_mode
        )
    return nchw_to_nchw16c(acc) if layout == "NCHW16c" else acc


# ---------------------------------------------------------------------------------------------
# fully connected


class FullyConnected:
    """A quantized fully connected layer with its weights packed once.

    It computes ``requantize(sum_c (x[n, c] - x_zp) * w[k, c] + bias[k])`` for x ``(N, C)`` and
    w ``(K, C)``.

    Same parameters and results as :func:`fully_connected`. In C, on every path, it is a GEMV
    over weights packed once at construction (``fxq_fc_plan_init``: packed weights, zero-point
    correction and requantization parameters in one plan), with the fused requantization of
    :func:`conv2d`: scalar, AVX2 (``vpmaddubsw``) or AVX-512 VNNI (``vpdpbusd``, up to 4 rows x
    64 channels per pass). A call checks ``x`` once per new shape (dtype ``x_dtype``, shape
    (N, C)); later calls with that shape and dtype go straight to C.

    Examples
    --------
    >>> fc = FullyConnected(np.array([[1, 2], [-3, 1]], np.int8), x_zero_point=128)
    >>> fc(np.array([[130, 126]], np.uint8)).tolist()
    [[-2, -8]]
    """

    def __init__(
        self,
        w,
        bias=None,
        *,
        scale=None,
        x_dtype="uint8",
        x_zero_point=0,
        out_zero_point=0,
        scheme=None,
        out_dtype="uint8",
        backend="c",
        pow2_mode="nearest",
        path=None,
    ):
        x_dtype = kernels.dtype_name(x_dtype)
        if x_dtype not in ("uint8", "int8"):
            raise ValueError(f"x_dtype must be 'uint8' or 'int8'; got {x_dtype!r}")
        w = _array("w", w, ("int8",))
        if w.ndim != 2:
            raise ValueError(f"w must have rank 2 (K, C); got shape {w.shape}")
        w4 = np.ascontiguousarray(w).reshape(w.shape[0], w.shape[1], 1, 1).copy()
        bias = bias.copy() if isinstance(bias, np.ndarray) else bias
        self._st = _check_static(
            w4,
            bias,
            scale,
            x_dtype,
            x_zero_point,
            out_zero_point,
            1,
            0,
            scheme,
            out_dtype,
            "NCHW",
            backend,
            pow2_mode,
        )
        self.path = path
        self._calls = {}  # (x.shape, x.dtype, $FXQ_KERNEL_PATH or None) -> f(x)
        self._routes = {}  # path id -> FcPlan
        if backend == "c":
            self._route(kernels.resolve_path(path))  # pack now: errors surface here

    def __call__(self, x):
        # the cached call of a checked input: same shape, same dtype, same path setting
        if type(x) is np.ndarray:
            call = self._calls.get(
                (x.shape, x.dtype, kernels.kernel_path_env() if self.path is None else None)
            )
            if call is not None:
                return call(x)
        return self._checked_call(x)

    def _checked_call(self, x):
        st = self._st
        x = _array("x", x, (st.x_dtype,))
        if x.ndim != 2 or x.shape[1] != st.c or x.shape[0] < 1:
            raise ValueError(
                f"x must have shape (N, {st.c}) with N >= 1 (w is ({st.k}, {st.c})); got {x.shape}"
            )
        if st.backend == "reference":
            return self._reference(x)
        key = (x.shape, x.dtype, kernels.kernel_path_env() if self.path is None else None)
        call = self._make_call(x.shape[0], kernels.resolve_path(self.path))
        if len(self._calls) > 16:
            self._calls.clear()
        self._calls[key] = call
        return call(x)

    def _fused(self):
        """(arrays, n_channels) when C requantizes (a fused scheme), else None."""
        st = self._st
        if st.scheme is None:
            return None
        return kernels.fusion_plan(st.scheme, st.scale, st.out_dtype, st.pow2_mode)

    def _fused_kwargs(self) -> dict:
        """The fused requantization arguments of the C calls ({} for an unfused scheme)."""
        st = self._st
        plan = self._fused()
        if plan is None:
            return {}
        arrays, n = plan
        return dict(
            scheme=st.scheme,
            arrays=arrays,
            n_channels=n,
            out_dtype=st.out_dtype,
            out_zero_point=st.out_zero_point,
        )

    def _route(self, pid):
        """The GEMV plan (packed weights, correction, fused requantization) for path ``pid``,
        made once."""
        hit = self._routes.get(pid)
        if hit is not None:
            return hit
        st = self._st
        hit = kernels.FcPlan(
            st.w.reshape(st.k, st.c),
            st.bias,
            x_dtype=st.x_dtype,
            x_zero_point=st.x_zero_point,
            pid=pid,
            **self._fused_kwargs(),
        )
        self._routes[pid] = hit
        return hit

    def _make_call(self, n, pid):
        """f(x) for x of shape (n, C) (checked) on path ``pid``."""
        st = self._st
        run = self._route(pid).runner(n)
        if st.scheme is not None and self._fused() is None:  # unfused: numpy requantizes
            return lambda x, run=run: self._requantize(run(x))
        return run

    def _requantize(self, acc):

        st = self._st
        return requantize(
            acc,
            st.scale,
            st.scheme,
            zero_point=st.out_zero_point,
            dtype=st.out_dtype,
            axis=1,
            pow2_mode=st.pow2_mode,
        )

    def _reference(self, x):

        st = self._st
        acc = fully_connected_reference(
            x, st.w.reshape(st.k, st.c), st.bias, x_zero_point=st.x_zero_point
        )
        return acc if st.scheme is None else self._requantize(acc)


def fully_connected(
    x,
    w,
    bias=None,
    *,
    scale=None,
    x_zero_point=0,
    out_zero_point=0,
    scheme=None,
    out_dtype="uint8",
    backend="c",
    pow2_mode="nearest",
    path=None,
):
    """Quantized fully connected layer: ``requantize(sum_c (x[n, c] - x_zp) * w[k, c] + bias[k])``.

    Parameters
    ----------
    x : ndarray of uint8 or int8, shape (N, C)
    w : ndarray of int8, shape (K, C)
        Symmetric weights (zero point 0).
    bias : ndarray of int32, shape (K,), or None
    scale, x_zero_point, out_zero_point, scheme, out_dtype, backend, pow2_mode, path
        As in :func:`conv2d` (per-channel ``scale`` has shape (K,)).

    Returns
    -------
    ndarray, shape (N, K)
        int32 accumulators (``scheme=None``) or the requantized output; bit-identical to
        ``requantize(fully_connected_reference(...), scale, scheme, ..., axis=1)``.

    Examples
    --------
    >>> w = np.array([[1, 2], [-3, 1]], np.int8)
    >>> fully_connected(np.array([[130, 126]], np.uint8), w, x_zero_point=128).tolist()
    [[-2, -8]]
    """
    x = _array("x", x, ("uint8", "int8"))
    layer = FullyConnected(
        w,
        bias,
        scale=scale,
        x_dtype=_DT[x.dtype],
        x_zero_point=x_zero_point,
        out_zero_point=out_zero_point,
        scheme=scheme,
        out_dtype=out_dtype,
        backend=backend,
        pow2_mode=pow2_mode,
        path=path,
    )
    return layer(x)


#: ``linear`` is the name torch uses for the same layer
linear = fully_connected
