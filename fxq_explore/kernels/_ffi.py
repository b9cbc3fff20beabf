"""Thin, checked wrappers around the C kernels in ``csrc/`` (the private ``fxq_explore._kernels``).

Three layers, as in PyNaCl: ``csrc/fxq_kernels.h`` declares the C API (also the cffi cdef), this
module checks dtypes, shapes, contiguity and ranges, allocates, and calls ``_kernels.lib``; the
friendly API is :func:`fxq_explore.conv2d` and ``fxq_explore.requantize(..., backend="c")``.

SIMD path
---------
One build runs on any x86-64 CPU: each SIMD file is compiled with per-function ``target``
attributes and the path is chosen at run time (``"avx512"``: AVX-512 F/BW/VL + VNNI, ``"avx2"``:
AVX2 + FMA, ``"scalar"``: portable C).  ``path=None`` uses the environment variable
``FXQ_KERNEL_PATH`` (``auto``/``scalar``/``avx2``/``avx512``) if set, else the best available.
Asking for a path the CPU lacks raises ``ValueError``.
"""

from __future__ import annotations

import importlib
import os
import threading

import numpy as np

from ..core import validate
from ..core.fixedpoint import left_shift_checked
from ..schemes import scheme_parameters

PATHS = {"auto": 0, "scalar": 1, "avx2": 2, "avx512": 3}
FUSED_SCHEMES = {"float32_rne": 1, "pow2": 2, "tflite": 3, "tflite_single": 4}
_DTYPES = {"int32": 0, "uint8": 1, "int8": 2}
_CPU_FEATURES = {
    "sse2": 1,
    "avx2": 2,
    "fma": 4,
    "avx512f": 8,
    "avx512bw": 16,
    "avx512vl": 32,
    "avx512vnni": 64,
}
_STATUS = {-1: "invalid argument", -2: "SIMD path not available", -3: "workspace too small"}

_tls = threading.local()


def _ext():
    """The compiled cffi module ``fxq_explore._kernels`` (loaded on first use: no import cost)."""
    return importlib.import_module("fxq_explore._kernels")


def _check(status, what):
    if status != 0:
        raise RuntimeError(
            f"{what} failed in C: {_STATUS.get(status, status)} (status {status}); "
            f"the Python checks should have caught this, please report it"
        )


