r"""What every requantization scheme is made of, and the two ways of running one.

A scheme is an object with metadata (name, formula, tie rule, the engines it matches, how the
scale is represented), a ``params`` method (scale -> the integers or floats a kernel needs, as a
typed dataclass) and one ``rounded`` method written once against a small set of primitives
(:class:`Ops`). Running ``rounded`` with :data:`NUMPY_OPS` is :meth:`Scheme.apply` (vectorised);
running it with a :class:`TraceOps` records every primitive with the bits it drops and the tie
rule it applies -- that is :meth:`Scheme.trace`, which ``explain`` shows. The C mapping is the
name of the scheme's enum in the compiled library (``c_scheme``) and ``c_supports``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..core import fixedpoint as fp
from ..core.fixedpoint import RoundingMode

Array = NDArray[Any]
Step = tuple[str, str]


@dataclass(frozen=True)
class Context:
    """What a scheme's rounding needs besides the accumulator and its parameters.

    ``qmin_shift``/``qmax_shift`` are the output range minus the zero point (float schemes clamp
    there before rounding); ``narrow`` the largest symmetric magnitude of the output type
    (``tvm_2019_float`` clips to it); ``tie`` the rule of ``exact``; ``bits`` the multiplier
    width of the fixed-point schemes.
    """

    qmin_shift: int = -128
    qmax_shift: int = 127
    narrow: int = 127
    tie: RoundingMode = RoundingMode.HALF_AWAY_FROM_ZERO
    bits: int = 32


@dataclass(frozen=True)
class Params:
    """Base of the per-scheme parameter dataclasses: every field is a 1-D array (one entry per
    channel) unless listed in ``_scalars``."""

    _scalars: ClassVar[tuple[str, ...]] = ()

    def arrays(self) -> dict[str, Array]:
        """The array fields by name (what ``scheme_parameters`` returns)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in self._scalars
        }

    def reshape(self, shape: tuple[int, ...]) -> Params:
        """The same parameters with every array reshaped (to broadcast along a channel axis)."""
        return dataclasses.replace(self, **{k: v.reshape(shape) for k, v in self.arrays().items()})

    def channel(self, i: int) -> Params:
        """The parameters of channel ``i`` as 1-element arrays."""
        return dataclasses.replace(
            self, **{k: v.ravel()[i : i + 1] for k, v in self.arrays().items()}
        )


def dropped(value: int, nbits: int) -> str:
    """Describe the low ``nbits`` bits a right shift by ``nbits`` drops, versus one half."""
    if nbits <= 0:
        return "nothing dropped"
    rem = value & ((1 << nbits) - 1)
    half = 1 << (nbits - 1)
    rel = (
        "exactly one half: a TIE"
        if rem == half
        else ("above one half" if rem > half else "below one half")
    )
    shown = "0b" + format(rem, f"0{nbits}b") if nbits <= 40 else f"{rem:#x}"
    return f"drops the low {nbits} bits {shown} = {rem}/2^{nbits}, {rel}"


