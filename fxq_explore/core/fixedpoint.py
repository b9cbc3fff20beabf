r"""Fixed-point primitives of the engines, vectorised over numpy int64 arrays.

The names follow gemmlowp / TFLite so that a reader can follow each one into the engines' source:

* :func:`saturating_rounding_doubling_high_mul` -- gemmlowp's SRDHM / ARM ``SQRDMULH``: the high
  half of ``2*a*b``, rounded half *up* (towards +inf), saturating the single overflow case
  ``INT_MIN * INT_MIN``.
* :func:`rounding_divide_by_pot` -- gemmlowp's ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded
  half *away from zero*.
* :func:`rounding_right_shift` -- ``(x + 2^(n-1)) >> n``: the rounding shift of NEON ``VRSHL``,
  ruy and TVM, ties up.
* :func:`multiply_by_quantized_multiplier` -- TFLite's default (double rounding) composition.
* :func:`multiply_by_quantized_multiplier_single_rounding` -- TFLite's ``TFLITE_SINGLE_ROUNDING``.
* :func:`round_mul_shift` -- the exact yardstick: ``acc * n / 2^t`` rounded with any tie rule,
  for ``n`` up to 53 bits (so the double ``scale`` itself fits), exact in int64.

All inputs are int64 numpy arrays (or anything numpy broadcasts); values are the int32 values of
the engines, held in int64 so that 64-bit intermediate products can be formed without overflow.
"""

from __future__ import annotations

import enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class RoundingMode(str, enum.Enum):
    """Tie rules (and directed roundings) for an exact value that lies between two integers."""

    HALF_UP = "HALF_UP"  # ties -> +inf: floor(v + 1/2)
    HALF_DOWN = "HALF_DOWN"  # ties -> -inf: ceil(v - 1/2)
    HALF_AWAY_FROM_ZERO = "HALF_AWAY_FROM_ZERO"  # C round(), TFLite RDBPOT, TVM TONEAREST
    HALF_TOWARD_ZERO = "HALF_TOWARD_ZERO"
    HALF_TO_EVEN = "HALF_TO_EVEN"  # IEEE default, rint / nearbyint / cvtps2dq
    FLOOR = "FLOOR"  # arithmetic right shift
    CEIL = "CEIL"
    TOWARD_ZERO = "TOWARD_ZERO"  # C integer division, truncation


def _i64(x: ArrayLike) -> NDArray[np.int64]:
    return np.asarray(x, dtype=np.int64)


