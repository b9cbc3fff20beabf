"""Bad and extreme input on the entry points of the engines issue (``fx.conv2d(engine=...)``,
``fx.Conv2d``, the C pair-saturating kernel) and the model issue (``models.load``,
``models.replay``, the model commands): each a ValueError/TypeError naming the argument, refused
before allocating, never a parser traceback or a number made up from NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fxq_explore as fx
from fxq_explore.kernels import pairsat

from .conftest import raises_naming

X = np.zeros((1, 4, 5, 5), np.uint8)
W = np.ones((2, 4, 3, 3), np.int8)
SAT = "onnxruntime-avx2"


@pytest.mark.parametrize(
    "kw,exc,name",
    [
        ({"engine": "nope"}, ValueError, "unknown engine"),
        ({"engine": "onnxruntime", "scheme": "tflite"}, ValueError, "mutually exclusive"),
        ({"scheme": "tflite", "accumulate": "nope"}, ValueError, "accumulate"),
        ({"engine": SAT, "scale": float("nan")}, ValueError, "scale"),
        ({"engine": SAT, "scale": -1.0}, ValueError, "scale"),
        ({"engine": SAT, "stride": 0}, ValueError, "stride"),
        ({"engine": SAT, "stride": True}, TypeError, "stride"),
        ({"engine": SAT, "x_zero_point": 300}, ValueError, "x_zero_point"),
        ({"engine": SAT, "x_zero_point": 1.0}, TypeError, "x_zero_point"),
        ({"engine": SAT, "padding": 2**16}, ValueError, "would need"),
        ({"engine": SAT, "layout": "NCHW16c"}, ValueError, "layout"),
    ],
)
def test_conv2d_engine_arguments(kw, exc, name):
    kw = {"scale": 0.1, **kw}
    raises_naming(exc, name, fx.conv2d, X, W, **kw)


@pytest.mark.parametrize("dtype", [np.int8, np.float32, np.int32])
def test_u8s8_presets_take_uint8_activations_only(dtype):
    raises_naming(ValueError, "x", fx.conv2d, X.astype(dtype), W, scale=0.1, engine=SAT)


def test_engine_layer_checks_each_input():
    layer = fx.Conv2d(W, scale=0.1, engine=SAT)
    assert layer(X).shape == (1, 2, 3, 3)
    raises_naming(ValueError, "channels", layer, X[:, :3])
    raises_naming(ValueError, "unknown engine", fx.Conv2d, W, scale=0.1, engine="nope")


@pytest.mark.parametrize(
    "build,exc,name",
    [
        (lambda: pairsat.PairSatConv2d(W.astype(np.float32)), ValueError, "w must have dtype"),
        (lambda: pairsat.PairSatConv2d(W, x_zero_point=300), ValueError, "x_zero_point"),
        (lambda: pairsat.PairSatConv2d(W, accumulate="exact"), ValueError, "accumulate"),
        (lambda: pairsat.PairSatConv2d(np.ones((1, 3000, 3, 3), np.int8)), ValueError, "w:"),
        (lambda: pairsat.PairSatConv2d(W)(X[:, :3]), ValueError, "channels"),
        (lambda: pairsat.PairSatConv2d(W)(X.astype(np.int8)), ValueError, "x must have dtype"),
    ],
)
def test_pair_saturating_kernel_arguments(build, exc, name):
    raises_naming(exc, name, build)


@settings(max_examples=60, deadline=None)
@given(
    c=st.integers(1, 6),
    k=st.integers(1, 5),
    r=st.integers(1, 3),
    zp=st.integers(0, 255),
    stride=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_pair_saturating_kernel_equals_its_numpy_oracle_on_extreme_weights(
    c, k, r, zp, stride, seed
):
    from fxq_explore.kernels.accumulate import conv2d_accumulate

    rng = np.random.default_rng(seed)
    x = rng.choice(np.array([0, 1, 254, 255], np.uint8), size=(1, c, 6, 6))
    w = rng.choice(np.array([-128, -127, 0, 126, 127], np.int8), size=(k, c, r, r))
    got = pairsat.PairSatConv2d(w, x_zero_point=zp, stride=stride, accumulate="pairs_flat_k")(x)
    want = conv2d_accumulate(x, w, x_zero_point=zp, stride=stride, accumulate="pairs_flat_k")
    assert np.array_equal(got, want)


# ---- models -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_graph():
    pytest.importorskip("onnx")
    from fxq_explore import models
    from fxq_explore.models.data import model_files

    return models.load(model_files("onnx")[0])


def test_load_refuses_missing_wrong_and_corrupt_files(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("tflite")
    from fxq_explore import models

    with pytest.raises(FileNotFoundError, match="not found"):
        models.load(tmp_path / "missing.onnx")
    (tmp_path / "m.txt").write_text("x")
    raises_naming(ValueError, ".tflite or .onnx", models.load, tmp_path / "m.txt")
    for suffix in (".onnx", ".tflite"):
        p = tmp_path / f"corrupt{suffix}"
        p.write_bytes(b"\x00garbage" * 10)
        raises_naming(ValueError, f"corrupt{suffix} is not a readable", models.load, p)


def test_replay_input_checks(onnx_graph):
    from fxq_explore import models

    g = onnx_graph
    raises_naming(TypeError, "input 'x'", models.replay, g, np.zeros((1, 1, 8, 8), np.int8))
    raises_naming(ValueError, "input 'x'", models.replay, g, np.zeros((1, 3, 8, 8), np.float32))
    raises_naming(ValueError, "NaN", models.replay, g, np.full((2, 1, 8, 8), np.nan, np.float32))
    raises_naming(ValueError, "engine", models.replay, g, np.zeros((1, 1, 8, 8)), "nope")
    raises_naming(
        ValueError, "tflite models", models.replay, g, np.zeros((1, 1, 8, 8)), "litert-xnnpack"
    )


def test_replay_batch_refused_before_allocating(onnx_graph):
    from fxq_explore import models

    # a broadcast view: the input costs nothing, its intermediate tensors ~108 GiB
    x = np.broadcast_to(np.float32(0.5), (10**6, 1, 8, 8))
    e = raises_naming(ValueError, "inputs: a batch of 1000000", models.replay, onnx_graph, x)
    assert "at a time" in str(e) and "GiB" in str(e)


def test_model_commands_json_errors(capsys, tmp_path):
    pytest.importorskip("onnx")
    from fxq_explore.cli import main
    from fxq_explore.models.data import model_files

    np.save(tmp_path / "nan.npy", np.full((2, 1, 8, 8), np.nan, np.float32))
    model = str(model_files("onnx")[0])
    cases = [
        (["replay", model, "--input", str(tmp_path / "nan.npy"), "--json"], "--engine"),
        (
            [
                "replay",
                model,
                "--input",
                str(tmp_path / "nan.npy"),
                "--engine",
                "onnxruntime",
                "--output",
                str(tmp_path / "y.npy"),
                "--json",
            ],
            "NaN",
        ),  # fmt: skip
        (["inspect", str(tmp_path / "missing.onnx"), "--json"], "not found"),
        (["fingerprint", model, "--json"], "--input"),
    ]
    for argv, name in cases:
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        out, _ = capsys.readouterr()
        assert code == 2, argv
        doc = json.loads(out)
        assert set(doc) == {"error"} and name in doc["error"], (argv, doc)
