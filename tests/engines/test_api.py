"""fx.conv2d / fx.Conv2d with engine=: the preset's arithmetic, worked out by hand here."""

import numpy as np
import pytest

import fxq_explore as fx

X = np.full((1, 4, 3, 3), 255, np.uint8)
W = np.full((2, 4, 1, 1), 127, np.int8)


def test_exact_and_saturating_presets_by_hand():
    # exact: 4 * 255 * 127 = 129540 -> 129.54 rounds to 130
    assert fx.conv2d(X, W, scale=1e-3, scheme="float32_rne")[0, 0, 0, 0] == 130
    assert fx.conv2d(X, W, scale=1e-3, engine="onnxruntime-vnni")[0, 0, 0, 0] == 130
    # vpmaddubsw: each pair 2 * 255 * 127 = 64770 saturates to 32767; two pairs: 65534 -> 65.5
    assert fx.conv2d(X, W, scale=1e-3, engine="onnxruntime-avx2")[0, 0, 0, 0] == 66
    assert fx.Conv2d(W, scale=1e-3, engine="onnxruntime-avx2")(X)[0, 0, 0, 0] == 66


def test_engine_conv2d_is_the_presets_conv2d():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 6, 7, 7), dtype=np.uint8)
    w = rng.integers(-127, 128, (8, 6, 3, 3), dtype=np.int8)
    for engine in ("onnxruntime", "torch-fbgemm-avx2", "torch-onednn-avx2"):
        a = fx.conv2d(x, w, scale=1e-4, x_zero_point=128, padding=1, engine=engine)
        b = fx.engines.conv2d(x, w, scale=1e-4, x_zero_point=128, padding=1, engine=engine)
        np.testing.assert_array_equal(a, b)


def test_bad_engine_arguments():
    with pytest.raises(ValueError, match="mutually exclusive"):
        fx.conv2d(X, W, scale=1e-3, engine="onnxruntime", scheme="tflite")
    with pytest.raises(ValueError, match="unknown engine 'nope'; valid: onnxruntime"):
        fx.conv2d(X, W, scale=1e-3, engine="nope")
    with pytest.raises(ValueError, match="unknown engine"):
        fx.Conv2d(W, scale=1e-3, engine="nope")
    with pytest.raises(ValueError, match="layout only apply to the C kernel"):
        fx.conv2d(X, W, scale=1e-3, engine="onnxruntime", layout="NCHW16c")
    with pytest.raises(ValueError, match="x|uint8|int8"):
        fx.conv2d(X.astype(np.int8), W, scale=1e-3, engine="onnxruntime-avx2")


def test_conv2d_copies_its_weights():
    w = W.copy()
    layer = fx.Conv2d(w, scale=1e-3, engine="onnxruntime-avx2")
    w[:] = 0
    assert layer(X)[0, 0, 0, 0] == 66
