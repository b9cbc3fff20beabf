import numpy as np
import pytest

from fxq_explore import models
from fxq_explore.engines import detect
from fxq_explore.models.data import digits, model_input
from fxq_explore.models.fingerprint import classify, fingerprint, plot_propagation, propagation

X, Y = digits("test", 64)
TFL = models.data_path("digits_int8.tflite")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("runtime", ["litert-reference", "litert-optimized", "litert-xnnpack"])
def test_each_litert_resolver_is_named_by_its_own_preset(runtime):
    g = models.load(TFL)
    fp = fingerprint(g, model_input(g, X), runtime)
    assert len(fp.layers) == len(g.nodes)
    assert all(fp.expected in lay.matches for lay in fp.layers)
    assert fp.output_differ[fp.expected] == 0
    others = [k for k in fp.output_differ if k != fp.expected]
    assert all(fp.output_differ[k] > 0 for k in others)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_reference_and_optimized_part_at_the_pointwise_conv():
    """RHA vs RHU at the shift: only the pointwise conv (and FC) separate the two."""
    g = models.load(TFL)
    fp = fingerprint(g, model_input(g, X), "litert-optimized")
    pw = fp.layers[2]
    assert pw.op == "CONV_2D"
    assert "tflite-optimized" in pw.matches and "tflite-reference" not in pw.matches


def test_fingerprint_of_onnxruntime_per_channel():
    """fingerprint names the ORT preset of this CPU (as fxq_explore.engines detects it), and
    the other CPU class's preset does not reproduce ORT here: the model saturates."""
    g = models.load(models.data_path("digits_qop_u8s8_pc_minmax.onnx"))
    fp = fingerprint(g, model_input(g, X[:16]), "onnxruntime")
    here = detect()["onnxruntime"].preset
    other = {"onnxruntime-vnni": "onnxruntime-avx2", "onnxruntime-avx2": "onnxruntime-vnni"}
    assert fp.expected == here
    assert all(here in lay.matches for lay in fp.layers)
    assert set(fp.output_differ) == {"onnxruntime-vnni", "onnxruntime-avx2"}
    assert fp.output_differ[here] == 0 and fp.output_differ[other[here]] > 0
    assert fp.table().shape[0] == len(fp.layers)


def test_classify_tie_and_saturation():
    acc = np.array([3, 5, 1000])
    site = {"acc": acc, "scale": np.array([0.5]), "axis": None, "clamp": (-128, 127)}
    assert classify(site, np.array([2, 3, 127]), np.array([1, 2, 127])) == "tie"
    assert classify(site, np.array([1, 2, 127]), np.array([1, 2, 126])) == "saturation"
    assert classify(site, np.array([1, 2, 127]), np.array([1, 2, 127])) == ""


def test_propagation_table_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    g = models.load(TFL)
    t = propagation(g, model_input(g, X), "tflite-reference", "litert-xnnpack", labels=Y)
    first = t.index[0]
    assert t.loc[first, first] > 0  # the switched layer itself differs
    assert (t.drop(columns=["class flips", "accuracy change"]).to_numpy() >= 0).all()
    ax = plot_propagation(t)
    assert ax.get_ylabel()