class Ops:
    """The primitives schemes are written in, vectorised over numpy arrays (int64 / float32)."""

    def to_f32(self, x: Array, what: str) -> Array:
        """``x`` rounded to binary32 (RNE)."""
        return np.asarray(x).astype(np.float32)

    def mul_f32(self, a: Array, b: Array) -> Array:
        """A binary32 product (RNE); overflows to inf as the engines' do (then clamped)."""
        with np.errstate(over="ignore"):
            return (a * b).astype(np.float32)

    def clip_float(self, v: Array, lo: float, hi: float) -> Array:
        """Clamp a float before rounding (the engines clamp in float, then convert)."""
        return np.clip(v.astype(np.float64), lo, hi)

    def round_half_to_even(self, v: Array) -> Array:
        """``rint`` / ``cvtps2dq``: nearest integer, ties to even."""
        return np.rint(v).astype(np.int64)

    def round_half_away(self, v: Array, limit: float) -> Array:
        """C ``round()`` / ``llvm.round``: nearest, ties away from zero (``|v|`` capped first)."""
        v = np.clip(v.astype(np.float64), -limit, limit)
        return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)

    def left_shift(self, x: Array, n: Array) -> Array:
        """int32 ``x << n``; raises where it overflows int32 (undefined behaviour in C)."""
        return fp.left_shift_checked(x, n)

    def srdhm(self, x: Array, q: Array, bits: int) -> Array:
        """gemmlowp SaturatingRoundingDoublingHighMul: ``x*q / 2^(bits-1)``, ties up."""
        return fp.saturating_rounding_doubling_high_mul(x, q, bits)

    def rounding_divide_by_pot(self, y: Array, r: Array) -> Array:
        """gemmlowp RoundingDivideByPOT: ``y / 2^r``, ties away from zero."""
        return fp.rounding_divide_by_pot(y, r)

    def rounding_right_shift(self, y: Array, r: Array) -> Array:
        """``(y + 2^(r-1)) >> r``: ties up (NEON VRSHL, TVM round_for_shift)."""
        return fp.rounding_right_shift(y, r)

    def saturating_left_shift(self, x: Array, n: Array) -> Array:
        """``x << n`` saturated to int32 (exact in int64 wherever it can matter)."""
        x, n = np.asarray(x, dtype=np.int64), np.asarray(n, dtype=np.int64)
        out = np.clip(x, -(2**32), 2**32) << np.clip(n, 0, 30)
        out = np.where((n > 30) & (x != 0), np.sign(x) * 2**62, out)
        return fp.saturate(out)

    def floor_shift(self, x: Array, r: Array) -> Array:
        """Arithmetic ``x >> r`` (floor, no rounding offset)."""
        # |x| < 2^62 here, so shifting by 63 is the floor for every larger r (>= 64 is undefined)
        return np.asarray(x, dtype=np.int64) >> np.clip(np.asarray(r, dtype=np.int64), 0, 63)

    def round_mul_shift(self, x: Array, n: Array, t: Array, mode: RoundingMode) -> Array:
        """``x * n / 2^t`` rounded once with tie rule ``mode``, exact (64-bit product)."""
        return fp.round_mul_shift(x, n, t, mode)

    def saturate(self, x: Array) -> Array:
        """Saturate to int32."""
        return fp.saturate(x)


NUMPY_OPS = Ops()


