"""The per-tensor plan cache of ``requantize(backend="c")``: a repeated call skips the argument
checks only when every argument is identical in value *and* type to a checked call, and never
skips what depends on the data (acc itself, tflite's left-shift overflow check)."""

from __future__ import annotations

import numpy as np
import pytest

import fxq_explore as fx
from fxq_explore.kernels import _ffi

ACC = np.arange(-5000, 5000, 3, dtype=np.int32)


def _both(acc, scale, scheme, **kw):
    got = fx.requantize(acc, scale, scheme, backend="c", **kw)
    want = fx.requantize(acc, scale, scheme, **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)
    return got


@pytest.mark.parametrize("scheme", _ffi.FUSED_SCHEMES)
def test_repeated_calls_are_exact_on_new_data(scheme):
    _both(ACC, 0.0018843, scheme)
    rng = np.random.default_rng(11)
    for shape in [(7,), (3, 5, 4), ()]:
        acc = rng.integers(-(2**31), 2**31, size=shape).astype(np.int32)
        _both(acc, 0.0018843, scheme)
    _both(ACC[::2], 0.0018843, scheme)  # not contiguous: copied, not the plan's fast path
    _both(ACC[:0], 0.0018843, scheme)
    _both(ACC.astype(np.int64), 0.0018843, scheme)


@pytest.mark.parametrize(
    "kw,exc,name",
    [
        ({"zero_point": True}, TypeError, "zero_point"),
        ({"zero_point": 1.0}, TypeError, "zero_point"),
        ({"dtype": "int16"}, ValueError, "dtype"),
        ({"multiplier_bits": 31}, ValueError, "multiplier_bits"),
        ({"path": "nope"}, ValueError, "path"),
    ],
)
def test_a_cached_call_does_not_stand_for_another_type(kw, exc, name):
    base = dict(zero_point=1, dtype="int8", multiplier_bits=32, path=None)
    _ffi.requantize(ACC, 0.01, "tflite", **base)  # fills the plan cache
    with pytest.raises(exc, match=name):
        _ffi.requantize(ACC, 0.01, "tflite", **{**base, **kw})


def test_the_environment_variable_is_read_on_every_call(monkeypatch):
    fx.requantize(ACC, 0.01, "pow2", backend="c")
    monkeypatch.setenv("FXQ_KERNEL_PATH", "no-such-path")
    with pytest.raises(ValueError, match="FXQ_KERNEL_PATH"):
        fx.requantize(ACC, 0.01, "pow2", backend="c")
    monkeypatch.setenv("FXQ_KERNEL_PATH", "scalar")
    _both(ACC, 0.01, "pow2")


def test_tflite_left_shift_overflow_is_checked_on_every_call():
    small = np.array([1, -2, 3], np.int32)
    _both(small, 3.0, "tflite")  # shift 2: a left shift, fine for small values
    _both(small, 3.0, "tflite")
    big = np.array([2**30 + 5], np.int32)
    for backend in ("numpy", "c", "c"):
        with pytest.raises(ValueError, match="overflow"):
            fx.requantize(big, 3.0, "tflite", backend=backend)
