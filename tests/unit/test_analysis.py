from fractions import Fraction

import numpy as np
import pytest

from fxq_explore import analysis as an
from fxq_explore.oracles import ORACLES


def test_error_vs_exact_matches_brute_force():
    acc = an.random_accumulators(3000, seed=3)
    a = an.error_vs_exact(acc, 0.0018843, ["tflite", "pow2", "float32_rne"])
    for name in ("tflite", "pow2", "float32_rne"):
        want = np.array([ORACLES[name](int(x), 0.0018843) for x in acc])
        exact = np.array([ORACLES["exact"](int(x), 0.0018843) for x in acc])
        assert a.results[name].tolist() == want.tolist()
        assert a.mismatches[name] == int(np.count_nonzero(want != exact))
        real = np.array([float(Fraction(int(x)) * Fraction(0.0018843)) for x in acc])
        assert np.allclose(a.errors[name], want - real, atol=1e-9)
    rows = {r["scheme"]: r for r in a.summary()}
    assert rows["float32_rne"]["max_abs_error"] <= 0.5 + 1e-6
    assert rows["pow2"]["max_abs_error"] > 4  # 3.65 % gain error on values up to 126
    assert len(a.worst("pow2", 3)) == 3
    counts, edges = a.histogram("tflite")
    assert counts.sum() == acc.size and len(edges) == 42


def test_gain_error_of_the_seed_scale():
    assert abs(an.gain_error(0.0018843) - (0.001953125 / 0.0018843 - 1)) < 1e-15
    assert round(an.gain_error(0.0018843), 4) == 0.0365


def test_multiplier_sweep_monotone_and_exact_at_32_bits():
    acc = an.random_accumulators(20000, seed=1)
    sw = an.sweep_multiplier_bits(acc, 0.0018843, bits=[4, 8, 16, 32], progress=False)
    for name in sw.schemes:
        assert sw.sqnr_db[name][0] < sw.sqnr_db[name][1] < sw.sqnr_db[name][3] + 1e-9
    assert sw.mismatch_rate["tflite_single"][-1] == 0.0
    assert sw.max_abs_error["tflite_single"][-1] <= 0.5 + 1e-6
    assert "multiplier_bits" in sw.table()


def test_output_sweep_sqnr_gains_about_6db_per_bit():
    acc = an.random_accumulators(50000, seed=2)
    sw = an.sweep_output_bits(acc, 0.0018843, bits=[6, 7, 8, 9, 10], progress=False)
    gains = np.diff(sw.sqnr_db["float32_rne"])
    assert np.all((gains > 5.5) & (gains < 6.5))  # 20*log10(2) = 6.02 dB per bit
    assert np.all(sw.sqnr_db["pow2"] < sw.sqnr_db["tflite_single"])


def test_sweep_bad_bits():
    with pytest.raises(ValueError, match="output_bits"):
        an.sweep_output_bits([1, 2], 0.01, bits=[1])
    with pytest.raises(ValueError, match="schemes"):
        an.sweep_multiplier_bits([1, 2], 0.01, schemes=["pow2"])
