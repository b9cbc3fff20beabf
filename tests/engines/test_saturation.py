"""Saturation predictor and fixes, checked against brute force written here."""

import itertools

import numpy as np
import pytest

from fxq_explore.engines import saturation as S


def brute_worst_pair(w0, w1, lo=0, hi=255):
    sums = [x0 * w0 + x1 * w1 for x0, x1 in itertools.product((lo, hi), repeat=2)]
    return max(sums), min(sums)


def test_worst_case_matches_brute_force_on_flat_pairs():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(5, 3, 3, 3)).astype(np.int8)
    got = S.worst_case_pair_sums(w, accumulate="pairs_flat_k")
    for o in range(5):
        flat = [int(v) for v in w[o].transpose(1, 2, 0).ravel()]  # (kh, kw, c)
        flat += [0] * ((-len(flat)) % 4)
        pairs = [brute_worst_pair(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        assert got["max"][o] == max(p[0] for p in pairs)
        assert got["min"][o] == min(p[1] for p in pairs)
        risky = sum(p[0] > 32767 or p[1] < -32768 for p in pairs)
        assert got["pairs_at_risk"][o] == risky


def test_prediction_covers_every_measured_saturation():
    case = S.make_case(c=16, k=16, r=3, hw=10)
    pred = S.predict(case, ["onnxruntime-avx2", "torch-onednn-avx2", "onnxruntime-vnni"])
    assert not pred["onnxruntime-vnni"].any()
    for name in ("onnxruntime-avx2", "torch-onednn-avx2"):
        m = S.measure(case, name)
        assert np.all(pred[name][m.saturated > 0])  # measured => predicted
        assert m.saturated.sum() > 0


def test_normal_weights_cannot_saturate_and_full_range_can():
    normal = S.make_case(c=64, k=8, r=3, hw=6, weights="normal", sigma=12)
    full = S.make_case(c=64, k=8, r=3, hw=6, weights="full_range")
    pn = S.predict(normal, ["onnxruntime-avx2"])["onnxruntime-avx2"]
    pf = S.predict(full, ["onnxruntime-avx2"])["onnxruntime-avx2"]
    assert pf.all()
    # sigma 12: |w| rarely exceeds 64, where 2 * 255 * 64 = 32640 still fits
    assert pn.sum() < pf.sum()


def test_fixes_side_by_side():
    case = S.make_case(c=32, k=16, r=3, hw=10)
    rows = {r["fix"].split()[0]: r for r in S.fixes(case)}
    assert rows["none"]["saturated_pairs"] > 0 and rows["none"]["vs_exact"] > 0
    assert rows["reduce_range"]["saturated_pairs"] == 0
    assert rows["u8u8"]["vs_exact"] == 0 and rows["VNNI"]["vs_exact"] == 0
    assert S.pair_bound(255, 64) == 32640 <= 32767 < S.pair_bound(255, 127)
    assert S.pair_bound(128, 127) == 32512


def test_sweep_rate_rises_with_weight_range():
    res = S.weight_range_sweep([40, 64, 90, 127], c=16, k=8, r=3, hw=8)
    assert res["mismatch_rate"][0] == 0 and res["mismatch_rate"][1] == 0
    assert res["mismatch_rate"][3] >= res["mismatch_rate"][2] >= 0
    assert res["mismatch_rate"][3] > 0 and res["pair_fraction"][3] > res["pair_fraction"][2]


def test_make_case_rejects_unknown_weights():
    with pytest.raises(ValueError, match="weights"):
        S.make_case(weights="uniform")


def test_plots_return_axes():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from fxq_explore.engines import plots

    case = S.make_case(c=16, k=8, r=3, hw=8)
    m = S.measure(case, "onnxruntime-avx2")
    ax = plots.plot_channel_saturation(m)
    assert ax.get_ylabel()
    ax = plots.plot_saturation_map(m, channel=int(np.argmax(m.saturated)))
    assert ax.images
    ax = plots.plot_weight_range_sweep(S.weight_range_sweep([64, 127], c=8, k=4, r=3, hw=6))
    assert len(ax.lines) >= 1
