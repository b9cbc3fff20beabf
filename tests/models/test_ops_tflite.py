"""MUL, AVERAGE_POOL_2D, PAD and CONCATENATION in tiny models made by TensorFlow's own
TFLiteConverter (``scripts/make_op_models.py``, committed in ``tests/models/data``): replay in
each LiteRT resolver's preset equals that resolver's output bit for bit, every tensor."""

from pathlib import Path

import numpy as np
import pytest

from fxq_explore import models
from fxq_explore.models.ir import UnsupportedOpError
from fxq_explore.models.runtime import run_runtime

DATA = Path(__file__).parent / "data"
PAIRS = [
    ("tflite-reference", "litert-reference"),
    ("tflite-optimized", "litert-optimized"),
    ("litert-xnnpack", "litert-xnnpack"),
]
REPLAYED = ["op_mul", "op_avgpool", "op_pad", "op_concat", "op_logistic", "op_softmax"]


def _inputs(g, n=48, seed=0):
    """Random int8 over the whole range, plus all-min / all-max / zero-point rows
    (saturation of the products, negative and positive sums)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in g.inputs:
        t = g.tensor(name)
        x = rng.integers(-128, 128, (n,) + tuple(t.shape[1:])).astype(np.int8)
        x[0], x[1], x[2] = -128, 127, int(t.zero_point[0])
        x[3] = np.resize(np.arange(-128, 128), x[3].size).reshape(x[3].shape)
        feeds[name] = x
    return feeds


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("engine", "runtime"), PAIRS)
@pytest.mark.parametrize("name", REPLAYED)
def test_op_model_bit_exact_every_tensor(name, engine, runtime):
    g = models.load(DATA / f"{name}.tflite")
    feeds = _inputs(g)
    real = run_runtime(g, feeds, runtime)
    ours = models.replay(g, feeds, engine)
    out = g.outputs[0]
    assert ours.outputs[out].dtype == real[out].dtype
    assert ours.outputs[out].shape == real[out].shape
    np.testing.assert_array_equal(ours.outputs[out], real[out])
    for node in g.nodes:
        for o in node.outputs:
            if o in real:
                np.testing.assert_array_equal(ours.tensors[o], real[o], err_msg=node.name)


def test_the_op_models_hold_the_ops():
    ops = {n: [nd.op for nd in models.load(DATA / f"{n}.tflite").nodes] for n in REPLAYED}
    assert ops == {
        "op_mul": ["MUL", "MUL"],
        "op_avgpool": ["AVERAGE_POOL_2D", "AVERAGE_POOL_2D"],
        "op_pad": ["PAD", "CONV_2D"],
        "op_concat": ["CONCATENATION"],
        "op_logistic": ["FULLY_CONNECTED", "LOGISTIC"],
        "op_softmax": ["FULLY_CONNECTED", "SOFTMAX"],
    }
    g = models.load(DATA / "op_mul.tflite")
    assert g.tensor(g.nodes[1].inputs[1]).is_const  # the broadcast constant operand


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_mul_xnnpack_differs_from_the_tflite_kernels():
    """Reference and optimized MUL agree (MBQM of the double multiplier); XNNPACK's float32
    requantization does not -- and each is reproduced by its own preset above."""
    g = models.load(DATA / "op_mul.tflite")
    feeds = _inputs(g)
    outs = {rt: run_runtime(g, feeds, rt, intermediates=False)[g.outputs[0]] for _, rt in PAIRS}
    np.testing.assert_array_equal(outs["litert-reference"], outs["litert-optimized"])
    assert (outs["litert-reference"] != outs["litert-xnnpack"]).sum() > 10
    ref = models.replay(g, feeds, "tflite-reference").output
    xnn = models.replay(g, feeds, "litert-xnnpack").output
    assert (ref != xnn).sum() == (outs["litert-reference"] != outs["litert-xnnpack"]).sum()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("runtime", "expected"), [("litert-reference", "tflite-reference"),
                                                   ("litert-xnnpack", "litert-xnnpack")])  # fmt: skip
def test_fingerprint_names_each_resolvers_mul(runtime, expected):
    from fxq_explore.models.fingerprint import fingerprint

    g = models.load(DATA / "op_mul.tflite")
    fp = fingerprint(g, _inputs(g), runtime)
    assert all(expected in lay.matches for lay in fp.layers)
    assert fp.output_differ[expected] == 0
    other = "litert-xnnpack" if expected == "tflite-reference" else "tflite-reference"
    assert all(other not in lay.matches for lay in fp.layers)


def test_avgpool_inputs_hit_rounding_ties():
    """The 2x2 windows of the second pool see sums = 2 mod 4 (exact .5 means), both signs."""
    g = models.load(DATA / "op_avgpool.tflite")
    feeds = _inputs(g)
    first = models.replay(g, feeds, "tflite-reference").tensors[g.nodes[0].outputs[0]]
    x = first[:, :6, :6].astype(np.int64).reshape(first.shape[0], 3, 2, 3, 2, -1)
    s = x.sum(axis=(2, 4))
    assert ((s % 4 == 2) & (s > 0)).sum() > 20 and ((s % 4 == 2) & (s < 0)).sum() > 20


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("engine", "runtime"), PAIRS)
def test_logistic_table_every_byte(engine, runtime):
    """Inputs whose FC output covers all 256 int8 values: every table entry is compared."""
    g = models.load(DATA / "op_logistic.tflite")
    x = np.random.default_rng(3).integers(-128, 128, (4000, 12)).astype(np.int8)
    ours = models.replay(g, x, engine)
    mid = g.nodes[1].inputs[0]
    assert np.unique(ours.tensors[mid]).size == 256
    real = run_runtime(g, x, runtime, intermediates=False)[g.outputs[0]]
    np.testing.assert_array_equal(ours.output, real)


def test_an_op_not_replayed_raises_naming_op_and_node():
    with pytest.raises(UnsupportedOpError, match="'TANH' in node '1:TANH"):
        models.load(DATA / "op_tanh.tflite")


def test_int8_concat_with_differing_scales_is_refused():
    """LiteRT's int8 CONCATENATION requires the output's scale and zero point on every input;
    replay refuses such a graph rather than guess a rescaling."""
    g = models.load(DATA / "op_concat.tflite")
    t = g.tensor(g.nodes[0].inputs[1])
    t.zero_point = t.zero_point + 1
    feeds = _inputs(g)
    with pytest.raises(UnsupportedOpError, match="'CONCATENATION' in node '0:CONCATENATION'"):
        models.replay(g, feeds, "tflite-reference")
