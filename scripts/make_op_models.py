"""Make the tiny single-op .tflite models in ``tests/models/data/`` (needs TensorFlow).

Usage (TensorFlow only here; the tests never import it)::

    python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install 'tensorflow-cpu>=2.15'
    /tmp/tfvenv/bin/python scripts/make_op_models.py [--out tests/models/data]

Each model is a few Keras layers converted by TensorFlow's own ``TFLiteConverter`` to full
int8 (int8 input and output, ``TFLITE_BUILTINS_INT8``), calibrated on random data drawn by a
fixed seed, so that each op of issue 11 not covered by the digits CNN appears as the converter
really emits it:

* ``op_mul.tflite``: two inputs, elementwise ``Multiply`` (MUL) and a broadcast multiply by a
  per-channel constant (MUL with a constant operand);
* ``op_avgpool.tflite``: ``AveragePooling2D`` 3x3 stride 1 SAME (border windows count only
  the real pixels) then 2x2 stride 2 VALID (AVERAGE_POOL_2D);
* ``op_concat.tflite``: two inputs of different ranges concatenated on the channels
  (CONCATENATION; the converter decides whether the scales are unified);
* ``op_pad.tflite``: ``ZeroPadding2D`` (PAD with the zero point) then a 3x3 VALID conv;
* ``op_softmax.tflite``: dense 10 then softmax (SOFTMAX, output scale 1/256, zp -128);
* ``op_logistic.tflite``: dense 6 then sigmoid (LOGISTIC);
* ``op_tanh.tflite``: dense 6 then tanh (TANH, an op replay does not support: the tests check
  the error names it and its node).

``op_models.json`` records the TensorFlow version and the op sequence of each file.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def convert(model, calib: list[np.ndarray], path: Path):
    import tensorflow as tf

    names = [t.name.split(":")[0] for t in model.inputs]

    def rep():  # keyed by input name: the converter's input order need not be Keras's
        for i in range(len(calib[0])):
            yield {nm: c[i : i + 1] for nm, c in zip(names, calib, strict=True)}

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())


def ops_of(path: Path) -> list[str]:
    import tensorflow as tf

    it = tf.lite.Interpreter(model_path=str(path))
    return [d["op_name"] for d in it._get_ops_details()]


def build(seed: int):
    import tensorflow as tf

    k = tf.keras
    rng = np.random.default_rng(seed)
    tf.random.set_seed(seed)
    n = 64
    out = {}

    a = k.Input((4, 4, 8), name="a")
    b = k.Input((4, 4, 8), name="b")
    m = k.layers.Multiply()([a, b])
    scale = tf.constant(rng.uniform(-2.0, 2.0, (1, 1, 1, 8)).astype(np.float32))
    m2 = k.layers.Lambda(lambda t: t * scale)(m)
    out["op_mul"] = (
        k.Model([a, b], m2),
        [rng.uniform(-3, 3, (n, 4, 4, 8)).astype(np.float32),
         rng.uniform(-1, 1.5, (n, 4, 4, 8)).astype(np.float32)],
    )  # fmt: skip

    x = k.Input((7, 7, 4), name="x")
    p = k.layers.AveragePooling2D(3, strides=1, padding="same")(x)
    p = k.layers.AveragePooling2D(2, strides=2, padding="valid")(p)
    out["op_avgpool"] = (k.Model(x, p), [rng.uniform(-1, 2, (n, 7, 7, 4)).astype(np.float32)])

    c1 = k.Input((3, 3, 4), name="c1")
    c2 = k.Input((3, 3, 5), name="c2")
    c = k.layers.Concatenate(axis=-1)([c1, c2])
    out["op_concat"] = (
        k.Model([c1, c2], c),
        [rng.uniform(-1, 1, (n, 3, 3, 4)).astype(np.float32),
         rng.uniform(-0.5, 4, (n, 3, 3, 5)).astype(np.float32)],
    )  # fmt: skip

    x = k.Input((5, 5, 3), name="x")
    y = k.layers.ZeroPadding2D(((1, 2), (2, 1)))(x)
    y = k.layers.Conv2D(4, 3, padding="valid")(y)
    out["op_pad"] = (k.Model(x, y), [rng.uniform(0.2, 3, (n, 5, 5, 3)).astype(np.float32)])

    x = k.Input((12,), name="x")
    y = k.layers.Dense(10)(x)
    y = k.layers.Softmax()(y)
    out["op_softmax"] = (k.Model(x, y), [rng.normal(0, 2, (n, 12)).astype(np.float32)])

    x = k.Input((12,), name="x")
    y = k.layers.Dense(6, activation="sigmoid")(x)
    out["op_logistic"] = (k.Model(x, y), [rng.normal(0, 2, (n, 12)).astype(np.float32)])

    x = k.Input((12,), name="x")
    y = k.layers.Dense(6, activation="tanh")(x)
    out["op_tanh"] = (k.Model(x, y), [rng.normal(0, 2, (n, 12)).astype(np.float32)])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/models/data")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import tensorflow as tf

    info = {"tensorflow": tf.__version__, "seed": args.seed, "models": {}}
    for name, (model, calib) in build(args.seed).items():
        path = out / f"{name}.tflite"
        convert(model, calib, path)
        info["models"][path.name] = {"ops": ops_of(path), "bytes": path.stat().st_size}
        print(path, info["models"][path.name])
    (out / "op_models.json").write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