class TraceOps(Ops):
    """The same primitives on one value, each call recorded as a ``(title, text)`` step."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def _add(self, title: str, text: str) -> None:
        self.steps.append((title, text))

    @staticmethod
    def _i(x: Array) -> int:
        return int(np.asarray(x).ravel()[0])

    @staticmethod
    def _f(x: Array) -> float:
        return float(np.asarray(x).ravel()[0])

    def to_f32(self, x: Array, what: str) -> Array:
        out = super().to_f32(x, what)
        src = np.asarray(x).ravel()[0]
        src = int(src) if np.asarray(x).dtype.kind in "iu" else float(src)
        note = ""
        if np.asarray(x).dtype.kind in "iu" and int(out.ravel()[0]) != int(src):
            note = "  (rounded: |acc| > 2^24)"
        elif np.asarray(x).dtype.kind == "f" and float(src) != self._f(out):
            rel = (Fraction(self._f(out)) - Fraction(float(src))) / Fraction(float(src))
            note = f" (rel. error {float(rel):.2e})"
        self._add(f"float32({what})", f"{src!r} -> {self._f(out)!r}{note}")
        return out

    def mul_f32(self, a: Array, b: Array) -> Array:
        out = super().mul_f32(a, b)
        fa, fb = self._f(a), self._f(b)
        exact = float(Fraction(fa) * Fraction(fb))
        self._add(
            "multiply in binary32", f"{fa!r} * {fb!r} = {self._f(out)!r} (exact product {exact!r})"
        )
        return out

    def clip_float(self, v: Array, lo: float, hi: float) -> Array:
        out = super().clip_float(v, lo, hi)
        if self._f(out) != self._f(v):
            self._add("clamp in float", f"{self._f(v)!r} -> {self._f(out)!r} (to [{lo}, {hi}])")
        return out

    def _tie_note(self, v: Array) -> str:
        f = Fraction(self._f(v))
        return "; this is a TIE" if f - (f.numerator // f.denominator) == Fraction(1, 2) else ""

    def round_half_to_even(self, v: Array) -> Array:
        out = super().round_half_to_even(v)
        self._add(
            "round",
            f"{self._f(v)!r} -> {self._i(out)}, half to even (rint / cvtps2dq){self._tie_note(v)}",
        )
        return out

    def round_half_away(self, v: Array, limit: float) -> Array:
        out = super().round_half_away(v, limit)
        self._add(
            "round",
            f"{self._f(v)!r} -> {self._i(out)}, half away from zero (llvm.round)"
            f"{self._tie_note(v)}",
        )
        return out

    def left_shift(self, x: Array, n: Array) -> Array:
        a, k = self._i(x), self._i(n)
        if not -(2**31) <= a << k < 2**31:
            self._add("left shift", f"acc << {k} = {a << k}  OVERFLOWS int32 (undefined in C)")
        else:
            self._add("left shift", f"acc << {k} = {a << k}")
        return super().left_shift(x, n)

    def srdhm(self, x: Array, q: Array, bits: int) -> Array:
        out = super().srdhm(x, q, bits)
        a, m = self._i(x), self._i(q)
        prod = a * m
        self._add(
            "SRDHM (stage 1)",
            f"{a} * {m} = {prod} (64-bit); (p + 2^{bits - 2}) >> {bits - 1} = {self._i(out)}; "
            f"{dropped(prod, bits - 1)}; ties up",
        )
        return out

    def rounding_divide_by_pot(self, y: Array, r: Array) -> Array:
        out = super().rounding_divide_by_pot(y, r)
        v, k = self._i(y), self._i(r)
        self._add(
            "RoundingDivideByPOT (stage 2)",
            f"{v} / 2^{k} -> {self._i(out)}; {dropped(v, k)}; ties away from zero",
        )
        return out

    def rounding_right_shift(self, y: Array, r: Array) -> Array:
        out = super().rounding_right_shift(y, r)
        v, k = self._i(y), self._i(r)
        if k:
            self._add(
                "rounding shift",
                f"({v} + 2^{k - 1}) >> {k} = {self._i(out)}; {dropped(v, k)}; ties up",
            )
        else:
            self._add("rounding shift", f"no shift: {v}")
        return out

    def saturating_left_shift(self, x: Array, n: Array) -> Array:
        out = super().saturating_left_shift(x, n)
        a, k = self._i(x), self._i(n)
        full = f"{a << k}" if k <= 64 else f"{a} * 2^{k}"
        self._add("left shift", f"{a} << {k} = {full} -> {self._i(out)} (saturated to int32)")
        return out

    def floor_shift(self, x: Array, r: Array) -> Array:
        out = super().floor_shift(x, r)
        v, k = self._i(x), self._i(r)
        self._add("truncating shift", f"{v} >> {k} = {self._i(out)}; {dropped(v, k)}, floor")
        return out

    def round_mul_shift(self, x: Array, n: Array, t: Array, mode: RoundingMode) -> Array:
        out = super().round_mul_shift(x, n, t, mode)
        a, m, k = self._i(x), self._i(n), self._i(t)
        prod = a * m
        self._add("product", f"{a} * {m} = {prod} (64-bit)")
        rule = {
            RoundingMode.HALF_UP: "ties up",
            RoundingMode.HALF_AWAY_FROM_ZERO: "ties away from zero",
            RoundingMode.HALF_TO_EVEN: "ties to even",
        }.get(mode, f"rounding {mode.value}")
        if k <= 0:
            self._add("single rounding", f"p << {-k} = {self._i(out)}: no rounding")
        else:
            self._add(
                "single rounding",
                f"round(p / 2^{k}) = {self._i(out)}; {dropped(prod, k)}; {rule}",
            )
        return out

    def saturate(self, x: Array) -> Array:
        out = super().saturate(x)
        if self._i(out) != self._i(x):
            self._add("saturate", f"{self._i(x)} -> {self._i(out)} (int32)")
        return out


class Scheme:
    """One requantization scheme: metadata, parameters, and its arithmetic written once.

    Subclasses set the class attributes and implement :meth:`params` and :meth:`rounded`.
    """

    name: ClassVar[str]
    formula: ClassVar[str]
    tie: ClassVar[str]
    engines: ClassVar[str]
    multiplier: ClassVar[str]  # how the scale is represented
    c_scheme: ClassVar[str | None] = None  # name of the enum value in the compiled C library
    uses_multiplier_bits: ClassVar[bool] = False
    uses_pow2_mode: ClassVar[bool] = False
    uses_tie: ClassVar[bool] = False

    def params(
        self, scales: Array, *, multiplier_bits: int = 32, pow2_mode: str = "nearest"
    ) -> Params:
        """Per-channel parameters for 1-D float64 ``scales`` (already validated)."""
        raise NotImplementedError

    def rounded(self, acc: Array, p: Any, ctx: Context, ops: Ops) -> Array:
        """The scheme's rounded value of ``acc * scale`` before the zero point (int64)."""
        raise NotImplementedError

    def describe(self, p: Any, scale: float) -> list[Step]:
        """How the scale is represented (the first step of a trace)."""
        return []

    def finish(self, r: Array, zero_point: int, qmin: int, qmax: int, ctx: Context) -> Array:
        """Zero point and clamp to the output type, as the engine does it."""
        return np.clip(r + zero_point, qmin, qmax)

    def c_supports(self, p: Any, out_dtype: str) -> str | None:
        """``None`` if the C kernels can run these parameters, else the reason they cannot."""
        if self.c_scheme is None:
            return f"scheme {self.name!r} has no C kernel"
        if out_dtype not in ("int8", "uint8"):
            return f"the C kernels write int8 or uint8, not {out_dtype!r}"
        return None

    # -- the two ways of running ``rounded`` ----------------------------------------------------
    def apply(self, acc: Array, p: Any, ctx: Context | None = None) -> Array:
        """Vectorised: ``rounded`` over numpy arrays."""
        return self.rounded(np.asarray(acc, dtype=np.int64), p, ctx or Context(), NUMPY_OPS)

    def trace(self, acc: int, p: Any, ctx: Context | None = None) -> tuple[int, list[Step]]:
        """One accumulator through the same primitives, recording each step."""
        ops = TraceOps()
        r = self.rounded(np.array([int(acc)], dtype=np.int64), p, ctx or Context(), ops)
        return int(np.asarray(r).ravel()[0]), ops.steps

    def __repr__(self) -> str:
        return f"<scheme {self.name}: {self.formula}; ties {self.tie}>"


def q31_params_from(d: Any) -> tuple[Array, Array]:
    """``(multiplier, shift)`` int64 copies from a :class:`~fxq_explore.core.multiplier.Decomposition`."""
    return (
        np.atleast_1d(np.asarray(d.multiplier, dtype=np.int64)).copy(),
        np.atleast_1d(np.asarray(d.shift, dtype=np.int64)).copy(),
    )


def describe_q31(q: int, e: int, bits: int, convention: str, scale: float, note: str = "") -> Step:
    """The decomposition step shared by the Q31 fixed-point schemes."""
    value = float(Fraction(q) * Fraction(2) ** (e - (bits - 1)))
    return (
        "decompose",
        f"scale {scale!r} -> multiplier {q} (0x{q:08X}), shift {e:+d} [{convention}]: "
        f"{q} * 2^{e - (bits - 1)} = {value!r}{note}",
    )
