"""The C kernels and what checks them.

* :mod:`fxq_explore.kernels._ffi` -- the private cffi binding: checks every argument and buffer,
  allocates, calls the compiled ``fxq_explore._kernels`` (loaded on first use).
* :mod:`fxq_explore.kernels.conv` -- the friendly API: :func:`conv2d`, :class:`Conv2d`, layouts.
* :mod:`fxq_explore.kernels.reference` -- the readable numpy convolution, the C kernel's oracle.
* :mod:`fxq_explore.kernels.accumulate` -- the numpy accumulation models (int16 pair saturation).
* :mod:`fxq_explore.kernels.pairsat` -- those models in C (scalar, AVX2, AVX-512 BW), weights
  packed in the pair order once; :mod:`.accumulate` is its oracle.
"""

from ._ffi import available_paths, info, requantize
from .conv import Conv2d, conv2d
from .reference import conv2d_reference

__all__ = [
    "Conv2d",
    "available_paths",
    "conv2d",
    "conv2d_reference",
    "info",
    "requantize",  # the C requantization alone (fxq_explore.requantize(..., backend="c") wraps it)
]
