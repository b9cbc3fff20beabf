"""Memory blow-ups and hangs (issue 13): sizes are estimated and refused before allocating,
big numpy paths run in chunks, bins and iterations are bounded.

Each test runs under an address-space cap (``memory_cap``), so a regression fails the test
instead of exhausting the machine.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fxq_explore as fx
from fxq_explore.analysis import calibration as cal
from fxq_explore.analysis.verify import verify
from fxq_explore.studies import seed

from .conftest import MiB, memory_cap, raises_naming

X = np.random.default_rng(0).normal(size=2000)


def test_histogram_growth_reproducer_refused_before_allocating():
    with memory_cap(256 * MiB):
        e = raises_naming(
            ValueError, "values", cal.HistogramCollector().update([1e-6]).update, [1e3]
        )
    assert "bins" in str(e) and "TiB" in str(e)


@pytest.mark.parametrize("mode", ["signed", "abs"])
@settings(max_examples=60)
@given(
    mags=st.lists(st.integers(-300, 300), min_size=1, max_size=5),
    num_bins=st.sampled_from([5, 128, 2048, 8001]),
)
def test_histogram_batches_of_any_magnitude_bounded(mode, mags, num_bins):
    hc = cal.HistogramCollector(num_bins, mode=mode)
    with memory_cap(512 * MiB):
        for m in mags:
            try:
                hc.update([10.0**m, -(10.0**m) / 3])
            except ValueError as e:
                assert "values" in str(e)
                return
    assert len(hc.hist) <= cal.MAX_HIST_BINS


@pytest.mark.parametrize(
    "kw",
    [
        dict(method="mse", num_bins=10**6),
        dict(method="kl", num_bins=10**5 + 1),
        dict(method="kl", variant="tensorrt", num_bins=10**5),
        dict(method="kl", variant="onnxruntime", num_bins=10**5),
    ],
)
def test_quadratic_searches_bounded(kw):
    t0 = time.perf_counter()
    with memory_cap(512 * MiB):
        e = raises_naming(ValueError, "num_bins", fx.calibrate, X, **kw)
    assert "quadratic" in str(e)
    assert time.perf_counter() - t0 < 5  # refused up front, not after the search


def test_num_bins_bounded_for_collectors():
    raises_naming(ValueError, "num_bins", cal.HistogramCollector, 10**9)
    raises_naming(
        ValueError, "num_bins", fx.calibrate, X, "percentile", variant="histogram", num_bins=10**9
    )


def test_ten_million_accumulators_bounded_working_set():
    """Unchunked, the exact single-rounding schemes took ~155 bytes per element (1.5 GiB here)."""
    acc = np.random.default_rng(1).integers(-(2**31), 2**31, size=10**7, dtype=np.int64)
    acc = acc.astype(np.int32)
    probe = acc[:: 10**5]
    for scheme in ("exact", "xnnpack_rndnu", "tvm_tonearest"):
        with memory_cap(300 * MiB):  # the 10 MB result plus ~40 MiB chunks, not 1.5 GiB
            out = fx.requantize(acc, 0.0018843, scheme)
        assert out.shape == acc.shape and out.dtype == np.int8
        assert out[:: 10**5].tolist() == fx.requantize(probe, 0.0018843, scheme).tolist()


def test_seed_replay_huge_shape_refused():
    with memory_cap(256 * MiB):
        e = raises_naming(ValueError, "shape", seed.replay, shape=(64, 64, 1024, 1024, 16))
    assert "GiB" in str(e) or "TiB" in str(e)


def test_verify_sizes_bounded():
    raises_naming(ValueError, "n_scales", verify, n_scales=10**9)
    raises_naming(ValueError, "n_scales", verify, n_scales=-1)
    raises_naming(ValueError, "n_acc", verify, n_acc=10**9)


@settings(max_examples=30)
@given(n=st.integers(0, 3 * 10**5), per_channel=st.booleans())
def test_sizes_around_the_chunk_boundary(n, per_channel):
    acc = (np.arange(n, dtype=np.int64) * 7919 % 2**20 - 2**19).astype(np.int32)
    if per_channel:
        n -= n % 2
        acc = acc[:n].reshape(-1, 2)
        scale, kw = np.array([0.001, 0.01]), {"axis": 1}
    else:
        scale, kw = 0.001, {}
    with memory_cap(512 * MiB):
        out = fx.requantize(acc, scale, "exact", **kw)
    assert out.shape == acc.shape
    if acc.size:
        flat = acc.reshape(-1, 2) if per_channel else acc.reshape(-1, 1)
        s = np.broadcast_to(np.atleast_1d(scale), flat.shape)
        i = flat.shape[0] - 1
        for j in range(flat.shape[1]):
            v = float(flat[i, j]) * float(s[i, j])
            want = max(-128, min(127, int(np.sign(v) * np.floor(abs(v) + 0.5))))
            assert int(out.reshape(flat.shape)[i, j]) == want


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: fx.compare(a, 0.0018843),
        lambda a: fx.analysis.error_vs_exact(a, 0.0018843),
        lambda a: fx.analysis.sweep_multiplier_bits(a, 0.0018843, bits=[8]),
    ],
    ids=["compare", "error_vs_exact", "sweep_multiplier_bits"],
)
def test_analysis_memory_estimated_before_allocating(fn):
    """A read-only broadcast view of 3e7 zeros costs nothing; keeping per-scheme results does."""
    acc = np.broadcast_to(np.int32(0), (3 * 10**7,))
    with memory_cap(512 * MiB):
        e = raises_naming(ValueError, "acc", fn, acc)
    assert "GiB" in str(e) and "limit" in str(e)
