import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tflite")
pytest.importorskip("ai_edge_litert")
