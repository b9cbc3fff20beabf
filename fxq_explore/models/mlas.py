"""ONNX Runtime's float32 helpers for the quantized lookup-table and float-path ops.

Facts used (microsoft/onnxruntime, restated, no code copied):

* ``contrib_ops/cpu/quantization/qlinear_lookup_table.cc`` QlinearBuildLookupTable: for each
  of the 256 byte values ``i`` (read as the tensor's int8 / uint8), ``x = f32(s_x) *
  f32(int(i) - zp_x)``; the transform runs on the 256 floats; MlasQuantizeLinear of the result
  with ``(s_y, zp_y)``. The table is indexed by the input's byte.
* MlasQuantizeLinear: ``saturate(RNE(f32(v / s)) + zp)``.
* ``mlas/lib/x86_64/LogisticKernelFma3.S`` (the AVX2/FMA3 kernel ORT's platform table picks on
  x86-64): clamp ``x`` to [-18, 18], ``x2 = x*x``, odd numerator and even denominator
  polynomials (Eigen's coefficients) by fused multiply-adds, ``p = x * p``, ``p / q + 0.5``,
  then ``max(0, .)``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

F32 = np.float32

# MlasLogisticConstants (mlas/lib/logistic.cpp): the float32 values of Eigen's coefficients
_LOGISTIC = dict(
    lower=-18.0,
    upper=18.0,
    alpha_9=4.37031012579801e-11,
    alpha_7=1.15627324459942e-07,
    alpha_5=6.08574864600143e-05,
    alpha_3=8.51377133304701e-03,
    alpha_1=2.48287947061529e-01,
    beta_10=6.10247389755681e-13,
    beta_8=5.76102136993427e-09,
    beta_6=6.29106785017040e-06,
    beta_4=1.70198817374094e-03,
    beta_2=1.16817656904453e-01,
    beta_0=9.93151921023180e-01,
)


def _round_f32(v: Fraction) -> np.float32:
    """The binary32 nearest to the exact rational ``v`` (ties to even)."""
    f = F32(float(v))
    best = None
    for c in (np.nextafter(f, F32(-np.inf)), f, np.nextafter(f, F32(np.inf))):
        if not np.isfinite(c):
            continue
        d = abs(Fraction(float(c)) - v)
        even = int(np.asarray(c, F32).view(np.uint32)) % 2 == 0
        key = (d, not even)
        if best is None or key < best[0]:
            best = (key, c)
    return F32(best[1])


def fma_f32(a, b, c) -> np.ndarray:
    """Fused multiply-add in binary32: ``a*b + c`` rounded once (as ``vfmadd``)."""
    a, b, c = (np.atleast_1d(np.asarray(t, F32)) for t in (a, b, c))
    a, b, c = np.broadcast_arrays(a, b, c)
    out = np.empty(a.shape, F32)
    for i in np.ndindex(a.shape):
        out[i] = _round_f32(Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i])))
    return out


def logistic_fma3(x) -> np.ndarray:
    """MlasLogisticKernelFma3 on float32 ``x`` (bit-exact emulation, FMA single rounding)."""
    k = {n: F32(v) for n, v in _LOGISTIC.items()}
    x = np.minimum(np.maximum(np.asarray(x, F32), k["lower"]), k["upper"])
    x2 = (x * x).astype(F32)
    p = fma_f32(x2, k["alpha_9"], k["alpha_7"])
    for n in ("alpha_5", "alpha_3", "alpha_1"):
        p = fma_f32(x2, p, k[n])
    q = fma_f32(x2, k["beta_10"], k["beta_8"])
    for n in ("beta_6", "beta_4", "beta_2", "beta_0"):
        q = fma_f32(x2, q, k[n])
    p = (x * p).astype(F32)
    y = ((p / q).astype(F32) + F32(0.5)).astype(F32)
    return np.maximum(F32(0.0), y)


def quantize_linear(v, scale, zp, dtype: str) -> np.ndarray:
    """MlasQuantizeLinear: ``saturate(RNE(v / scale) + zp)`` in float32."""
    info = np.iinfo(np.dtype(dtype))
    q = np.rint((np.asarray(v, F32) / F32(scale)).astype(F32)) + int(zp)
    return np.clip(q, info.min, info.max).astype(dtype)


def byte_values(dtype: str) -> np.ndarray:
    """The 256 values a table is indexed by, in byte order (0..255 read as ``dtype``)."""
    return np.arange(256, dtype=np.uint8).view(np.dtype(dtype))


def build_table(transform, s_x, zp_x, s_y, zp_y, dtype: str) -> np.ndarray:
    """QlinearBuildLookupTable: 256 entries, ``transform`` applied to the dequantized floats."""
    xs = byte_values(dtype).astype(np.int32) - int(zp_x)
    deq = (F32(s_x) * xs.astype(F32)).astype(F32)
    return quantize_linear(transform(deq), s_y, zp_y, dtype)


def apply_table(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """QLinearLookupTableTransform: index by the input's byte."""
    return table[np.ascontiguousarray(x).view(np.uint8)]