def saturating_rounding_doubling_high_mul(
    a: ArrayLike, b: ArrayLike, bits: int = 32
) -> NDArray[np.int64]:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` (ARM SQRDMULH) for ``bits``-bit integers.

    Parameters
    ----------
    a, b : array_like of int, values in the signed ``bits``-bit range
    bits : int, 2..32

    Returns
    -------
    ndarray of int64
        ``floor((a*b + 2^(bits-2)) / 2^(bits-1))``, i.e. ``a*b / 2^(bits-1)`` rounded half up,
        except ``a == b == -2^(bits-1)`` which saturates to ``2^(bits-1) - 1``.

    Examples
    --------
    >>> saturating_rounding_doubling_high_mul([5, -5, -2**31], [2**30, 2**30, -2**31])
    array([         3,         -2, 2147483647])
    """
    a, b = _i64(a), _i64(b)
    lo = -(1 << (bits - 1))
    out = (a * b + (1 << (bits - 2))) >> (bits - 1)
    return np.where((a == lo) & (b == lo), (1 << (bits - 1)) - 1, out)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent``, ties away from zero.

    Parameters
    ----------
    x : array_like of int, ``|x| < 2^62``
    exponent : int or array_like of int, >= 0 (values above 62 act as 62: the result is 0)

    Examples
    --------
    >>> rounding_divide_by_pot([5, -5, 6, -6, 7], 1)
    array([ 3, -3,  3, -3,  4])
    """
    x, k = _i64(x), np.clip(_i64(exponent), 0, 62)
    mask = (np.int64(1) << k) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> k) + (remainder > threshold)


def rounding_right_shift(x: ArrayLike, n: ArrayLike) -> NDArray[np.int64]:
    """``(x + 2^(n-1)) >> n``: right shift rounding half up (NEON VRSHL, TVM, ruy).

    ``n = 0`` returns ``x``. Computed in int64 (the engines' int32 add can overflow near
    INT32_MAX; this one does not).

    Examples
    --------
    >>> rounding_right_shift([5, -5, 6, -6], 1)
    array([ 3, -2,  3, -3])
    """
    x, n = _i64(x), _i64(n)
    # |x| < 2^31, so any n >= 33 gives 0 (x >= 0) or 0 / -1 exactly as n = 62 does; clipping
    # keeps 2^(n-1) and the shift inside int64 (a shift by >= 64 is undefined in numpy/C)
    n = np.clip(n, 0, 62)
    half = np.where(n > 0, np.int64(1) << np.maximum(n - 1, 0), 0)
    return (x + half) >> n


def saturate(x: ArrayLike, lo: int = INT32_MIN, hi: int = INT32_MAX) -> NDArray[np.int64]:
    """Clamp to ``[lo, hi]`` (int64 in, int64 out)."""
    return np.clip(_i64(x), lo, hi)


def left_shift_checked(acc: ArrayLike, left: ArrayLike) -> NDArray[np.int64]:
    """``acc << left`` as the engines' int32 code computes it; raise where int32 overflows.

    TFLite's reference kernels and gemmlowp shift the int32 accumulator left before the high
    multiply when the scale is >= 1/2 (``shift > 0``). An overflow there is undefined behaviour
    in C, so this function refuses it instead of silently picking one outcome.
    """
    acc, left = _i64(acc), _i64(left)
    left_b = np.broadcast_to(left, np.broadcast_shapes(acc.shape, left.shape))
    safe = np.minimum(left_b, 32)
    shifted = acc << safe
    bad = (shifted < INT32_MIN) | (shifted > INT32_MAX) | ((left_b > 31) & (acc != 0))
    if bad.any():
        idx = np.argwhere(bad)[0] if bad.ndim else ()
        a = int(np.broadcast_to(acc, bad.shape)[tuple(idx)])
        sh = int(left_b[tuple(idx)])
        raise ValueError(
            f"acc << {sh} overflows int32 for acc={a}: the engine's C code has "
            f"undefined behaviour here (scale >= 2^{sh - 1}); use a smaller scale "
            f"or smaller accumulators"
        )
    return shifted


def multiply_by_quantized_multiplier(
    acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, bits: int = 32
) -> NDArray[np.int64]:
    """TFLite ``MultiplyByQuantizedMultiplier`` (default build): double rounding.

    ``RoundingDivideByPOT(SRDHM(acc << L, multiplier), R)`` with ``L = max(shift, 0)``,
    ``R = max(-shift, 0)``: stage 1 rounds half up at ``2^(bits-1)``, stage 2 rounds half away
    from zero at ``2^R``.

    Examples
    --------
    >>> multiply_by_quantized_multiplier([1000, -1000, 70000], 2071809760, -9)
    array([  2,  -2, 132])
    """
    shift = _i64(shift)
    x = left_shift_checked(acc, np.maximum(shift, 0))
    y = saturating_rounding_doubling_high_mul(x, multiplier, bits)
    return rounding_divide_by_pot(y, np.maximum(-shift, 0))


def multiply_by_quantized_multiplier_single_rounding(
    acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, bits: int = 32
) -> NDArray[np.int64]:
    """TFLite ``MultiplyByQuantizedMultiplier`` with ``TFLITE_SINGLE_ROUNDING``: one rounding.

    ``(acc * multiplier + 2^(t-1)) >> t`` in int64 with ``t = (bits - 1) - shift``; requires
    ``shift <= bits - 2`` (TFLite caps the shift at 30), so ``t >= 1``. The result is saturated to
    int32 (TFLite DCHECKs that it fits).

    Examples
    --------
    >>> multiply_by_quantized_multiplier_single_rounding([1000, -1000, 70000], 2071809760, -9)
    array([  2,  -2, 132])
    """
    t = (bits - 1) - _i64(shift)
    if np.any(t < 1):
        raise ValueError("shift must be <= bits - 2 for single rounding (TFLite caps it at 30)")
    p = _i64(acc) * _i64(multiplier) + (np.int64(1) << (t - 1))
    return saturate(p >> t)


def round_mul_shift(
    acc: ArrayLike, n: ArrayLike, t: ArrayLike, mode: RoundingMode | str = RoundingMode.HALF_UP
) -> NDArray[np.int64]:
    """Exactly round ``acc * n / 2^t`` to an integer with the tie rule ``mode``.

    Parameters
    ----------
    acc : array_like of int, ``|acc| <= 2^31``
    n : array_like of int, ``0 <= n < 2^53`` (a double's mantissa fits)
    t : array_like of int, any sign (negative means a left shift)
    mode : RoundingMode or str

    Returns
    -------
    ndarray of int64
        The rounded value, saturated to ``[-2^40, 2^40]`` (far outside int32, so callers can
        saturate to their own range without ambiguity).

    Notes
    -----
    A float64 screen first: ``v = ldexp(float(acc) * float(n), -t)`` is one rounding away from
    the exact value (``acc`` and ``n`` are exact doubles, ``ldexp`` is exact unless ``v`` is
    subnormal), so ``|v - exact| <= |v| * 2^-53 < 2^-33`` for ``|v| < 2^20``. Where moreover the
    fraction of ``v`` is farther than ``2^-20`` from 0, 1/2 and 1, the floor of ``v`` and the
    side of 1/2 it lies on are those of the exact value, and the result is read off them.
    Every other element (near an integer or a tie, ``|v| >= 2^20``, non-finite) takes the
    exact integer route below, which is the definition.

    ``n`` is split as ``n_hi * 2^27 + n_lo`` so every partial product fits int64:
    ``acc * n = C * 2^27 + B_lo`` with ``0 <= B_lo < 2^27``. The floor and the comparison of the
    dropped fraction with one half are then read off ``C`` and ``B_lo`` without forming the full
    (up to 84-bit) product.

    Examples
    --------
    >>> round_mul_shift([3, -3, 5], 1, 1, "HALF_TO_EVEN")   # 1.5, -1.5, 2.5
    array([ 2, -2,  2])
    >>> round_mul_shift([3, -3], 1, 1, "HALF_AWAY_FROM_ZERO")
    array([ 2, -2])
    """
    mode = RoundingMode(mode)
    acc, n, t = np.broadcast_arrays(_i64(acc), _i64(n), _i64(t))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        v = np.ldexp(acc.astype(np.float64) * n.astype(np.float64), np.clip(-t, -2000, 2000))
        fl = np.floor(v)
        frac = v - fl  # exact for |v| < 2^52
        eps = 2.0**-20
        easy = (np.abs(v) < 2.0**20) & (frac > eps) & (frac < 1 - eps) & (np.abs(frac - 0.5) > eps)
    if not easy.any():
        return _round_mul_shift_exact(acc, n, t, mode)
    floor = np.where(easy, fl, 0.0).astype(np.int64)
    cmp = np.where(frac > 0.5, 1, -1).astype(np.int64)
    out = floor + _round_up(floor, cmp, np.ones_like(easy), mode)
    if not easy.all():
        hard = ~easy
        out[hard] = _round_mul_shift_exact(acc[hard], n[hard], t[hard], mode)
    return out


def _round_mul_shift_exact(
    acc: NDArray[np.int64], n: NDArray[np.int64], t: NDArray[np.int64], mode: RoundingMode
) -> NDArray[np.int64]:
    """:func:`round_mul_shift` in int64 arithmetic only (broadcast int64 arrays)."""
    low_mask = (1 << 27) - 1
    b = acc * (n & low_mask)
    c = acc * (n >> 27) + (b >> 27)  # |c| < 2^57 + 2^31
    b_lo = b & low_mask  # in [0, 2^27)
    sat = np.int64(1) << 40
    cc = np.clip(c, -(1 << 35), 1 << 35)  # beyond this the result saturates anyway

    # Case A: t <= 0 -> integer result (acc*n) << -t
    left = np.clip(-t, 0, 22)
    a_val = np.clip((cc << 27) + b_lo, -sat, sat) << left
    a_val = np.where((-t > 22) & ((c != 0) | (b_lo != 0)), np.sign(c * 2 + (b_lo > 0)) * sat, a_val)
    # Case B: 0 < t <= 27 -> floor = c*2^(27-t) + (b_lo >> t), fraction = b_lo mod 2^t
    tb = np.clip(t, 1, 27)
    # clip c so that c * 2^(27-t) stays within int64 yet beyond the 2^40 saturation
    cb = np.clip(c, -(np.int64(1) << (14 + tb)), np.int64(1) << (14 + tb))
    b_floor = (cb << (27 - tb)) + (b_lo >> tb)
    b_frac = b_lo & ((np.int64(1) << tb) - 1)
    b_half = np.int64(1) << (tb - 1)
    b_cmp = np.sign(b_frac - b_half)
    b_nonzero = b_frac != 0
    # Case C: t > 27 -> v = t - 27, floor = c >> v, fraction = (c mod 2^v + b_lo/2^27) / 2^v
    v = np.clip(t - 27, 1, 62)
    c_floor = c >> v
    rem = c - (c_floor << v)  # in [0, 2^v)
    c_half = np.int64(1) << (v - 1)
    c_cmp = np.where(rem > c_half, 1, np.where(rem < c_half, -1, np.where(b_lo > 0, 1, 0)))
    huge = t - 27 > 62  # |value| < 2^-4: floor is 0 or -1, below one half
    c_floor = np.where(huge, np.where(c < 0, -1, 0), c_floor)
    c_cmp = np.where(huge, -1, c_cmp)
    c_nonzero = (rem != 0) | (b_lo != 0) | (huge & ((c != 0) | (b_lo != 0)))
    c_cmp = np.where(huge & (c < 0), 1, c_cmp)  # value in (-1, 0) close to 0: above floor+1/2

    floor = np.where(t <= 0, a_val, np.where(t <= 27, b_floor, c_floor))
    cmp = np.where(t <= 0, -1, np.where(t <= 27, b_cmp, c_cmp))
    nonzero = np.where(t <= 0, False, np.where(t <= 27, b_nonzero, c_nonzero))
    up = _round_up(floor, cmp, nonzero, mode)
    return np.clip(floor + up, -sat, sat)


def _round_up(
    floor: NDArray[np.int64], cmp: NDArray[np.int64], nonzero: NDArray[np.bool_], mode: RoundingMode
) -> NDArray[np.int64]:
    """Whether to add 1 to ``floor``, given the dropped fraction's comparison with 1/2."""
    if mode is RoundingMode.FLOOR:
        return np.zeros_like(floor)
    if mode is RoundingMode.CEIL:
        return nonzero.astype(np.int64)
    if mode is RoundingMode.TOWARD_ZERO:
        return (nonzero & (floor < 0)).astype(np.int64)
    above, tie = cmp > 0, cmp == 0
    if mode is RoundingMode.HALF_UP:
        take = tie
    elif mode is RoundingMode.HALF_DOWN:
        take = np.zeros_like(tie)
    elif mode is RoundingMode.HALF_AWAY_FROM_ZERO:
        take = tie & (floor >= 0)
    elif mode is RoundingMode.HALF_TOWARD_ZERO:
        take = tie & (floor < 0)
    else:  # HALF_TO_EVEN
        take = tie & (floor % 2 == 1)
    return (above | take).astype(np.int64)
