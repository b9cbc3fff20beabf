"""The numpy requantization every layer shares: validation, broadcasting, ``scheme.apply``."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..core import validate
from ..core.fixedpoint import RoundingMode
from ._base import Context
from ._registry import get
from .pow2 import POW2_MODES


def requantize_numpy(
    acc: ArrayLike,
    scale: ArrayLike,
    scheme: str,
    *,
    zero_point: int = 0,
    dtype: str = "int8",
    axis: int | None = None,
    pow2_mode: str = "nearest",
    tie: RoundingMode | str = "HALF_AWAY_FROM_ZERO",
    multiplier_bits: int = 32,
) -> NDArray[np.integer[Any]]:
    """:func:`fxq_explore.requantize` with ``backend="numpy"`` (see there for the arguments)."""
    sch = get(scheme)
    validate.choice("pow2_mode", pow2_mode, POW2_MODES)
    try:
        tie = RoundingMode(tie)
    except ValueError:
        raise ValueError(
            f"unknown tie {tie!r}; valid: {', '.join(repr(m.value) for m in RoundingMode)}"
        ) from None
    qmin, qmax, storage, obits, signed = validate.dtype_range("dtype", dtype)
    zero_point = validate.int_in_range("zero_point", zero_point, qmin, qmax)
    acc = validate.accumulators("acc", acc, keep_narrow=True)
    scales, scalar = validate.scales("scale", scale)
    bits_mult = validate.int_in_range("multiplier_bits", multiplier_bits, 2, 32)
    if scalar or scales.size == 1 and axis is None:
        shape: tuple[int, ...] | list[int] = ()
    else:
        if scales.ndim != 1:
            raise ValueError(
                f"scale must be a scalar or 1-D per-channel array; got shape {scales.shape}"
            )
        if axis is None:
            raise ValueError(
                f"axis must be given for per-channel scale (got {scales.size} scales and axis=None)"
            )
        axis = validate.int_in_range("axis", axis, -acc.ndim, acc.ndim - 1) if acc.ndim else 0
        if acc.ndim == 0 or acc.shape[axis] != scales.size:
            n = acc.shape[axis] if acc.ndim else 0
            raise ValueError(
                f"scale has {scales.size} per-channel values but acc has {n} along axis {axis}"
            )
        shape = [1] * acc.ndim
        shape[axis % acc.ndim] = scales.size
    params = sch.params(
        np.ascontiguousarray(scales.ravel()), multiplier_bits=bits_mult, pow2_mode=pow2_mode
    ).reshape(tuple(shape))
    narrow = 2 ** (obits - 1) - 1 if signed else 2**obits - 1
    ctx = Context(qmin - zero_point, qmax - zero_point, narrow, tie, bits_mult)
    if acc.size <= validate.CHUNK:
        r = sch.apply(acc, params, ctx)
        return sch.finish(r, zero_point, qmin, qmax, ctx).astype(storage)
    return _chunked(sch, acc, params, ctx, zero_point, qmin, qmax, storage)


def _chunked(
    sch: Any,
    acc: NDArray[Any],
    params: Any,
    ctx: Context,
    zero_point: int,
    qmin: int,
    qmax: int,
    storage: Any,
) -> NDArray[Any]:
    """``apply`` + ``finish`` over ``validate.CHUNK`` elements at a time, written into the output.

    The exact single-rounding schemes need about 155 bytes of int64 temporaries per element;
    chunking bounds that working set (~40 MiB) whatever the size of ``acc``. Per-channel
    parameters are gathered for each chunk from their broadcast view.
    """
    out = np.empty(acc.shape, dtype=storage)
    flat_out = out.reshape(-1)
    flat_acc = np.ascontiguousarray(acc).reshape(-1)
    fields = params.arrays()
    per_element = {k: v for k, v in fields.items() if v.size > 1}
    for start in range(0, acc.size, validate.CHUNK):
        stop = min(start + validate.CHUNK, acc.size)
        p = params
        if per_element:
            idx = np.unravel_index(np.arange(start, stop), acc.shape)
            p = dataclasses.replace(
                params,
                **{k: np.broadcast_to(v, acc.shape)[idx] for k, v in per_element.items()},
            )
        r = sch.apply(flat_acc[start:stop], p, ctx)
        flat_out[start:stop] = sch.finish(r, zero_point, qmin, qmax, ctx)
    return out
