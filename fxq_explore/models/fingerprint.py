"""Which arithmetic did a runtime use? Per-layer fingerprint and the spread of a +-1.

``fingerprint`` runs the real runtime keeping its intermediate tensors, then recomputes every
layer *from the runtime's own inputs to that layer* under each candidate arithmetic (the
engine presets, and for requantization sites every scheme of the registry with a double or a
float32 scale). A candidate "reproduces" a layer when its output equals the runtime's bit for
bit. Because each layer starts from the runtime's inputs, a difference is located where it
arises, not where it has spread to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import presets
from .replay import as_graph, input_dict, replay, run_node
from .runtime import run_runtime

GEMM_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "QLinearConv", "QGemm",
            "QLinearMatMul"}  # fmt: skip


def candidates(fmt: str, base: str | None = None) -> dict[str, dict]:
    """Candidate recipes per layer: each engine preset, plus each registry scheme for the
    gemm requantization with the double and the float32 scale derivation (the other recipe
    entries, e.g. the accumulation model, those of preset ``base``; default the format's
    first)."""
    out = {name: presets.ENGINES[name] for name in presets.engines_for(fmt)}
    base_row = presets.ENGINES[base or presets.engines_for(fmt)[0]]
    for scheme in presets.CANDIDATE_SCHEMES:
        for how in ("double", "float32"):
            out[f"{scheme}/{how}"] = {**base_row, "gemm": scheme, "fc": scheme, "scale": how}
    return out


@dataclass
class LayerPrint:
    node: str
    op: str
    size: int
    matches: list[str]
    n_differ: int = 0  # vs the runtime's expected preset
    max_abs_diff: int = 0
    cause: str = ""


@dataclass
class Fingerprint:
    runtime: str
    expected: str
    layers: list[LayerPrint]
    output_differ: dict[str, int] = field(default_factory=dict)

    def first_unexplained(self) -> LayerPrint | None:
        return next((lay for lay in self.layers if not lay.matches), None)

    def table(self):
        """A pandas DataFrame: one row per layer."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "layer": lay.node,
                    "op": lay.op,
                    "outputs": lay.size,
                    "reproduced by": ", ".join(lay.matches) if lay.matches else "none",
                    f"differ vs {self.expected}": lay.n_differ,
                    "max |diff|": lay.max_abs_diff,
                    "cause": lay.cause,
                }
                for lay in self.layers
            ]
        )

    def to_dict(self) -> dict:
        return {
            "runtime": self.runtime,
            "expected_preset": self.expected,
            "layers": [vars(lay) for lay in self.layers],
            "whole_graph_replay_outputs_differing": self.output_differ,
        }

    def __str__(self) -> str:
        lines = [f"fingerprint of {self.runtime} (expected preset {self.expected})"]
        for lay in self.layers:
            m = ", ".join(lay.matches[:6]) + (" ..." if len(lay.matches) > 6 else "")
            lines.append(f"  {lay.op:<24} {lay.size:>7}  {m or 'NONE'}")
            if not lay.matches:
                lines.append(
                    f"    {lay.n_differ} differ, max |diff| {lay.max_abs_diff}, cause {lay.cause}"
                )
        lines.append("  whole-graph replay, outputs differing from the runtime:")
        for k, v in self.output_differ.items():
            lines.append(f"    {k:<20} {v}")
        return "\n".join(lines)


def classify(site: dict | None, ours: np.ndarray, theirs: np.ndarray) -> str:
    """Cause class of the elements where ``ours`` != ``theirs`` at one layer."""
    diff = ours != theirs
    if not diff.any():
        return ""
    if site is None or "acc" not in site:
        return "op-specific rounding"
    acc = np.broadcast_to(site["acc"], ours.shape)[diff].astype(np.float64)
    scale = np.asarray(site["scale"], dtype=np.float64)
    if scale.size > 1:
        shape = [1] * ours.ndim
        shape[site["axis"] % ours.ndim] = -1
        scale = np.broadcast_to(scale.reshape(shape), ours.shape)[diff]
    lo, hi = site.get("clamp", (None, None))
    v = acc * scale
    frac = np.abs(v - np.floor(v) - 0.5)
    if lo is not None and (np.isin(ours[diff], (lo, hi)) | np.isin(theirs[diff], (lo, hi))).all():
        return "saturation"
    if (frac < 1e-9).all():
        return "tie"
    s32 = np.float32(scale).astype(np.float64)
    v32 = acc * s32
    if (np.floor(v32 + 0.5) != np.floor(v + 0.5)).any():
        return "multiplier derivation"
    return "op-specific rounding"


