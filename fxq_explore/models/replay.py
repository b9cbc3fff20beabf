"""Integer-only execution of a loaded model in one engine's arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import presets
from .ir import Graph, UnsupportedOpError
from .ops import ONNX_OPS, TFLITE_OPS


def load(path) -> Graph:
    """Load a .tflite or .onnx model into the IR (see :mod:`fxq_explore.models.ir`)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if p.suffix == ".tflite":
        from .load_tflite import load_tflite

        return load_tflite(str(p))
    if p.suffix == ".onnx":
        from .load_onnx import load_onnx

        return load_onnx(str(p))
    raise ValueError(f"model must be a .tflite or .onnx file; got {p.name!r}")


def as_graph(model) -> Graph:
    return model if isinstance(model, Graph) else load(model)


def default_engine(graph: Graph) -> str:
    return "tflite-reference" if graph.format == "tflite" else "onnxruntime"


@dataclass
class ReplayResult:
    """Outputs (by graph output name), every tensor computed, and the requantization sites;
    ``engine`` is the preset that ran (an alias resolved for this CPU)."""

    engine: str
    outputs: dict[str, np.ndarray]
    tensors: dict[str, np.ndarray] = field(repr=False)
    sites: dict[str, dict] = field(repr=False)

    @property
    def output(self) -> np.ndarray:
        """The first (usually only) output."""
        return next(iter(self.outputs.values()))


def check_supported(graph: Graph) -> None:
    """Raise UnsupportedOpError for the first node replay cannot execute exactly."""
    table = TFLITE_OPS if graph.format == "tflite" else ONNX_OPS
    for n in graph.nodes:
        if n.op not in table:
            raise UnsupportedOpError(n.op, n.name, f"replay supports {', '.join(table)}")


def input_dict(graph: Graph, inputs) -> dict[str, np.ndarray]:
    """Normalise ``inputs`` (one array, or a mapping by input name) and check dtypes."""
    if not isinstance(inputs, dict):
        if len(graph.inputs) != 1:
            raise ValueError(
                f"the model has {len(graph.inputs)} inputs ({', '.join(graph.inputs)}): "
                "pass a dict / .npz keyed by input name"
            )
        inputs = {graph.inputs[0]: inputs}
    out = {}
    for name in graph.inputs:
        if name not in inputs:
            raise ValueError(f"missing input {name!r}; the model's inputs: {graph.inputs}")
        t = graph.tensor(name)
        arr = np.asarray(inputs[name])
        if t.dtype != "?" and str(arr.dtype) != t.dtype:
            raise TypeError(f"input {name!r} must be {t.dtype}; got {arr.dtype}")
        if t.shape and len(t.shape) != arr.ndim:
            raise ValueError(f"input {name!r} must have {len(t.shape)} dims; got {arr.shape}")
        if t.shape and tuple(arr.shape[1:]) != tuple(t.shape[1:]) and -1 not in t.shape[1:]:
            raise ValueError(f"input {name!r} must have shape (N, {t.shape[1:]}); got {arr.shape}")
        out[name] = arr
    return out


def run_node(graph: Graph, node, env, eng, sites):
    table = TFLITE_OPS if graph.format == "tflite" else ONNX_OPS
    return table[node.op](graph, node, env, eng, sites)


def replay(
    model,
    inputs,
    engine: str | None = None,
    *,
    progress: bool = False,
    overrides: dict[str, dict] | None = None,
) -> ReplayResult:
    """Execute ``model`` on ``inputs`` in ``engine``'s integer arithmetic.

    Parameters
    ----------
    model : str, Path or Graph
        A .tflite (int8) or .onnx (QOperator or QDQ) model, or a loaded graph.
    inputs : ndarray or dict of ndarray
        The model input(s) as the runtime takes them (int8 for an int8-input .tflite, float32
        for an ONNX model starting with QuantizeLinear); a leading batch larger than the
        declared batch of 1 runs as a batch.
    engine : str
        An engine preset of :data:`~fxq_explore.models.presets.ENGINES` matching the format,
        or ``"onnxruntime"``: the ONNX Runtime preset for this CPU (``onnxruntime-vnni``,
        exact, or ``onnxruntime-avx2``, MLAS's int16 pair saturation of u8 x s8 products;
        name one of them to replay that CPU class on any machine); default
        ``tflite-reference`` / ``onnxruntime``.
    progress : bool
        Show a tqdm bar over the nodes.
    overrides : dict, optional
        ``{node name: recipe dict}`` to run single nodes in another arithmetic (a row of
        ``ENGINES``, possibly modified); used by fingerprint's propagation study.

    Returns
    -------
    ReplayResult
        ``.outputs`` exactly as the runtime returns them (same dtype and shape), ``.tensors``
        every intermediate, ``.sites`` the requantization sites (accumulators, scales).
    """
    graph = as_graph(model)
    engine = presets.resolve(engine or default_engine(graph))
    eng = presets.engine(engine)
    if eng["format"] != graph.format:
        raise ValueError(
            f"engine {engine!r} replays {eng['format']} models; this one is {graph.format} "
            f"(engines for it: {', '.join(presets.engines_for(graph.format))})"
        )
    check_supported(graph)
    env = dict(input_dict(graph, inputs))
    sites: dict[str, dict] = {}
    nodes = graph.nodes
    if progress:
        from tqdm.auto import tqdm

        nodes = tqdm(nodes, desc=f"replay ({engine})", unit="op")
    overrides = overrides or {}
    for node in nodes:
        env.update(run_node(graph, node, env, overrides.get(node.name, eng), sites))
    return ReplayResult(engine, {o: env[o] for o in graph.outputs}, env, sites)