def _workspace(nbytes):
    """A per-thread scratch buffer of at least ``nbytes`` (reused: no page faults per call)."""
    if os.environ.get("FXQ_EXACT_WORKSPACE"):  # make asan: no slack for overruns to hide in
        return np.empty(int(nbytes), dtype=np.uint8)
    buf = getattr(_tls, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(int(nbytes), dtype=np.uint8)
        _tls.buf = buf
    return buf


_PATH_CACHE: dict = {}


def resolve_path(path=None):
    """The numeric path id for ``path`` (``None``: ``$FXQ_KERNEL_PATH`` or ``"auto"``)."""
    key = (path, os.environ.get("FXQ_KERNEL_PATH")) if path is None or type(path) is str else None
    hit = _PATH_CACHE.get(key) if key is not None else None
    if hit is not None:
        return hit
    pid = _resolve_path(path)
    if key is not None:
        _PATH_CACHE[key] = pid
    return pid


def _resolve_path(path):
    source = "path"
    if path is None:
        path = os.environ.get("FXQ_KERNEL_PATH", "auto").strip().lower() or "auto"
        source = "FXQ_KERNEL_PATH"
    if not isinstance(path, str):
        raise TypeError(f"{source} must be one of {', '.join(map(repr, PATHS))}; got {path!r}")
    if path not in PATHS:
        raise ValueError(f"unknown {source} {path!r}; valid: {', '.join(map(repr, PATHS))}")
    lib = _ext().lib
    pid = PATHS[path]
    if pid == 0:
        return lib.fxq_best_path()
    if not lib.fxq_path_available(pid):
        raise ValueError(
            f"{source}={path!r} is not available on this CPU (available: "
            f"{', '.join(available_paths())})"
        )
    return pid


def available_paths():
    """Names of the SIMD paths this CPU can run, best last."""
    lib = _ext().lib
    return [name for name, pid in PATHS.items() if pid and lib.fxq_path_available(pid)]


def info():
    """What the C extension sees and uses.

    Returns
    -------
    dict
        ``cpu_features`` (list of str), ``available_paths``, ``best_path``, ``path`` (what
        ``path=None`` resolves to now, honouring ``FXQ_KERNEL_PATH``), ``env_FXQ_KERNEL_PATH`` and
        ``compile_flags`` (the flags the extension was built with; cffi adds Python's own
        ``-O3 -fwrapv``; no ``-march``).
    """
    ext = _ext()
    lib, ffi = ext.lib, ext.ffi
    bits = lib.fxq_cpu_features()
    names = {v: k for k, v in PATHS.items()}
    return {
        "cpu_features": [k for k, v in _CPU_FEATURES.items() if bits & v],
        "available_paths": available_paths(),
        "best_path": names[lib.fxq_best_path()],
        "path": names[resolve_path(None)],
        "env_FXQ_KERNEL_PATH": os.environ.get("FXQ_KERNEL_PATH"),
        "compile_flags": ffi.string(lib.fxq_compile_flags()).decode(),
        "extension": getattr(ext, "__file__", None),
    }


# ---------------------------------------------------------------------------------------------
# parameters


_PARAM_CACHE: dict = {}
_RQ_CACHE: dict = {}
_PARAM_CACHE_MAX = 256


def quant_arrays(scale, scheme, pow2_mode="nearest"):
    """Per-channel kernel parameters for ``scheme`` as contiguous, read-only int32/float32 arrays.

    Uses :func:`fxq_explore.requantize.scheme_parameters` (the single source of the parameters)
    and checks that they fit what the C code accepts. Results are memoized on the scale's bytes
    (``scheme_parameters`` takes tens of microseconds, as long as the seed layer's requantization).
    """
    arr = np.asarray(scale, dtype=np.float64)
    key = (scheme, pow2_mode, arr.shape, arr.tobytes())
    hit = _PARAM_CACHE.get(key)
    if hit is not None:
        return hit
    res = _quant_arrays(float(arr) if arr.ndim == 0 else arr, scheme, pow2_mode)
    for a in res[0].values():
        a.flags.writeable = False
    if len(_PARAM_CACHE) >= _PARAM_CACHE_MAX:
        _PARAM_CACHE.clear()
    _PARAM_CACHE[key] = res
    return res


def _quant_arrays(scale, scheme, pow2_mode):

    if scheme not in FUSED_SCHEMES:
        raise ValueError(
            f"scheme {scheme!r} has no C kernel; valid: {', '.join(map(repr, FUSED_SCHEMES))}"
        )
    if scheme == "pow2" and pow2_mode == "truncate":
        raise ValueError(
            "pow2_mode 'truncate' has no C kernel (only the rounding shift); use backend='numpy'"
        )
    p = scheme_parameters(scale, scheme, pow2_mode=pow2_mode)
    out = {}
    if scheme == "float32_rne":
        out["scale_f32"] = np.ascontiguousarray(p["scale_f32"], dtype=np.float32)
    elif scheme == "pow2":
        e = np.asarray(p["exponent"], dtype=np.int64)
        out["exponent"] = np.ascontiguousarray(np.clip(e, -(2**31), 2**31 - 1), dtype=np.int32)
    else:
        m = np.asarray(p["multiplier"], dtype=np.int64)
        s = np.asarray(p["shift"], dtype=np.int64)
        hi = 30 if scheme == "tflite_single" else 31
        if ((m != 0) & ((m < 2**30) | (m >= 2**31))).any() or (m < 0).any():
            raise ValueError(f"scale gives a multiplier outside [2^30, 2^31) for scheme {scheme!r}")
        if (s < -31).any() or (s > hi).any():
            bad = int(s[(s < -31) | (s > hi)][0])
            raise ValueError(
                f"scale gives shift {bad} for scheme {scheme!r}; the C kernel accepts [-31, {hi}]"
            )
        out["multiplier"] = np.ascontiguousarray(m, dtype=np.int32)
        out["shift"] = np.ascontiguousarray(s, dtype=np.int32)
    n = len(next(iter(out.values())))
    return out, n


def _params_struct(ffi, scheme, out_dtype, zero_point, arrays, n_channels):
    q = ffi.new("fxq_quant_params *")
    q.scheme = FUSED_SCHEMES[scheme] if scheme is not None else 0
    q.out_dtype = _DTYPES[out_dtype]
    q.zero_point = int(zero_point)
    q.n_channels = int(n_channels)
    for field, ctype in (
        ("multiplier", "int32_t[]"),
        ("shift", "int32_t[]"),
        ("exponent", "int32_t[]"),
        ("scale_f32", "float[]"),
    ):
        a = arrays.get(field)
        setattr(q, field, ffi.from_buffer(ctype, a) if a is not None else ffi.NULL)
    return q


# ---------------------------------------------------------------------------------------------
# requantize


def requantize(
    acc,
    scale,
    scheme,
    *,
    zero_point=0,
    dtype="int8",
    axis=None,
    pow2_mode="nearest",
    multiplier_bits=32,
    path=None,
):
    """SIMD C requantization, bit-identical to ``requantize(..., backend="numpy")``.

    Parameters
    ----------
    acc : array_like of int
        Accumulators in the int32 range (copied to a C-contiguous int32 array if needed).
    scale : float or 1-D array_like of float
        Positive finite scale(s); per-channel along ``axis``.
    scheme : {"float32_rne", "pow2", "tflite", "tflite_single"}
    zero_point : int
        In the range of ``dtype``.
    dtype : {"int8", "uint8"}
    axis : int or None
        Channel axis for per-channel ``scale``.
    pow2_mode : {"nearest", "ceil", "floor"}
        Which power of two replaces the scale for ``pow2`` (``"truncate"`` is numpy-only).
    multiplier_bits : int
        Only 32 (the engines' Q31 multiplier) has a C kernel.
    path : {None, "auto", "scalar", "avx2", "avx512"}

    Returns
    -------
    ndarray of int8 or uint8, the shape of ``acc``.

    Raises
    ------
    ValueError
        For a scheme or dtype without a C kernel (naming ``scheme``/``dtype``), out-of-range
        values, and -- like the numpy version -- where ``tflite``'s ``acc << shift`` overflows
        int32.
    """
    if multiplier_bits != 32:
        raise ValueError(
            f"multiplier_bits={multiplier_bits!r} has no C kernel (only 32); use backend='numpy'"
        )
    if (
        type(acc) is np.ndarray
        and acc.dtype == np.int32
        and acc.flags.c_contiguous
        and type(scale) is float
        and type(zero_point) is int
        and acc.size
    ):
        # fast path: per-tensor call seen before (checked then); about 3 us of Python
        key = (scheme, dtype, zero_point, scale, pow2_mode, path, os.environ.get("FXQ_KERNEL_PATH"))
        hit = _RQ_CACHE.get(key)
        if hit is not None:
            q, pid, _keep = hit
            ext = _ext()
            out = np.empty(acc.shape, dtype=np.uint8 if dtype == "uint8" else np.int8)
            ws = _workspace(64 + 4096)
            st = ext.lib.fxq_requantize(
                ext.ffi.from_buffer("int32_t[]", acc),
                ext.ffi.from_buffer(out),
                1,
                1,
                acc.size,
                q,
                ext.ffi.from_buffer(ws),
                ws.nbytes,
                pid,
            )
            _check(st, "fxq_requantize")
            return out
    else:
        key = None
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a string; got {scheme!r}")
    if scheme not in FUSED_SCHEMES:
        raise ValueError(
            f"scheme {scheme!r} has no C kernel; valid for backend='c': "
            f"{', '.join(map(repr, FUSED_SCHEMES))}"
        )
    if dtype not in ("int8", "uint8"):
        raise ValueError(f"dtype {dtype!r} has no C kernel; valid for backend='c': 'int8', 'uint8'")
    qmin, qmax = (-128, 127) if dtype == "int8" else (0, 255)
    zero_point = validate.int_in_range("zero_point", zero_point, qmin, qmax)
    pid = resolve_path(path)
    if isinstance(acc, np.ndarray) and acc.dtype == np.int32:
        a64 = acc  # already int32: nothing to range-check or convert
    else:
        a64 = validate.accumulators("acc", acc)
    scales, scalar = validate.scales("scale", scale)
    arrays, n = quant_arrays(scales.ravel() if not scalar else float(scales), scheme, pow2_mode)
    shape = a64.shape
    if n == 1 and (axis is None or scalar):
        outer, channels, inner = 1, 1, a64.size
        n_channels = 1
    else:
        if scales.ndim != 1:
            raise ValueError(
                f"scale must be a scalar or 1-D per-channel array; got shape {scales.shape}"
            )
        if axis is None:
            raise ValueError(f"axis must be given for per-channel scale (got {n} scales)")
        if a64.ndim == 0:
            raise ValueError("acc must have a channel axis for per-channel scale")
        axis = validate.int_in_range("axis", axis, -a64.ndim, a64.ndim - 1) % a64.ndim
        if shape[axis] != n:
            raise ValueError(
                f"scale has {n} per-channel values but acc has {shape[axis]} along axis {axis}"
            )
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        channels = n
        inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
        n_channels = n
    if scheme == "tflite" and (arrays["shift"] > 0).any():
        # the engine's int32 `acc << shift` is undefined on overflow: refuse like the numpy path

        left = np.maximum(arrays["shift"].astype(np.int64), 0)
        if n_channels > 1:
            bshape = [1] * a64.ndim
            bshape[axis] = n
            left = left.reshape(bshape)
        left_shift_checked(a64, left)
    a32 = np.ascontiguousarray(a64, dtype=np.int32)
    out = np.empty(shape, dtype=np.uint8 if dtype == "uint8" else np.int8)
    if a32.size == 0:
        return out
    ext = _ext()
    ffi, lib = ext.ffi, ext.lib
    q = _params_struct(ffi, scheme, dtype, zero_point, arrays, n_channels)
    ws_size = lib.fxq_requantize_workspace_size(channels)
    ws = _workspace(ws_size)
    st = lib.fxq_requantize(
        ffi.from_buffer("int32_t[]", a32),
        ffi.from_buffer(out),
        outer,
        channels,
        inner,
        q,
        ffi.from_buffer(ws),
        ws.nbytes,
        pid,
    )
    _check(st, "fxq_requantize")
    if (
        key is not None
        and n_channels == 1
        and channels == 1
        and not (scheme == "tflite" and (arrays["shift"] > 0).any())
    ):
        if len(_RQ_CACHE) > 256:
            _RQ_CACHE.clear()
        _RQ_CACHE[key] = (q, pid, arrays)  # per-tensor, no overflow check needed: reusable
    return out


def copy_bytes(dst, src):
    """``memcpy`` from ``src`` to ``dst`` (same nbytes, contiguous): the benchmark's baseline."""
    if not (dst.flags.c_contiguous and src.flags.c_contiguous) or dst.nbytes != src.nbytes:
        raise ValueError("dst and src must be C-contiguous arrays with the same nbytes")
    ext = _ext()
    ext.lib.fxq_copy_bytes(ext.ffi.from_buffer(dst), ext.ffi.from_buffer(src), src.nbytes)


# ---------------------------------------------------------------------------------------------
# convolution


class PackedWeights:
    """Weights packed once by ``fxq_conv2d_pack_weights`` (OIHW4i16o4i, padded to 16 channels)
    plus the per-channel ``bias - x_zp * sum(w)``; valid for one (K, C, R, S), input dtype, input
    zero point and layout."""

    def __init__(self, w, bias, *, layout, x_dtype, x_zero_point):
        if layout not in ("NCHW", "NCHW16c"):
            raise ValueError(f"unknown layout {layout!r}")
        if not (isinstance(w, np.ndarray) and w.dtype == np.int8 and w.flags.c_contiguous):
            raise TypeError("w must be a C-contiguous int8 ndarray")
        if layout == "NCHW":
            if w.ndim != 4:
                raise ValueError("NCHW needs w of rank 4")
            k, c, r, s = w.shape
        else:
            if w.ndim != 7 or w.shape[4:] != (4, 16, 4):
                raise ValueError("NCHW16c needs w (K/16, C/16, R, S, 4, 16, 4)")
            k, c, r, s = w.shape[0] * 16, w.shape[1] * 16, w.shape[2], w.shape[3]
        if bias is not None and not (
            isinstance(bias, np.ndarray)
            and bias.dtype == np.int32
            and bias.shape == (k,)
            and bias.flags.c_contiguous
        ):
            raise TypeError(f"bias must be a C-contiguous int32 ndarray of shape ({k},) or None")
        if x_dtype not in ("uint8", "int8"):
            raise TypeError("x_dtype must be 'uint8' or 'int8'")
        self.layout, self.x_dtype, self.x_zero_point = layout, x_dtype, int(x_zero_point)
        self.k, self.c, self.r, self.s = k, c, r, s
        ext = _ext()
        ffi, lib = ext.ffi, ext.lib
        d = ffi.new("fxq_conv_dims *")
        # a 1x1 output geometry: only K, C, R, S matter for the weights
        d.n, d.c, d.h, d.w, d.k, d.r, d.s = 1, c, r, s, k, r, s
        d.stride_h = d.stride_w = 1
        d.pad_h = d.pad_w = 0
        d.oh = d.ow = 1
        nbytes = lib.fxq_conv2d_packed_weight_size(d)
        if nbytes < 0:
            raise ValueError(f"invalid weight shape {w.shape}")
        raw = np.empty(nbytes + 64, dtype=np.uint8)
        off = (-raw.ctypes.data) % 64
        self._raw = raw
        self.wpack = raw[off : off + nbytes]
        self.corr = np.empty(-(-k // 16) * 16, dtype=np.int32)
        t = ffi.new("fxq_conv_tensors *")
        t.layout = 0 if layout == "NCHW" else 1
        t.x_dtype = _DTYPES[x_dtype]
        t.x_zero_point = self.x_zero_point
        t.w = ffi.from_buffer("int8_t[]", w)
        t.bias = ffi.from_buffer("int32_t[]", bias) if bias is not None else ffi.NULL
        st = lib.fxq_conv2d_pack_weights(
            d,
            t,
            ffi.from_buffer(self.wpack),
            self.wpack.nbytes,
            ffi.from_buffer("int32_t[]", self.corr),
            self.corr.size,
        )
        _check(st, "fxq_conv2d_pack_weights")
        self.wpack.flags.writeable = False
        self.corr.flags.writeable = False


def conv2d_c(
    x,
    w,
    bias,
    *,
    layout,
    x_zero_point,
    stride,
    padding,
    out_shape,
    scheme=None,
    arrays=None,
    n_channels=1,
    out_dtype="int32",
    out_zero_point=0,
    path=None,
    packed=None,
):
    """Call ``fxq_conv2d`` on arguments already validated by :func:`fxq_explore.conv.conv2d`.

    Re-checks what C relies on (dtypes, contiguity, shapes) and raises rather than pass anything
    that could make C read or write out of bounds. With ``packed`` (a :class:`PackedWeights`),
    ``w`` and ``bias`` are ignored and the pre-packed weights are used.
    """
    if packed is not None:
        if not isinstance(packed, PackedWeights):
            raise TypeError("packed must be a PackedWeights")
        xdt = "uint8" if x.dtype == np.uint8 else "int8"
        if (packed.layout, packed.x_dtype, packed.x_zero_point) != (layout, xdt, int(x_zero_point)):
            raise ValueError("packed weights were made for another layout, x dtype or x zero point")
        return _conv2d_c_impl(
            x,
            None,
            None,
            layout,
            x_zero_point,
            stride,
            padding,
            out_shape,
            scheme,
            arrays,
            n_channels,
            out_dtype,
            out_zero_point,
            path,
            packed,
        )
    return _conv2d_c_impl(
        x,
        w,
        bias,
        layout,
        x_zero_point,
        stride,
        padding,
        out_shape,
        scheme,
        arrays,
        n_channels,
        out_dtype,
        out_zero_point,
        path,
        None,
    )


def _conv2d_c_impl(
    x,
    w,
    bias,
    layout,
    x_zero_point,
    stride,
    padding,
    out_shape,
    scheme,
    arrays,
    n_channels,
    out_dtype,
    out_zero_point,
    path,
    packed,
):
    if layout not in ("NCHW", "NCHW16c"):
        raise ValueError(f"unknown layout {layout!r}")
    if not (isinstance(x, np.ndarray) and x.dtype in (np.uint8, np.int8) and x.flags.c_contiguous):
        raise TypeError("x must be a C-contiguous uint8 or int8 ndarray")
    if packed is None and not (
        isinstance(w, np.ndarray) and w.dtype == np.int8 and w.flags.c_contiguous
    ):
        raise TypeError("w must be a C-contiguous int8 ndarray")
    if layout == "NCHW":
        if x.ndim != 4 or (packed is None and w.ndim != 4):
            raise ValueError("NCHW needs x of rank 4 and w of rank 4")
        n, c, h, wd = x.shape
    else:
        if (
            x.ndim != 5
            or x.shape[4] != 16
            or (packed is None and (w.ndim != 7 or w.shape[4:] != (4, 16, 4)))
        ):
            raise ValueError(
                "NCHW16c needs x (N, C/16, H, W, 16) and w (K/16, C/16, R, S, 4, 16, 4)"
            )
        n, cb, h, wd, _ = x.shape
        c = cb * 16
    if packed is not None:
        k, c2, r, s = packed.k, packed.c, packed.r, packed.s
    elif layout == "NCHW":
        k, c2, r, s = w.shape
    else:
        k, c2, r, s = w.shape[0] * 16, w.shape[1] * 16, w.shape[2], w.shape[3]
    if c2 != c:
        raise ValueError(f"w has {c2} input channels, x has {c}")
    if bias is not None and not (
        isinstance(bias, np.ndarray)
        and bias.dtype == np.int32
        and bias.shape == (k,)
        and bias.flags.c_contiguous
    ):
        raise TypeError(f"bias must be a C-contiguous int32 ndarray of shape ({k},) or None")
    (sh, sw), (ph, pw) = stride, padding
    oh = (h + 2 * ph - r) // sh + 1
    ow = (wd + 2 * pw - s) // sw + 1
    expect = (n, k, oh, ow) if layout == "NCHW" else (n, k // 16, oh, ow, 16)
    if tuple(out_shape) != expect:
        raise ValueError(f"output shape {tuple(out_shape)} does not match {expect}")
    ext = _ext()
    ffi, lib = ext.ffi, ext.lib
    pid = resolve_path(path)
    d = ffi.new("fxq_conv_dims *")
    d.n, d.c, d.h, d.w, d.k, d.r, d.s = n, c, h, wd, k, r, s
    d.stride_h, d.stride_w, d.pad_h, d.pad_w, d.oh, d.ow = sh, sw, ph, pw, oh, ow
    ws_size = lib.fxq_conv2d_workspace_size(d)
    if ws_size < 0:
        geom = dict(n=n, c=c, h=h, w=wd, k=k, r=r, s=s)
        raise ValueError(f"invalid convolution geometry for C: {geom}")
    if scheme is None:
        out = np.empty(out_shape, dtype=np.int32)
        q = _params_struct(ffi, None, "int32", 0, {}, 1)
    else:
        out = np.empty(out_shape, dtype=np.uint8 if out_dtype == "uint8" else np.int8)
        q = _params_struct(ffi, scheme, out_dtype, out_zero_point, arrays, n_channels)
    t = ffi.new("fxq_conv_tensors *")
    t.layout = 0 if layout == "NCHW" else 1
    t.x_dtype = _DTYPES["uint8" if x.dtype == np.uint8 else "int8"]
    t.x_zero_point = int(x_zero_point)
    t.x = ffi.from_buffer(x)
    t.out = ffi.from_buffer(out)
    ws = _workspace(ws_size)
    if packed is None:
        t.w = ffi.from_buffer("int8_t[]", w)
        t.bias = ffi.from_buffer("int32_t[]", bias) if bias is not None else ffi.NULL
        st = lib.fxq_conv2d(d, t, q, ffi.from_buffer(ws), ws.nbytes, pid)
    else:
        t.w = ffi.NULL
        t.bias = ffi.NULL
        st = lib.fxq_conv2d_prepacked(
            d,
            t,
            q,
            ffi.from_buffer(packed.wpack),
            packed.wpack.nbytes,
            ffi.from_buffer("int32_t[]", packed.corr),
            packed.corr.size,
            ffi.from_buffer(ws),
            ws.nbytes,
            pid,
        )
    _check(st, "fxq_conv2d")
    return out


class ConvCall:
    """Everything of one prepared-convolution call that does not depend on the input's values:
    the C structs, the resolved SIMD path and the packed weights. ``run(x)`` only allocates the
    output and calls C (about 5 us of Python instead of 30)."""

    def __init__(
        self,
        x_shape,
        x_dtype,
        packed,
        *,
        stride,
        padding,
        out_shape,
        scheme=None,
        arrays=None,
        n_channels=1,
        out_dtype="int32",
        out_zero_point=0,
        pid,
    ):
        ext = _ext()
        self._ffi, self._lib = ext.ffi, ext.lib
        ffi = self._ffi
        layout = packed.layout
        if layout == "NCHW":
            n, c, h, wd = x_shape
        else:
            n, cb, h, wd, _ = x_shape
            c = cb * 16
        if c != packed.c or x_dtype != packed.x_dtype:
            raise ValueError("input does not match the packed weights")
        (sh, sw), (ph, pw) = stride, padding
        d = ffi.new("fxq_conv_dims *")
        d.n, d.c, d.h, d.w, d.k, d.r, d.s = n, c, h, wd, packed.k, packed.r, packed.s
        d.stride_h, d.stride_w, d.pad_h, d.pad_w = sh, sw, ph, pw
        d.oh, d.ow = out_shape[2], out_shape[3]
        self._ws_size = self._lib.fxq_conv2d_workspace_size(d)
        if self._ws_size < 0:
            raise ValueError("invalid convolution geometry for C")
        self._d = d
        self._arrays = arrays or {}
        if scheme is None:
            self._q = _params_struct(ffi, None, "int32", 0, {}, 1)
            self.out_dtype = np.dtype(np.int32)
        else:
            self._q = _params_struct(
                ffi, scheme, out_dtype, out_zero_point, self._arrays, n_channels
            )
            self.out_dtype = np.dtype(np.uint8 if out_dtype == "uint8" else np.int8)
        self.out_shape = tuple(out_shape)
        self._layout = 0 if layout == "NCHW" else 1
        self._xdt = _DTYPES[x_dtype]
        self._xzp = packed.x_zero_point
        self._packed = packed
        self._wp = ffi.from_buffer(packed.wpack)
        self._corr = ffi.from_buffer("int32_t[]", packed.corr)
        self._pid = pid

    def run(self, x):
        ffi = self._ffi
        out = np.empty(self.out_shape, dtype=self.out_dtype)
        t = ffi.new("fxq_conv_tensors *")
        t.layout, t.x_dtype, t.x_zero_point = self._layout, self._xdt, self._xzp
        t.x = ffi.from_buffer(x)
        t.out = ffi.from_buffer(out)
        ws = _workspace(self._ws_size)
        p = self._packed
        st = self._lib.fxq_conv2d_prepacked(
            self._d,
            t,
            self._q,
            self._wp,
            p.wpack.nbytes,
            self._corr,
            p.corr.size,
            ffi.from_buffer(ws),
            ws.nbytes,
            self._pid,
        )
        _check(st, "fxq_conv2d_prepacked")
        return out
