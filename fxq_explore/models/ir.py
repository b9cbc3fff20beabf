"""A small graph IR for quantized models: tensors with their quantization, nodes, constants.

Every loader (``load_tflite``, ``load_onnx``) produces a :class:`Graph`; ``replay`` walks its
nodes in order. Layouts stay as the format stores them (TFLite NHWC, ONNX NCHW) and each node
keeps the format's own op name (``"CONV_2D"``, ``"QLinearConv"``), so a replayed tensor can be
compared with the runtime's tensor of the same name without any transposition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Tensor:
    """One tensor: name, storage dtype, shape (``-1`` = dynamic), quantization, data if constant.

    ``scale`` and ``zero_point`` are 1-D arrays (length 1 = per-tensor, length C =
    per-channel along ``axis``); both ``None`` for a float or unquantized tensor.

    ``qdtype`` is an integer type narrower than the storage ``dtype`` that the values are
    clamped to (``"uint4"`` stored in ``"uint8"``: requantized to [0, 15]); ``None`` = the
    storage type's own range. No model file expresses it (QLinearConv's outputs are 8-bit): the
    loaders never set it, only in-memory graphs do (``fxq_explore.studies.e2e.to_graph``).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int | None = None
    data: np.ndarray | None = None
    qdtype: str | None = None

    @property
    def per_channel(self) -> bool:
        return self.scale is not None and self.scale.size > 1

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclass
class Node:
    """One operator: the format's op name, a node name, input/output tensor names, attributes.

    An empty string in ``inputs`` is an omitted optional input (ONNX convention).
    """

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""


@dataclass
class Graph:
    """A loaded model: ``format`` is ``"tflite"`` or ``"onnx"`` (``flavor`` ``"qoperator"`` /
    ``"qdq"`` for ONNX), nodes in execution order, tensors by name."""

    format: str
    path: str
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    flavor: str = ""

    def tensor(self, name: str) -> Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"tensor {name!r} is not in the graph of {self.path}") from None

    def const(self, name: str) -> np.ndarray:
        t = self.tensor(name)
        if t.data is None:
            raise ValueError(f"tensor {name!r} must be a constant (an initializer / buffer)")
        return t.data

    def summary(self) -> list[tuple[str, str]]:
        """``[(node name, op), ...]`` in execution order."""
        return [(n.name, n.op) for n in self.nodes]


class UnsupportedOpError(NotImplementedError):
    """An op (or an op attribute) that fxq_explore.models cannot replay exactly."""

    def __init__(self, op: str, node: str, detail: str = ""):
        msg = f"unsupported op {op!r} in node {node!r}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)
        self.op, self.node = op, node