def fingerprint(model, inputs, runtime: str = "onnxruntime") -> Fingerprint:
    """Report per layer which presets reproduce ``runtime``'s tensors bit for bit.

    Parameters
    ----------
    model : path or Graph
    inputs : ndarray or dict, as for :func:`~fxq_explore.models.replay`
    runtime : {"onnxruntime", "litert-reference", "litert-optimized", "litert-xnnpack"}
        ``onnxruntime`` is expected to match the ONNX Runtime preset of this CPU
        (``onnxruntime-vnni`` or ``onnxruntime-avx2``, :func:`~fxq_explore.models.presets.resolve`).

    Returns
    -------
    Fingerprint
        ``.layers`` (matches, and for layers no candidate reproduces: how many outputs differ
        from the expected preset, by how much and the cause class), ``.output_differ``
        (whole-graph replay of each engine preset vs the runtime's output), ``.table()``.
    """
    graph = as_graph(model)
    if runtime not in presets.RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(presets.RUNTIMES)}; got {runtime!r}")
    expected = presets.resolve(presets.RUNTIMES[runtime])  # onnxruntime: the preset for this CPU
    feeds = input_dict(graph, inputs)
    real = run_runtime(graph, feeds, runtime)
    cands = candidates(graph.format, expected)
    layers = []
    for node in graph.nodes:
        outs = [o for o in node.outputs if o in real]
        if not outs or not all(i in real or i == "" or graph.tensors[i].data is not None
                               or i in feeds for i in node.inputs):  # fmt: skip
            continue
        env = {**feeds, **{i: real[i] for i in node.inputs if i in real}}
        matches, site_exp, got_exp = [], None, None
        names = list(cands) if node.op in GEMM_OPS else presets.engines_for(graph.format)
        for name in names:
            sites: dict = {}
            try:
                got = run_node(graph, node, env, cands[name], sites)
            except (ValueError, NotImplementedError):
                continue
            if all(np.array_equal(got[o], real[o]) for o in outs):
                matches.append(name)
            if name == expected:
                site_exp, got_exp = sites.get(node.name), got
        o = outs[0]
        lay = LayerPrint(node.name, node.op, int(real[o].size), matches)
        if got_exp is not None and real[o].dtype.kind in "iu":
            d = got_exp[o].astype(np.int64) - real[o].astype(np.int64)
            lay.n_differ = int((d != 0).sum())
            lay.max_abs_diff = int(np.abs(d).max()) if d.size else 0
            if not matches:
                lay.cause = classify(site_exp, got_exp[o], real[o])
        layers.append(lay)
    out_name = graph.outputs[0]
    differ = {}
    for eng in presets.engines_for(graph.format):
        y = replay(graph, feeds, eng).outputs[out_name]
        differ[eng] = int((y != real[out_name]).sum())
    return Fingerprint(runtime, expected, layers, differ)


def propagation(model, inputs, base: str, other: str, labels=None):
    """How a difference made by ``other``'s arithmetic in one layer spreads downstream.

    For each requantizing layer k, replay with ``base`` everywhere except layer k in
    ``other``; count the elements of every later tensor that differ from the pure ``base``
    replay, and the inputs whose predicted class (argmax of the output) changes.

    Returns
    -------
    pandas.DataFrame
        index: the layer run in ``other``; columns: each layer's output (count of differing
        elements), plus ``class flips`` and, with ``labels``, ``accuracy change`` (points).
    """
    import pandas as pd

    graph = as_graph(model)
    feeds = input_dict(graph, inputs)
    ref = replay(graph, feeds, base)
    eng_other = presets.engine(other)
    out_name = graph.outputs[0]
    rows, index = [], []
    cols = [n.name for n in graph.nodes if n.outputs[0] in ref.tensors]
    for node in graph.nodes:
        if node.op in ("RESHAPE", "Flatten", "Transpose", "Reshape", "Squeeze", "QuantizeLinear",
                       "DequantizeLinear", "QUANTIZE", "DEQUANTIZE"):  # fmt: skip
            continue
        r = replay(graph, feeds, base, overrides={node.name: eng_other})
        row = {
            n.name: int((r.tensors[n.outputs[0]] != ref.tensors[n.outputs[0]]).sum())
            for n in graph.nodes
            if n.name in cols
        }
        pred_ref = ref.outputs[out_name].argmax(-1)
        pred = r.outputs[out_name].argmax(-1)
        row["class flips"] = int((pred != pred_ref).sum())
        if labels is not None:
            row["accuracy change"] = 100.0 * ((pred == labels).mean() - (pred_ref == labels).mean())
        rows.append(row)
        index.append(node.name)
    return pd.DataFrame(rows, index=index)


def plot_propagation(table, ax=None):
    """Heat map of :func:`propagation` (rows: layer switched; columns: downstream tensors)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    cols = [c for c in table.columns if c not in ("class flips", "accuracy change")]
    data = table[cols].to_numpy(dtype=float)
    im = ax.imshow(np.log10(1 + data), cmap="viridis", aspect="auto")
    short = list(cols)
    ax.set_xticks(range(len(cols)), short, rotation=45, ha="right", fontsize=8)
    rshort = list(table.index)
    flips = table["class flips"].tolist()
    ax.set_yticks(range(len(table)), [f"{r} ({f} flips)" for r, f in zip(rshort, flips,
                                                                      strict=True)], fontsize=8)  # fmt: skip
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, f"{int(data[i, j])}", ha="center", va="center", fontsize=7, color="w")
    ax.set_xlabel("tensor (elements differing from the base replay)")
    ax.set_ylabel("layer run in the other arithmetic")
    ax.figure.colorbar(im, ax=ax, label="log10(1 + differing)")
    return ax
