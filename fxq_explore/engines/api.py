"""``fxq_explore.conv2d`` / ``fxq_explore.Conv2d``: the C kernel, or an engine as it really runs.

Without ``engine``/``accumulate`` these are the kernel layer's :func:`~fxq_explore.kernels.conv2d`
and :class:`~fxq_explore.kernels.Conv2d` (exact accumulation, any C scheme). With
``engine="onnxruntime"`` (or a preset name such as ``"torch-fbgemm-avx2"``) the engine preset
decides the accumulation model (exact, or the int16 pair saturation of x86 u8s8 kernels without
VNNI) and the requantization; ``engine`` and an explicit ``scheme``/``accumulate`` are mutually
exclusive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels import conv as kconv
from . import presets

#: the keyword arguments that only the C kernel path understands
_KERNEL_ONLY = ("layout", "backend", "pow2_mode", "path")


def _engine_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    bad = [k for k in _KERNEL_ONLY if k in kwargs]
    if bad:
        raise ValueError(
            f"{', '.join(bad)} only apply to the C kernel path; with engine=/accumulate= the "
            f"engine preset decides how the conv runs (drop {', '.join(bad)})"
        )
    return kwargs


def conv2d(
    x: Any,
    w: Any,
    bias: Any = None,
    *,
    engine: str | None = None,
    accumulate: str | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Quantized conv2d: the C kernel, or ``engine``'s arithmetic on this CPU.

    See :func:`fxq_explore.kernels.conv.conv2d` for the kernel arguments and
    :func:`fxq_explore.engines.presets.conv2d` for ``engine`` and ``accumulate``.

    Examples
    --------
    >>> import numpy as np, fxq_explore as fx
    >>> x = np.full((1, 4, 3, 3), 255, np.uint8); w = np.full((2, 4, 1, 1), 127, np.int8)
    >>> int(fx.conv2d(x, w, scale=1e-3, scheme="float32_rne")[0, 0, 0, 0])  # 129540 * 1e-3
    130
    >>> int(fx.conv2d(x, w, scale=1e-3, engine="onnxruntime-avx2")[0, 0, 0, 0])  # pairs clip
    66
    """
    if engine is None and accumulate is None:
        return kconv.conv2d(x, w, bias, **kwargs)
    return presets.conv2d(
        x, w, bias, engine=engine, accumulate=accumulate, **_engine_kwargs(kwargs)
    )


class Conv2d:
    """A layer with its weights fixed: ``Conv2d(w, bias, ...)(x)``; ``engine=`` as in :func:`conv2d`."""

    def __init__(
        self,
        w: Any,
        bias: Any = None,
        *,
        engine: str | None = None,
        accumulate: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.engine, self.accumulate = engine, accumulate
        if engine is None and accumulate is None:
            self._layer: kconv.Conv2d | None = kconv.Conv2d(w, bias, **kwargs)
            return
        self._layer = None
        self._kwargs = _engine_kwargs(dict(kwargs))
        if engine is not None:
            presets.resolve(engine)  # unknown engine: the error now, not at the first call
        # copies: later changes to the caller's arrays must not change the layer
        self._w = np.array(w, copy=True)
        self._bias = None if bias is None else np.array(bias, copy=True)
        self._kwargs = {
            k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
            for k, v in self._kwargs.items()
        }
        # the C pair-saturating kernel's weights, packed once in the model's pair order
        self._acc_layer = self._pack()

    def _pack(self) -> Any:
        kw = self._kwargs
        if self.engine is not None:
            model = presets.resolve(self.engine, w_dtype=self._w.dtype).accumulate
        else:
            model = self.accumulate
        return presets.accumulator_layer(
            self._w,
            accumulate=model,
            **{
                k: kw[k]
                for k in ("x_zero_point", "w_zero_point", "stride", "padding", "groups")
                if k in kw
            },
            backend=kw.get("acc_backend", "auto"),
        )

    def __call__(self, x: Any) -> np.ndarray:
        if self._layer is not None:
            return self._layer(x)
        return presets.conv2d(
            x,
            self._w,
            self._bias,
            engine=self.engine,
            accumulate=self.accumulate,
            _acc_layer=self._acc_layer,
            **self._kwargs,
        )

    def __repr__(self) -> str:
        if self._layer is not None:
            return repr(self._layer)
        return f"Conv2d(weights {self._w.shape}, engine={self.engine!r}, accumulate={self.accumulate!r})"
