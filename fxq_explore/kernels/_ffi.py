"""Thin, checked wrappers around the C kernels in ``csrc/`` (the private ``fxq_explore._kernels``).

Three layers, as in PyNaCl: ``csrc/fxq_kernels.h`` declares the C API (also the cffi cdef), this
module checks dtypes, shapes, contiguity and ranges, allocates, and calls ``_kernels.lib``; the
friendly API is :func:`fxq_explore.conv2d` and ``fxq_explore.requantize(..., backend="c")``.

SIMD path
---------
One build runs on any x86-64 CPU: each SIMD file is compiled with per-function ``target``
attributes and the path is chosen at run time (``"amx"``: the AVX-512 path with dense
convolutions on AMX tiles (``tdpbusd``; Sapphire Rapids and later, where the OS grants the tile
state), ``"avx512"``: AVX-512 F/BW/VL + VNNI, ``"avx2"``: AVX2 + FMA, ``"scalar"``: portable C).
``path=None`` uses the environment variable ``FXQ_KERNEL_PATH``
(``auto``/``scalar``/``avx2``/``avx512``/``amx``) if set, else the best available.
Asking for a path the CPU lacks raises ``ValueError``.
"""

from __future__ import annotations

import importlib
import os
import threading

import numpy as np

from ..core import validate as _validate
from ..core.fixedpoint import left_shift_checked
from ..schemes import SCHEMES, c_schemes, scheme_parameters

#: The schemes that run in C, read from the registry: scheme name -> its ``c_scheme``, the C enum
#: name (``lib.FXQ_SCHEME_*``); everything else here reads this mapping or :func:`c_supports`.
C_SCHEMES: dict[str, str] = {n: str(SCHEMES[n].c_scheme) for n in c_schemes()}
FUSED_SCHEMES = tuple(C_SCHEMES)
C_OUT_DTYPES = ("int8", "uint8")

_tls = threading.local()


_EXT = None


def _ext():
    """The compiled cffi module (imported on first use: no import-time cost)."""
    global _EXT
    if _EXT is None:
        _EXT = importlib.import_module("fxq_explore._kernels")  # the compiled extension
    return _EXT


_ENUMS: dict = {}


def _enum(ctype: str) -> dict[str, int]:
    """``{name: value}`` of a C enum, read from the compiled library (never re-typed here)."""
    hit = _ENUMS.get(ctype)
    if hit is None:
        hit = dict(_ext().ffi.typeof(ctype).relements)
        _ENUMS[ctype] = hit
    return hit


def _path_ids() -> dict[str, int]:
    """``{"auto": 0, "scalar": 1, ...}``: path names as the C library spells them."""
    hit = _ENUMS.get("paths")
    if hit is None:
        ext = _ext()
        ids = sorted(_enum("enum fxq_path").values())
        hit = {ext.ffi.string(ext.lib.fxq_path_name(i)).decode(): i for i in ids}
        _ENUMS["paths"] = hit
    return hit


