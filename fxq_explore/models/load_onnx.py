"""Load an ONNX model with the ``onnx`` package into the IR.

QOperator models (QLinearConv, QGemm, ...) are read as written. QDQ models
(DequantizeLinear -> op -> QuantizeLinear) are read *as ONNX Runtime runs them*: the model is
first passed through ORT's own graph optimizer (``ORT_ENABLE_EXTENDED``: the QDQ fusions into
QLinear kernels, no layout or hardware-specific rewrites) and the optimized graph is loaded, so
replay follows the kernels ORT actually picks (on x86 it may leave some groups in float:
DequantizeLinear -> float op -> QuantizeLinear, which is then replayed in float32).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .ir import Graph, Node, Tensor, UnsupportedOpError

SUPPORTED = (
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
    "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool", "MaxPool", "QLinearConcat",
    "QLinearLeakyRelu", "QLinearSigmoid",
    "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
    # float ops left between DequantizeLinear and QuantizeLinear by ORT's QDQ fusion:
    "Conv", "Add", "Mul", "Relu", "GlobalAveragePool", "Gemm", "MatMul",
)  # fmt: skip
_QDQ_COMPUTE = {"Conv", "Add", "Mul", "Gemm", "MatMul", "GlobalAveragePool", "AveragePool",
                "Concat", "Relu", "Clip"}  # fmt: skip

_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
                4: "uint16", 10: "float16", 11: "float64"}  # fmt: skip


def _is_qdq(model) -> bool:
    produced_by_dq = {
        o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output
    }
    return any(
        n.op_type in _QDQ_COMPUTE and any(i in produced_by_dq for i in n.input)
        for n in model.graph.node
    )


def ort_fused(path: str):
    """The model after ONNX Runtime's QDQ fusion (``ORT_ENABLE_EXTENDED``), as an onnx proto."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "fused.onnx")
        so.optimized_model_filepath = out
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return onnx.load(out)


def load_onnx(path: str, *, fuse_qdq: bool = True) -> Graph:
    """Read an ONNX model into a :class:`~fxq_explore.models.ir.Graph`.

    Parameters
    ----------
    path : str
        The .onnx file.
    fuse_qdq : bool
        For a QDQ model, load the graph ORT runs after its QDQ fusion (needs onnxruntime).
        ``False`` loads the QDQ graph as written, which replays the ONNX *specification*
        (float ops between Q/DQ), not what ORT computes.

    Raises
    ------
    UnsupportedOpError
        For an op outside :data:`SUPPORTED`, naming the op and the node.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    flavor = "qoperator"
    if _is_qdq(model):
        flavor = "qdq"
        if fuse_qdq:
            model = ort_fused(path)
            flavor = "qdq (as fused by onnxruntime)"
    g = model.graph
    tensors: dict[str, Tensor] = {}
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        tensors[init.name] = Tensor(init.name, str(arr.dtype), tuple(arr.shape), data=arr)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.name in tensors:
            continue
        tt = vi.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        tensors[vi.name] = Tensor(vi.name, _ONNX_DTYPES.get(tt.elem_type, "?"), shape)
    nodes = []
    for i, n in enumerate(g.node):
        name = n.name or f"{i}:{n.op_type}"
        if n.op_type == "Constant":
            arr = numpy_helper.to_array(n.attribute[0].t)
            tensors[n.output[0]] = Tensor(n.output[0], str(arr.dtype), arr.shape, data=arr)
            continue
        if n.op_type not in SUPPORTED:
            raise UnsupportedOpError(
                n.op_type if not n.domain else f"{n.domain}.{n.op_type}",
                name,
                f"supported: {', '.join(SUPPORTED)}",
            )
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        for o in n.output:
            tensors.setdefault(o, Tensor(o, "?", ()))
        nodes.append(Node(n.op_type, name, list(n.input), list(n.output), attrs, n.domain))
    inits = {i.name for i in g.initializer}
    return Graph(
        "onnx",
        str(path),
        nodes,
        tensors,
        [i.name for i in g.input if i.name not in inits],
        [o.name for o in g.output],
        flavor=flavor,
    )


def const_scalar(graph: Graph, name: str, default=0):
    """A scalar / 1-element constant input (scale or zero point), ``default`` if omitted."""
    if not name:
        return default
    v = np.asarray(graph.const(name))
    if v.size != 1:
        raise ValueError(f"{name!r} must hold one value; it has shape {v.shape}")
    return v.reshape(()).item()
