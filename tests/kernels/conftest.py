"""Shared helpers for the C kernel tests: which SIMD paths this CPU can run."""

import pytest

kernels = pytest.importorskip("fxq_explore.kernels._ffi")

ALL_PATHS = ("scalar", "avx2", "avx512", "amx")


def available_paths():
    return kernels.available_paths()


@pytest.fixture(params=ALL_PATHS)
def path(request):
    """Each SIMD path in turn (skipped where the CPU lacks it)."""
    if request.param not in available_paths():
        pytest.skip(f"path {request.param!r} not available on this CPU")
    return request.param
