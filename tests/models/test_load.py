import numpy as np
import pytest

from fxq_explore import models
from fxq_explore.models.ir import UnsupportedOpError
from fxq_explore.models.kernels import conv_nhwc


def test_tflite_ops_and_quantization():
    g = models.load(models.data_path("digits_int8.tflite"))
    assert [n.op for n in g.nodes] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"
    ]  # fmt: skip
    w = g.tensor(g.nodes[0].inputs[1])
    assert w.dtype == "int8" and w.per_channel and w.scale.size == 16 and w.axis == 0
    assert g.tensor(g.inputs[0]).dtype == "int8"


def test_qdq_model_is_loaded_as_ort_fuses_it():
    g = models.load(models.data_path("digits_qdq_u8s8_pt_entropy.onnx"))
    assert g.flavor.startswith("qdq")
    assert [n.op for n in g.nodes].count("QLinearConv") == 3


def test_unsupported_op_names_op_and_node(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Softplus", ["x"], ["y"], name="my_softplus")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    p = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(p))
    with pytest.raises(UnsupportedOpError, match="'Softplus' in node 'my_softplus'"):
        models.load(p)


def test_grouped_strided_dilated_conv_against_direct_loops():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (2, 7, 6, 4))
    w = rng.integers(-127, 128, (6, 3, 2, 2))  # groups=2: 4 in -> 6 out
    stride, dil, pads = (2, 1), (1, 2), (1, 0, 2, 1)
    got = conv_nhwc(x, w, stride=stride, dilation=dil, pads=pads, groups=2)
    xp = np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0)))
    ho = (xp.shape[1] - (3 - 1) * 1 - 1) // 2 + 1
    wo = (xp.shape[2] - (2 - 1) * 2 - 1) // 1 + 1
    want = np.zeros((2, ho, wo, 6), dtype=np.int64)
    for n in range(2):
        for i in range(ho):
            for j in range(wo):
                for o in range(6):
                    g = o // 3
                    for a in range(3):
                        for b in range(2):
                            for c in range(2):
                                want[n, i, j, o] += int(
                                    xp[n, i * 2 + a, j + b * 2, g * 2 + c]
                                ) * int(w[o, a, b, c])
    np.testing.assert_array_equal(got, want)
