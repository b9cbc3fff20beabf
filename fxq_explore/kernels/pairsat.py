r"""The int16 pair-saturating accumulation in C (``csrc/fxq_pairsat.c``).

The numpy models of :mod:`fxq_explore.kernels.accumulate` define what x86 u8s8 kernels without
VNNI (ONNX Runtime MLAS, FBGEMM, oneDNN) accumulate; they are the oracle. This module runs the
same arithmetic at engine speed, with the engines' own instructions:

* ``"scalar"``: portable C, ``clamp16(a0*w0 + a1*w1)`` per pair -- runs on any CPU;
* ``"avx2"``: ``vpbroadcastd`` of 4 activation bytes, ``vpmaddubsw`` (the saturation),
  ``vpmaddwd`` by ones, ``vpaddd`` on ymm -- only where the CPU has AVX2;
* ``"avx512"``: the same on zmm (AVX-512 F + BW; VNNI not needed), what the engines run on
  AVX-512 CPUs without VNNI -- only where the CPU has AVX-512 BW.

``path=None`` takes the widest the CPU has, chosen at run time (no ``-march``).

The weights are packed into the model's pair order once, when a :class:`PairSatConv2d` is built
(what an inference session does); :func:`conv2d_accumulate_c` builds one per call.

The pairing comes from the model (``pairing="flat_k"``: pairs ``(2j, 2j+1)`` of the
``(kh, kw, c)`` reduction index per group; ``"per_tap"``: channels ``(c, c+1)`` of one tap) as
the packed reduction layout of :func:`fxq_explore.kernels.accumulate._pair_layout`; the padded
pixel rule (``padded_pixel="zero_point"`` or ``"zero"``) decides what padded taps contribute.
Whether a model saturates on a given layer at all (``AccumulationModel.saturates_on``: MLAS
computes depthwise layers exactly, ...) is the caller's decision: this kernel always pairs.

Examples
--------
>>> import numpy as np
>>> x = np.full((1, 2, 1, 1), 255, np.uint8); w = np.full((1, 2, 1, 1), 127, np.int8)
>>> int(conv2d_accumulate_c(x, w, path="scalar")[0, 0, 0, 0])  # int16 max, not 64770
32767
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core import validate as _validate
from .accumulate import AccumulationModel, _pair_layout, get_model

__all__ = ["PairSatConv2d", "conv2d_accumulate_c", "available_paths", "MAX_REDUCTION", "PATHS"]

#: The paths of the pair-saturating kernel (the same arithmetic on every vector width)
PATHS = ("scalar", "avx2", "avx512")

#: Largest reduction length C/groups * R * S: |acc| <= (255*255 + 255*128) * N must fit int32
MAX_REDUCTION = (2**31 - 1) // (255 * 255 + 255 * 128)

_ext_mod: Any = None


def _ext() -> Any:
    global _ext_mod
    if _ext_mod is None:
        import importlib

        _ext_mod = importlib.import_module("fxq_explore._kernels")
    return _ext_mod


def _path_id(name: str) -> int:
    return int(getattr(_ext().lib, "FXQ_PATH_" + name.upper()))


def available_paths() -> list[str]:
    """The pair-saturating kernel's paths this CPU runs (``"scalar"`` always)."""
    lib = _ext().lib
    return [p for p in PATHS if lib.fxq_pairsat_path_available(_path_id(p))]


def _resolve(path: object) -> int:
    """``None``: the widest path the CPU has (``FXQ_KERNEL_PATH=scalar`` or ``avx2`` narrows
    it)."""
    if path is None:
        env = os.environ.get("FXQ_KERNEL_PATH", "").strip().lower()
        path = env if env in ("scalar", "avx2") and env in available_paths() else "auto"
    path = _validate.choice("path", path, ("auto",) + PATHS)
    if path == "auto":
        return _path_id(available_paths()[-1])
    if path not in available_paths():
        raise ValueError(
            f"path={path!r} is not available on this CPU for the pair-saturating kernel "
            f"(available: {', '.join(available_paths())})"
        )
    return _path_id(path)


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(
            f"{what} failed in C (status {status}); the Python checks should have caught this, "
            "please report it"
        )


def _model(accumulate: object) -> AccumulationModel:
    if not isinstance(accumulate, (str, AccumulationModel)):
        raise TypeError(
            f"accumulate must be a model name or an AccumulationModel; got {accumulate!r}"
        )
    model = get_model(accumulate)
    if model.pairing not in ("flat_k", "per_tap") or model.padded_pixel not in (
        "zero_point",
        "zero",
    ):
        raise ValueError(
            f"accumulate={model.name!r} does not pair products; the pair-saturating kernel runs "
            "the saturating models (e.g. 'pairs_flat_k', 'mlas_u8s8', 'pairs_per_tap')"
        )
    return model


