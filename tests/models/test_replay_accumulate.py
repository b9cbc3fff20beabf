"""ONNX replay accumulates as ONNX Runtime does on each CPU class.

``onnxruntime-avx2`` (MLAS u8s8 without VNNI: int16 pair saturation) and ``onnxruntime-vnni``
(exact) replay a CPU class on any machine; ``onnxruntime`` resolves to this CPU's. The
expected values come from ``fxq_explore.engines.conv2d`` (the engine presets, with the numpy
accumulation oracle) fed with replay's own intermediate tensors layer by layer, or from a
brute-force loop over the products -- never from replay itself.
"""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fxq_explore import engines, models
from fxq_explore.models import presets
from fxq_explore.models.data import digits, model_files, model_input
from fxq_explore.models.ir import UnsupportedOpError

X, Y = digits("test", 96)
ONNX_MODELS = [p.name for p in model_files("onnx")]
# u8 activations in the graph ORT runs: the u8s8 models, and the QDQ s8s8 one too (ORT's
# QDQS8ToU8Transformer turns int8 activations into uint8 on x86 before fusing)
U8S8 = [n for n in ONNX_MODELS if "qop_s8s8" not in n]


def _scalar(g, name):
    return np.asarray(g.const(name)).reshape(-1)[0]


def _expected_layer(g, node, env):
    """One QLinearConv / QGemm / QLinearMatMul computed by fxq_explore.engines.conv2d with
    the onnxruntime-avx2 preset (numpy accumulation) from replay's input tensor."""
    i = node.inputs
    x = env[i[0]]
    w = g.const(i[3])
    kw = dict(
        x_scale=float(_scalar(g, i[1])),
        x_zero_point=int(_scalar(g, i[2])),
        w_scale=np.asarray(g.const(i[4]), np.float32).reshape(-1),
        w_zero_point=np.asarray(g.const(i[5]), np.int64).reshape(-1),
        engine="onnxruntime-avx2",
        acc_backend="numpy",
    )
    if node.op == "QLinearConv":
        y_scale, y_zp, b = i[6], i[7], (i[8] if len(i) > 8 else "")
        pads = tuple(node.attrs.get("pads", (0, 0, 0, 0)))
        assert pads[:2] == pads[2:], "the committed models pad symmetrically"
        assert tuple(node.attrs.get("dilations", (1, 1))) == (1, 1)
        geo = dict(stride=tuple(node.attrs.get("strides", (1, 1))), padding=pads[:2],
                   groups=int(node.attrs.get("group", 1)))  # fmt: skip
    else:
        y_scale, y_zp = (i[7], i[8]) if node.op == "QGemm" else (i[6], i[7])
        b = i[6] if node.op == "QGemm" else ""
        assert not node.attrs.get("transA", 0)
        w = w if node.attrs.get("transB", 0) else w.T  # (N, K)
        x = x.reshape(-1, x.shape[-1], 1, 1)  # a matmul is the 1x1 conv with C = K
        w = w.reshape(w.shape[0], -1, 1, 1)
        geo = {}
    zy = np.asarray(g.const(y_zp))
    bias = g.const(b).astype(np.int32) if b else None
    y = engines.conv2d(x, w, bias, y_scale=float(_scalar(g, y_scale)),
                       out_zero_point=int(zy.reshape(-1)[0]), out_dtype=str(zy.dtype), **kw,
                       **geo)  # fmt: skip
    return y if node.op == "QLinearConv" else y.reshape(y.shape[0], -1)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", U8S8)
def test_avx2_replay_equals_the_engine_preset_layer_by_layer(name):
    g = models.load(models.data_path(name))
    r = models.replay(g, model_input(g, X), "onnxruntime-avx2")
    assert r.engine == "onnxruntime-avx2"
    checked = 0
    for node in g.nodes:
        if node.op in ("QLinearConv", "QGemm", "QLinearMatMul"):
            want = _expected_layer(g, node, r.tensors)
            got = r.tensors[node.outputs[0]]
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=node.name)
            checked += 1
    # QOperator: conv1, dw, pw, fc; QDQ s8s8: pw and fc (ORT leaves conv1 and dw float)
    assert checked >= (4 if "qop" in name else 2)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_avx2_and_exact_replay_differ_on_saturating_inputs():
    """The per-channel u8s8 model (full-range weights) saturates on the digits: outputs and
    classes change. The counts are the measurement; the assertion is only that they are not 0
    on either the per-channel or the per-tensor model."""
    counts = {}
    for name in ("digits_qop_u8s8_pc_minmax.onnx", "digits_qop_u8s8_pt_minmax.onnx"):
        g = models.load(models.data_path(name))
        x = model_input(g, X)
        exact = models.replay(g, x, "onnxruntime-vnni").output
        sat = models.replay(g, x, "onnxruntime-avx2").output
        counts[name] = (int((exact != sat).sum()), int((exact.argmax(1) != sat.argmax(1)).sum()))
    print(counts)
    assert all(n_out > 0 and n_cls > 0 for n_out, n_cls in counts.values())


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "name", [n for n in ONNX_MODELS if "_rr" in n or "qop_s8s8" in n]
)  # fmt: skip
def test_models_that_cannot_saturate_replay_identically(name):
    """reduce_range (7-bit weights: 2 * 255 * 64 < 2^15 + 1) never saturates a pair, and int8
    activations run MLAS's exact s8s8 path: both CPU classes give every tensor the same."""
    g = models.load(models.data_path(name))
    x = model_input(g, X)
    a = models.replay(g, x, "onnxruntime-vnni").tensors
    b = models.replay(g, x, "onnxruntime-avx2").tensors
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _cpu_flags():
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "flags:")
    return set(line.split(":", 1)[1].split())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_onnxruntime_resolves_to_the_exact_preset_on_a_vnni_cpu():
    f = _cpu_flags()
    vnni = {"avx2", "fma"} <= f and (
        "avx_vnni" in f or {"avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni"} <= f
    )
    if not vnni:
        pytest.skip("this CPU has no AVX-VNNI / AVX512-VNNI (ORT's u8s8 kernels saturate here)")
    assert presets.resolve("onnxruntime") == "onnxruntime-vnni"
    g = models.load(models.data_path("digits_qop_u8s8_pc_minmax.onnx"))
    r = models.replay(g, model_input(g, X[:4]), "onnxruntime")
    assert r.engine == "onnxruntime-vnni"
    assert presets.ENGINES[r.engine]["accumulate"] == "exact"


