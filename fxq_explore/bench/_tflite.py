"""One-operator quantized ``.tflite`` models built in memory (flatbuffers + the ``tflite`` schema
package; no tensorflow), so LiteRT's XNNPACK delegate can be timed on the benchmark's shapes.

int8 activations (TFLite's scheme): ``x_int8 = x_uint8 - 128`` with zero point 0 is the same
arithmetic as uint8 with zero point 128. Weights int8, symmetric, per output channel.
"""

from __future__ import annotations

import numpy as np


def _vec(b, start, items, add):
    start(b, len(items))
    for it in reversed(items):
        add(it)
    return b.EndVector()


def build_model(
    op, x_shape, w, bias, x_scale, w_scales, y_scale, out_shape, *, stride=1, same=True
):
    """A .tflite flatbuffer holding one CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED.

    ``w`` is in TFLite's layout: conv (K, R, S, C), depthwise (1, R, S, C), FC (K, C).
    """
    import importlib

    import flatbuffers

    def mod(name):  # the schema modules (the package attributes are the classes)
        return importlib.import_module("tflite." + name)

    Buffer, Conv2DOptions, DepthwiseConv2DOptions = (
        mod("Buffer"),
        mod("Conv2DOptions"),
        mod("DepthwiseConv2DOptions"),
    )
    FullyConnectedOptions, Model, Operator = (
        mod("FullyConnectedOptions"),
        mod("Model"),
        mod("Operator"),
    )
    OperatorCode, SubGraph, Tensor = mod("OperatorCode"), mod("SubGraph"), mod("Tensor")
    QuantizationParameters = mod("QuantizationParameters")
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.BuiltinOptions import BuiltinOptions
    from tflite.TensorType import TensorType

    b = flatbuffers.Builder(1 << 20)
    k = len(w_scales)
    qdim = 3 if op == "depthwise" else 0

    def buffer(data):
        if data is None:
            Buffer.BufferStart(b)
            return Buffer.BufferEnd(b)
        raw = b.CreateNumpyVector(np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8))
        Buffer.BufferStart(b)
        Buffer.BufferAddData(b, raw)
        return Buffer.BufferEnd(b)

    def quant(scales, zps, dim=0):
        sv = b.CreateNumpyVector(np.asarray(scales, np.float32))
        zv = b.CreateNumpyVector(np.asarray(zps, np.int64))
        QuantizationParameters.QuantizationParametersStart(b)
        QuantizationParameters.QuantizationParametersAddScale(b, sv)
        QuantizationParameters.QuantizationParametersAddZeroPoint(b, zv)
        QuantizationParameters.QuantizationParametersAddQuantizedDimension(b, dim)
        return QuantizationParameters.QuantizationParametersEnd(b)

    def tensor(shape, ttype, buf, name, q):
        nm = b.CreateString(name)
        sh = b.CreateNumpyVector(np.asarray(shape, np.int32))
        Tensor.TensorStart(b)
        Tensor.TensorAddShape(b, sh)
        Tensor.TensorAddType(b, ttype)
        Tensor.TensorAddBuffer(b, buf)
        Tensor.TensorAddName(b, nm)
        Tensor.TensorAddQuantization(b, q)
        return Tensor.TensorEnd(b)

    bufs = [buffer(None), buffer(None), buffer(w), buffer(bias), buffer(None)]
    ws = np.asarray(w_scales, np.float64)
    tens = [
        tensor(x_shape, TensorType.INT8, 1, "x", quant([x_scale], [0])),
        tensor(w.shape, TensorType.INT8, 2, "w", quant(ws, np.zeros(k), qdim)),
        tensor(bias.shape, TensorType.INT32, 3, "b", quant(x_scale * ws, np.zeros(k), 0)),
        tensor(out_shape, TensorType.INT8, 4, "y", quant([y_scale], [0])),
    ]
    pad = 0 if same else 1  # Padding.SAME / VALID
    if op == "conv":
        Conv2DOptions.Conv2DOptionsStart(b)
        Conv2DOptions.Conv2DOptionsAddPadding(b, pad)
        Conv2DOptions.Conv2DOptionsAddStrideW(b, stride)
        Conv2DOptions.Conv2DOptionsAddStrideH(b, stride)
        opts, otype, code = (
            Conv2DOptions.Conv2DOptionsEnd(b),
            BuiltinOptions.Conv2DOptions,
            BuiltinOperator.CONV_2D,
        )
    elif op == "depthwise":
        DepthwiseConv2DOptions.DepthwiseConv2DOptionsStart(b)
        DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddPadding(b, pad)
        DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddStrideW(b, stride)
        DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddStrideH(b, stride)
        DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddDepthMultiplier(b, 1)
        opts = DepthwiseConv2DOptions.DepthwiseConv2DOptionsEnd(b)
        otype, code = BuiltinOptions.DepthwiseConv2DOptions, BuiltinOperator.DEPTHWISE_CONV_2D
    else:
        FullyConnectedOptions.FullyConnectedOptionsStart(b)
        opts = FullyConnectedOptions.FullyConnectedOptionsEnd(b)
        otype, code = BuiltinOptions.FullyConnectedOptions, BuiltinOperator.FULLY_CONNECTED
    ins = b.CreateNumpyVector(np.array([0, 1, 2], np.int32))
    outs = b.CreateNumpyVector(np.array([3], np.int32))
    Operator.OperatorStart(b)
    Operator.OperatorAddOpcodeIndex(b, 0)
    Operator.OperatorAddInputs(b, ins)
    Operator.OperatorAddOutputs(b, outs)
    Operator.OperatorAddBuiltinOptionsType(b, otype)
    Operator.OperatorAddBuiltinOptions(b, opts)
    oper = Operator.OperatorEnd(b)
    tv = _vec(b, SubGraph.SubGraphStartTensorsVector, tens, b.PrependUOffsetTRelative)
    iv = b.CreateNumpyVector(np.array([0], np.int32))
    ov = b.CreateNumpyVector(np.array([3], np.int32))
    opv = _vec(b, SubGraph.SubGraphStartOperatorsVector, [oper], b.PrependUOffsetTRelative)
    SubGraph.SubGraphStart(b)
    SubGraph.SubGraphAddTensors(b, tv)
    SubGraph.SubGraphAddInputs(b, iv)
    SubGraph.SubGraphAddOutputs(b, ov)
    SubGraph.SubGraphAddOperators(b, opv)
    sg = SubGraph.SubGraphEnd(b)
    OperatorCode.OperatorCodeStart(b)
    OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, code)
    OperatorCode.OperatorCodeAddBuiltinCode(b, code)
    OperatorCode.OperatorCodeAddVersion(b, 3 if op != "fc" else 5)
    oc = OperatorCode.OperatorCodeEnd(b)
    ocv = _vec(b, Model.ModelStartOperatorCodesVector, [oc], b.PrependUOffsetTRelative)
    sgv = _vec(b, Model.ModelStartSubgraphsVector, [sg], b.PrependUOffsetTRelative)
    bv = _vec(b, Model.ModelStartBuffersVector, bufs, b.PrependUOffsetTRelative)
    desc = b.CreateString("fxq_explore benchmark")
    Model.ModelStart(b)
    Model.ModelAddVersion(b, 3)
    Model.ModelAddOperatorCodes(b, ocv)
    Model.ModelAddSubgraphs(b, sgv)
    Model.ModelAddBuffers(b, bv)
    Model.ModelAddDescription(b, desc)
    b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def interpreter(model_bytes):
    """A one-thread LiteRT interpreter (XNNPACK is its default CPU delegate) and its run(x)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes, num_threads=1)
    it.allocate_tensors()
    i_idx = it.get_input_details()[0]["index"]
    o_idx = it.get_output_details()[0]["index"]

    def run(x_int8):
        it.set_tensor(i_idx, x_int8)
        it.invoke()
        return it.get_tensor(o_idx)

    return run
