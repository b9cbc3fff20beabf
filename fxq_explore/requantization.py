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

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .core import validate
from .core.fixedpoint import RoundingMode
from .kernels import _ffi
from .schemes import (
    DEFAULT,
    POW2_MODES,
    SCHEMES,
    get,
    pow2_exponent,
    requantize_numpy,
    scheme_parameters,
)

BACKENDS = ("numpy", "c")

__all__ = [
    "BACKENDS",
    "POW2_MODES",
    "SCHEMES",
    "exact_value",
    "pow2_exponent",
    "requantize",
    "scheme_parameters",
]


def requantize(
    acc: ArrayLike,
    scale: ArrayLike,
    scheme: str = DEFAULT,
    *,
    zero_point: int = 0,
    dtype: str = "int8",
    axis: int | None = None,
    pow2_mode: str = "nearest",
    tie: RoundingMode | str = "HALF_AWAY_FROM_ZERO",
    multiplier_bits: int = 32,
    backend: str = "numpy",
) -> NDArray[np.integer[Any]]:
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
    validate.choice("backend", backend, BACKENDS)
    if backend == "c":
        get(scheme)
        return _ffi.requantize(
            acc,
            scale,
            scheme,
            zero_point=zero_point,
            dtype=dtype,
            axis=axis,
            pow2_mode=pow2_mode,
            multiplier_bits=multiplier_bits,
        )
    return requantize_numpy(
        acc,
        scale,
        scheme,
        zero_point=zero_point,
        dtype=dtype,
        axis=axis,
        pow2_mode=pow2_mode,
        tie=tie,
        multiplier_bits=multiplier_bits,
    )


def exact_value(acc: ArrayLike, scale: ArrayLike) -> NDArray[np.float64]:
    """The exact real ``acc * scale`` as float64 (for error measurements; exact to 1 ulp)."""
    return validate.accumulators("acc", acc).astype(np.float64) * np.asarray(
        scale, dtype=np.float64
    )
