r"""Every requantization scheme, named by the engine it matches and its tie rule.

Requantization turns an int32 accumulator ``acc`` (bias already added) into a narrow integer:

.. math::  q = \mathrm{clamp}\big(\mathrm{round}(acc \cdot s) + z,\; q_{min},\; q_{max}\big)

Engines differ in how they form ``acc * s`` (float32 multiply, power-of-two shift, fixed-point
multiply) and in how they round (which tie rule, once or twice). Each scheme below reproduces one
engine bit for bit; the zero point ``z`` is always added after rounding and the result clamped to
the output dtype, as the engines do.

==================== ======================================================== ==================
scheme               arithmetic                                                ties
==================== ======================================================== ==================
``float32_rne``      ``f32(f32(acc) * f32(s))``, round, clamp                  half to even
``tvm_2019_float``   ``f32(f32(acc) * f32(s))``, round, clip to +-(2^(b-1)-1)  half away from 0
``pow2``             ``(acc + 2^(n-1)) >> n`` with ``s`` replaced by ``2^-n``  half up
``tflite``           ``RDBPOT(SRDHM(acc << L, M), R)``                         up, then away
``tflite_optimized`` ``RoundingRightShift(SRDHM(acc << L, M), R)``             up, then up
``tflite_single``    ``(acc * M + 2^(30-e)) >> (31-e)`` in int64               half up (once)
``tvm_tonearest``    ``round(acc * M * 2^(e-31))`` in int64                    half away (once)
``xnnpack_rndnu``    ``(acc * m24 + 2^(k-1)) >> k``, ``m24 * 2^-k == f32(s)``  half up (once)
``exact``            ``acc * s`` with ``s`` the exact double, rounded once     ``tie`` argument
==================== ======================================================== ==================
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import _validate
from .fixedpoint import (
    RoundingMode,
    left_shift_checked,
    round_mul_shift,
    rounding_divide_by_pot,
    rounding_right_shift,
    saturate,
    saturating_rounding_doubling_high_mul,
)
from .multiplier import decompose


@dataclass(frozen=True)
class Scheme:
    """Description of one requantization scheme."""

    name: str
    formula: str
    tie: str
    engines: str
    multiplier: str  # how the scale is represented


SCHEMES = {
    s.name: s
    for s in (
        Scheme(
            "float32_rne",
            "f32(f32(acc) * f32(scale)), clamp, round, + zp",
            "half to even (RNE)",
            "ONNX Runtime MLAS, PyTorch fbgemm/qnnpack, XNNPACK fp32, LiteRT via XNNPACK",
            "float32 scale",
        ),
        Scheme(
            "tvm_2019_float",
            "f32(f32(acc) * f32(scale)), round, clip +-(2^(b-1)-1), cast",
            "half away from zero",
            "TVM relay.quantize before PR #4160 (the seed thread)",
            "float32 scale",
        ),
        Scheme(
            "pow2",
            "(acc + 2^(n-1)) >> n, scale replaced by 2^-n (left shift if >= 1)",
            "half up",
            "TVM relay.quantize round_for_shift (power-of-two scales)",
            "power of two",
        ),
        Scheme(
            "tflite",
            "RoundingDivideByPOT(SRDHM(acc << L, M), R)",
            "half up (SRDHM), then half away from zero",
            "TFLite reference kernels, gemmlowp, CMSIS-NN default, TFLM",
            "Q31, tflite",
        ),
        Scheme(
            "tflite_optimized",
            "RoundingRightShift(SRDHM(acc << L, M), R)",
            "half up, then half up",
            "TFLite optimized (NEON) kernels, ruy",
            "Q31, tflite",
        ),
        Scheme(
            "tflite_single",
            "(acc * M + 2^(30 - shift)) >> (31 - shift) in int64",
            "half up, once",
            "TFLite TFLITE_SINGLE_ROUNDING, CMSIS-NN single rounding, TVM q_multiply_shift / "
            "QNN rounding='UPWARD'",
            "Q31, tflite (shift capped at 30)",
        ),
        Scheme(
            "tvm_tonearest",
            "round(acc * M * 2^(shift - 31)) in int64",
            "half away from zero, once",
            "TVM QNN rounding='TONEAREST'",
            "Q31, tvm",
        ),
        Scheme(
            "xnnpack_rndnu",
            "(acc * m + 2^(k-1)) >> k with m * 2^-k == float32(scale)",
            "half up, once",
            "XNNPACK rndnu (QU8 ARM kernels)",
            "24-bit float32 mantissa",
        ),
        Scheme(
            "exact",
            "acc * scale (exact rational), rounded once",
            "the `tie` argument",
            "none: the mathematical yardstick",
            "exact double",
        ),
    )
}
FIXED_POINT_SCHEMES = ("tflite", "tflite_optimized", "tflite_single", "tvm_tonearest")
POW2_MODES = ("nearest", "ceil", "floor", "truncate")
BACKENDS = ("numpy", "c")


# ---------------------------------------------------------------------------------------------
# parameters


def pow2_exponent(scale, mode: str = "nearest"):
    """The exponent ``e`` of the power of two that replaces ``scale`` (``scale ~ 2^e``).

    ``"nearest"`` is nearest in log2 (``2^-9`` for 0.0018843: a +3.65 % gain error),
    ``"ceil"``/``"floor"`` round log2 up/down; ``"truncate"`` uses the nearest exponent, and
    :func:`requantize` then shifts without the rounding offset. Computed exactly (no ``log2``).

    Examples
    --------
    >>> int(pow2_exponent(0.0018843)), int(pow2_exponent(0.0018843, "ceil"))
    (-9, -9)
    >>> int(pow2_exponent(0.0018843, "floor"))
    -10
    """
    _validate.choice("pow2_mode", mode, POW2_MODES)
    arr, scalar = _validate.scales("scale", scale)
    out = []
    for s in arr.ravel():
        fr = Fraction(float(s))
        _, e = np.frexp(s)
        k = int(e) - 1  # 2^k <= s < 2^(k+1)
        if mode == "floor":
            out.append(k)
        elif mode == "ceil":
            out.append(k if fr == Fraction(2) ** k else k + 1)
        else:  # nearest in log2: compare s^2 with 2^(2k+1) (never equal for rational s)
            out.append(k + 1 if fr * fr > Fraction(2) ** (2 * k + 1) else k)
    res = np.array(out, dtype=np.int64).reshape(arr.shape)
    return res[()] if scalar else res


def scheme_parameters(scale, scheme: str, *, pow2_mode: str = "nearest", multiplier_bits: int = 32):
    """The integer/float parameters a kernel needs for ``scheme``, one entry per channel.

    Returns a dict of 1-D arrays: ``{"multiplier", "shift"}`` (TFLite convention, int64) for the
    fixed-point schemes -- with the shift capped at ``bits - 2`` for ``tflite_single`` as
    ``TFLITE_SINGLE_ROUNDING`` does --, ``{"scale_f32"}`` for the float schemes,
    ``{"exponent"}`` for ``pow2`` and ``{"mantissa", "right_shift"}`` for ``xnnpack_rndnu``.

    Examples
    --------
    >>> p = scheme_parameters(0.0018843, "tflite_single")
    >>> int(p["multiplier"][0]), int(p["shift"][0])
    (2071809760, -9)
    """
    _validate.choice("scheme", scheme, tuple(SCHEMES))
    arr, _ = _validate.scales("scale", scale)
    flat = arr.ravel()
    if scheme in ("float32_rne", "tvm_2019_float"):
        return {"scale_f32": flat.astype(np.float32)}
    if scheme == "pow2":
        return {"exponent": np.atleast_1d(pow2_exponent(flat, pow2_mode)).astype(np.int64)}
    if scheme == "xnnpack_rndnu":
        bad = (flat.astype(np.float32) < 2.0**-32) | (flat.astype(np.float32) >= 256.0)
        if bad.any():
            raise ValueError(
                f"scale must be in [2^-32, 256) for scheme 'xnnpack_rndnu' "
                f"(XNNPACK asserts it); got {flat[bad][0]!r}"
            )
        d = decompose(flat, bits=25, convention="xnnpack")  # multiplier = 24-bit mantissa
        return {"mantissa": np.asarray(d.multiplier), "right_shift": np.asarray(d.right_shift)}
    if scheme == "exact":
        mant, exp = np.frexp(flat)
        return {
            "mantissa": (mant * 2.0**53).astype(np.int64),
            "right_shift": (53 - exp).astype(np.int64),
        }
    bits = _validate.int_in_range("multiplier_bits", multiplier_bits, 2, 32)
    conv = "tvm" if scheme == "tvm_tonearest" else "tflite"
    d = decompose(flat, bits=bits, convention=conv)
    q = np.asarray(d.multiplier, dtype=np.int64).copy()
    e = np.asarray(d.shift, dtype=np.int64).copy()
    if scheme == "tflite_single":
        cap = e > bits - 2  # TFLITE_SINGLE_ROUNDING: saturate the multiplier
        q[cap], e[cap] = (1 << (bits - 1)) - 1, bits - 2
    return {"multiplier": q, "shift": e}


# ---------------------------------------------------------------------------------------------
# the schemes


def _float_product(acc, scale_f32):
    """f32(acc) * f32(scale) in binary32 (RNE at both steps), returned as float64."""
    return (acc.astype(np.float32) * scale_f32).astype(np.float64)


def _rounded_int(acc, scheme, params, *, tie, pow2_mode, qmin_shift, qmax_shift, bits_mult, narrow):
    """Scheme's rounded value before the zero point, as int64 (clamped where the engine
    clamps in float, saturated to int32 otherwise)."""
    if scheme == "float32_rne":
        v = np.clip(_float_product(acc, params["scale_f32"]), qmin_shift, qmax_shift)
        return np.rint(v).astype(np.int64)
    if scheme == "tvm_2019_float":
        v = _float_product(acc, params["scale_f32"])
        v = np.clip(v, -(2.0**40), 2.0**40)
        r = np.sign(v) * np.floor(np.abs(v) + 0.5)  # round(): half away from zero
        return np.clip(r, -narrow, narrow).astype(np.int64)
    if scheme == "pow2":
        e = params["exponent"]
        n = np.maximum(-e, 0)
        if pow2_mode == "truncate":
            right = acc >> n
        else:
            right = rounding_right_shift(acc, n)
        left = np.clip(acc, -(2**32), 2**32) << np.clip(e, 0, 30)
        left = np.where((e > 30) & (acc != 0), np.sign(acc) * 2**62, left)
        return saturate(np.where(e >= 0, left, right))
    if scheme in ("tflite", "tflite_optimized"):
        q, e = params["multiplier"], params["shift"]
        x = left_shift_checked(acc, np.maximum(e, 0))
        y = saturating_rounding_doubling_high_mul(x, q, bits_mult)
        r = np.maximum(-e, 0)
        return rounding_divide_by_pot(y, r) if scheme == "tflite" else rounding_right_shift(y, r)
    if scheme == "tflite_single":
        q, e = params["multiplier"], params["shift"]
        t = (bits_mult - 1) - e  # >= 1 thanks to the cap
        return saturate((acc * q + (np.int64(1) << (t - 1))) >> t)
    if scheme == "tvm_tonearest":
        q, e = params["multiplier"], params["shift"]
        return saturate(
            round_mul_shift(acc, q, (bits_mult - 1) - e, RoundingMode.HALF_AWAY_FROM_ZERO)
        )
    if scheme == "xnnpack_rndnu":
        return saturate(
            round_mul_shift(acc, params["mantissa"], params["right_shift"], RoundingMode.HALF_UP)
        )
    # exact
    return saturate(round_mul_shift(acc, params["mantissa"], params["right_shift"], tie))


def requantize(
    acc,
    scale,
    scheme: str = "tflite",
    *,
    zero_point: int = 0,
    dtype: str = "int8",
    axis=None,
    pow2_mode: str = "nearest",
    tie="HALF_AWAY_FROM_ZERO",
    multiplier_bits: int = 32,
    backend: str = "numpy",
):
    """Requantize int32 accumulators to a narrow integer type, exactly as an engine does.

    Parameters
    ----------
    acc : array_like of int
        Accumulators (bias included), values in the int32 range.
    scale : float or array_like of float
        Positive finite effective scale ``s_in * s_w / s_out``; an array gives per-channel scales
        along ``axis``.
    scheme : str
        One of ``SCHEMES`` (see the module docstring and ``fxq-explore schemes``).
    zero_point : int
        Output zero point, in the range of ``dtype``; added after rounding.
    dtype : str
        ``"int8"``, ``"uint8"``, ``"int16"``, ``"int4"``, ``"uint4"`` (stored in int8/uint8),
        ``"intN"``/``"uintN"`` for N in 2..16, or ``"int32"`` (saturate only: the raw rounding).
    axis : int or None
        Channel axis of ``acc`` for per-channel ``scale``.
    pow2_mode : {"nearest", "ceil", "floor", "truncate"}
        For ``scheme="pow2"``: which power of two replaces the scale (``"truncate"``: the
        nearest one, shifted without the rounding offset).
    tie : RoundingMode or str
        For ``scheme="exact"``: the tie rule (``"HALF_AWAY_FROM_ZERO"``, ``"HALF_UP"``,
        ``"HALF_TO_EVEN"``, ``"FLOOR"``, ...).
    multiplier_bits : int, 2..32
        Width of the fixed-point multiplier for the fixed-point schemes (32 = the engines).
    backend : {"numpy", "c"}
        ``"c"`` runs the SIMD C kernel (``float32_rne``, ``pow2``, ``tflite``,
        ``tflite_single``; int8/uint8 output), bit-identical to ``"numpy"``.

    Returns
    -------
    ndarray
        Same shape as ``acc``; int8/uint8/int16/uint16/int32 storage for ``dtype``.

    Notes
    -----
    At the edges each scheme follows its engine: ``tflite`` flushes scales below ``2^-32`` to
    zero and raises ``ValueError`` where ``acc << shift`` would overflow int32 (undefined
    behaviour in TFLite's C code); ``tflite_single`` caps the shift at 30; ``xnnpack_rndnu``
    accepts ``2^-32 <= scale < 256`` only. Where an engine would wrap an out-of-range int32
    result, this function saturates (documented, not silent: such results are clamped anyway
    for every narrow dtype).

    Examples
    --------
    >>> acc = [-70000, -1000, 265, 70000]
    >>> requantize(acc, 0.0018843, "tflite")       # 265 * s = 0.4993: double rounding -> 1
    array([-128,   -2,    1,  127], dtype=int8)
    >>> requantize(acc, 0.0018843, "tflite_single")
    array([-128,   -2,    0,  127], dtype=int8)
    >>> requantize(acc, 0.0018843, "pow2", dtype="int32")      # scale -> 2^-9
    array([-137,   -2,    1,  137], dtype=int32)
    >>> requantize([797], 0.0018843, "float32_rne", zero_point=128, dtype="uint8")
    array([130], dtype=uint8)
    """
    _validate.choice("scheme", scheme, tuple(SCHEMES))
    _validate.choice("backend", backend, BACKENDS)
    _validate.choice("pow2_mode", pow2_mode, POW2_MODES)
    try:
        tie = RoundingMode(tie)
    except ValueError:
        raise ValueError(
            f"unknown tie {tie!r}; valid: {', '.join(repr(m.value) for m in RoundingMode)}"
        ) from None
    qmin, qmax, storage, obits, signed = _validate.dtype_range("dtype", dtype)
    zero_point = _validate.int_in_range("zero_point", zero_point, qmin, qmax)
    acc = _validate.accumulators("acc", acc, keep_int32=backend == "c")
    scales, scalar = _validate.scales("scale", scale)
    bits_mult = _validate.int_in_range("multiplier_bits", multiplier_bits, 2, 32)
    if scalar or scales.size == 1 and axis is None:
        shape = ()
    else:
        if scales.ndim != 1:
            raise ValueError(
                f"scale must be a scalar or 1-D per-channel array; got shape {scales.shape}"
            )
        if axis is None:
            raise ValueError(
                f"axis must be given for per-channel scale (got {scales.size} scales and axis=None)"
            )
        axis = _validate.int_in_range("axis", axis, -acc.ndim, acc.ndim - 1) if acc.ndim else 0
        if acc.ndim == 0 or acc.shape[axis] != scales.size:
            n = acc.shape[axis] if acc.ndim else 0
            raise ValueError(
                f"scale has {scales.size} per-channel values but acc has {n} along axis {axis}"
            )
        shape = [1] * acc.ndim
        shape[axis % acc.ndim] = scales.size
    if backend == "c":
        from . import kernels

        return kernels.requantize(
            acc,
            scale,
            scheme,
            zero_point=zero_point,
            dtype=dtype,
            axis=axis,
            pow2_mode=pow2_mode,
            multiplier_bits=bits_mult,
        )
    params = {
        k: v.reshape(shape)
        for k, v in scheme_parameters(
            scales.ravel(), scheme, pow2_mode=pow2_mode, multiplier_bits=bits_mult
        ).items()
    }
    narrow = 2 ** (obits - 1) - 1 if signed else 2**obits - 1
    r = _rounded_int(
        acc,
        scheme,
        params,
        tie=tie,
        pow2_mode=pow2_mode,
        qmin_shift=qmin - zero_point,
        qmax_shift=qmax - zero_point,
        bits_mult=bits_mult,
        narrow=narrow,
    )
    out = np.clip(r + zero_point, qmin, qmax)
    if scheme == "tvm_2019_float" and signed:
        out = np.clip(out, -narrow, narrow)
    return out.astype(storage)


def exact_value(acc, scale):
    """The exact real ``acc * scale`` as float64 (for error measurements; exact to 1 ulp)."""
    return _validate.accumulators("acc", acc).astype(np.float64) * np.asarray(
        scale, dtype=np.float64
    )
