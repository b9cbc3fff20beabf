"""Argument checks shared by the public functions.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, outside the
allowed range) with a message that names the argument, the offending value and what is allowed.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def choice(name, value, allowed):
    """Return ``value`` if it is one of ``allowed`` (strings), else raise ValueError listing them."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string, one of {', '.join(map(repr, allowed))}; "
            f"got {value!r} of type {type(value).__name__}"
        )
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, allowed))}")
    return value


def int_in_range(name, value, lo, hi):
    """Return ``value`` as a Python int if it is an integer in [lo, hi]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer in [{lo}, {hi}]; got {value!r} "
            f"of type {type(value).__name__}"
        )
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}]; got {value}")
    return value


def scales(name, value):
    """Check positive finite scale(s); return (float64 ndarray, is_scalar)."""
    if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
        raise TypeError(
            f"{name} must be a positive finite real number or an array of them; got {value!r}"
        )
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a positive finite real number or an array of them; got {value!r}"
        ) from None
    if arr.dtype.kind not in "f" or np.asarray(value).dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers; got dtype {np.asarray(value).dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        first = float(arr[bad].flat[0])
        raise ValueError(f"{name} must be positive and finite (0 < {name} < inf); got {first!r}")
    return arr, arr.ndim == 0


def accumulators(name, value, keep_int32=False):
    """Check an int32-range integer array; return it as int64 ndarray.

    ``keep_int32=True``: an int32 ndarray is returned as it is (every value is in range, so
    there is nothing to check and no int64 copy to make; for consumers that compute in int32,
    such as the C kernels)."""
    if keep_int32 and type(value) is np.ndarray and value.dtype == np.int32:
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be integers in the int32 range; got {value!r}")
    arr = np.asarray(value)
    if arr.dtype == object:
        try:
            if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in arr.flat):
                ints = [int(v) for v in arr.flat]
                if any(not INT32_MIN <= v <= INT32_MAX for v in ints):
                    bad = next(v for v in ints if not INT32_MIN <= v <= INT32_MAX)
                    raise ValueError(
                        f"{name} must be in the int32 range [{INT32_MIN}, {INT32_MAX}]; got {bad}"
                    )
                arr = np.array(ints, dtype=np.int64).reshape(arr.shape)
        except TypeError:
            pass
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
        if (
            arr.dtype.kind == "f"
            and arr.size
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            raise TypeError(
                f"{name} must have an integer dtype (int32 accumulators); "
                f"got {arr.dtype}; convert with .astype(np.int32) if intended"
            )
        raise TypeError(f"{name} must be integers in the int32 range; got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > INT32_MAX:
        raise ValueError(
            f"{name} must be in the int32 range [{INT32_MIN}, {INT32_MAX}]; got {int(arr.max())}"
        )
    arr = arr.astype(np.int64)
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < INT32_MIN or hi > INT32_MAX:
            bad = lo if lo < INT32_MIN else hi
            raise ValueError(
                f"{name} must be in the int32 range [{INT32_MIN}, {INT32_MAX}]; got {bad}"
            )
    return arr


_DTYPE_RE = re.compile(r"^(u?)int(\d+)$")


def dtype_range(name, dtype):
    """Parse an output dtype name into (qmin, qmax, numpy storage dtype, bits, signed)."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        dtype = np.dtype(dtype).name
    if not isinstance(dtype, str):
        raise TypeError(
            f"{name} must be a string such as 'int8', 'uint8', 'int16', 'int4', "
            f"'uint4' or 'int32'; got {dtype!r}"
        )
    m = _DTYPE_RE.match(dtype)
    bits = int(m.group(2)) if m else None
    if not m or not (2 <= bits <= 16 or (bits == 32 and not m.group(1))):
        raise ValueError(
            f"unsupported {name} {dtype!r}; valid: 'int8', 'uint8', 'int16', "
            f"'int4', 'uint4', 'int32', or 'intN'/'uintN' with N in 2..16"
        )
    signed = not m.group(1)
    if signed:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        qmin, qmax = 0, 2**bits - 1
    if bits <= 8:
        storage = np.int8 if signed else np.uint8
    elif bits <= 16:
        storage = np.int16 if signed else np.uint16
    else:
        storage = np.int32
    return qmin, qmax, np.dtype(storage), bits, signed