def dtype_name(dtype):
    """``dtype`` as its name when it is a numpy dtype or scalar type (``np.dtype("uint8")``,
    ``np.uint8`` -> ``"uint8"``); anything else is returned unchanged for the caller to check."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype).name
    return dtype


def _dtype_id(name) -> int:
    name = dtype_name(name)
    if name not in ("int8", "uint8", "int32"):
        raise ValueError(f"dtype {name!r} has no C kernel; valid: 'int8', 'uint8', 'int32'")
    return getattr(_ext().lib, "FXQ_DTYPE_" + name.upper())


def c_scheme_id(scheme: str) -> int:
    """The C enum value of a scheme that runs in C (``lib.FXQ_SCHEME_*``)."""
    return getattr(_ext().lib, C_SCHEMES[scheme])


def _check(status, what):
    if status != 0:
        names = {v: k for k, v in _enum("enum fxq_status").items()}
        raise RuntimeError(
            f"{what} failed in C: {names.get(status, status)} (status {status}); "
            f"the Python checks should have caught this, please report it"
        )


# make asan: a fresh buffer of exactly the size asked for, so no slack hides an overrun
_EXACT_WORKSPACE = bool(os.environ.get("FXQ_EXACT_WORKSPACE"))


def _workspace(nbytes):
    """A per-thread scratch buffer of at least ``nbytes`` (reused: no page faults per call)."""
    if _EXACT_WORKSPACE:
        return np.empty(int(nbytes), dtype=np.uint8)
    buf = getattr(_tls, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(int(nbytes), dtype=np.uint8)
        _tls.buf = buf
    return buf


_OWN_WORKSPACE_MAX = 256 * 1024  # ConvCall.runner's own workspace, at most this many bytes


def _workspace_ptr(nbytes):
    """:func:`_workspace` and a cffi pointer to it, both reused while the buffer is (the pointer
    keeps the buffer alive; a larger request replaces both)."""
    if _EXACT_WORKSPACE:
        buf = _workspace(nbytes)
        return buf, _ext().ffi.from_buffer(buf)
    hit = getattr(_tls, "ws_ptr", None)
    if hit is None or hit[0].nbytes < nbytes or hit[0] is not getattr(_tls, "buf", None):
        buf = _workspace(nbytes)
        hit = _tls.ws_ptr = (buf, _ext().ffi.from_buffer(buf))
    return hit


# The FXQ_KERNEL_PATH lookup of every cached call.  os.environ.get costs ~1 us (a KeyError is
# raised and caught inside Mapping.get when the variable is unset); CPython's os.environ keeps
# its contents in the dict ``_data`` that every os.environ assignment and deletion updates, so
# reading that dict sees exactly what os.environ.get sees, for ~0.05 us.
_ENV_DATA = getattr(os.environ, "_data", None)
_ENV_KEY = (
    os.environ.encodekey("FXQ_KERNEL_PATH")
    if _ENV_DATA is not None and hasattr(os.environ, "encodekey")
    else None
)


def kernel_path_env():
    """The raw value of ``$FXQ_KERNEL_PATH`` (None when unset): a cache-key token, not parsed."""
    if _ENV_KEY is not None:
        return _ENV_DATA.get(_ENV_KEY)  # type: ignore[union-attr]
    return os.environ.get("FXQ_KERNEL_PATH")


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
    paths = _path_ids()
    source = "path"
    if path is None:
        path = os.environ.get("FXQ_KERNEL_PATH", "auto").strip().lower() or "auto"
        source = "FXQ_KERNEL_PATH"
    if not isinstance(path, str):
        raise TypeError(f"{source} must be one of {', '.join(map(repr, paths))}; got {path!r}")
    if path not in paths:
        raise ValueError(f"unknown {source} {path!r}; valid: {', '.join(map(repr, paths))}")
    lib = _ext().lib
    pid = paths[path]
    if pid == lib.FXQ_PATH_AUTO:
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
    return [
        name
        for name, pid in _path_ids().items()
        if pid != lib.FXQ_PATH_AUTO and lib.fxq_path_available(pid)
    ]


def path_name(pid: int) -> str:
    """The name of a numeric path id, as the C library spells it."""
    ext = _ext()
    return ext.ffi.string(ext.lib.fxq_path_name(pid)).decode()


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
    features = _enum("enum fxq_cpu_feature")
    return {
        "cpu_features": [
            k.removeprefix("FXQ_CPU_").lower()
            for k, v in sorted(features.items(), key=lambda kv: kv[1])
            if bits & v
        ],
        "available_paths": available_paths(),
        "best_path": path_name(lib.fxq_best_path()),
        "path": path_name(resolve_path(None)),
        "env_FXQ_KERNEL_PATH": os.environ.get("FXQ_KERNEL_PATH"),
        "compile_flags": ffi.string(lib.fxq_compile_flags()).decode(),
        "extension": getattr(ext, "__file__", None),
    }


# ---------------------------------------------------------------------------------------------
# parameters


_PARAM_CACHE: dict = {}
_PARAM_CACHE_MAX = 256


def quant_arrays(scale, scheme, pow2_mode="nearest"):
    """Per-channel kernel parameters for ``scheme`` as contiguous, read-only int32/float32 arrays.

    Uses :func:`fxq_explore.requantize.scheme_parameters` (the single source of the parameters)
    and checks that they fit what the C code accepts. Results are memoized on a copy of the
    scale's bytes (``scheme_parameters`` takes tens of microseconds, as long as the seed layer's
    requantization); a hit returns the same read-only arrays a miss computed.
    """
    key: tuple[object, ...]
    if type(scale) is float:
        key = (scheme, pow2_mode, scale)
    else:
        arr = np.asarray(scale, dtype=np.float64)
        key = (scheme, pow2_mode, arr.shape, arr.tobytes())
    hit = _PARAM_CACHE.get(key)
    if hit is not None:
        return hit
    arr = np.asarray(scale, dtype=np.float64)
    res = _quant_arrays(float(arr) if arr.ndim == 0 else arr, scheme, pow2_mode)
    for a in res[0].values():
        a.flags.writeable = False
    if len(_PARAM_CACHE) >= _PARAM_CACHE_MAX:
        _PARAM_CACHE.clear()
    _PARAM_CACHE[key] = res
    return res


def _quant_arrays(scale, scheme, pow2_mode):
    if scheme not in C_SCHEMES:
        raise ValueError(
            f"scheme {scheme!r} has no C kernel; valid: {', '.join(map(repr, C_SCHEMES))}"
        )
    if c_scheme_id(scheme) == _ext().lib.FXQ_SCHEME_POW2 and pow2_mode == "truncate":
        raise ValueError(
            "pow2_mode 'truncate' has no C kernel (only the rounding shift); use backend='numpy'"
        )
    p = scheme_parameters(scale, scheme, pow2_mode=pow2_mode)
    out = {}
    if "scale_f32" in p:
        out["scale_f32"] = np.ascontiguousarray(p["scale_f32"], dtype=np.float32)
    elif "exponent" in p:
        e = np.asarray(p["exponent"], dtype=np.int64)
        out["exponent"] = np.ascontiguousarray(np.clip(e, -(2**31), 2**31 - 1), dtype=np.int32)
    else:
        m = np.asarray(p["multiplier"], dtype=np.int64)
        s = np.asarray(p["shift"], dtype=np.int64)
        hi = 30 if c_scheme_id(scheme) == _ext().lib.FXQ_SCHEME_TFLITE_SINGLE else 31
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


_LEFT: dict = {}


def _left_shifts(scheme, arrays) -> bool:
    """True where the scheme shifts the int32 accumulator left before multiplying (tflite with
    scale >= 1/2): undefined behaviour in the engine's C on overflow."""
    shift = arrays.get("shift")
    if shift is None:
        return False
    hit = _LEFT.get(id(shift))
    if hit is None or hit[0] is not shift:  # keyed on the (read-only) array itself
        flag = c_scheme_id(scheme) == _ext().lib.FXQ_SCHEME_TFLITE and bool((shift > 0).any())
        if len(_LEFT) > 2 * _PARAM_CACHE_MAX:
            _LEFT.clear()
        hit = _LEFT[id(shift)] = (shift, flag, scheme)
    if hit[2] != scheme:
        return c_scheme_id(scheme) == _ext().lib.FXQ_SCHEME_TFLITE and bool((shift > 0).any())
    return hit[1]


def _truncating_pow2(scheme, pow2_mode) -> bool:
    """pow2 with the truncating shift: only the rounding shift has a C kernel."""
    return pow2_mode == "truncate" and c_scheme_id(scheme) == _ext().lib.FXQ_SCHEME_POW2


