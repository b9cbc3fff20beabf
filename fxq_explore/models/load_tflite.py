"""Load a .tflite flatbuffer with the ``tflite`` schema package into the IR."""

from __future__ import annotations

import numpy as np

from .ir import Graph, Node, Tensor, UnsupportedOpError

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
           9: "int8"}  # fmt: skip
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
_PADDING = {0: "SAME", 1: "VALID"}

SUPPORTED = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MEAN", "AVERAGE_POOL_2D",
    "MAX_POOL_2D", "RESHAPE", "CONCATENATION", "PAD", "SOFTMAX", "LOGISTIC", "QUANTIZE",
    "DEQUANTIZE",
)  # fmt: skip


def _op_names():
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _activation(code: int, op: str, name: str) -> str:
    if code not in _ACTIVATIONS:
        raise UnsupportedOpError(op, name, f"fused activation code {code}")
    return _ACTIVATIONS[code]


def _options(op, opname: str, name: str) -> dict:
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}

    def get(cls):
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return o

    if opname in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = get(tflite.Conv2DOptions if opname == "CONV_2D" else tflite.DepthwiseConv2DOptions)
        d = {
            "padding": _PADDING[o.Padding()],
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "activation": _activation(o.FusedActivationFunction(), opname, name),
        }
        if opname == "DEPTHWISE_CONV_2D":
            d["depth_multiplier"] = o.DepthMultiplier()
        return d
    if opname == "FULLY_CONNECTED":
        o = get(tflite.FullyConnectedOptions)
        if o.WeightsFormat() != 0:
            raise UnsupportedOpError(opname, name, "shuffled weights format")
        return {
            "activation": _activation(o.FusedActivationFunction(), opname, name),
            "keep_num_dims": bool(o.KeepNumDims()),
        }
    if opname in ("ADD", "MUL"):
        o = get(tflite.AddOptions if opname == "ADD" else tflite.MulOptions)
        return {"activation": _activation(o.FusedActivationFunction(), opname, name)}
    if opname == "MEAN":
        return {"keep_dims": bool(get(tflite.ReducerOptions).KeepDims())}
    if opname in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = get(tflite.Pool2DOptions)
        return {
            "padding": _PADDING[o.Padding()],
            "stride": (o.StrideH(), o.StrideW()),
            "filter": (o.FilterHeight(), o.FilterWidth()),
            "activation": _activation(o.FusedActivationFunction(), opname, name),
        }
    if opname == "CONCATENATION":
        o = get(tflite.ConcatenationOptions)
        return {
            "axis": o.Axis(),
            "activation": _activation(o.FusedActivationFunction(), opname, name),
        }
    if opname == "SOFTMAX":
        return {"beta": get(tflite.SoftmaxOptions).Beta()}
    return {}


def load_tflite(path: str) -> Graph:
    """Read ``path`` (a .tflite file, subgraph 0) into a :class:`~fxq_explore.models.ir.Graph`.

    Raises
    ------
    UnsupportedOpError
        For an op outside :data:`SUPPORTED`, naming the op and the node (its output tensor).
    """
    import tflite

    buf = open(path, "rb").read()
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError(f"{path}: the model has no subgraph")
    sg = model.Subgraphs(0)
    names = _op_names()
    tensors: dict[str, Tensor] = {}
    tname: list[str] = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        name = t.Name().decode()
        dtype = _DTYPES.get(t.Type(), f"tflite_type_{t.Type()}")
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if t.ShapeSignatureLength():
            shape = tuple(int(s) for s in t.ShapeSignatureAsNumpy())
        scale = zp = axis = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32)
            zp = (
                np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64)
                if q.ZeroPointLength()
                else np.zeros(scale.size, np.int64)
            )
            axis = int(q.QuantizedDimension()) if scale.size > 1 else None
        data = None
        b = model.Buffers(t.Buffer())
        if b is not None and b.DataLength() > 0:
            raw = b.DataAsNumpy().tobytes()
            data = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(
                tuple(int(s) for s in t.ShapeAsNumpy())
            )
        tensors[name] = Tensor(name, dtype, shape, scale, zp, axis, data)
        tname.append(name)
    nodes = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        opname = names.get(code, f"builtin_{code}")
        outs = [tname[j] for j in op.OutputsAsNumpy()]
        node_name = f"{i}:{opname}"
        if opname not in SUPPORTED:
            if opname == "CUSTOM":
                opname = f"CUSTOM({oc.CustomCode().decode()})"
            raise UnsupportedOpError(
                opname,
                f"{node_name} (output {outs[0] if outs else '?'})",
                f"supported: {', '.join(SUPPORTED)}",
            )
        ins = [tname[j] if j >= 0 else "" for j in op.InputsAsNumpy()]
        attrs = _options(op, opname, node_name)
        nodes.append(Node(opname, node_name, ins, outs, attrs))
    return Graph(
        "tflite",
        str(path),
        nodes,
        tensors,
        [tname[j] for j in sg.InputsAsNumpy()],
        [tname[j] for j in sg.OutputsAsNumpy()],
    )
