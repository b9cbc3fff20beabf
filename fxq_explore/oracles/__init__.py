"""Exact oracles written with Python ints and fractions.Fraction, straight from each engine's
definition (see the engines' sources cited in the docs), independent of the vectorised code.

One function per scheme, one accumulator at a time: slow and readable on purpose. The tests and
``fxq-explore verify`` check every vectorised scheme against these, bit for bit.
"""

import math
import struct
from fractions import Fraction

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def f32(x: float) -> float:
    """Round a double to binary32 (round to nearest even), returned as a double."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def round_fraction(v: Fraction, tie: str) -> int:
    fl = math.floor(v)
    frac = v - fl
    if tie == "FLOOR":
        return fl
    if tie == "CEIL":
        return fl + (frac > 0)
    if tie == "TOWARD_ZERO":
        return fl + (frac > 0 and v < 0)
    if frac != Fraction(1, 2):
        return fl + (frac > Fraction(1, 2))
    return {
        "HALF_UP": fl + 1,
        "HALF_DOWN": fl,
        "HALF_AWAY_FROM_ZERO": fl + 1 if v > 0 else fl,
        "HALF_TOWARD_ZERO": fl if v > 0 else fl + 1,
        "HALF_TO_EVEN": fl + (fl % 2),
    }[tie]


def quantize_multiplier(d: float, flush=True, bits=32):
    """TFLite ``QuantizeMultiplier`` (tensorflow/lite/kernels/internal/quantization_util.cc):
    frexp, ``q = round(f * 2^31)`` (C round, ties away), renormalise ``q == 2^31``, flush
    ``e < -31`` to (0, 0). ``flush=False``: TVM ``GetFixedPointMultiplierShift``
    (src/relay/qnn/utils.cc), the same without the flush."""
    f, e = math.frexp(d)
    q = round_fraction(Fraction(f) * 2 ** (bits - 1), "HALF_AWAY_FROM_ZERO")  # C round()
    if q == 2 ** (bits - 1):
        q //= 2
        e += 1
    if flush and e < -31:
        return 0, 0
    return q, e


def srdhm(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` (fixedpoint/fixedpoint.h): saturate
    INT32_MIN * INT32_MIN, else ``(a*b + nudge) / 2^31`` with the sign-dependent nudge and C
    (truncating) division."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return c_div(ab + nudge, 1 << 31)


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT`` (fixedpoint/fixedpoint.h): mask, remainder, threshold
    ``(mask >> 1) + [x < 0]``."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


class Overflow(Exception):
    pass


def _tflite_stage1(acc, s):
    """Shared first stage of TFLite's double rounding: int32 ``acc << L`` (overflow is undefined
    in C: raise), then SRDHM. Returns (stage-1 result, right shift R of the second stage)."""
    q, e = quantize_multiplier(s)
    left, right = max(e, 0), max(-e, 0)
    x = acc * (1 << left)
    if not INT32_MIN <= x <= INT32_MAX:
        raise Overflow
    return srdhm(x, q), right


def tflite(acc, s):
    """TFLite ``MultiplyByQuantizedMultiplier`` default build
    (tensorflow/lite/kernels/internal/common.cc): RDBPOT(SRDHM(acc << L, q), R)."""
    y, right = _tflite_stage1(acc, s)
    return rdbpot(y, right)  # reference kernels: ties away from zero


def tflite_optimized(acc, s):
    """TFLite NEON ``MultiplyByQuantizedMultiplier4Rows`` (kernels/internal/optimized/):
    VQRDMULH, then VRSHL, a rounding shift with ties up and no negative fix-up."""
    y, right = _tflite_stage1(acc, s)
    return (y + (1 << (right - 1))) >> right if right else y  # NEON VRSHL: ties up


def sat32(v):
    return max(INT32_MIN, min(INT32_MAX, v))


def tflite_single(acc, s):
    """TFLite ``MultiplyByQuantizedMultiplier`` with ``TFLITE_SINGLE_ROUNDING``
    (kernels/internal/common.h) and the cap of ``QuantizeMultiplier`` (quantization_util.cc):
    ``e > 30`` -> ``(INT32_MAX, 30)``; ``(acc*q + 2^(30-e)) >> (31-e)`` in int64."""
    q, e = quantize_multiplier(s)
    if e > 30:
        q, e = INT32_MAX, 30
    total = 31 - e
    return sat32((acc * q + (1 << (total - 1))) >> total)


def tvm_tonearest(acc, s):
    """TVM ``FixedPointMultiplyToNearest`` (src/relay/qnn/utils.cc, v0.19): int64 product,
    add ``2^(t-1)`` or ``2^(t-1) - 1`` by sign, arithmetic shift by ``t = 31 + R``."""
    q, e = quantize_multiplier(s, flush=False)
    left, right = max(e, 0), max(-e, 0)
    p = (acc << left) * q
    t = 31 + right
    p += (1 << (t - 1)) if p >= 0 else (1 << (t - 1)) - 1
    return sat32(p >> t)


def xnnpack_rndnu(acc, s):
    """XNNPACK rndnu (src/microparams-init.c, src/xnnpack/requantization.h): the float32
    bit pattern's 24-bit mantissa ``m`` and shift ``k``; ``(acc*m + 2^(k-1)) >> k``."""
    bitsf = struct.unpack("<I", struct.pack("<f", s))[0]
    m = (bitsf & 0x7FFFFF) | 0x800000
    k = 127 + 23 - (bitsf >> 23)
    return sat32((acc * m + (1 << (k - 1))) >> k)


