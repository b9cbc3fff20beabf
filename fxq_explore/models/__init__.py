"""Bring your own model: load, replay, fingerprint and inspect quantized ONNX / TFLite models.

>>> from fxq_explore import models           # doctest: +SKIP
>>> g = models.load("model.tflite")           # doctest: +SKIP
>>> y = models.replay(g, x, engine="litert-xnnpack").output    # doctest: +SKIP

Needs ``onnx`` (ONNX models), ``onnxruntime`` (QDQ models and fingerprint of ONNX) and
``tflite`` + ``ai-edge-litert`` (TFLite models / fingerprint) -- the ``compare`` extra.
"""

from .ir import Graph, Node, Tensor, UnsupportedOpError
from .presets import ENGINES, RUNTIMES
from .replay import ReplayResult, load, replay


def __getattr__(name):
    import importlib

    lazy = {
        "fingerprint": ("fingerprint", "fingerprint"),
        "run_runtime": ("runtime", "run_runtime"),
        "inspect": ("inspect", "inspect"),
        "data_path": ("data", "data_path"),
        "digits": ("data", "digits"),
    }
    if name in lazy:
        mod, attr = lazy[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(f"module 'fxq_explore.models' has no attribute {name!r}")


__all__ = ["ENGINES", "Graph", "Node", "RUNTIMES", "ReplayResult", "Tensor",
           "UnsupportedOpError", "load", "replay"]  # fmt: skip
