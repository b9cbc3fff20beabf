"""Headless tests of the explorers: set ``.value``, check the computed result, the readout and
that the rendered figure changed (as ipywidgets' own ``test_interaction.py`` does)."""

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

import fxq_explore as fx  # noqa: E402
from fxq_explore import analysis  # noqa: E402
from fxq_explore.viz import widgets  # noqa: E402

ACC = analysis.random_accumulators(5_000, seed=0, spread=67_000)


def _changed(explorer, control, value):
    png, n = bytes(explorer.image.value), explorer.updates
    control.value = value
    assert explorer.updates == n + 1
    new = bytes(explorer.image.value)
    assert new != png and new[:8] == b"\x89PNG\r\n\x1a\n"


def test_decompose_explorer_scale_and_bits():
    e = widgets.decompose_explorer()
    import ipywidgets

    assert isinstance(e, ipywidgets.VBox) and isinstance(e.image, ipywidgets.Image)
    assert isinstance(e.readout, ipywidgets.HTML) and e.children[1:] == (e.readout, e.image)
    assert e.scale.description == "scale" and e.bits.description == "multiplier bits"
    assert (e.scale.min, e.scale.max, e.scale.base) == (-6, 1, 10)
    assert (e.bits.min, e.bits.max) == (2, 32)
    assert e.last_result.multiplier == 2071809760 and "2071809760" in e.readout.value
    _changed(e, e.scale, 0.01)
    d = fx.decompose(0.01)
    assert (e.last_result.multiplier, e.last_result.shift) == (d.multiplier, d.shift)
    assert str(d.multiplier) in e.readout.value and "shift</b> -6" in e.readout.value
    _changed(e, e.bits, 8)
    assert e.last_result.multiplier == fx.decompose(0.01, bits=8).multiplier == 82
    assert "represented value</b> 0.010009765625" in e.readout.value


def test_decompose_explorer_flush_readout():
    e = widgets.decompose_explorer(1e-6)
    e.scale.value = 1e-6
    assert not e.last_result.flushed
    assert "flushed" not in e.readout.value


def test_requantization_explorer():
    e = widgets.requantization_explorer(acc=ACC)
    assert "+3.65%" in e.readout.value
    base = e.last_result.mismatches["tflite"]
    _changed(e, e.pow2_mode, "floor")
    assert "-48.17%" in e.readout.value
    assert e.last_result.mismatches["tflite"] == base  # pow2 mode touches pow2 only
    _changed(e, e.zero_point, 100)  # int8 output: saturates earlier above
    assert e.last_result.zero_point == 100
    assert e.last_result.results["tflite"].max() == 127
    ref = analysis.error_vs_exact(
        ACC,
        e.scale.value,
        ("float32_rne", "pow2", "tflite"),
        zero_point=100,
        dtype="int8",
        pow2_mode="floor",
    )
    assert e.last_result.mismatches == ref.mismatches
    _changed(e, e.scale, 0.01)
    assert e.last_result.scale == pytest.approx(0.01)


def test_scheme_explorer_dropdown():
    e = widgets.scheme_explorer(acc=analysis.random_accumulators(20_000, seed=0))
    assert "exact" not in e.scheme.options and "tflite" in e.scheme.options
    assert e.last_result["differing"].size > 0 and "explain(" in e.readout.value
    _changed(e, e.scheme, "tflite_single")
    assert e.last_result["analysis"].mismatches["tflite_single"] == 0
    assert e.last_result["explanation"] is None
    assert "0 of 20000" in e.readout.value


def test_sweep_explorer_marks_and_values():
    mult = analysis.sweep_multiplier_bits(ACC, 0.0018843, bits=[4, 8, 16], progress=False)
    out = analysis.sweep_output_bits(ACC, 0.0018843, bits=[4, 8], progress=False)
    e = widgets.sweep_explorer((mult, out), multiplier_bits=16, output_bits=8)
    assert (e.multiplier_bits.min, e.multiplier_bits.max) == (4, 16)
    _changed(e, e.output_bits, 4)
    assert e.last_result["output_bits"]["float32_rne"] == out.sqnr_db["float32_rne"][0]
    _changed(e, e.metric, "mismatch_rate")
    assert e.last_result["multiplier_bits"]["tflite"] == mult.mismatch_rate["tflite"][2]
    assert "mismatch_rate" in e.readout.value


def test_threshold_explorer_tradeoff():
    x = np.maximum(np.random.default_rng(0).normal(size=20_000), 0)
    e = widgets.threshold_explorer(x, 1.0, calibrated={"max": float(x.max())})
    low = e.last_result
    _changed(e, e.threshold, e.threshold.max)
    high = e.last_result
    assert high["clip_error"] == 0.0 < low["clip_error"]
    assert high["round_error"] > low["round_error"]
    assert "clipping error</b> 0.000e+00" in e.readout.value


def test_threshold_errors_exact_values():
    c, r = analysis.threshold_errors([0.0, 1.0, 3.0], [2.0], bits=2)  # 1 level: step 2
    # 3 clips to 2 (err 1); 1 rounds to 0 or 2 (rint(0.5) = 0, err 1); 0 exact
    assert c.tolist() == [1 / 3] and r.tolist() == [1 / 3]


def test_plain_views_return_figures():
    d, fig = widgets.decomposition_view(0.0018843, 16)
    assert d.bits == 16 and len(fig.axes) == 1
    a, fig = widgets.requantization_view(acc=ACC)
    assert len(fig.axes) == 2 and set(a.results) == {"float32_rne", "pow2", "tflite"}
