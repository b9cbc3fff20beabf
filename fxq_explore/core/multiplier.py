r"""Real scale <-> integer multiplier and shift.

A requantization scale ``s`` (for example ``0.0018843``) is a real number; integer-only engines
store it as an integer *multiplier* ``M`` of ``bits - 1`` significant bits and a signed power of
two ``shift``:

.. math::  s \approx M \cdot 2^{\mathrm{shift} - (\mathrm{bits} - 1)},
           \qquad 2^{\mathrm{bits}-2} \le M < 2^{\mathrm{bits}-1}.

With ``bits = 32`` this is TFLite's ``QuantizeMultiplier``: ``M`` is an int32 in
``[2^30, 2^31)``, a Q31 number in ``[0.5, 1)``. The multiplier is *normalised* into that interval
so that it keeps as many significant bits as the integer type allows; the power of two moves into
``shift`` (TFLite's sign convention: positive means shift left). ``right_shift`` is the
non-negative total right shift ``(bits - 1) - shift`` that a single-rounding kernel applies.

Each engine derives ``(M, shift)`` its own way (``convention``):

``"tflite"``
    ``frexp`` of the double, ``M = round(f * 2^(bits-1))`` with ties away from zero,
    renormalise when the mantissa rounds up to ``2^(bits-1)``, flush to ``(0, 0)`` when the
    exponent is below -31 (TFLite ``QuantizeMultiplier``).
``"tvm"``
    the same without the flush (TVM ``GetFixedPointMultiplierShift``).
``"xnnpack"``
    the exact 24-bit mantissa of ``float32(s)``, placed in ``bits - 1`` bits (XNNPACK's
    rndnu / gemmlowp parameters: ``M = mantissa << 7`` for 32 bits). Below 25 bits the
    mantissa is rounded half away from zero.
``"fbgemm"``
    FBGEMM's ``ChooseRequantizationMultiplier``: binary32 arithmetic, double or halve
    until the value lies in [0.5, 1], ``M = nearbyint(r * 2^(bits-1))`` (ties to even).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import validate

CONVENTIONS = ("tflite", "tvm", "xnnpack", "fbgemm")
FLUSH_EXPONENT = -31  # TFLite: exponents below this flush the multiplier to zero


def _rha_shift(n: int, k: int) -> int:
    """round(n / 2^k), ties away from zero, for n >= 0, k >= 0 (exact integer arithmetic)."""
    if k == 0:
        return n
    return (n + (1 << (k - 1))) >> k


def _decompose_one(s: float, bits: int, convention: str) -> tuple[int, int, bool]:
    """(multiplier, shift, flushed) for one positive finite double ``s``."""
    top = 1 << (bits - 1)
    if convention in ("tflite", "tvm"):
        f, e = math.frexp(s)  # s = f * 2^e, f in [0.5, 1)
        mant = int(f * (1 << 53))  # exact: f has at most 53 significant bits
        q = _rha_shift(mant, 53 - (bits - 1)) if bits - 1 <= 53 else mant << (bits - 1 - 53)
        if q == top:
            q, e = top >> 1, e + 1
        if convention == "tflite" and e < FLUSH_EXPONENT:
            return 0, 0, True
        return q, e, False
    if convention == "xnnpack":
        with np.errstate(over="ignore", under="ignore"):
            s32 = np.float32(s)
        if not np.isfinite(s32) or s32 < np.finfo(np.float32).tiny:
            raise ValueError(
                f"scale must be a normal float32 for convention 'xnnpack' "
                f"(1.18e-38 <= scale < 3.4e38); got {s!r}"
            )
        b = int(np.array(s32, dtype=np.float32).view(np.uint32))
        mant = (b & 0x7FFFFF) | 0x800000  # 24 bits, [2^23, 2^24)
        e = (b >> 23) - 126  # float32(s) = mant * 2^(e - 24) = (mant / 2^24) * 2^e
        if bits - 1 >= 24:
            q = mant << (bits - 1 - 24)
        else:
            q = _rha_shift(mant, 24 - (bits - 1))
            if q == top:
                q, e = top >> 1, e + 1
        return q, e, False
    # fbgemm: all in binary32, exactly as FBGEMM's ChooseRequantizationMultiplier
    with np.errstate(over="ignore", under="ignore"):
        r = np.float32(s)
    if not np.isfinite(r) or r == 0:
        raise ValueError(
            f"scale must be representable as a nonzero float32 for convention 'fbgemm'; got {s!r}"
        )
    rs = bits - 1
    while r < np.float32(0.5):
        r = np.float32(r * np.float32(2.0))
        rs += 1
    while r > np.float32(1.0):
        r = np.float32(r / np.float32(2.0))
        rs -= 1
    q = int(np.rint(np.float32(r) * np.float32(2.0 ** (bits - 1))))  # nearbyint: ties to even
    if q == top:
        q, rs = top >> 1, rs - 1
    return q, (bits - 1) - rs, False


@dataclass(frozen=True)
class Decomposition:
    """A scale written as ``multiplier * 2^(shift - (bits - 1))``.

    Fields are Python scalars for a scalar scale and numpy arrays (same shape as the scale) for
    per-channel scales.

    Attributes
    ----------
    scale : float or ndarray of float64
        The real scale that was decomposed.
    multiplier : int or ndarray of int64
        In ``[2^(bits-2), 2^(bits-1))``, or 0 where TFLite flushes a tiny scale.
    shift : int or ndarray of int64
        Signed exponent, positive = left (TFLite convention).
    bits : int
        Width of the signed integer that holds the multiplier (2..32).
    convention : str
        How the multiplier was derived: one of ``CONVENTIONS``.
    flushed : bool or ndarray of bool
        True where the scale was below TFLite's threshold and flushed to ``(0, 0)``.
    """

    scale: float | NDArray[np.float64]
    multiplier: int | NDArray[np.int64]
    shift: int | NDArray[np.int64]
    bits: int
    convention: str
    flushed: bool | NDArray[np.bool_]

    @property
    def right_shift(self) -> int | NDArray[np.int64]:
        """Total right shift ``(bits - 1) - shift`` (negative means a net left shift)."""
        return (self.bits - 1) - self.shift

    @property
    def is_scalar(self) -> bool:
        return np.ndim(self.scale) == 0

    def _values(self) -> list[Fraction]:
        ms = np.atleast_1d(self.multiplier).ravel()
        rs = np.atleast_1d(self.right_shift).ravel()
        return [
            Fraction(int(m)) / (Fraction(2) ** int(r))
            if r >= 0
            else Fraction(int(m) * 2 ** int(-r))
            for m, r in zip(ms, rs, strict=False)
        ]

    @property
    def value(self) -> Fraction | NDArray[np.object_]:
        """The represented value ``multiplier * 2^-right_shift``, exact (``fractions.Fraction``;
        an object array of them for per-channel scales)."""
        vals = self._values()
        if self.is_scalar:
            return vals[0]
        out = np.empty(len(vals), dtype=object)
        out[:] = vals
        return out.reshape(np.shape(self.scale))

    def _errors(self) -> tuple[list[float], list[float]]:
        scales = np.atleast_1d(self.scale).ravel()
        abs_err = [
            float(v - Fraction(float(s))) for v, s in zip(self._values(), scales, strict=False)
        ]
        rel_err = [
            float((v - Fraction(float(s))) / Fraction(float(s)))
            for v, s in zip(self._values(), scales, strict=False)
        ]
        return abs_err, rel_err

    @property
    def abs_error(self) -> float | NDArray[np.float64]:
        """Signed absolute error ``value - scale`` (float; array for per-channel)."""
        a, _ = self._errors()
        return a[0] if self.is_scalar else np.array(a).reshape(np.shape(self.scale))

    @property
    def rel_error(self) -> float | NDArray[np.float64]:
        """Signed relative error ``(value - scale) / scale`` (float; array for per-channel)."""
        _, r = self._errors()
        return r[0] if self.is_scalar else np.array(r).reshape(np.shape(self.scale))

    # ---- display -------------------------------------------------------------------------
    def _rows(self) -> Iterator[dict[str, Any]]:
        ms = np.atleast_1d(self.multiplier).ravel()
        ss = np.atleast_1d(self.shift).ravel()
        sc = np.atleast_1d(self.scale).ravel()
        fl = np.atleast_1d(self.flushed).ravel()
        a, r = self._errors()
        vals = self._values()
        width = self.bits
        for i in range(len(ms)):
            m = int(ms[i])
            yield dict(
                scale=float(sc[i]),
                multiplier=m,
                hex=f"0x{m:0{(width + 3) // 4}X}",
                bin=_group_bits(format(m, f"0{width}b")),
                shift=int(ss[i]),
                right_shift=(width - 1) - int(ss[i]),
                value=_as_float(vals[i]),
                abs_error=a[i],
                rel_error=r[i],
                flushed=bool(fl[i]),
            )

    def __repr__(self) -> str:
        head = (
            f"Decomposition(bits={self.bits}, convention={self.convention!r}"
            + ("" if self.is_scalar else f", channels={np.size(self.scale)}")
            + ")"
        )
        lines = [head]
        for row in self._rows():
            lines.append(f"  scale       {row['scale']!r}")
            lines.append(f"  multiplier  {row['multiplier']} = {row['hex']} = 0b{row['bin']}")
            lines.append(
                f"  shift       {row['shift']:+d}  (right_shift {row['right_shift']}):"
                f" scale ~ {row['multiplier']} * 2^{-row['right_shift']}"
            )
            v = row["value"]
            lines.append(
                f"  value       {v!r}"
                if v is not None
                else f"  value       {row['multiplier']} * 2^{-row['right_shift']}"
                " (beyond the double range)"
            )
            lines.append(
                f"  error       abs {row['abs_error']:.3e}, rel {row['rel_error']:.3e}"
                + ("   [flushed to zero: scale below 2^-32, TFLite]" if row["flushed"] else "")
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = (
            "scale",
            "multiplier",
            "hex",
            "bin",
            "shift",
            "right_shift",
            "value",
            "abs_error",
            "rel_error",
        )
        head = "".join(f"<th>{c}</th>" for c in cells)
        body = []
        for row in self._rows():
            tds = []
            for c in cells:
                v = row[c]
                if c in ("abs_error", "rel_error"):
                    v = f"{v:.3e}"
                elif c == "bin":
                    v = f"<code>{v}</code>"
                elif c in ("scale", "value"):
                    v = "beyond the double range" if v is None else f"{v!r}"
                tds.append(f"<td>{v}</td>")
            note = " <b>flushed to zero</b>" if row["flushed"] else ""
            body.append("<tr>" + "".join(tds) + f"</tr>{note}")
        return (
            f"<p><b>Decomposition</b> bits={self.bits}, convention={self.convention!r}: "
            f"scale &asymp; multiplier &middot; 2<sup>shift &minus; {self.bits - 1}</sup></p>"
            f"<table><tr>{head}</tr>{''.join(body)}</table>"
        )


def _as_float(v: Fraction) -> float | None:
    """``float(v)``, or None where ``v`` lies beyond the double range (scales near 1.8e308
    decompose to ``2^1024``)."""
    try:
        return float(v)
    except OverflowError:
        return None


def _group_bits(b: str) -> str:
    """'0111101101' -> '01_1110_1101' (groups of four from the right)."""
    groups = []
    while b:
        groups.append(b[-4:])
        b = b[:-4]
    return "_".join(reversed(groups))


def decompose(scale: ArrayLike, bits: int = 32, convention: str = "tflite") -> Decomposition:
    """Write a real scale as an integer multiplier and a power-of-two shift.

    Parameters
    ----------
    scale : float or array_like of float
        Positive, finite. An array gives per-channel results (array-valued fields).
    bits : int, 2..32
        Width of the signed integer that holds the multiplier; 32 is TFLite's int32 Q31
        multiplier, 16 the Q15 multiplier of 16-bit paths.
    convention : {"tflite", "tvm", "xnnpack", "fbgemm"}
        Which engine's derivation to follow (see the module docstring).

    Returns
    -------
    Decomposition
        Frozen result: ``multiplier``, ``shift`` (positive = left), ``right_shift``, ``value``
        (exact ``Fraction``), ``abs_error``, ``rel_error``.

    Notes
    -----
    ``scale ~= multiplier * 2^(shift - (bits - 1))`` with
    ``2^(bits-2) <= multiplier < 2^(bits-1)``. For ``"tflite"`` the relative error is at most
    ``2^-(bits-1)`` (half a unit in the last place of the normalised multiplier).

    Examples
    --------
    >>> d = decompose(0.0018843)
    >>> d.multiplier, d.shift, d.right_shift
    (2071809760, -9, 40)
    >>> f"{d.rel_error:.2e}"
    '-1.05e-10'
    >>> decompose(0.0018843, convention="xnnpack").multiplier   # float32 mantissa << 7
    2071809792
    >>> decompose([0.5, 0.25]).shift
    array([ 0, -1])
    """
    bits = validate.int_in_range("bits", bits, 2, 32)
    validate.choice("convention", convention, CONVENTIONS)
    arr, is_scalar = validate.scales("scale", scale)
    flat = arr.ravel()
    res = [_decompose_one(float(s), bits, convention) for s in flat]
    q: int | NDArray[np.int64]  # a Python int for a scalar scale, else an array
    e: int | NDArray[np.int64]
    fl: bool | NDArray[np.bool_]
    if is_scalar:
        q, e, fl = res[0]
        return Decomposition(float(flat[0]), int(q), int(e), bits, convention, bool(fl))
    q = np.array([r[0] for r in res], dtype=np.int64).reshape(arr.shape)
    e = np.array([r[1] for r in res], dtype=np.int64).reshape(arr.shape)
    fl = np.array([r[2] for r in res], dtype=bool).reshape(arr.shape)
    return Decomposition(arr.copy(), q, e, bits, convention, fl)


def quantize_multiplier(scale: float, bits: int = 32) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``(quantized_multiplier, shift)`` for one scale.

    Examples
    --------
    >>> quantize_multiplier(0.0018843)
    (2071809760, -9)
    """
    d = decompose(scale, bits=bits, convention="tflite")
    if not d.is_scalar:
        raise ValueError(
            "scale must be a single number for quantize_multiplier; use decompose() for arrays"
        )
    return cast(int, d.multiplier), cast(int, d.shift)  # scalar: Python ints
