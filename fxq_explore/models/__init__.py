"""Bring your own model: load, replay, fingerprint and inspect quantized ONNX / TFLite models.

>>> from fxq_explore import models           # doctest: +SKIP
>>> g = models.load("model.tflite")           # doctest: +SKIP
>>> y = models.replay(g, x, engine="litert-xnnpack").output    # doctest: +SKIP

Needs ``onnx`` (ONNX models), ``onnxruntime`` (QDQ models and fingerprint of ONNX) and
``tflite`` + ``ai-edge-litert`` (TFLite models / fingerprint) -- the ``compare`` extra.
"""

# imported eagerly, each function bound after its module: ``models.inspect`` and
# ``models.fingerprint`` stay the functions whatever imports the submodules of the same name
# later (with a lazy ``__getattr__`` they were the functions once, then the modules)
from .data import data_path, digits
from .fingerprint import fingerprint
from .inspect import inspect
from .ir import Graph, Node, Tensor, UnsupportedOpError
from .presets import ENGINES, RUNTIMES
from .replay import ReplayResult, load, replay
from .runtime import run_runtime

__all__ = ["ENGINES", "Graph", "Node", "RUNTIMES", "ReplayResult", "Tensor",
           "UnsupportedOpError", "data_path", "digits", "fingerprint", "inspect", "load",
           "replay", "run_runtime"]  # fmt: skip
