"""The benchmark package: its probes run where the CPU has the instructions, its tflite builder
makes a model LiteRT accepts (when installed), and plot() returns an Axes."""

import os

import numpy as np
import pytest

from fxq_explore.bench import measure_peaks, plot
from fxq_explore.kernels import _ffi as kernels


def test_probes_follow_the_cpu():
    peaks = measure_peaks(iters=2000, repeats=1)
    assert ("FXQ_PROBE_VPMADDWD_YMM" in peaks) == ("avx2" in kernels.available_paths())
    assert ("FXQ_PROBE_VPDPBUSD_ZMM" in peaks) == ("avx512" in kernels.available_paths())
    assert ("FXQ_PROBE_VPXOR_QUAD" in peaks) == ("avx2" in kernels.available_paths())
    assert ("FXQ_PROBE_TDPBUSD" in peaks) == ("amx" in kernels.available_paths())
    assert ("FXQ_PROBE_VPDPBUSD_BCAST" in peaks) == ("avx512" in kernels.available_paths())
    assert all(v > 0 for v in peaks.values())
    lib = kernels._ext().lib
    assert lib.fxq_probe_macs(99, 10) == lib.FXQ_ERR_ARG
    tile_form = lib.fxq_probe_macs(lib.FXQ_PROBE_VPDPBUSD_BCAST, 3)
    if "avx512" in kernels.available_paths():
        # per iteration: 4 channel quads x 28 vpdpbusd zmm x 16 lanes x 4 byte products
        assert tile_form == 3 * 4 * 28 * 16 * 4
        assert lib.fxq_probe_macs(lib.FXQ_PROBE_VPDPBUSD_BCAST, 0) == 0
    else:
        assert tile_form == lib.FXQ_ERR_PATH


# make asan preloads libasan into the whole process: third-party native libraries (LiteRT,
# matplotlib's) are not built for it, and the C kernels are what that run checks
NOT_UNDER_ASAN = pytest.mark.skipif(
    bool(os.environ.get("FXQ_EXPECT_EXTENSION_DIR")), reason="third-party native code under ASan"
)


@NOT_UNDER_ASAN
def test_litert_fc_model_matches_exact_reference():
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("tflite")
    from fxq_explore.bench.seed import X_SCALE, Y_SCALE, exactness, fc_data, litert_candidate
    from fxq_explore.kernels.reference import fully_connected_reference

    x, w, b, ws, scale = fc_data(3, 40, 12)
    f = litert_candidate("fc", x, w, b, ws, [3, 12], [])
    assert f is not None
    acc = fully_connected_reference(x, w, b, x_zero_point=128)
    ok, nbad, dmax = exactness(f(), acc, scale, zero_point=0, dtype="int8")
    assert ok and dmax <= 1
    assert X_SCALE > 0 and Y_SCALE > 0


@NOT_UNDER_ASAN
def test_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    result = dict(
        cpu="test",
        peaks={"FXQ_PROBE_VPDPBUSD_ZMM": 400.0},
        rows=[dict(name="a", ms=0.5, exact="yes"), dict(name="b", ms=0.7, exact="no: 3")],
    )
    ax = plot(result)
    assert len(ax.patches) == 2
    assert np.isclose(ax.lines[0].get_xdata()[0], 64 * 64 * 9 * 56 * 56 / 400.0 / 1e6)


@NOT_UNDER_ASAN
def test_preset_match_names_the_preset_and_counts_differences():
    pytest.importorskip("onnxruntime")
    from fxq_explore.bench.seed import make_data, ort_candidates, preset_match
    from fxq_explore.engines import presets

    x, w, bias, ws, _ = make_data(c=16, k=8)  # 56x56: the shape ort_candidates declares
    peers = ort_candidates(x, w, bias, ws, [])
    assert peers
    for name, (run, _shift) in peers.items():
        y = np.asarray(run())
        want = "onnxruntime-u8u8" if name.endswith("u8u8") else presets.resolve("onnxruntime").name
        preset, ndiff = preset_match(name, y, x, w, bias, ws)
        assert preset == want
        assert ndiff == 0  # the detected preset is bit-exact with ORT on this CPU (tests/engines)
        flipped = y.copy()
        flipped[0, 0, 0, :3] ^= 1
        assert preset_match(name, flipped, x, w, bias, ws)[1] == 3
    assert preset_match("LiteRT XNNPACK CONV_2D (int8)", y, x, w, bias, ws) is None


def test_only_small_section_runs_alone():
    """--only small: the depthwise and FC rows (incl. the digits models' shapes), no seed-layer
    rows, the same result keys; an unknown section is refused by name."""
    import io

    from fxq_explore.bench import seed

    buf = io.StringIO()
    result = seed.run(quick=True, compare=False, only="small", out=buf)
    labels = {label for label, _name in result["small"]}
    assert {"depthwise 56x56x64 3x3", "FC N=1 1024->1000", "digits dw 8x8x16 3x3"} <= labels
    assert "digits FC N=1 16->10" in labels
    assert result["rows"] == [] and result["requantize"] == {}
    assert "Seed layer" not in buf.getvalue() and "Depthwise 3x3" in buf.getvalue()
    with pytest.raises(ValueError, match="only must be one of"):
        seed.run(quick=True, compare=False, only="nope", out=io.StringIO())


def test_target_ratios_never_print_the_limit_for_a_value_across_it():
    from fxq_explore.bench.seed import _ratio

    assert _ratio(1.0504, 1.05) == "1.0504x"  # NOT MET must not read 1.050x
    assert _ratio(1.0496, 1.05) == "1.0496x"
    assert _ratio(1.05, 1.05) == "1.050x"
    assert _ratio(0.9381, 1.0) == "0.938x"
    assert _ratio(1.05000001, 1.05) == "1.05000001x"
