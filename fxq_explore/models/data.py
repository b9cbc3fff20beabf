"""The committed example models (``fxq_explore/data/models``) and their digits inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DIR = Path(__file__).resolve().parent.parent / "data" / "models"


def data_path(name: str = "") -> Path:
    """Path of a committed model file (or the folder, for ``name=""``)."""
    p = DIR / name
    if name and not p.exists():
        avail = ", ".join(sorted(q.name for q in DIR.iterdir()))
        raise FileNotFoundError(f"no committed model {name!r}; available: {avail}")
    return p


def manifest() -> dict:
    return json.loads((DIR / "manifest.json").read_text())


def model_files(fmt: str | None = None) -> list[Path]:
    """The committed quantized models (the float ONNX reference excluded)."""
    out = [DIR / k for k in manifest()["models"] if "float" not in k]
    return [p for p in out if fmt is None or p.suffix == f".{fmt}"]


def digits(split: str = "test", n: int | None = None):
    """``(x_nhwc float32 in [0, 1], labels)`` from ``digits_data.npz`` (pixels / 16)."""
    d = np.load(DIR / "digits_data.npz")
    px = d["calib_pixels"] if split == "calib" else d["test_pixels"]
    y = d["test_labels"] if split == "test" else None
    x = (px / 16.0).astype(np.float32)
    if n is not None:
        x, y = x[:n], (None if y is None else y[:n])
    return x, y


def model_input(graph, x_nhwc: np.ndarray) -> np.ndarray:
    """The float images as ``graph`` takes them: int8 (quantized with the input tensor's
    scale and zero point, TFLite rounding) for an int8 .tflite, float32 NCHW for ONNX."""
    t = graph.tensor(graph.inputs[0])
    if graph.format == "tflite":
        if t.dtype == "float32":
            return x_nhwc.astype(np.float32)
        from .ops import tflite_round

        q = tflite_round(x_nhwc.astype(np.float32) / np.float32(t.scale[0])) + int(t.zero_point[0])
        lo, hi = (-128, 127) if t.dtype == "int8" else (0, 255)
        return np.clip(q, lo, hi).astype(t.dtype)
    return np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)).astype(np.float32)