def xnnpack_rndna(acc, s):
    """XNNPACK rndna / QNNPACK precise (src/requantization/precise-scalar.c): the rndnu mantissa
    and shift, rounded on ``abs(acc)`` with the sign restored (ties away from zero)."""
    bitsf = struct.unpack("<I", struct.pack("<f", s))[0]
    m = (bitsf & 0x7FFFFF) | 0x800000
    k = 127 + 23 - (bitsf >> 23)
    r = (abs(acc) * m + (1 << (k - 1))) >> k
    return sat32(r if acc >= 0 else -r)


def float32_rne(acc, s):
    """ONNX Runtime ``MlasRequantizeOutput`` (onnxruntime/core/mlas/lib/quantize.cpp) and fbgemm
    ``ReQuantizeOutput`` (include/fbgemm/OutputProcessing-inl.h): binary32 product, RNE."""
    v = f32(f32(float(acc)) * f32(s))
    return round(v)  # Python round(float) is exact round-half-even; clamped with the zp


def tvm_2019_float(acc, s):
    """TVM relay.quantize realize before PR #4160 (src/relay/pass/quantize/realize.cc):
    binary32 product, ``round()`` (ties away from zero)."""
    v = Fraction(f32(f32(float(acc)) * f32(s)))
    return round_fraction(v, "HALF_AWAY_FROM_ZERO")


def pow2_exponent(s, mode):
    fr = Fraction(s)
    k = 0
    while Fraction(2) ** k > fr:
        k -= 1
    while Fraction(2) ** (k + 1) <= fr:
        k += 1
    if mode == "floor":
        return k
    if mode == "ceil":
        return k if Fraction(2) ** k == fr else k + 1
    return k + 1 if fr * fr > Fraction(2) ** (2 * k + 1) else k


def pow2(acc, s, mode="nearest"):
    """TVM relay.quantize realize for power-of-two ratios (src/relay/quantize/realize.cc):
    ``(acc + 2^(n-1)) >> n`` with ``round_for_shift``, a left shift for ratios >= 1."""
    e = pow2_exponent(s, mode)
    if e >= 0:
        return sat32(acc << e)
    n = -e
    if mode == "truncate":
        return acc >> n
    return (acc + (1 << (n - 1))) >> n


def exact(acc, s, tie="HALF_AWAY_FROM_ZERO"):
    """The exact rational ``acc * s``, rounded once with ``tie`` (no engine: the yardstick)."""
    return sat32(round_fraction(Fraction(acc) * Fraction(s), tie))


ORACLES = {
    "tflite": tflite,
    "tflite_optimized": tflite_optimized,
    "tflite_single": tflite_single,
    "tvm_tonearest": tvm_tonearest,
    "xnnpack_rndnu": xnnpack_rndnu,
    "xnnpack_rndna": xnnpack_rndna,
    "float32_rne": float32_rne,
    "tvm_2019_float": tvm_2019_float,
    "pow2": pow2,
    "exact": exact,
}


def finish(r, zp, qmin, qmax, scheme=None, narrow=None):
    """Zero point after rounding, then clamp (tvm_2019_float first clips to +-narrow)."""
    if scheme == "tvm_2019_float":
        r = max(-narrow, min(narrow, r))
        return max(max(qmin, -narrow), min(qmax, r + zp))
    return max(qmin, min(qmax, r + zp))


SPECIAL_SCALES = (
    0.0018843,
    0.0340026,
    0.25,
    0.5,
    1.0,
    1.5,
    math.nextafter(0.5, 0),
    math.nextafter(1.0, 0),
    math.nextafter(2.0, 0),
    2.0**-31,
    2.0**-32,
    2.0**-33,
    1e-12,
    0.9999999999,
    2.0**-7,
    2.0**-9,
    1.2e-4,
    255.9,
)
EDGE_ACCS = (
    INT32_MIN,
    INT32_MIN + 1,
    -(2**30),
    -70000,
    -265,
    -1,
    0,
    1,
    265,
    70000,
    2**30,
    INT32_MAX - 1,
    INT32_MAX,
)
