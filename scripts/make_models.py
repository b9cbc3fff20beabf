"""Make the committed quantized models in ``fxq_explore/data/models/`` (needs TensorFlow).

Usage (in a separate virtual environment; the package itself never imports TensorFlow)::

    python -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu scikit-learn onnx onnxruntime
    /tmp/tfvenv/bin/python scripts/make_models.py [--out fxq_explore/data/models] [--seed 0]

What it makes, from one network trained here in a few seconds on scikit-learn's digits
(8x8 images; shipped inside scikit-learn, nothing is downloaded)::

    x (8x8x1) -> conv 3x3 1->16 + ReLU           (a)
              -> depthwise 3x3 + ReLU -> conv 1x1 16->16
              -> add (a) + ReLU                     residual
              -> global average pool -> dense 10    logits

* ``digits_float.onnx``: the float network written with ``onnx.helper`` from the trained
  Keras weights (NCHW; checked against Keras to 1e-4).
* ``digits_*.onnx``: ``onnxruntime.quantization.quantize_static`` of it, in the forms listed
  in ``FORMS`` below (QOperator / QDQ, per-tensor / per-channel, MinMax / Entropy / Percentile,
  with and without ``reduce_range``).
* ``digits_int8.tflite``: TensorFlow's ``TFLiteConverter``, full int8 (int8 input and output).
* ``digits_data.npz``: calibration and test images as raw pixels 0..16 (uint8, NHWC and the
  labels); the float input is ``pixels / 16``.
* ``manifest.json``: how each file was made (tool versions, options, float accuracy).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMS = {
    # name: quantize_static options
    "digits_qop_u8s8_pt_minmax": dict(
        quant_format="QOperator", activation_type="QUInt8", per_channel=False, method="MinMax"
    ),
    "digits_qop_u8s8_pc_minmax": dict(
        quant_format="QOperator", activation_type="QUInt8", per_channel=True, method="MinMax"
    ),
    "digits_qop_u8s8_pc_minmax_rr": dict(
        quant_format="QOperator",
        activation_type="QUInt8",
        per_channel=True,
        method="MinMax",
        reduce_range=True,
    ),
    "digits_qop_s8s8_pt_percentile": dict(
        quant_format="QOperator", activation_type="QInt8", per_channel=False, method="Percentile"
    ),
    "digits_qdq_s8s8_pc_minmax": dict(
        quant_format="QDQ", activation_type="QInt8", per_channel=True, method="MinMax"
    ),
    "digits_qdq_u8s8_pt_entropy": dict(
        quant_format="QDQ", activation_type="QUInt8", per_channel=False, method="Entropy"
    ),
}
N_CALIB = 128
N_TEST = 256


def load_data(seed: int):
    """Digits as raw pixels (N, 8, 8, 1) uint8 in 0..16, split 75/25 stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    px = d.images.astype(np.uint8)[..., None]
    return train_test_split(px, d.target, test_size=0.25, stratify=d.target, random_state=seed)


def train(px_tr, y_tr, seed: int):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    L = tf.keras.layers
    inp = tf.keras.Input((8, 8, 1), batch_size=None, name="x")
    a = L.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    b = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(a)
    b = L.Conv2D(16, 1, name="pw")(b)
    c = L.ReLU(name="relu_add")(L.Add(name="add")([a, b]))
    g = L.GlobalAveragePooling2D(name="gap")(c)
    out = L.Dense(10, name="fc")(g)
    model = tf.keras.Model(inp, out)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(px_tr / 16.0, y_tr, epochs=40, batch_size=64, verbose=0, shuffle=True)
    return model