def c_supports(scheme, arrays, dtype, *, pow2_mode="nearest", fused=True) -> bool:
    """Whether C runs ``scheme`` with these kernel parameters (:func:`quant_arrays`) to ``dtype``.

    The one statement of the rule (kernels, conv and the benchmarks ask here): a scheme of
    :data:`C_SCHEMES`, an int8/uint8 output, not ``pow2_mode="truncate"``, and -- inside the
    convolution (``fused=True``) -- not ``tflite`` with a left shift (scale >= 1/2), whose int32
    overflow check the fused epilogue cannot make; standalone requantization checks it in Python.
    """
    if scheme not in C_SCHEMES or dtype not in C_OUT_DTYPES:
        return False
    if _truncating_pow2(scheme, pow2_mode):
        return False
    return not (fused and _left_shifts(scheme, arrays))


def fusion_plan(scheme, scale, dtype, pow2_mode="nearest"):
    """``(arrays, n_channels)`` when the C convolution can fuse ``scheme``, else None."""
    if scheme not in C_SCHEMES or dtype not in C_OUT_DTYPES:
        return None
    if _truncating_pow2(scheme, pow2_mode):
        return None
    arrays, n = quant_arrays(scale, scheme, pow2_mode)
    return (arrays, n) if c_supports(scheme, arrays, dtype, pow2_mode=pow2_mode) else None


# C arrays of each scheme's fxq_quant_params: field -> (cffi type, numpy dtype)
_Q_FIELDS = {
    "multiplier": ("int32_t[]", np.int32),
    "shift": ("int32_t[]", np.int32),
    "exponent": ("int32_t[]", np.int32),
    "scale_f32": ("float[]", np.float32),
}


class _QParams:
    """An ``fxq_quant_params`` struct and the arrays it points into (kept alive together);
    every array checked for dtype, contiguity and length before it is handed to C."""

    __slots__ = ("q", "arrays", "n_channels", "scheme")

    def __init__(self, scheme, out_dtype, zero_point, arrays, n_channels):
        ext = _ext()
        ffi, lib = ext.ffi, ext.lib
        q = ffi.new("fxq_quant_params *")
        arrays = arrays if arrays is not None else {}
        n_channels = int(n_channels)
        if scheme is None:
            q.scheme, q.out_dtype = lib.FXQ_SCHEME_NONE, lib.FXQ_DTYPE_INT32
        else:
            q.scheme = c_scheme_id(scheme)
            q.out_dtype = _dtype_id(out_dtype)
            if not arrays:
                raise ValueError(f"scheme {scheme!r} needs its kernel parameters (quant_arrays)")
        q.zero_point = int(zero_point)
        q.n_channels = n_channels
        for field, (ctype, dt) in _Q_FIELDS.items():
            a = arrays.get(field)
            if a is None:
                setattr(q, field, ffi.NULL)
                continue
            if not (
                type(a) is np.ndarray
                and a.dtype == dt
                and a.flags.c_contiguous
                and a.ndim == 1
                and a.size == n_channels
            ):
                raise ValueError(f"kernel parameter {field!r} must be {n_channels} {dt.__name__}")
            setattr(q, field, ffi.from_buffer(ctype, a))
        self.q, self.arrays, self.n_channels, self.scheme = q, arrays, n_channels, scheme


def _params_struct(ffi, scheme, out_dtype, zero_point, arrays, n_channels):
    """Kept for callers of the old name: the struct of a checked :class:`_QParams`."""
    return _QParams(scheme, out_dtype, zero_point, arrays, n_channels)


# ---------------------------------------------------------------------------------------------
# the checked C calls (PyNaCl style: every buffer size is checked here, right before the call)


_CTYPES = {np.dtype(np.int32): "int32_t[]", np.dtype(np.int8): "int8_t[]"}


def _c_buf(ffi, name, a, dtype, nbytes):
    """``a`` as a C pointer, after checking its type, dtype, contiguity and exact byte size."""
    if not (type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous):
        raise TypeError(f"{name} must be a C-contiguous {np.dtype(dtype).name} ndarray")
    if a.nbytes != nbytes:
        raise ValueError(f"{name} has {a.nbytes} bytes; the C call needs exactly {nbytes}")
    ctype = _CTYPES.get(a.dtype)
    return ffi.from_buffer(ctype, a) if ctype else ffi.from_buffer(a)


_I32 = np.dtype(np.int32)
_OUT8 = (np.dtype(np.int8), np.dtype(np.uint8))
_RQ_WS: dict[int, int] = {}  # channels -> fxq_requantize_workspace_size (a pure function of it)


def _c_requantize(acc, out, outer, channels, inner, qp, pid):
    ext = _ext()
    ffi, lib = ext.ffi, ext.lib
    count = outer * channels * inner
    if qp.n_channels not in (1, channels):
        raise ValueError(f"{qp.n_channels} channel parameters for {channels} channels")
    # the checks of _c_buf, inline (this is the per-call path); _c_buf raises the message
    if not (
        type(acc) is np.ndarray
        and acc.dtype == _I32
        and acc.flags.c_contiguous
        and acc.size == count
    ):
        _c_buf(ffi, "acc", acc, np.int32, 4 * count)
        raise AssertionError("unreachable: _c_buf refuses what the inline check refuses")
    if not (type(out) is np.ndarray and out.dtype in _OUT8):
        raise TypeError("out must be an int8 or uint8 ndarray")
    if not (out.flags.c_contiguous and out.size == count):
        _c_buf(ffi, "out", out, out.dtype, count)
        raise AssertionError("unreachable: _c_buf refuses what the inline check refuses")
    if not out.flags.writeable:
        raise ValueError("out must be a writeable array; got a read-only one")
    ws_size = _RQ_WS.get(channels)
    if ws_size is None:
        ws_size = lib.fxq_requantize_workspace_size(channels)
        if ws_size < 0:
            raise ValueError(f"invalid channel count {channels}")
        if len(_RQ_WS) > 256:
            _RQ_WS.clear()
        _RQ_WS[channels] = ws_size
    ws, ws_ptr = _workspace_ptr(ws_size)
    st = lib.fxq_requantize(
        ffi.from_buffer("int32_t[]", acc),
        ffi.from_buffer(out),
        outer,
        channels,
        inner,
        qp.q,
        ws_ptr,
        ws.nbytes,
        pid,
    )
    if st != 0:
        _check(st, "fxq_requantize")