def _int_pair(name: str, value: object, lo: int) -> tuple[int, int]:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        a, b = value
    else:
        a = b = value
    return (
        _validate.int_in_range(name, a, lo, 1 << 20),
        _validate.int_in_range(name, b, lo, 1 << 20),
    )


class PairSatConv2d:
    """A layer whose weights are packed into an engine's pair order at construction.

    Calling it on ``x`` (uint8, (N, C, H, W)) returns the int64 accumulators (N, K, OH, OW)
    that :func:`fxq_explore.kernels.accumulate.conv2d_accumulate` gives for the model (no bias),
    always with the saturating pairing (``saturates_on`` is not consulted).

    Parameters
    ----------
    w : ndarray of int8, (K, C // groups, R, S)
    x_zero_point : int in [0, 255]
    w_zero_point : int or (K,) ints in [-128, 127]
    stride : int or (int, int), >= 1
    padding : int or (int, int), >= 0
    groups : int >= 1, divides K
    accumulate : str or AccumulationModel, a pairing model (default ``"pairs_flat_k"``)

    Raises
    ------
    TypeError, ValueError
        Naming the argument: wrong dtype or rank, a zero point or geometry out of range, a
        reduction C/groups*R*S above :data:`MAX_REDUCTION` (the int32 accumulator could
        overflow), a non-pairing model, an unavailable ``path``.
    """

    def __init__(
        self,
        w: Any,
        *,
        x_zero_point: int = 0,
        w_zero_point: Any = 0,
        stride: Any = 1,
        padding: Any = 0,
        groups: int = 1,
        accumulate: Any = "pairs_flat_k",
    ) -> None:
        if not isinstance(w, np.ndarray):
            raise TypeError(f"w must be a numpy array of int8; got {type(w).__name__}")
        if w.dtype != np.int8:
            raise ValueError(f"w must have dtype int8 (u8 x s8 kernels); got {w.dtype}")
        if w.ndim != 4 or 0 in w.shape:
            raise ValueError(f"w must be a non-empty 4-D array (K, C/groups, R, S); got {w.shape}")
        self.model = _model(accumulate)
        k, cg, r, s = (int(v) for v in w.shape)
        self.groups = _validate.int_in_range("groups", groups, 1, 1 << 20)
        if k % self.groups:
            raise ValueError(f"groups={self.groups} must divide the {k} output channels of w")
        if cg * r * s > MAX_REDUCTION:
            raise ValueError(
                f"w: reduction C/groups*R*S = {cg * r * s} exceeds {MAX_REDUCTION}, beyond which "
                "the int32 accumulator of a u8 x s8 kernel can overflow"
            )
        self.x_zero_point = _validate.int_in_range("x_zero_point", x_zero_point, 0, 255)
        zw = np.asarray(w_zero_point)
        if zw.dtype.kind not in "iu" or zw.ndim > 1 or (zw.ndim == 1 and zw.shape[0] != k):
            raise ValueError(
                f"w_zero_point must be an integer or {k} integers (one per output channel); "
                f"got {w_zero_point!r}"
            )
        zw = np.broadcast_to(zw.astype(np.int64), (k,))
        if ((zw < -128) | (zw > 127)).any():
            raise ValueError(f"w_zero_point must be in [-128, 127]; got {w_zero_point!r}")
        self.stride = _int_pair("stride", stride, 1)
        self.padding = _int_pair("padding", padding, 0)
        self.wshape = (k, cg, r, s)
        layout = _pair_layout(self.model.pairing, r, s, cg)
        self._layout = np.ascontiguousarray(layout, dtype=np.int32)
        wc = np.ascontiguousarray(w)  # read by the packing only: the layer keeps no reference
        self._zw = np.ascontiguousarray(zw, dtype=np.int32)
        ext = _ext()
        ffi, lib = ext.ffi, ext.lib
        self._spec = ffi.new("fxq_pairsat_spec *")
        self._spec.kp = self._layout.size
        self._spec.pad_mode = (
            lib.FXQ_PAIRSAT_PAD_ZERO_POINT
            if self.model.padded_pixel == "zero_point"
            else lib.FXQ_PAIRSAT_PAD_ZERO
        )
        self._spec.x_zero_point = self.x_zero_point
        self._spec.layout = ffi.cast("const int32_t *", ffi.from_buffer(self._layout))
        d = self._dims(1, r, s)  # packing reads K, C, R, S and the groups only
        nbytes = lib.fxq_pairsat_packed_weight_size(d, self._spec)
        ncorr = lib.fxq_pairsat_corr_len(d, self._spec)
        if nbytes < 0 or ncorr < 0:
            raise RuntimeError("fxq_pairsat sizes rejected validated arguments; please report it")
        self._wpack = np.zeros(int(nbytes) + 64, np.uint8)
        self._corr = np.zeros(int(ncorr), np.int32)
        _check(
            lib.fxq_pairsat_pack_weights(
                d,
                self._spec,
                ffi.cast("const int8_t *", ffi.from_buffer(wc)),
                ffi.cast("const int32_t *", ffi.from_buffer(self._zw)),
                ffi.from_buffer(self._wpack),
                self._wpack.nbytes,
                ffi.cast("int32_t *", ffi.from_buffer(self._corr)),
                self._corr.size,
            ),
            "fxq_pairsat_pack_weights",
        )

    def _dims(self, n: int, h: int, wd: int) -> Any:
        k, cg, r, s = self.wshape
        d = _ext().ffi.new("fxq_conv_dims *")
        d.n, d.c, d.h, d.w = n, cg * self.groups, h, wd
        d.k, d.r, d.s = k, r, s
        d.stride_h, d.stride_w = self.stride
        d.pad_h, d.pad_w = self.padding
        d.oh = (h + 2 * self.padding[0] - r) // self.stride[0] + 1
        d.ow = (wd + 2 * self.padding[1] - s) // self.stride[1] + 1
        d.groups = self.groups
        return d

    def accumulators_nhwc(self, x: Any, *, path: str | None = None) -> np.ndarray:
        """The int32 accumulators as the kernel writes them: (N, OH, OW, K)."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array of uint8; got {type(x).__name__}")
        if x.dtype != np.uint8:
            raise ValueError(f"x must have dtype uint8 (u8 x s8 kernels); got {x.dtype}")
        k, cg, r, s = self.wshape
        if x.ndim != 4 or 0 in x.shape:
            raise ValueError(f"x must be a non-empty 4-D array (N, C, H, W); got {x.shape}")
        n, c, h, wd = (int(v) for v in x.shape)
        if c != cg * self.groups:
            raise ValueError(
                f"x has {c} channels; w of shape {self.wshape} with groups={self.groups} "
                f"needs {cg * self.groups}"
            )
        (ph, pw), (sh, sw) = self.padding, self.stride
        if h + 2 * ph < r or wd + 2 * pw < s:
            raise ValueError(f"x: kernel {r}x{s} larger than the padded input {h}x{wd}")
        pid = _resolve(path)
        oh, ow = (h + 2 * ph - r) // sh + 1, (wd + 2 * pw - s) // sw + 1
        _validate.memory("x", float(n) * oh * ow * k * 4, "the int32 accumulators")
        ext = _ext()
        ffi, lib = ext.ffi, ext.lib
        d = self._dims(n, h, wd)
        ws_bytes = lib.fxq_pairsat_workspace_size(d, self._spec)
        if ws_bytes < 0:
            raise ValueError(f"x: shape {x.shape} gives a workspace beyond the kernel's limits")
        _validate.memory("x", float(ws_bytes), "the kernel's workspace")
        ws = np.empty(int(ws_bytes), np.uint8)
        xc = np.ascontiguousarray(x)
        out = np.empty((n, oh, ow, k), np.int32)
        _check(
            lib.fxq_pairsat_conv2d(
                d,
                self._spec,
                ffi.cast("const uint8_t *", ffi.from_buffer(xc)),
                ffi.from_buffer(self._wpack),
                self._wpack.nbytes,
                ffi.cast("const int32_t *", ffi.from_buffer(self._corr)),
                self._corr.size,
                ffi.cast("int32_t *", ffi.from_buffer(out)),
                out.size,
                ffi.from_buffer(ws),
                ws.nbytes,
                pid,
            ),
            "fxq_pairsat_conv2d",
        )
        return out

    def __call__(self, x: Any, *, path: str | None = None) -> np.ndarray:
        """int64 accumulators (N, K, OH, OW), as :func:`~.accumulate.conv2d_accumulate` returns."""
        return self.accumulators_nhwc(x, path=path).astype(np.int64).transpose(0, 3, 1, 2)

    def __repr__(self) -> str:
        return (
            f"PairSatConv2d(w {self.wshape}, accumulate={self.model.name!r}, "
            f"stride={self.stride}, padding={self.padding}, groups={self.groups})"
        )


def conv2d_accumulate_c(
    x: Any,
    w: Any,
    *,
    x_zero_point: int = 0,
    w_zero_point: Any = 0,
    stride: Any = 1,
    padding: Any = 0,
    groups: int = 1,
    accumulate: Any = "pairs_flat_k",
    path: str | None = None,
) -> np.ndarray:
    """A :class:`PairSatConv2d` built and called once: int64 accumulators (N, K, OH, OW)."""
    layer = PairSatConv2d(
        w,
        x_zero_point=x_zero_point,
        w_zero_point=w_zero_point,
        stride=stride,
        padding=padding,
        groups=groups,
        accumulate=accumulate,
    )
    return layer(x, path=path)
