"""The integer-only digits network on the committed weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fxq_explore.studies import e2e

SINGLE_ROUNDING = (
    "float32_rne",
    "tvm_2019_float",
    "tflite_single",
    "tvm_tonearest",
    "xnnpack_rndnu",
)
FIXED_POINT = ("tflite", "tflite_optimized", "tflite_single", "tvm_tonearest")


@pytest.fixture(scope="module")
def rows():
    return e2e.evaluate()


def pick(rows, scheme, calibration, bits):
    (r,) = [
        r for r in rows if (r["scheme"], r["calibration"], r["bits"]) == (scheme, calibration, bits)
    ]
    return r


def test_fp32_row(rows):
    fp = rows[0]
    assert fp["scheme"] == "fp32" and fp["bits"] == 32
    assert fp["accuracy"] >= 0.97
    # every (scheme, calibration, bits) present exactly once
    from fxq_explore import SCHEMES

    keys = {(r["scheme"], r["calibration"], r["bits"]) for r in rows[1:]}
    assert len(keys) == len(rows) - 1 == len(SCHEMES) * len(e2e.CALIBRATIONS) * len(e2e.BITS)


def test_fp32_accuracy_recomputed_independently():
    """Forward pass re-written here with explicit im2col, on the stored weights."""
    p = e2e.load_params()
    _, _, x, y = e2e.load_split()

    def conv(h, w, b, stride, pad):
        n, c, hh, ww = h.shape
        k, _, r, s = w.shape
        hp = np.zeros((n, c, hh + 2 * pad, ww + 2 * pad), np.float64)
        hp[:, :, pad : pad + hh, pad : pad + ww] = h
        oh, ow = (hh + 2 * pad - r) // stride + 1, (ww + 2 * pad - s) // stride + 1
        out = np.zeros((n, k, oh, ow))
        for i in range(oh):
            for j in range(ow):
                patch = hp[:, :, i * stride : i * stride + r, j * stride : j * stride + s]
                out[:, :, i, j] = patch.reshape(n, -1) @ w.reshape(k, -1).T + b
        return out

    h = np.maximum(conv(x, p["w1"], p["b1"], 1, 1), 0)
    h = np.maximum(conv(h, p["w2"], p["b2"], 2, 1), 0)
    z = conv(h, p["w3"], p["b3"], 1, 0)[:, :, 0, 0]
    assert (z.argmax(axis=1) == y).mean() >= 0.97


def test_int8_fixed_point_within_one_point(rows):
    fp = rows[0]["accuracy"]
    for cal in e2e.CALIBRATIONS:
        for scheme in FIXED_POINT + ("exact",):
            r = pick(rows, scheme, cal, 8)
            assert abs(r["accuracy"] - fp) <= 0.01 + 1e-12, r


def test_sqnr_falls_with_bits(rows):
    """With bit-independent thresholds (max, percentile) every rounding scheme loses SQNR
    at each bit removed: ~6 dB per bit in theory."""
    from fxq_explore import SCHEMES

    for cal in ("max", "percentile"):
        for scheme in SCHEMES:
            if scheme == "pow2":
                continue  # dominated by the power-of-two gain error
            s8, s6, s4 = (pick(rows, scheme, cal, b)["sqnr_db"] for b in (8, 6, 4))
            assert s8 > s6 > s4, (cal, scheme, s8, s6, s4)
            assert s8 - s4 > 6.0


def test_exact_and_fixed_point_beat_pow2(rows):
    for cal in e2e.CALIBRATIONS:
        for scheme in FIXED_POINT + ("exact",):
            assert pick(rows, scheme, cal, 8)["sqnr_db"] > pick(rows, "pow2", cal, 8)["sqnr_db"]
    for bits in e2e.BITS:
        for scheme in FIXED_POINT + ("exact",):
            assert (
                pick(rows, scheme, "max", bits)["sqnr_db"]
                > pick(rows, "pow2", "max", bits)["sqnr_db"]
            )


def test_mismatch_single_vs_double_rounding(rows):
    """Single-rounding schemes differ from exact only at (near-)ties; double rounding more."""
    for cal in e2e.CALIBRATIONS:
        for bits in e2e.BITS:
            assert pick(rows, "exact", cal, bits)["mismatch_vs_exact"] == 0
            single = max(pick(rows, s, cal, bits)["mismatch_vs_exact"] for s in SINGLE_ROUNDING)
            assert single < 1e-4
            assert pick(rows, "tflite", cal, bits)["mismatch_vs_exact"] > max(single, 1e-4)
            assert pick(rows, "pow2", cal, bits)["mismatch_vs_exact"] > 0.1


def test_zero_bin_fix_improves_tensorrt_kl_at_8_bits(rows):
    a = pick(rows, "exact", "kl_tensorrt", 8)["sqnr_db"]
    b = pick(rows, "exact", "kl_tensorrt_zfix", 8)["sqnr_db"]
    assert b > a + 6


def test_main_json(capsys):
    assert (
        e2e.main(
            ["--json", "--calibration", "max", "--bits", "8", "4", "--scheme", "exact", "tflite"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert rows[0]["scheme"] == "fp32" and rows[0]["bits"] == 32
    assert len(rows) == 1 + 2 * 2
    for r in rows:
        assert set(r) == {
            "scheme",
            "calibration",
            "bits",
            "accuracy",
            "sqnr_db",
            "mismatch_vs_exact",
        }
    for r in rows[1:]:
        assert 0 <= r["accuracy"] <= 1 and math.isfinite(r["sqnr_db"])


def test_main_table(capsys):
    assert e2e.main(["--calibration", "mse", "--bits", "6", "--scheme", "pow2"]) == 0
    text = capsys.readouterr().out
    assert "fp32" in text and "pow2" in text and "mse" in text and "sqnr_db" in text


def test_main_bad_arguments():
    with pytest.raises(SystemExit):
        e2e.main(["--bits", "12"])
    with pytest.raises(SystemExit):
        e2e.main(["--scheme", "banana"])


def test_stored_split_is_sklearns():
    a = e2e.load_split()
    b = e2e.load_split(use_sklearn=True)
    for u, v in zip(a, b, strict=False):
        np.testing.assert_array_equal(u, v)
    assert len(a[3]) == 450 and len(a[1]) == 1347


def test_quantized_weights_per_channel():
    p = e2e.load_params()
    qm = e2e.quantize_model(p, (3.0, 6.0, 15.0), 6)
    for i in range(3):
        w = qm.weights[i]
        assert w.dtype == np.int8
        assert np.all(np.abs(w).reshape(w.shape[0], -1).max(axis=1) == 127)
        np.testing.assert_allclose(
            w * qm.w_scales[i][:, None, None, None],
            p[f"w{i + 1}"],
            atol=qm.w_scales[i].max() / 2 + 1e-7,
        )
    assert qm.out_dtypes == ["uint6", "uint6", "int8"]
    assert qm.act_scales[1] == pytest.approx(3.0 / 63)
    with pytest.raises(ValueError, match="bits"):
        e2e.quantize_model(p, (3.0, 6.0, 15.0), 12)


def test_training_script_gradients():
    """The numpy backward pass of scripts/train_digits.py against finite differences."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("train_digits", path)
    td = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(td)
    rng = np.random.default_rng(0)
    params = td.init_params(rng)
    for k in ("b1", "b2", "b3"):  # non-zero biases: no pre-activation sits on the ReLU kink
        params[k] = rng.normal(0.0, 0.1, params[k].shape)
    _, _, x, y = e2e.load_split()
    x, y = x[:6].astype(np.float64), y[:6]
    _, g = td.loss_and_grads(params, x, y, wd=1e-3)
    h = 1e-6
    for name, idx in (
        ("w1", (3, 0, 1, 2)),
        ("w2", (5, 7, 0, 1)),
        ("w3", (2, 9, 3, 1)),
        ("b1", (0,)),
        ("b2", (4,)),
        ("b3", (7,)),
    ):
        plus = {k: v.copy() for k, v in params.items()}
        minus = {k: v.copy() for k, v in params.items()}
        plus[name][idx] += h
        minus[name][idx] -= h
        num = td.loss_and_grads(plus, x, y, 1e-3)[0] - td.loss_and_grads(minus, x, y, 1e-3)[0]
        assert g[name][idx] == pytest.approx(num / (2 * h), rel=1e-4, abs=1e-7), name
