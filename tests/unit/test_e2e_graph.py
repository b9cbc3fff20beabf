"""The digits network as a models graph (``e2e.to_graph``) replayed with a registry scheme,
checked against an independent implementation written here: int64 conv loops, and per
element either an exact rational rounding or ``fxq_explore.oracles``."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from fxq_explore import models, oracles
from fxq_explore.models import presets
from fxq_explore.models.ir import Tensor
from fxq_explore.models.ops import gemm_scale, requant_dtype
from fxq_explore.studies import e2e

THRESHOLDS = (3.0, 6.0, 15.0)
N_IMAGES = 6


@pytest.fixture(scope="module")
def data():
    p = e2e.load_params()
    _, _, x, _ = e2e.load_split()
    return p, e2e.quantize_input(x[:N_IMAGES])


def conv_loops(x, w, b, stride, pad):
    """Plain NCHW integer convolution: padded copy, one output pixel at a time, int64."""
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), np.int64)
    xp[:, :, pad : pad + h, pad : pad + wd] = x
    oh, ow = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    out = np.zeros((n, k, oh, ow), np.int64)
    wk = w.astype(np.int64).reshape(k, -1)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + r, j * stride : j * stride + s]
            out[:, :, i, j] = patch.reshape(n, -1) @ wk.T + b.astype(np.int64)
    return out


def round_half_away(v: Fraction) -> int:
    """Nearest integer to the rational v, ties away from zero (integer arithmetic only)."""
    a = abs(v)
    q = (2 * a.numerator + a.denominator) // (2 * a.denominator)  # floor(|v| + 1/2)
    return q if v >= 0 else -q


def exact_rounding(acc: int, scale: float) -> int:
    return round_half_away(Fraction(acc) * Fraction(scale))


def reference_network(qm, q0, rounding):
    """The network from its definition; ``rounding(acc, s)`` per element, then the clamp."""
    h = q0
    outs = []
    for i, (_, stride, pad) in enumerate(e2e.LAYERS):
        acc = conv_loops(h, qm.weights[i], qm.biases[i], stride, pad)
        s = [qm.act_scales[i] * float(sw) / qm.act_scales[i + 1] for sw in qm.w_scales[i]]
        dt = qm.out_dtypes[i]
        bits = int(dt.lstrip("uint"))
        lo, hi = (
            (0, 2**bits - 1) if dt.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        )
        out = np.empty(acc.shape, np.int64)
        for idx in np.ndindex(acc.shape):
            out[idx] = max(lo, min(hi, rounding(int(acc[idx]), s[idx[1]])))
        h = out.astype(np.int8 if dt == "int8" else np.uint8)
        outs.append(h)
    return outs


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(
    ("scheme", "rounding"),
    [
        ("exact", exact_rounding),
        ("tflite", oracles.tflite),
        ("tvm_tonearest", oracles.tvm_tonearest),
    ],
)
def test_graph_route_equals_independent_network(data, bits, scheme, rounding):
    params, q0 = data
    qm = e2e.quantize_model(params, THRESHOLDS, bits)
    logits, outs = e2e.run_integer(qm, q0, scheme)
    want = reference_network(qm, q0, rounding)
    for got, ref in zip(outs, want, strict=True):
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)
    assert logits.shape == (N_IMAGES, 10) and logits.dtype == np.int8
    np.testing.assert_array_equal(logits, want[-1][:, :, 0, 0])


def test_sub_8_bit_clamp_is_honoured(data):
    params, q0 = data
    qm = e2e.quantize_model(params, THRESHOLDS, 4)
    g = e2e.to_graph(qm)
    assert [g.tensor(t).qdtype for t in e2e.TENSORS] == [None, "uint4", "uint4", None, None]
    res = e2e.replay_integer(qm, q0, "exact")
    for layer, t in (("conv1", "h1"), ("conv2", "h2")):
        site = res.sites[layer]
        assert site["dtype"] == "uint4" and site["clamp"] == (0, 15)
        y = res.tensors[t]
        assert y.dtype == np.uint8 and y.max() == 15
        # the clamp did work: unclamped, some outputs would be far above 15
        real = site["acc"] * site["scale"].reshape(1, -1, 1, 1)
        assert real.max() > 16
    # without the qdtype the same graph would requantize to the full uint8 range
    g.tensors["h1"].qdtype = None
    y8 = models.replay(g, q0, scheme="exact").tensors["h1"]
    assert y8.max() > 15


def test_e2e_scales_are_the_float64_multipliers(data):
    params, q0 = data
    qm = e2e.quantize_model(params, THRESHOLDS, 6)
    res = e2e.replay_integer(qm, q0, "tflite")
    assert res.engine == "scheme:tflite"
    for i, (name, _, _) in enumerate(e2e.LAYERS):
        s = res.sites[name]["scale"]
        assert s.dtype == np.float64
        np.testing.assert_array_equal(s, qm.multipliers(i))  # bit for bit, no float32 step


def test_scheme_row_rejects_unknown_values():
    with pytest.raises(ValueError, match=r"scheme 'banana'.*'tflite'.*'exact'"):
        presets.scheme_row("banana")
    with pytest.raises(ValueError, match=r"fmt 'caffe'.*'onnx'.*'tflite'"):
        presets.scheme_row("exact", "caffe")
    with pytest.raises(TypeError, match="scheme"):
        presets.scheme_row(None)


def test_replay_takes_engine_or_scheme_not_both(data):
    params, q0 = data
    g = e2e.to_graph(e2e.quantize_model(params, THRESHOLDS, 8))
    with pytest.raises(ValueError, match="engine or scheme"):
        models.replay(g, q0, engine="onnxruntime-vnni", scheme="exact")
    with pytest.raises(ValueError, match="unknown scheme 'banana'"):
        models.replay(g, q0, scheme="banana")


def test_scheme_row_keeps_the_base_engine_for_other_ops():
    for fmt, base in presets.SCHEME_ROW_BASE.items():
        row = presets.scheme_row("tflite_single", fmt)
        assert row["format"] == fmt and row["gemm"] == row["fc"] == "tflite_single"
        assert row["scale"] == "float64" and "preset" not in row
        assert {k: v for k, v in row.items() if k not in ("gemm", "fc", "scale", "accumulate")} == {
            k: v
            for k, v in presets.ENGINES[base].items()
            if k not in ("gemm", "fc", "scale", "accumulate", "preset")
        }
    assert presets.scheme_row("exact")["accumulate"] == "exact"


def test_float64_scale_recipe():
    sw32 = np.array([0.0123, 0.5, 1e-5], np.float32)
    s_in, s_out = float(np.float32(0.1)), float(np.float32(0.37))
    # on float32 scales it is TFLite's double derivation
    np.testing.assert_array_equal(
        gemm_scale(s_in, sw32, s_out, "float64"), gemm_scale(s_in, sw32, s_out, "double")
    )
    # on float64 scales it keeps them: no rounding to float32 first
    sw = np.array([0.0123, 0.5, 1e-5])
    np.testing.assert_array_equal(gemm_scale(0.1, sw, 0.37, "float64"), 0.1 * sw / 0.37)
    assert not np.array_equal(gemm_scale(0.1, sw, 0.37, "double"), 0.1 * sw / 0.37)


def test_qdtype_must_be_narrower_and_stored_in_the_dtype():
    assert requant_dtype(None, "uint8") == "uint8"
    assert requant_dtype(Tensor("y", "uint8", ()), "uint8") == "uint8"
    assert requant_dtype(Tensor("y", "uint8", (), qdtype="uint6"), "uint8") == "uint6"
    for q, dt in (("uint8", "uint8"), ("uint4", "int8"), ("int4", "uint8"), ("uint12", "uint8")):
        with pytest.raises(ValueError, match="qdtype"):
            requant_dtype(Tensor("y", dt, (), qdtype=q), dt)


def export_onnx(graph, path):
    """Write the in-memory graph as a real ONNX file: scales rounded to float32, and the int8
    logits (zero point 0) as uint8 with zero point 128, since ONNX Runtime's QLinearConv
    outputs the type of its input (the same clamp and rounding, shifted by 128)."""
    from onnx import TensorProto, helper, numpy_helper, save

    inits = []
    for t in graph.tensors.values():
        if t.data is not None:
            arr = t.data.astype(np.float32) if t.data.dtype == np.float64 else t.data
            if t.name == "fc.y_zero_point":
                arr = np.array(128, np.uint8)
            inits.append(numpy_helper.from_array(arr, t.name))
    elem = {"uint8": TensorProto.UINT8, "int8": TensorProto.UINT8}
    nodes = [
        helper.make_node(n.op, n.inputs, n.outputs, name=n.name, **n.attrs) for n in graph.nodes
    ]

    def value(name):
        t = graph.tensor(name)
        return helper.make_tensor_value_info(name, elem[t.dtype], ["N", *t.shape[1:]])

    g = helper.make_graph(
        nodes, "digits", [value(i) for i in graph.inputs], [value(o) for o in graph.outputs], inits
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))


def test_same_network_through_onnxruntime(data, tmp_path):
    """At 8 bits the graph is a valid ONNX model: ONNX Runtime's output equals replay of the
    written file with the onnxruntime preset resolved for this CPU."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    params, q0 = data
    qm = e2e.quantize_model(params, THRESHOLDS, 8)
    path = tmp_path / "digits_e2e.onnx"
    export_onnx(e2e.to_graph(qm), path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (real,) = sess.run(None, {"x_q": q0})
    loaded = models.load(path)
    assert all(t.qdtype is None for t in loaded.tensors.values())
    ours = models.replay(loaded, q0, engine="onnxruntime")
    assert real.dtype == np.uint8
    np.testing.assert_array_equal(ours.output, real)
    # the float32 scales of the file move few logits from the float64 in-memory network
    ref, _ = e2e.run_integer(qm, q0, "float32_rne")
    assert np.mean(ref.astype(np.int16) != real.astype(np.int16) - 128) < 0.05


def test_a_loaded_file_cannot_carry_the_sub_8_bit_clamp(data, tmp_path):
    """Written to a file, the uint4 graph loses its clamp: the file's QLinearConv outputs are
    uint8 and replay of the loaded model uses the full uint8 range."""
    pytest.importorskip("onnx")
    params, q0 = data
    qm = e2e.quantize_model(params, THRESHOLDS, 4)
    path = tmp_path / "digits_uint4.onnx"
    export_onnx(e2e.to_graph(qm), path)
    loaded = models.load(path)
    assert all(t.qdtype is None for t in loaded.tensors.values())
    res = models.replay(loaded, q0, scheme="exact")
    assert res.sites["conv1"]["dtype"] == "uint8" and res.sites["conv1"]["clamp"] == (0, 255)
    assert res.tensors["h1"].max() > 15
