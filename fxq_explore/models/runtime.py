"""Run the real runtimes (LiteRT with each op resolver, ONNX Runtime) keeping intermediates."""

from __future__ import annotations

import numpy as np

from .ir import Graph
from .replay import as_graph, input_dict

LITERT_RESOLVERS = {
    "litert-reference": "BUILTIN_REF",
    "litert-optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
    "litert-xnnpack": "BUILTIN",
}


def run_litert(graph: Graph, inputs, runtime: str, *, intermediates: bool = True):
    """Run LiteRT (``ai_edge_litert``) with the resolver of ``runtime``.

    Returns ``{tensor name: array}`` with the outputs and, where the interpreter keeps them
    (``experimental_preserve_all_tensors``; not inside the XNNPACK delegate), intermediates.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if runtime not in LITERT_RESOLVERS:
        raise ValueError(f"runtime must be one of {', '.join(LITERT_RESOLVERS)}; got {runtime!r}")
    resolver = getattr(OpResolverType, LITERT_RESOLVERS[runtime])
    feeds = input_dict(graph, inputs)
    it = Interpreter(
        model_path=graph.path,
        experimental_op_resolver_type=resolver,
        experimental_preserve_all_tensors=intermediates,
        num_threads=1,
    )
    details = {d["name"]: d for d in it.get_input_details()}
    for name, arr in feeds.items():
        if tuple(details[name]["shape"]) != arr.shape:
            it.resize_tensor_input(details[name]["index"], arr.shape)
    it.allocate_tensors()
    for name, arr in feeds.items():
        it.set_tensor(details[name]["index"], arr)
    it.invoke()
    out = {}
    for d in it.get_tensor_details():
        if d["name"] in graph.tensors and graph.tensors[d["name"]].data is None:
            try:
                out[d["name"]] = np.array(it.get_tensor(d["index"]))
            except ValueError:  # tensor without data (freed / inside a delegate)
                pass
    for d in it.get_output_details():
        out[d["name"]] = np.array(it.get_tensor(d["index"]))
    return out


_NP_TO_ONNX = {"float32": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7, "int16": 5}


def run_onnxruntime(graph: Graph, inputs, *, intermediates: bool = True, original=None):
    """Run ONNX Runtime (CPU EP, default optimizations).

    The final outputs come from a session on the *original* model file. With
    ``intermediates``, a second session runs the graph replay uses (for QDQ models the
    ORT-fused one) with every node output added as a graph output, so that the intermediate
    tensors are the ones ORT computes in its fused kernels.
    """
    import onnx
    import onnxruntime as ort

    from .load_onnx import ort_fused
    from .replay import replay

    feeds = input_dict(graph, inputs)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(original or graph.path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, feeds), strict=True))
    if not intermediates:
        return out
    model = ort_fused(graph.path) if graph.flavor.startswith("qdq") else onnx.load(graph.path)
    dtypes = {k: str(v.dtype) for k, v in replay(graph, feeds).tensors.items()}
    have = {o.name for o in model.graph.output}
    for n in model.graph.node:
        for o in n.output:
            if o and o not in have and o in dtypes and dtypes[o] in _NP_TO_ONNX:
                model.graph.output.append(
                    onnx.helper.make_tensor_value_info(o, _NP_TO_ONNX[dtypes[o]], None)
                )
                have.add(o)
    sess2 = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inter = dict(zip([o.name for o in sess2.get_outputs()], sess2.run(None, feeds), strict=True))
    inter.update(out)
    return inter


def run_runtime(model, inputs, runtime: str, *, intermediates: bool = True):
    """``{tensor name: array}`` from the real ``runtime`` ("onnxruntime", "litert-reference",
    "litert-optimized", "litert-xnnpack")."""
    graph = as_graph(model)
    if runtime == "onnxruntime":
        if graph.format != "onnx":
            raise ValueError("runtime 'onnxruntime' runs .onnx models")
        return run_onnxruntime(graph, inputs, intermediates=intermediates)
    if graph.format != "tflite":
        raise ValueError(f"runtime {runtime!r} runs .tflite models")
    return run_litert(graph, inputs, runtime, intermediates=intermediates)
