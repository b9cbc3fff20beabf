"""Argument checks shared by the public functions.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, outside the
allowed range) with a message that names the argument, the offending value and what is allowed.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Collection
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def choice(name: str, value: object, allowed: Collection[str]) -> str:
    """Return ``value`` if it is one of ``allowed`` (strings), else raise ValueError listing them."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string, one of {', '.join(map(repr, allowed))}; "
            f"got {value!r} of type {type(value).__name__}"
        )
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, allowed))}")
    return value


def int_in_range(name: str, value: object, lo: int, hi: int) -> int:
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


def scales(name: str, value: ArrayLike) -> tuple[NDArray[np.float64], bool]:
    """Check positive finite scale(s); return (float64 ndarray, is_scalar)."""
    if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
        raise TypeError(
            f"{name} must be a positive finite real number or an array of them; got {value!r}"
        )
    try:
        kind = np.asarray(value).dtype.kind
    except (ValueError, TypeError):  # ragged nested sequences
        raise TypeError(
            f"{name} must be a positive finite real number or a rectangular array of them; "
            f"got {value!r}"
        ) from None
    if kind == "c":
        raise TypeError(f"{name} must be real numbers; got complex {value!r}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise ValueError(
            f"{name} must be positive and finite (0 < {name} <= 1.8e308); got an integer "
            f"beyond the double range"
        ) from None
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


def accumulators(name: str, value: ArrayLike, *, keep_narrow: bool = False) -> NDArray[Any]:
    """Check an int32-range integer array; return it as int64 ndarray.

    An empty list gives an empty int64 array. ``keep_narrow``: int8/int16/int32 (and uint8/uint16)
    arrays are returned as they are, without the int64 copy (for the chunked paths).
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be integers in the int32 range; got {value!r}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(
            f"{name} must be a rectangular array of integers (not ragged): {exc}"
        ) from None
    if arr.size == 0 and arr.dtype.kind in "fO" and not isinstance(value, np.ndarray):
        return np.zeros(arr.shape, dtype=np.int64)  # [] or [[]]: no values, nothing to check
    if keep_narrow and arr.dtype in (np.int8, np.int16, np.int32, np.uint8, np.uint16):
        return arr
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


def dtype_range(name: str, dtype: DTypeLike) -> tuple[int, int, np.dtype[Any], int, bool]:
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
    if not m or bits is None or not (2 <= bits <= 16 or (bits == 32 and not m.group(1))):
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
        storage: type[np.integer[Any]] = np.int8 if signed else np.uint8
    elif bits <= 16:
        storage = np.int16 if signed else np.uint16
    else:
        storage = np.int32
    return qmin, qmax, np.dtype(storage), bits, signed


# ---- scalars, value arrays, sizes and memory --------------------------------------------------

#: Elements processed at once by the chunked numpy paths (a bounded working set: the exact
#: single-rounding arithmetic needs about 155 bytes per element, so ~40 MiB per chunk).
CHUNK = 1 << 18

#: The most memory one call may ask for before it is refused (bytes).
MAX_BYTES = 1 << 30


def _fmt_bytes(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def memory(name: str, nbytes: float, why: str, limit: int = MAX_BYTES) -> None:
    """Refuse (ValueError) an allocation of ``nbytes`` above ``limit``, saying how much and why."""
    if nbytes > limit:
        raise ValueError(
            f"{name}: {why} would need {_fmt_bytes(nbytes)}, above the limit of "
            f"{_fmt_bytes(limit)}; use a smaller {name}"
        )


def work(name: str, value: object, cost: float, limit: float, why: str) -> None:
    """Refuse (ValueError) a computation whose element-operation count exceeds ``limit``."""
    if cost > limit:
        raise ValueError(
            f"{name}={value} would make {why} take about {cost:.3g} element operations, above "
            f"the bound of {limit:.3g} (it grows quadratically); use a smaller {name}"
        )


def flag(name: str, value: object) -> bool:
    """Return ``value`` as a bool if it is a bool (numpy bools included), else TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def real(
    name: str,
    value: object,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """Return ``value`` as a finite Python float in the given range (TypeError/ValueError)."""
    lo_s = "-inf" if lo is None else repr(lo)
    hi_s = "inf" if hi is None else repr(hi)
    rng = f"{'(' if lo_open or lo is None else '['}{lo_s}, {hi_s}{')' if hi_open or hi is None else ']'}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
        raise TypeError(
            f"{name} must be a real number in {rng}; got {value!r} of type {type(value).__name__}"
        )
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must be in {rng}; got {value!r}, beyond the double range"
        ) from None
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, in {rng}; got {v!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be in {rng}; got {v!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{name} must be in {rng}; got {v!r}")
    return v


def scale(name: str, value: Any) -> float:
    """One positive finite scale as a Python float (a 1-element array is accepted)."""
    arr, _ = scales(name, value)
    if arr.size != 1:
        raise ValueError(f"{name} must be a single number here; got {arr.size} values")
    return float(arr.ravel()[0])


def real_array(
    name: str, value: object, *, allow_empty: bool = False, nonzero: bool = False
) -> NDArray[np.float64]:
    """Return ``value`` as a flat float64 array of finite reals.

    Refuses strings, None, bools, ragged nested lists, object and complex arrays (TypeError),
    empty input unless ``allow_empty``, NaN/inf, and an all-zero array when ``nonzero``
    (ValueError), each naming ``name``.
    """
    if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers; got {value!r}")
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested sequences
        raise TypeError(
            f"{name} must be a rectangular array of real numbers (not a ragged list): {exc}"
        ) from None
    if raw.dtype.kind not in "iuf" and not (raw.dtype.kind == "O" and raw.size == 0):
        if not (raw.size == 0 and raw.dtype.kind in "f"):
            raise TypeError(f"{name} must be an array of real numbers; got dtype {raw.dtype}")
    try:
        arr = raw.astype(np.float64, copy=False).ravel()
    except OverflowError:
        raise ValueError(f"{name} has an integer beyond the double range") from None
    if arr.size == 0:
        if allow_empty:
            return arr
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(
            f"{name} must be finite; found {n_bad} NaN/inf value(s) (drop or fix them first)"
        )
    if nonzero and not np.any(arr):
        raise ValueError(f"{name} must not be all zero (a zero range has no scale)")
    return arr


def shape(name: str, value: Any, ndim: int, lo: int = 1, hi: int = 1 << 20) -> tuple[int, ...]:
    """A shape of ``ndim`` integers, each in [lo, hi] (TypeError/ValueError naming ``name``)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a tuple of {ndim} integers; got {value!r}")
    if len(value) != ndim:
        raise ValueError(f"{name} must have {ndim} entries; got {len(value)}: {tuple(value)!r}")
    return tuple(int_in_range(f"{name}[{i}]", v, lo, hi) for i, v in enumerate(value))


def each_choice(name: str, values: Any, allowed: Collection[str]) -> tuple[str, ...]:
    """A non-empty sequence whose every entry is one of ``allowed``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence; got {values!r}")
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if v not in allowed:
            choice(name, v, tuple(allowed))
    return values