# ---------------------------------------------------------------------------------------------
# requantize


_RQ_CACHE: dict = {}
#: per-tensor calls already checked: exact-typed arguments (and $FXQ_KERNEL_PATH) -> the C call's
#: (_QParams, path id, output dtype); see the fast path at the top of :func:`requantize`
_RQ_PLANS: dict = {}


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
        Accumulators in the int32 range. An int32 ndarray is used as it is (no range check
        needed, no copy if C-contiguous); anything else is checked and converted once.
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
    path : {None, "auto", "scalar", "avx2", "avx512", "amx"}

    Returns
    -------
    ndarray of int8 or uint8, the shape of ``acc``.

    Raises
    ------
    ValueError
        For a scheme or dtype without a C kernel (naming ``scheme``/``dtype``), out-of-range
        values, and -- like the numpy version -- where ``tflite``'s ``acc << shift`` overflows
        int32.

    Notes
    -----
    Cost: the argument checks, one min/max pass over ``acc`` only for ``tflite`` with a left
    shift, and the C loop. The parameter struct is cached on (scheme, dtype, zero point, a copy of
    the scale's bytes, pow2_mode, channel count); a hit is checked like a miss.
    """
    fast_key = None
    if (
        type(acc) is np.ndarray
        and type(scale) is float
        and axis is None
        and type(zero_point) is int
        and type(multiplier_bits) is int
        and type(scheme) is str
        and type(dtype) is str
        and type(pow2_mode) is str
        and (path is None or type(path) is str)
    ):
        # exact types only, so equal keys mean identical arguments (1.0 == 1 == True would
        # otherwise let one call stand for another); the environment variable is part of it
        fast_key = (
            scheme,
            dtype,
            zero_point,
            scale,
            pow2_mode,
            multiplier_bits,
            path,
            os.environ.get("FXQ_KERNEL_PATH"),
        )
        plan = _RQ_PLANS.get(fast_key)
        if plan is not None and acc.dtype == _I32 and acc.flags.c_contiguous:
            # every argument but acc is the one a checked miss ran with; acc is checked here
            qp, pid, out_dt = plan
            out = np.empty(acc.shape, dtype=out_dt)
            if acc.size:
                _c_requantize(acc, out, 1, 1, acc.size, qp, pid)
            return out
    if multiplier_bits != 32:
        raise ValueError(
            f"multiplier_bits={multiplier_bits!r} has no C kernel (only 32); use backend='numpy'"
        )
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a string; got {scheme!r}")
    if scheme not in C_SCHEMES:
        raise ValueError(
            f"scheme {scheme!r} has no C kernel; valid for backend='c': "
            f"{', '.join(map(repr, C_SCHEMES))}"
        )
    if type(dtype) is not str:
        dtype = dtype_name(dtype)  # np.dtype("uint8") and np.uint8 name the same dtype
    if dtype not in C_OUT_DTYPES:
        raise ValueError(f"dtype {dtype!r} has no C kernel; valid for backend='c': 'int8', 'uint8'")
    qmin, qmax = (-128, 127) if dtype == "int8" else (0, 255)
    if type(zero_point) is not int or not qmin <= zero_point <= qmax:
        zero_point = _validate.int_in_range("zero_point", zero_point, qmin, qmax)
    pid = resolve_path(path)
    if type(acc) is np.ndarray and acc.dtype == _I32:
        a32 = acc if acc.flags.c_contiguous else np.ascontiguousarray(acc)  # int32: in range
    else:
        a32 = _as_int32(acc)
    if type(scale) is float and 0.0 < scale < float("inf"):
        scales, scalar = None, True
        arrays, n = quant_arrays(scale, scheme, pow2_mode)
    else:
        scales, scalar = _validate.scales("scale", scale)
        arrays, n = quant_arrays(scales.ravel() if not scalar else float(scales), scheme, pow2_mode)
    shape = a32.shape
    if n == 1 and (axis is None or scalar):
        outer, channels, inner = 1, 1, a32.size
        n_channels = 1
    else:
        if scales is None or scales.ndim != 1:
            raise ValueError(
                f"scale must be a scalar or 1-D per-channel array; got shape {np.shape(scale)}"
            )
        if axis is None:
            raise ValueError(f"axis must be given for per-channel scale (got {n} scales)")
        if a32.ndim == 0:
            raise ValueError("acc must have a channel axis for per-channel scale")
        axis = _validate.int_in_range("axis", axis, -a32.ndim, a32.ndim - 1) % a32.ndim
        if shape[axis] != n:
            raise ValueError(
                f"scale has {n} per-channel values but acc has {shape[axis]} along axis {axis}"
            )
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        channels = n
        inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
        n_channels = n
    if a32.size and _left_shifts(scheme, arrays):
        _check_left_shift(a32, arrays["shift"], n_channels, axis)
    out = np.empty(shape, dtype=_OUT8[dtype == "uint8"])
    if a32.size == 0:
        return out
    key = (scheme, dtype, zero_point, id(arrays), n_channels)
    qp = _RQ_CACHE.get(key)
    if qp is None or qp.arrays is not arrays:
        qp = _QParams(scheme, dtype, zero_point, arrays, n_channels)
        if len(_RQ_CACHE) > 256:
            _RQ_CACHE.clear()
        _RQ_CACHE[key] = qp
    _c_requantize(a32, out, outer, channels, inner, qp, pid)
    if fast_key is not None and n_channels == 1 and not _left_shifts(scheme, arrays):
        # a per-tensor call that needs no data-dependent check: the next identical call may skip
        # straight to the C call (tflite with a left shift keeps its overflow check per call)
        if len(_RQ_PLANS) > 256:
            _RQ_PLANS.clear()
        _RQ_PLANS[fast_key] = (qp, pid, out.dtype)
    return out


_NARROW = tuple(np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16))


def _as_int32(acc):
    """``acc`` as a C-contiguous int32 array, range-checked in its own dtype and converted with
    one copy (an int64 detour would cost two more passes); everything that is not an integer
    ndarray goes through :func:`fxq_explore.core.validate.accumulators` and its messages."""
    if type(acc) is np.ndarray and acc.dtype.kind in "iu":
        if acc.size and acc.dtype not in _NARROW:  # narrow integers always fit int32
            lo, hi = int(acc.min()), int(acc.max())
            if lo < -(2**31) or hi > 2**31 - 1:
                _validate.accumulators("acc", acc)  # raises, naming acc and the int32 range
                raise ValueError(f"acc must be in the int32 range; got {lo if lo < 0 else hi}")
        return np.asarray(acc, dtype=_I32, order="C")  # 0-d stays 0-d
    return np.asarray(_validate.accumulators("acc", acc), dtype=_I32, order="C")


def _check_left_shift(a32, shift, n_channels, axis):
    """Refuse, like the numpy path, where ``acc << shift`` overflows int32: a min/max in int32;
    the exact numpy check (and its message) runs only when that finds an overflow."""
    left = np.maximum(shift.astype(np.int64), 0)
    if n_channels == 1:
        s, lo, hi = int(left[0]), int(a32.min()), int(a32.max())
        ok = (lo == hi == 0) if s > 31 else (lo >= -(2**31) >> s and hi <= (2**31 - 1) >> s)
    else:
        other = tuple(i for i in range(a32.ndim) if i != axis)
        lo = a32.min(axis=other).astype(np.int64)
        hi = a32.max(axis=other).astype(np.int64)
        sc = np.minimum(left, 31)
        fits = (lo >= (-(2**31)) >> sc) & (hi <= (2**31 - 1) >> sc)
        ok = bool(np.all(np.where(left > 31, (lo == 0) & (hi == 0), fits)))
    if not ok:
        if n_channels > 1:
            bshape = [1] * a32.ndim
            bshape[axis] = n_channels
            left = left.reshape(bshape)
        left_shift_checked(a32, left)  # raises with the numpy path's message


def copy_bytes(dst, src):
    """``memcpy`` from ``src`` to ``dst`` (same nbytes, contiguous): the benchmark's baseline."""
    if (
        not (
            type(dst) is np.ndarray
            and type(src) is np.ndarray
            and dst.flags.c_contiguous
            and src.flags.c_contiguous
        )
        or dst.nbytes != src.nbytes
    ):
        raise ValueError("dst and src must be C-contiguous arrays with the same nbytes")
    if not dst.flags.writeable:
        raise ValueError("dst must be a writeable array; got a read-only one")
    if np.shares_memory(dst, src):  # exact (and cheap) for two contiguous arrays
        raise ValueError("dst and src must not overlap (memcpy of overlapping memory)")
    ext = _ext()
    ffi = ext.ffi
    ext.lib.fxq_copy_bytes(
        ffi.from_buffer(dst, require_writable=True), ffi.from_buffer(src), src.nbytes
    )


# ---------------------------------------------------------------------------------------------
# convolution


LAYOUTS = ("NCHW", "NCHW16c", "NHWC")


def _layout_id(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(map(repr, LAYOUTS))}")
    return getattr(_ext().lib, "FXQ_LAYOUT_" + layout.upper())


def _w_geometry(layout, w_shape, groups):
    """(K, C, R, S) of a weight tensor (C = all input channels)."""
    if layout == "NCHW16c":
        if len(w_shape) != 7 or tuple(w_shape[4:]) != (4, 16, 4):
            raise ValueError("NCHW16c needs w (K/16, C/16, R, S, 4, 16, 4)")
        if groups != 1:
            raise ValueError("layout 'NCHW16c' has no grouped convolution (groups must be 1)")
        return w_shape[0] * 16, w_shape[1] * 16, w_shape[2], w_shape[3]
    if len(w_shape) != 4:
        raise ValueError(f"{layout} needs w of rank 4 (K, C/groups, R, S)")
    k, cg, r, s = w_shape
    return k, cg * groups, r, s


def _x_geometry(layout, x_shape):
    """(N, C, H, W) of an input tensor."""
    if layout == "NCHW":
        if len(x_shape) != 4:
            raise ValueError("NCHW needs x of rank 4")
        return tuple(x_shape)
    if layout == "NHWC":
        if len(x_shape) != 4:
            raise ValueError("NHWC needs x of rank 4")
        n, h, wd, c = x_shape
        return n, c, h, wd
    if len(x_shape) != 5 or x_shape[4] != 16:
        raise ValueError("NCHW16c needs x (N, C/16, H, W, 16)")
    n, cb, h, wd, _ = x_shape
    return n, cb * 16, h, wd


def _conv_dims(ffi, n, c, h, wd, k, r, s, stride, padding, groups=1):
    (sh, sw), (ph, pw) = stride, padding
    # A stride beyond the padded extent leaves one output row (column) whatever its value, but
    # the C kernel sizes its tile reads by the stride (2**20 would ask for ~600 MiB): pass the
    # smallest stride with the same single output position, so the working set stays bounded.
    # Exact: output row 0 reads rows 0..r-1 for any stride.
    sh = min(sh, max(1, h + 2 * ph - r + 1))
    sw = min(sw, max(1, wd + 2 * pw - s + 1))
    d = ffi.new("fxq_conv_dims *")
    d.groups = groups
    d.n, d.c, d.h, d.w, d.k, d.r, d.s = n, c, h, wd, k, r, s
    d.stride_h, d.stride_w, d.pad_h, d.pad_w = sh, sw, ph, pw
    d.oh = (h + 2 * ph - r) // sh + 1
    d.ow = (wd + 2 * pw - s) // sw + 1
    return d


class PackedWeights:
    """Weights packed once by ``fxq_conv2d_pack_weights`` (OIHW4i16o4i, padded to 16 channels)
    plus the weight summary (``bias - x_zp * sum(w)``, ``sum(w)``, whether a weight is -128);
    valid for one (K, C, R, S), input dtype, input zero point and layout."""

    def __init__(self, w, bias, *, layout, x_dtype, x_zero_point, groups=1):
        lid = _layout_id(layout)
        if not (isinstance(w, np.ndarray) and w.dtype == np.int8 and w.flags.c_contiguous):
            raise TypeError("w must be a C-contiguous int8 ndarray")
        groups = int(groups)
        k, c, r, s = _w_geometry(layout, w.shape, groups)
        if groups < 1 or c % groups or k % groups:
            raise ValueError(f"groups={groups} must divide C={c} and K={k}")
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
        self.k, self.c, self.r, self.s, self.groups = k, c, r, s, groups
        ext = _ext()
        ffi, lib = ext.ffi, ext.lib
        # a 1x1 output geometry: only K, C, R, S and the groups matter for the weights
        d = _conv_dims(ffi, 1, c, r, s, k, r, s, (1, 1), (0, 0), groups)
        nbytes = lib.fxq_conv2d_packed_weight_size(d)
        nsum = lib.fxq_conv2d_weight_summary_len(d)
        if nbytes < 0 or nsum < 0:
            raise ValueError(f"invalid weight shape {w.shape}")
        raw = np.empty(nbytes + 64, dtype=np.uint8)
        off = (-raw.ctypes.data) % 64
        self._raw = raw
        self.wpack = raw[off : off + nbytes]
        self.corr = np.empty(nsum, dtype=np.int32)
        t = ffi.new("fxq_conv_tensors *")
        t.layout = lid
        t.x_dtype = _dtype_id(x_dtype)
        t.x_zero_point = self.x_zero_point
        t.w = _c_buf(ffi, "w", w, np.int8, k * (c // groups) * r * s)
        t.bias = _c_buf(ffi, "bias", bias, np.int32, 4 * k) if bias is not None else ffi.NULL
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


class ConvCall:
    """One convolution geometry, checked and prepared: the C structs, the resolved SIMD path, the
    quantization parameters and (optionally) the packed weights. :meth:`run` checks that ``x``
    (and ``w``/``bias`` when not pre-packed) have exactly the dtype, shape and contiguity the
    geometry was made for -- so no fast path can hand C a wrong buffer -- allocates the output
    and calls C (a few microseconds of Python).

    Parameters
    ----------
    x_shape : tuple of int
        ``(N, C, H, W)`` or ``(N, C/16, H, W, 16)``.
    x_dtype : {"uint8", "int8"}
    packed : PackedWeights or None
        None: the weights are passed to each :meth:`run` (and packed by C on every call); then
        ``w_shape``, ``layout`` and ``x_zero_point`` must be given.
    """

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
        layout=None,
        x_zero_point=None,
        w_shape=None,
        groups=1,
    ):
        ext = _ext()
        self._ffi, self._lib = ext.ffi, ext.lib
        ffi, lib = self._ffi, self._lib
        if x_dtype not in ("uint8", "int8"):
            raise TypeError("x_dtype must be 'uint8' or 'int8'")
        if packed is not None:
            if not isinstance(packed, PackedWeights):
                raise TypeError("packed must be a PackedWeights")
            layout, xzp, groups = packed.layout, packed.x_zero_point, packed.groups
            k, c2, r, s = packed.k, packed.c, packed.r, packed.s
            if x_dtype != packed.x_dtype:
                raise ValueError("input dtype does not match the packed weights")
        else:
            if w_shape is None or x_zero_point is None:
                raise ValueError("without packed weights give layout, x_zero_point and w_shape")
            xzp = int(x_zero_point)
            groups = int(groups)
            w_shape = tuple(int(v) for v in w_shape)
            k, c2, r, s = _w_geometry(layout, w_shape, groups)
        lid = _layout_id(layout)
        x_shape = tuple(int(v) for v in x_shape)
        n, c, h, wd = _x_geometry(layout, x_shape)
        if c != c2:
            raise ValueError(f"w has {c2} input channels, x has {c}")
        if groups < 1 or c % groups or k % groups:
            raise ValueError(f"groups={groups} must divide C={c} and K={k}")
        d = _conv_dims(ffi, n, c, h, wd, k, r, s, stride, padding, groups)
        expect = {
            "NCHW": (n, k, d.oh, d.ow),
            "NHWC": (n, d.oh, d.ow, k),
            "NCHW16c": (n, k // 16, d.oh, d.ow, 16),
        }[layout]
        if tuple(out_shape) != expect:
            raise ValueError(f"output shape {tuple(out_shape)} does not match {expect}")
        self._ws_size = lib.fxq_conv2d_workspace_size(d)
        if self._ws_size < 0:
            geom = dict(n=n, c=c, h=h, w=wd, k=k, r=r, s=s)
            raise ValueError(f"invalid convolution geometry for C: {geom}")
        self._d = d
        if scheme is None:
            self._qp = _QParams(None, "int32", 0, None, 1)
            self.out_dtype: np.dtype = np.dtype(np.int32)
        else:
            if out_dtype not in C_OUT_DTYPES:
                raise ValueError(f"out_dtype {out_dtype!r} has no C kernel")
            self._qp = _QParams(scheme, out_dtype, out_zero_point, arrays, n_channels)
            if self._qp.n_channels not in (1, k):
                raise ValueError(f"{self._qp.n_channels} channel parameters for {k} channels")
            self.out_dtype = np.dtype(np.uint8 if out_dtype == "uint8" else np.int8)
        self.x_shape, self.x_dtype = x_shape, np.dtype(x_dtype)
        self.out_shape = tuple(out_shape)
        self._w_shape = w_shape
        self._k = k
        self._w_bytes = k * (c // groups) * r * s
        self._x_bytes = n * c * h * wd
        self._layout = lid
        self._xdt = _dtype_id(x_dtype)
        self._xzp = xzp
        self._packed = packed
        if packed is not None:
            self._wp = ffi.from_buffer(packed.wpack)
            self._corr = ffi.from_buffer("int32_t[]", packed.corr)
        self._pid = pid
        self._call = None
        if packed is not None:  # everything but x and out, for fxq_conv2d_call (see runner)
            cc = ffi.new("fxq_conv_call *")
            cc.d = d[0]
            cc.t.layout, cc.t.x_dtype, cc.t.x_zero_point = lid, self._xdt, xzp
            cc.t.w, cc.t.bias = ffi.NULL, ffi.NULL
            cc.q = self._qp.q[0]
            cc.wpack, cc.wpack_bytes = self._wp, packed.wpack.nbytes
            cc.corr, cc.corr_len = self._corr, packed.corr.size
            cc.path = pid
            cc.prep = ffi.NULL
            # the requantization parameters expanded once (C checks the block's address)
            self._prep = np.empty(int(lib.fxq_conv_call_prep_size(cc)), np.uint8)
            _check(
                lib.fxq_conv_call_prepare(cc, ffi.from_buffer(self._prep), self._prep.nbytes),
                "fxq_conv_call_prepare",
            )
            self._call = cc

    def runner(self):
        """A function ``f(x) -> out`` for a pre-packed call: one C call (``fxq_conv2d_call``)
        on the struct made at construction, for the caller's cache of known input shapes.

        The caller guarantees x's shape and dtype (its cache key) and C-contiguity;
        ``ffi.from_buffer`` refuses an array numpy cannot export without strides, and C checks
        both byte counts against the geometry again."""
        if self._call is None:
            raise ValueError("runner needs pre-packed weights")
        fb, run = self._ffi.from_buffer, self._lib.fxq_conv2d_call
        cc, shape, odt, size = self._call, self.out_shape, self.out_dtype, self._ws_size
        obytes = int(np.prod(shape)) * odt.itemsize
        # a small workspace of the runner's own for the thread that made it (thread idents are
        # unique among live threads, and C never calls back, so one call at a time uses it): no
        # per-thread lookup, a tenth of a microsecond on a 2 us layer; others use _workspace_ptr
        get_ident, owner, own, own_ptr = threading.get_ident, None, None, None
        if not _EXACT_WORKSPACE and size <= _OWN_WORKSPACE_MAX:
            owner, own = get_ident(), np.empty(int(size), np.uint8)
            own_ptr = self._ffi.from_buffer(own)

        def call(x):
            out = np.empty(shape, odt)
            if get_ident() == owner:
                st = run(cc, fb(x), x.nbytes, fb(out), obytes, own_ptr, size)
            else:
                ws, wsp = _workspace_ptr(size)
                st = run(cc, fb(x), x.nbytes, fb(out), obytes, wsp, ws.nbytes)
            if st:
                _check(st, "fxq_conv2d_call")
            return out

        call.conv_call = self  # type: ignore[attr-defined]  # cc points into its arrays
        return call

    def run(self, x, w=None, bias=None):
        """The convolution of ``x`` (exactly ``x_shape``/``x_dtype``, C-contiguous)."""
        ffi, lib = self._ffi, self._lib
        if not (
            type(x) is np.ndarray
            and x.dtype == self.x_dtype
            and x.shape == self.x_shape
            and x.flags.c_contiguous
        ):
            raise ValueError(
                f"x must be a C-contiguous {self.x_dtype} ndarray of shape {self.x_shape}"
            )
        out = np.empty(self.out_shape, dtype=self.out_dtype)
        t = ffi.new("fxq_conv_tensors *")
        t.layout, t.x_dtype, t.x_zero_point = self._layout, self._xdt, self._xzp
        t.x = ffi.from_buffer(x)  # exactly x_shape, x_dtype, C-contiguous: _x_bytes bytes
        t.out = ffi.from_buffer(out)
        ws, wsp = _workspace_ptr(self._ws_size)  # the per-thread buffer and its cached pointer
        if self._packed is not None:
            if w is not None or bias is not None:
                raise ValueError("w and bias are pre-packed in this call")
            p = self._packed
            st = lib.fxq_conv2d_prepacked(
                self._d,
                t,
                self._qp.q,
                self._wp,
                p.wpack.nbytes,
                self._corr,
                p.corr.size,
                wsp,
                ws.nbytes,
                self._pid,
            )
        else:
            if type(w) is not np.ndarray or w.shape != self._w_shape:
                raise ValueError(f"w must be an int8 ndarray of shape {self._w_shape}")
            t.w = _c_buf(ffi, "w", w, np.int8, self._w_bytes)
            t.bias = (
                _c_buf(ffi, "bias", bias, np.int32, 4 * self._k) if bias is not None else ffi.NULL
            )
            st = lib.fxq_conv2d(self._d, t, self._qp.q, wsp, ws.nbytes, self._pid)
        _check(st, "fxq_conv2d")
        return out


class FcPlan:
    """A fully connected layer prepared once for ``fxq_fc_run`` (every path): the packed
    weights, the zero-point correction and the expanded requantization parameters live in one
    plan buffer, so a call is one C call without set-up.

    Parameters
    ----------
    w : ndarray of int8, shape (K, C), C-contiguous
    bias : ndarray of int32, shape (K,), or None
    x_dtype : {"uint8", "int8"}
    x_zero_point : int in the range of x_dtype
    scheme, arrays, n_channels, out_dtype, out_zero_point
        As for :class:`ConvCall`: ``scheme=None`` gives int32 accumulators, a fused scheme its
        8-bit output (the parameters are copied into the plan).
    pid : int
        A path id (:func:`resolve_path`): ``FXQ_PATH_SCALAR``, ``FXQ_PATH_AVX2`` or
        ``FXQ_PATH_AVX512`` (``FXQ_PATH_AUTO``: the best this CPU has). A path the CPU lacks
        raises ``ValueError``.
    """

    def __init__(
        self,
        w,
        bias,
        *,
        x_dtype,
        x_zero_point,
        pid,
        scheme=None,
        arrays=None,
        n_channels=1,
        out_dtype="int32",
        out_zero_point=0,
    ):
        ext = _ext()
        ffi, lib = ext.ffi, ext.lib
        if not (type(w) is np.ndarray and w.dtype == np.int8 and w.ndim == 2):
            raise TypeError("w must be an int8 ndarray of shape (K, C)")
        if type(pid) is not int:
            raise TypeError(f"pid must be an int path id; got {pid!r}")
        if pid not in _path_ids().values():
            raise ValueError(f"unknown path id {pid}; valid: {sorted(_path_ids().values())}")
        if pid != lib.FXQ_PATH_AUTO and not lib.fxq_path_available(pid):
            raise ValueError(f"path {path_name(pid)!r} is not available on this CPU")
        w = np.ascontiguousarray(w)
        k, c = w.shape
        if scheme is None:
            qparams = _QParams(None, "int32", 0, None, 1)
            self.out_dtype: np.dtype = np.dtype(np.int32)
        else:
            if out_dtype not in C_OUT_DTYPES:
                raise ValueError(f"out_dtype {out_dtype!r} has no C kernel")
            qparams = _QParams(scheme, out_dtype, out_zero_point, arrays, n_channels)
            if qparams.n_channels not in (1, k):
                raise ValueError(f"{qparams.n_channels} channel parameters for {k} channels")
            self.out_dtype = np.dtype(out_dtype)
        wbuf = _c_buf(ffi, "w", w, np.int8, k * c)
        bbuf = _c_buf(ffi, "bias", bias, np.int32, 4 * k) if bias is not None else ffi.NULL
        nbytes = lib.fxq_fc_plan_size(c, k, wbuf)
        if nbytes < 0:
            raise ValueError(f"invalid fully connected shape {w.shape}")
        self._buf = np.empty(int(nbytes), dtype=np.uint8)
        self._ptr = ffi.from_buffer(self._buf)
        _check(
            lib.fxq_fc_plan_init(
                self._ptr,
                self._buf.nbytes,
                c,
                k,
                wbuf,
                bbuf,
                _dtype_id(x_dtype),
                int(x_zero_point),
                qparams.q,
                pid,
            ),
            "fxq_fc_plan_init",
        )
        self._buf.flags.writeable = False  # the C plan is read-only from here on
        self.k, self.c, self.x_dtype = k, c, np.dtype(x_dtype)

    def runner(self, n):
        """A function ``f(x) -> out`` for x of shape (n, C) and this plan's x dtype, out (n, K).

        The caller guarantees the shape and dtype (its cache key); ``ffi.from_buffer`` refuses a
        non-C-contiguous array (numpy exports only C-contiguous buffers without strides), which
        is then copied; C checks both byte counts again."""
        ext = _ext()
        fb, run = ext.ffi.from_buffer, ext.lib.fxq_fc_run
        plan, shape, odt = self._ptr, (int(n), self.k), self.out_dtype
        obytes = shape[0] * shape[1] * odt.itemsize

        def call(x):
            try:
                xb = fb(x)
            except ValueError:
                xb = fb(np.ascontiguousarray(x))
            out = np.empty(shape, odt)
            st = run(plan, xb, len(xb), fb(out), obytes, shape[0])
            if st:
                _check(st, "fxq_fc_run")
            return out

        return call


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
    groups=1,
):
    """Call ``fxq_conv2d`` on arguments already validated by :func:`fxq_explore.conv.conv2d`.

    Re-checks what C relies on (dtypes, contiguity, shapes, every buffer size) through a
    :class:`ConvCall` and raises rather than pass anything that could make C read or write out of
    bounds. With ``packed`` (a :class:`PackedWeights`), ``w`` and ``bias`` are ignored and the
    pre-packed weights are used.
    """
    _layout_id(layout)
    if not (isinstance(x, np.ndarray) and x.dtype in (np.uint8, np.int8) and x.flags.c_contiguous):
        raise TypeError("x must be a C-contiguous uint8 or int8 ndarray")
    xdt = "uint8" if x.dtype == np.uint8 else "int8"
    if packed is not None:
        if not isinstance(packed, PackedWeights):
            raise TypeError("packed must be a PackedWeights")
        if (packed.layout, packed.x_dtype, packed.x_zero_point) != (layout, xdt, int(x_zero_point)):
            raise ValueError("packed weights were made for another layout, x dtype or x zero point")
        w = bias = None
    else:
        if not (isinstance(w, np.ndarray) and w.dtype == np.int8 and w.flags.c_contiguous):
            raise TypeError("w must be a C-contiguous int8 ndarray")
        k = w.shape[0] * (16 if layout == "NCHW16c" else 1) if w.ndim else 0
        if bias is not None and not (
            isinstance(bias, np.ndarray)
            and bias.dtype == np.int32
            and bias.shape == (k,)
            and bias.flags.c_contiguous
        ):
            raise TypeError(f"bias must be a C-contiguous int32 ndarray of shape ({k},) or None")
    call = ConvCall(
        x.shape,
        xdt,
        packed,
        stride=stride,
        padding=padding,
        out_shape=out_shape,
        scheme=scheme,
        arrays=arrays,
        n_channels=n_channels,
        out_dtype=out_dtype,
        out_zero_point=out_zero_point,
        pid=resolve_path(path),
        layout=layout,
        x_zero_point=x_zero_point,
        w_shape=None if w is None else w.shape,
        groups=groups,
    )
    return call.run(x, w, bias)
