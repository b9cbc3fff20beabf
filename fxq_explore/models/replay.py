"""Integer-only execution of a loaded model in one engine's arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import validate
from . import presets
from .ir import Graph, UnsupportedOpError
from .ops import ONNX_OPS, TFLITE_OPS


def load(path) -> Graph:
    """Load a .tflite or .onnx model into the IR (see :mod:`fxq_explore.models.ir`)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if p.suffix == ".tflite":
        from .load_tflite import load_tflite as parse
    elif p.suffix == ".onnx":
        from .load_onnx import load_onnx as parse
    else:
        raise ValueError(f"model must be a .tflite or .onnx file; got {p.name!r}")
    try:
        return parse(str(p))
    except (UnsupportedOpError, ValueError, TypeError):  # the loaders' own messages
        raise
    except Exception as e:  # noqa: BLE001 -- a corrupt file fails deep in the schema parser
        raise ValueError(
            f"model: {p.name} is not a readable {p.suffix[1:]} model "
            f"({type(e).__name__}: {str(e)[:200]})"
        ) from e


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
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            # QuantizeLinear of NaN has no defined integer (the runtimes' casts differ)
            raise ValueError(f"input {name!r} contains NaN; the model quantizes it on entry")
        if t.shape and len(t.shape) != arr.ndim:
            raise ValueError(f"input {name!r} must have {len(t.shape)} dims; got {arr.shape}")
        if t.shape and tuple(arr.shape[1:]) != tuple(t.shape[1:]) and -1 not in t.shape[1:]:
            raise ValueError(f"input {name!r} must have shape (N, {t.shape[1:]}); got {arr.shape}")
        out[name] = arr
    return out


#: replay keeps every intermediate tensor: the batch is refused above this many bytes
REPLAY_MAX_BYTES = 4 << 30
#: bytes per element of an intermediate tensor, measured peak included (int64 accumulators and
#: the temporaries of the integer conv next to the stored tensors: ~16 on the digits models)
_BYTES_PER_ELEMENT = 16


def _check_batch_memory(graph: Graph, env: dict) -> None:
    """Refuse a batch whose intermediate tensors would not fit, before computing any."""
    n = max((a.shape[0] for a in env.values() if np.ndim(a) > 0), default=1)
    per_sample = sum(
        int(np.prod([abs(d) for d in t.shape[1:]], dtype=np.int64))
        for t in graph.tensors.values()
        if t.data is None and len(t.shape) > 0
    )
    need = float(n) * per_sample * _BYTES_PER_ELEMENT
    if need > REPLAY_MAX_BYTES:
        fit = max(1, REPLAY_MAX_BYTES // max(1, per_sample * _BYTES_PER_ELEMENT))
        validate.memory(
            "inputs",
            need,
            f"a batch of {n} (every intermediate tensor kept; replay at most {fit} at a time)",
            limit=REPLAY_MAX_BYTES,
        )


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
    scheme: str | None = None,
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
    scheme : str, optional
        Instead of an engine preset: requantize every conv / fully-connected accumulator with
        this scheme of :data:`fxq_explore.SCHEMES`, the effective scales in double from the
        scales as the graph stores them, accumulation exact, the other ops as
        ``onnxruntime-vnni`` / ``tflite-reference`` (:func:`~fxq_explore.models.presets.scheme_row`);
        ``.engine`` is then ``"scheme:<name>"``. Not together with ``engine``.

    Returns
    -------
    ReplayResult
        ``.outputs`` exactly as the runtime returns them (same dtype and shape), ``.tensors``
        every intermediate, ``.sites`` the requantization sites (accumulators, scales).
    """
    graph = as_graph(model)
    if scheme is not None:
        if engine is not None:
            raise ValueError(
                f"pass engine or scheme, not both; got engine={engine!r}, scheme={scheme!r}"
            )
        eng = presets.scheme_row(scheme, graph.format)
        engine = f"scheme:{scheme}"
    else:
        engine = presets.resolve(engine or default_engine(graph))
        eng = presets.engine(engine)
    if eng["format"] != graph.format:
        raise ValueError(
            f"engine {engine!r} replays {eng['format']} models; this one is {graph.format} "
            f"(engines for it: {', '.join(presets.engines_for(graph.format))})"
        )
    check_supported(graph)
    env = dict(input_dict(graph, inputs))
    _check_batch_memory(graph, env)
    sites: dict[str, dict] = {}
    nodes = graph.nodes
    if progress:
        from tqdm.auto import tqdm

        nodes = tqdm(nodes, desc=f"replay ({engine})", unit="op")
    overrides = overrides or {}
    for node in nodes:
        env.update(run_node(graph, node, env, overrides.get(node.name, eng), sites))
    return ReplayResult(engine, {o: env[o] for o in graph.outputs}, env, sites)