def float_onnx(model, path: Path):
    """The Keras network as a float ONNX graph (NCHW), built node by node."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1, b1 = model.get_layer("conv1").get_weights()  # (3,3,1,16)
    wd, bd = model.get_layer("dw").get_weights()  # (3,3,16,1)
    wp, bp = model.get_layer("pw").get_weights()  # (1,1,16,16)
    wf, bf = model.get_layer("fc").get_weights()  # (16,10)
    inits = [
        numpy_helper.from_array(w1.transpose(3, 2, 0, 1).copy(), "conv1.w"),
        numpy_helper.from_array(b1, "conv1.b"),
        numpy_helper.from_array(wd.transpose(2, 3, 0, 1).copy(), "dw.w"),  # (16,1,3,3)
        numpy_helper.from_array(bd, "dw.b"),
        numpy_helper.from_array(wp.transpose(3, 2, 0, 1).copy(), "pw.w"),
        numpy_helper.from_array(bp, "pw.b"),
        numpy_helper.from_array(wf.T.copy(), "fc.w"),  # (10,16), Gemm transB=1
        numpy_helper.from_array(bf, "fc.b"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.w", "conv1.b"], ["c1"], "conv1", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["a"], "relu1"),
        helper.make_node("Conv", ["a", "dw.w", "dw.b"], ["d"], "dw", pads=[1] * 4, group=16),
        helper.make_node("Relu", ["d"], ["dr"], "relu_dw"),
        helper.make_node("Conv", ["dr", "pw.w", "pw.b"], ["p"], "pw"),
        helper.make_node("Add", ["a", "p"], ["s"], "add"),
        helper.make_node("Relu", ["s"], ["sr"], "relu_add"),
        helper.make_node("GlobalAveragePool", ["sr"], ["g"], "gap"),
        helper.make_node("Flatten", ["g"], ["gf"], "flatten"),
        helper.make_node("Gemm", ["gf", "fc.w", "fc.b"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_dwsep_residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def quantize_onnx(float_path: Path, out: Path, calib_nchw: np.ndarray, opts: dict):
    from onnxruntime import quantization as q

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": calib_nchw[i : i + 1]} for i in range(len(calib_nchw))])

        def get_next(self):
            return next(self.it, None)

    q.quantize_static(
        str(float_path),
        str(out),
        Reader(),
        quant_format=getattr(q.QuantFormat, opts["quant_format"]),
        activation_type=getattr(q.QuantType, opts["activation_type"]),
        weight_type=q.QuantType.QInt8,
        per_channel=opts["per_channel"],
        reduce_range=opts.get("reduce_range", False),
        calibrate_method=getattr(q.CalibrationMethod, opts["method"]),
    )


def to_tflite(model, calib_nhwc: np.ndarray, path: Path):
    import tensorflow as tf

    def rep():
        for i in range(len(calib_nhwc)):
            yield [calib_nhwc[i : i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="fxq_explore/data/models")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import onnx
    import onnxruntime as ort
    import sklearn
    import tensorflow as tf

    px_tr, px_te, y_tr, y_te = load_data(args.seed)
    model = train(px_tr, y_tr, args.seed)
    calib = px_tr[:N_CALIB]
    test, y_test = px_te[:N_TEST], y_te[:N_TEST]
    x_test = (test / 16.0).astype(np.float32)
    keras_logits = model.predict(x_test, verbose=0)
    manifest = {
        "network": "conv3x3(1->16)+relu, depthwise3x3+relu, conv1x1(16->16), add residual + relu, "
        "global average pool, dense 10 (logits); trained on sklearn digits",
        "data": f"digits_data.npz: calib_pixels ({N_CALIB}, first of the train split), "
        f"test_pixels/test_labels ({N_TEST}, first of the test split); input = pixels / 16",
        "seed": args.seed,
        "versions": {
            "tensorflow": tf.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "float_test_accuracy": float((keras_logits.argmax(1) == y_test).mean()),
        "models": {},
    }
    np.savez_compressed(
        out / "digits_data.npz", calib_pixels=calib, test_pixels=test, test_labels=y_test
    )

    fpath = out / "digits_float.onnx"
    float_onnx(model, fpath)
    sess = ort.InferenceSession(str(fpath), providers=["CPUExecutionProvider"])
    onnx_logits = sess.run(None, {"x": x_test.transpose(0, 3, 1, 2).copy()})[0]
    err = float(np.abs(onnx_logits - keras_logits).max())
    assert err < 1e-4, err
    manifest["models"]["digits_float.onnx"] = {
        "tool": "onnx.helper from the Keras weights",
        "max_abs_diff_vs_keras": err,
    }
    calib_nchw = (calib / 16.0).astype(np.float32).transpose(0, 3, 1, 2).copy()
    for name, opts in FORMS.items():
        p = out / f"{name}.onnx"
        quantize_onnx(fpath, p, calib_nchw, opts)
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        acc = float(
            (s.run(None, {"x": x_test.transpose(0, 3, 1, 2).copy()})[0].argmax(1) == y_test).mean()
        )
        manifest["models"][p.name] = {
            "tool": "onnxruntime.quantization.quantize_static",
            "options": {**opts, "weight_type": "QInt8", "calibration_images": N_CALIB},
            "ort_test_accuracy_at_generation": acc,
        }
        print(p.name, acc)
    tpath = out / "digits_int8.tflite"
    to_tflite(model, (calib / 16.0).astype(np.float32), tpath)
    manifest["models"][tpath.name] = {
        "tool": "tf.lite.TFLiteConverter.from_keras_model",
        "options": {
            "optimizations": ["DEFAULT"],
            "supported_ops": ["TFLITE_BUILTINS_INT8"],
            "inference_input_type": "int8",
            "inference_output_type": "int8",
            "representative_dataset": f"{N_CALIB} calibration images, batch 1",
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
