import json

import numpy as np
import pytest

from fxq_explore import models
from fxq_explore.models.cli import fingerprint_main, inspect_main, replay_main
from fxq_explore.models.data import digits, model_input
from fxq_explore.models.inspect import inspect, plot_channels
from fxq_explore.models.runtime import run_runtime

X, _ = digits("test", 8)


def test_inspect_lists_every_site_and_channel():
    df = inspect(models.data_path("digits_int8.tflite"))
    assert list(df.groupby("layer", sort=False).size()) == [16, 16, 16, 10]
    # the TFLite multiplier is QuantizeMultiplier of the double scale: q * 2^(e-31) ~ scale
    approx = df.tflite_multiplier * 2.0 ** (df.tflite_shift - 31)
    np.testing.assert_allclose(approx, df.scale, rtol=2**-30)
    np.testing.assert_allclose(df.xnnpack_mantissa * 2.0**-df.xnnpack_right_shift, df.scale_f32)
    assert not df.flushed_to_zero.any() and not df.bias_overflow.any()


def test_inspect_pair_saturation_only_for_u8_activations():
    u8 = inspect(models.data_path("digits_qop_u8s8_pc_minmax.onnx"))
    s8 = inspect(models.data_path("digits_qop_s8s8_pt_percentile.onnx"))
    assert (u8.pair_sum_max > 0).all() and (s8.pair_sum_max == 0).all()
    rr = inspect(models.data_path("digits_qop_u8s8_pc_minmax_rr.onnx"))
    assert rr.pair_sum_max.max() <= 255 * 128  # reduce_range: 7-bit weights never saturate
    assert not rr.pair_saturation_risk.any()


def test_inspect_lists_the_qdq_groups_ort_runs_in_float():
    # ORT leaves conv1 and dw of the s8s8 per-channel QDQ model as DequantizeLinear -> Conv ->
    # QuantizeLinear (float); they are requantization sites too, marked route="float"
    name = "digits_qdq_s8s8_pc_minmax.onnx"
    df = inspect(models.data_path(name))
    routes = dict(df.groupby("layer", sort=False)["route"].agg(lambda r: set(r)))
    assert routes == {"conv1": {"float"}, "dw": {"float"}, "pw": {"integer"}, "fc": {"integer"}}
    assert list(df.groupby("layer", sort=False).size()) == [16, 16, 16, 10]
    g = models.load(models.data_path(name))
    assert {n.name: n.op for n in g.nodes if n.name in ("conv1", "dw")} == {
        "conv1": "Conv",
        "dw": "Conv",
    }
    # the scales, read straight from the file with onnx: s_x * s_w[k] / s_out
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    m = onnx.load(str(models.data_path(name)))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    by_out = {o: n for n in m.graph.node for o in n.output}
    conv = next(n for n in m.graph.node if n.name == "conv1")
    s_x = float(init[by_out[conv.input[0]].input[1]])
    s_w = init[by_out[conv.input[1]].input[1]].astype(np.float64)
    q = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and conv.output[0] in n.input)
    s_y = float(init[q.input[1]])
    want = np.float64(np.float32(s_x)) * s_w / np.float64(np.float32(s_y))
    np.testing.assert_allclose(df[df.layer == "conv1"].scale.to_numpy(), want, rtol=1e-12)
    # a float route has no int16 pairs, so no pair-saturation risk
    assert (df[df.route == "float"].pair_sum_max == 0).all()


def test_models_inspect_and_fingerprint_stay_the_functions():
    import importlib

    importlib.import_module("fxq_explore.models.inspect")
    importlib.import_module("fxq_explore.models.fingerprint")
    assert callable(models.inspect) and callable(models.fingerprint)
    assert models.inspect is inspect


def test_plot_channels():
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_channels(inspect(models.data_path("digits_int8.tflite")))
    assert ax.get_xlabel() == "output channel"


def test_inspect_json(capsys):
    assert inspect_main([str(models.data_path("digits_int8.tflite")), "--json"]) == 0
    sites = json.loads(capsys.readouterr().out)["sites"]
    assert len(sites) == 58 and {"layer", "channel", "tflite_multiplier"} <= set(sites[0])


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("name", "engine", "runtime"),
    [("digits_int8.tflite", "litert-xnnpack", "litert-xnnpack"),
     ("digits_qdq_s8s8_pc_minmax.onnx", "onnxruntime", "onnxruntime")],
)  # fmt: skip
def test_replay_cli_writes_the_runtime_output(tmp_path, name, engine, runtime, capsys):
    g = models.load(models.data_path(name))
    x = model_input(g, X)
    np.save(tmp_path / "x.npy", x)
    rc = replay_main([str(g.path), "--input", str(tmp_path / "x.npy"), "--engine", engine,
                      "--output", str(tmp_path / "y.npy"), "--json"])  # fmt: skip
    assert rc == 0
    y = np.load(tmp_path / "y.npy")
    real = run_runtime(g, x, runtime, intermediates=False)[g.outputs[0]]
    assert y.dtype == real.dtype and y.shape == real.shape
    np.testing.assert_array_equal(y, real)
    assert json.loads(capsys.readouterr().out)["engine"] == engine


def test_cli_errors_are_json_with_exit_2(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 1), np.float32))  # float into an int8 model
    rc = replay_main([str(models.data_path("digits_int8.tflite")), "--input",
                      str(tmp_path / "x.npy"), "--engine", "tflite-reference", "--output",
                      str(tmp_path / "y.npy"), "--json"])  # fmt: skip
    assert rc == 2
    assert "must be int8" in json.loads(capsys.readouterr().out)["error"]
    rc = fingerprint_main([str(tmp_path / "missing.onnx"), "--input", str(tmp_path / "x.npy"),
                           "--runtime", "onnxruntime", "--json"])  # fmt: skip
    assert rc == 2 and "not found" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fingerprint_cli_json(tmp_path, capsys):
    g = models.load(models.data_path("digits_int8.tflite"))
    np.save(tmp_path / "x.npy", model_input(g, X))
    assert fingerprint_main([g.path, "--input", str(tmp_path / "x.npy"), "--runtime",
                             "litert-optimized", "--json"]) == 0  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert d["whole_graph_replay_outputs_differing"]["tflite-optimized"] == 0