def test_resolution_follows_the_cpu_flags():
    assert presets.resolve("onnxruntime", flags={"avx2", "fma"}) == "onnxruntime-avx2"
    assert presets.resolve("onnxruntime", flags={"avx2", "fma", "avx_vnni"}) == "onnxruntime-vnni"
    avx512 = {"avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"}
    assert presets.resolve("onnxruntime", flags=avx512) == "onnxruntime-avx2"
    assert presets.resolve("onnxruntime", flags=avx512 | {"avx512_vnni"}) == "onnxruntime-vnni"
    assert presets.ENGINES["onnxruntime-avx2"]["accumulate"] == "mlas_u8s8"
    with pytest.raises(ValueError, match="onnxruntime-avx2"):
        presets.resolve("onnxruntime-sse")


# one QLinearConv written with onnx.helper -------------------------------------------------


def _conv_model(tmp_path, w, *, pads, dilations=(1, 1), zx=3, bias=None):
    t = helper.make_tensor
    k = w.shape[0]
    inits = [
        t("xs", TensorProto.FLOAT, [], [0.02]),
        t("xz", TensorProto.UINT8, [], [zx]),
        t("w", TensorProto.INT8, list(w.shape), w.ravel().tolist()),
        t("ws", TensorProto.FLOAT, [k], [0.01 + 0.001 * c for c in range(k)]),
        t("wz", TensorProto.INT8, [k], [0] * k),
        t("ys", TensorProto.FLOAT, [], [40.0]),
        t("yz", TensorProto.UINT8, [], [128]),
        t("b", TensorProto.INT32, [k], (bias if bias is not None else [0] * k)),
    ]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], pads=list(pads), dilations=list(dilations))  # fmt: skip
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, w.shape[1],
                                                                                 5, 6])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, k, "h", "w"])], initializer=inits,
    )  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    p = tmp_path / "conv.onnx"
    onnx.save(m, str(p))
    return p


def _brute_acc(x, w, zx, pads):
    """Accumulators by loops: MLAS im2col order (kh, kw, c), padded pixels = zx, the flat
    reduction vector zero-padded to a multiple of 4, products (2j, 2j+1) summed and clamped."""
    t, left, b, r = pads
    xp = np.pad(x[0].astype(np.int64), ((0, 0), (t, b), (left, r)), constant_values=zx)
    k, c, kh, kw = w.shape
    oh, ow = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    out = np.zeros((1, k, oh, ow), np.int64)
    for o in range(k):
        for i in range(oh):
            for j in range(ow):
                raw = [int(xp[ch, i + a, j + bb]) * int(w[o, ch, a, bb])
                       for a in range(kh) for bb in range(kw) for ch in range(c)]  # fmt: skip
                raw += [0] * (-len(raw) % 4)
                sat = sum(min(max(raw[q] + raw[q + 1], -32768), 32767)
                          for q in range(0, len(raw), 2))  # fmt: skip
                exact = sum(
                    (int(xp[ch, i + a, j + bb]) - zx) * int(w[o, ch, a, bb])
                    for a in range(kh) for bb in range(kw) for ch in range(c)
                )  # fmt: skip
                out[0, o, i, j] = exact + sat - sum(raw)
    return out


@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (0, 1, 2, 0)])
def test_pair_saturation_against_loops_with_symmetric_and_asymmetric_pads(tmp_path, pads):
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    w[:, :, 0, 0] = 127  # full range: pairs of (255, 127) saturate
    x = rng.integers(0, 256, (1, 3, 5, 6)).astype(np.uint8)
    x[0, :, :2] = 255
    bias = [5, -7, 11, 0]
    p = _conv_model(tmp_path, w, pads=pads, bias=bias)
    r = models.replay(models.load(p), x, "onnxruntime-avx2")
    want = _brute_acc(x, w, 3, pads) + np.array(bias).reshape(1, -1, 1, 1)
    exact = next(iter(models.replay(models.load(p), x, "onnxruntime-vnni").sites.values()))
    np.testing.assert_array_equal(next(iter(r.sites.values()))["acc"], want)
    assert (exact["acc"] != want).any()  # the case saturates


def test_dilated_conv_is_refused_under_pair_saturation_only(tmp_path):
    w = np.full((2, 4, 2, 2), 127, np.int8)
    p = _conv_model(tmp_path, w, pads=(0, 0, 0, 0), dilations=(2, 2))
    g = models.load(p)
    x = np.full((1, 4, 5, 6), 255, np.uint8)
    with pytest.raises(UnsupportedOpError, match="dilations"):
        models.replay(g, x, "onnxruntime-avx2")
    assert models.replay(g, x, "onnxruntime-vnni").output.shape == (1, 2, 3, 4)
