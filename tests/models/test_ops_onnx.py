"""QLinearMul, QLinearAveragePool, QLinearConcat, QLinearLeakyRelu and QLinearSigmoid (ORT's
com.microsoft QOperator kernels): replay equals ONNX Runtime's own output bit for bit.

Each model is one node written with ``onnx.helper``; the inputs cover every byte value (so
every entry of a lookup table is read), exact .5 ties of the float rounding, and saturation.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fxq_explore import models
from fxq_explore.models import mlas

MS = "com.microsoft"
ONNX_T = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}


def _save(tmp_path, nodes, inputs, outputs, inits, name="m"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(MS, 1)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    p = tmp_path / f"{name}.onnx"
    onnx.save(model, str(p))
    return p


def _scalar(name, value, dtype):
    if dtype == "float32":
        return helper.make_tensor(name, TensorProto.FLOAT, [], [float(value)])
    return helper.make_tensor(name, ONNX_T[dtype], [], [int(value)])


def _vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, ONNX_T[dtype], shape)


def _ort(path, feeds):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def _all_bytes(dtype, shape):
    """Every byte value, repeated / cycled to fill ``shape``."""
    n = int(np.prod(shape))
    return np.resize(mlas.byte_values(dtype), n).reshape(shape)


def _check(path, feeds):
    real = _ort(path, feeds)
    ours = models.replay(path, feeds, "onnxruntime").output
    assert ours.dtype == real.dtype and ours.shape == real.shape
    np.testing.assert_array_equal(ours, real)
    return real


# ---------------------------------------------------------------------------------------------
# QLinearMul

MUL_CASES = [
    # (dtype, (s_a, zp_a), (s_b, zp_b), (s_c, zp_c)): ratio 0.5 gives exact .5 ties
    ("uint8", (0.5, 128), (1.0, 120), (1.0, 128)),
    ("int8", (0.25, 3), (0.5, -7), (0.25, -2)),
    ("uint8", (0.0235, 131), (0.0098, 97), (0.0345, 126)),
    ("int8", (0.0235, -1), (0.0098, -26), (0.0345, -2)),
    ("int8", (0.31, 0), (0.17, 0), (0.001, 0)),  # saturates almost everywhere
]


@pytest.mark.parametrize(("dtype", "qa", "qb", "qc"), MUL_CASES)
def test_qlinearmul_bit_exact(tmp_path, dtype, qa, qb, qc):
    inits = [_scalar("sa", qa[0], "float32"), _scalar("za", qa[1], dtype),
             _scalar("sb", qb[0], "float32"), _scalar("zb", qb[1], dtype),
             _scalar("sc", qc[0], "float32"), _scalar("zc", qc[1], dtype)]  # fmt: skip
    node = helper.make_node("QLinearMul", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"],
                            domain=MS, name="mul")  # fmt: skip
    p = _save(tmp_path, [node], [_vi("a", dtype, [256, 37]), _vi("b", dtype, [256, 37])],
              [_vi("c", dtype, [256, 37])], inits)  # fmt: skip
    a = _all_bytes(dtype, (256, 37))
    rng = np.random.default_rng(1)
    b = rng.integers(0, 256, (256, 37)).astype(np.uint8).view(dtype)
    real = _check(p, {"a": a, "b": b})
    info = np.iinfo(dtype)
    if qc[0] == 0.001:
        assert (real == info.min).any() and (real == info.max).any()


def test_qlinearmul_has_ties_resolved_to_even(tmp_path):
    """The ratio-0.5 case really rounds .5 ties, and to even (a half-away rule differs)."""
    dtype, qa, qb, qc = MUL_CASES[0]
    a = _all_bytes(dtype, (256, 37)).astype(np.int64) - qa[1]
    b = np.arange(256 * 37).reshape(256, 37) % 256 - qb[1]
    v = a * b * 0.5
    assert ((v % 1) == 0.5).sum() > 1000


def test_qlinearmul_broadcast_constant(tmp_path):
    dtype = "uint8"
    inits = [_scalar("sa", 0.02, "float32"), _scalar("za", 128, dtype),
             helper.make_tensor("b", TensorProto.UINT8, [1, 4, 1, 1], [0, 77, 200, 255]),
             _scalar("sb", 0.5, "float32"), _scalar("zb", 100, dtype),
             _scalar("sc", 0.04, "float32"), _scalar("zc", 128, dtype)]  # fmt: skip
    node = helper.make_node("QLinearMul", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"],
                            domain=MS, name="mulc")  # fmt: skip
    p = _save(tmp_path, [node], [_vi("a", dtype, [2, 4, 8, 8])], [_vi("c", dtype, [2, 4, 8, 8])],
              inits)  # fmt: skip
    _check(p, {"a": _all_bytes(dtype, (2, 4, 8, 8))})


# ---------------------------------------------------------------------------------------------
# QLinearAveragePool

POOL_CASES = [
    # kernel, strides, pads, count_include_pad, dtype, s_x/zp_x, s_y/zp_y
    ((3, 3), (1, 1), (1, 1, 1, 1), 0, "uint8", (0.05, 128), (0.05, 128)),
    ((3, 3), (2, 2), (1, 0, 2, 1), 1, "int8", (0.05, 3), (0.03, -5)),
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, "int8", (0.5, 0), (0.5, 0)),  # quarter-integers: ties
    ((2, 3), (1, 2), (0, 1, 1, 0), 0, "uint8", (0.1, 10), (0.02, 250)),  # saturation
    ((7, 7), (1, 1), (0, 0, 0, 0), 0, "uint8", (0.05, 128), (0.04, 128)),  # global fallback
]


@pytest.mark.parametrize(("k", "s", "pads", "cip", "dtype", "qx", "qy"), POOL_CASES)
def test_qlinear_avgpool_bit_exact(tmp_path, k, s, pads, cip, dtype, qx, qy):
    inits = [_scalar("sx", qx[0], "float32"), _scalar("zx", qx[1], dtype),
             _scalar("sy", qy[0], "float32"), _scalar("zy", qy[1], dtype)]  # fmt: skip
    node = helper.make_node("QLinearAveragePool", ["x", "sx", "zx", "sy", "zy"], ["y"],
                            domain=MS, name="avg", kernel_shape=list(k), strides=list(s),
                            pads=list(pads), count_include_pad=cip)  # fmt: skip
    shape = [3, 4, 7, 7]
    ho = (7 + pads[0] + pads[2] - k[0]) // s[0] + 1
    wo = (7 + pads[1] + pads[3] - k[1]) // s[1] + 1
    p = _save(tmp_path, [node], [_vi("x", dtype, shape)], [_vi("y", dtype, [3, 4, ho, wo])],
              inits)  # fmt: skip
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, shape).astype(np.uint8).view(dtype)
    x[0] = _all_bytes(dtype, shape[1:])
    real = _check(p, {"x": x})
    if qy == (0.02, 250):
        assert (real == 255).any()


# ---------------------------------------------------------------------------------------------
# QLinearConcat


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinearconcat_bit_exact(tmp_path, dtype):
    zy = 128 if dtype == "uint8" else 0
    inits = [
        _scalar("sy", 0.05, "float32"),
        _scalar("zy", zy, dtype),
        _scalar("s1", 0.05, "float32"),
        _scalar("z1", zy, dtype),  # same: copied
        _scalar("s2", 0.025, "float32"),
        _scalar("z2", zy + 7, dtype),  # x/2: .5 ties
        _scalar("s3", 0.2, "float32"),
        _scalar("z3", zy - 3, dtype),
    ]  # x4: saturates
    node = helper.make_node("QLinearConcat", ["sy", "zy", "x1", "s1", "z1", "x2", "s2", "z2",
                                              "x3", "s3", "z3"], ["y"], domain=MS, axis=1,
                            name="cat")  # fmt: skip
    p = _save(tmp_path, [node], [_vi("x1", dtype, [2, 3, 16, 8]), _vi("x2", dtype, [2, 5, 16, 8]),
                                 _vi("x3", dtype, [2, 2, 16, 8])],
              [_vi("y", dtype, [2, 10, 16, 8])], inits)  # fmt: skip
    feeds = {n: _all_bytes(dtype, (2, c, 16, 8)) for n, c in (("x1", 3), ("x2", 5), ("x3", 2))}
    real = _check(p, feeds)
    np.testing.assert_array_equal(real[:, :3], feeds["x1"])
    info = np.iinfo(dtype)
    assert (real[:, 8:] == info.max).any() and (real[:, 8:] == info.min).any()


# ---------------------------------------------------------------------------------------------
# QLinearLeakyRelu, QLinearSigmoid

LUT_CASES = [
    ("uint8", (0.05, 128), (0.03, 100)),
    ("int8", (0.1, -3), (0.05, 10)),
    ("int8", (0.0567, 16), (1 / 256, -128)),  # a TFLite-style sigmoid output
    ("uint8", (0.25, 0), (0.5, 0)),  # exact .5 ties in the table
    ("uint8", (0.2, 128), (1 / 255, 0)),
]


@pytest.mark.parametrize("op", ["QLinearLeakyRelu", "QLinearSigmoid"])
@pytest.mark.parametrize(("dtype", "qx", "qy"), LUT_CASES)
def test_qlinear_lookup_ops_bit_exact(tmp_path, op, dtype, qx, qy):
    inits = [_scalar("sx", qx[0], "float32"), _scalar("zx", qx[1], dtype),
             _scalar("sy", qy[0], "float32"), _scalar("zy", qy[1], dtype)]  # fmt: skip
    attrs = {"alpha": 0.37} if op == "QLinearLeakyRelu" else {}
    node = helper.make_node(op, ["x", "sx", "zx", "sy", "zy"], ["y"], domain=MS, name="lut",
                            **attrs)  # fmt: skip
    p = _save(tmp_path, [node], [_vi("x", dtype, [4, 256])], [_vi("y", dtype, [4, 256])], inits)
    _check(p, {"x": _all_bytes(dtype, (4, 256))})


def test_fma_rounds_once():
    a = np.float32(1 + 2**-12)
    c = np.float32(-1)
    # a*a = 1 + 2^-11 + 2^-24 exactly; + c = 2^-11 + 2^-24, representable: fma keeps the
    # 2^-24 that a separate float32 multiply loses
    assert mlas.fma_f32(a, a, c)[0] == np.float32(2**-11 + 2**-24)
    assert np.float32(a * a) + c == np.float32(2**-11)
