"""Reliability tests run under an address-space cap, so a blow-up fails the test, not the machine.

``memory_cap`` lowers ``RLIMIT_AS`` to the current virtual size plus a headroom (numpy and
OpenBLAS need some), and restores it afterwards. Every test of this directory runs under the
default cap of +2 GiB (autouse); tests of the memory class use a tighter one.
"""

from __future__ import annotations

import contextlib
import resource

import pytest

GiB = 1 << 30
MiB = 1 << 20


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def memory_cap(headroom: int):
    """Cap the address space at the current size + ``headroom`` bytes inside the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_size() + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(autouse=True)
def _default_cap():
    with memory_cap(2 * GiB):
        yield


def raises_naming(exc_type, name, fn, *args, **kwargs):
    """Call ``fn``; assert it raises exactly ``exc_type`` with ``name`` in the message."""
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"
    assert name in str(info.value), f"{name!r} not named in: {info.value}"
    return info.value
