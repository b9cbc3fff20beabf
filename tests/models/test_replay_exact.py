"""Replay of every committed model equals its runtime's own output bit for bit on this CPU."""

import numpy as np
import pytest

from fxq_explore import models
from fxq_explore.models.data import digits, model_files, model_input
from fxq_explore.models.runtime import run_runtime

X, Y = digits("test", 96)
TFLITE_PAIRS = [
    ("tflite-reference", "litert-reference"),
    ("tflite-optimized", "litert-optimized"),
    ("litert-xnnpack", "litert-xnnpack"),
]
CASES = [
    (p.name, eng, rt)
    for p in model_files()
    for eng, rt in (TFLITE_PAIRS if p.suffix == ".tflite" else [("onnxruntime", "onnxruntime")])
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "engine", "runtime"), CASES)
def test_final_output_bit_exact(name, engine, runtime):
    g = models.load(models.data_path(name))
    x = model_input(g, X)
    real = run_runtime(g, x, runtime, intermediates=False)
    ours = models.replay(g, x, engine)
    for out in g.outputs:
        assert ours.outputs[out].dtype == real[out].dtype
        assert ours.outputs[out].shape == real[out].shape == (len(X), 10)
        np.testing.assert_array_equal(ours.outputs[out], real[out])


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "engine", "runtime"), CASES)
def test_every_intermediate_bit_exact(name, engine, runtime):
    g = models.load(models.data_path(name))
    x = model_input(g, X[:16])
    real = run_runtime(g, x, runtime)
    ours = models.replay(g, x, engine)
    compared = 0
    for node in g.nodes:
        for o in node.outputs:
            if o not in real:
                continue
            if node.op in ("Conv", "Add", "Mul", "Gemm", "MatMul"):
                # a float op ORT left unfused between DequantizeLinear and QuantizeLinear:
                # summation order differs; the QuantizeLinear after it must still be exact
                np.testing.assert_allclose(ours.tensors[o], real[o], rtol=1e-5, atol=1e-5)
            else:
                np.testing.assert_array_equal(ours.tensors[o], real[o], err_msg=f"{node.name}")
            compared += 1
    assert compared >= len(g.nodes) - 2


def test_the_three_litert_resolvers_really_differ():
    """The engines are not interchangeable on this model: the test above is not vacuous."""
    g = models.load(models.data_path("digits_int8.tflite"))
    x = model_input(g, X)
    outs = {rt: run_runtime(g, x, rt, intermediates=False)[g.outputs[0]] for _, rt in TFLITE_PAIRS}
    assert (outs["litert-reference"] != outs["litert-optimized"]).any()
    assert (outs["litert-reference"] != outs["litert-xnnpack"]).any()
    assert (outs["litert-optimized"] != outs["litert-xnnpack"]).any()


def test_batch_of_one_and_batch_agree():
    g = models.load(models.data_path("digits_int8.tflite"))
    x = model_input(g, X[:5])
    full = models.replay(g, x, "tflite-optimized").output
    for i in range(5):
        np.testing.assert_array_equal(models.replay(g, x[i : i + 1], "tflite-optimized").output,
                                      full[i : i + 1])  # fmt: skip
