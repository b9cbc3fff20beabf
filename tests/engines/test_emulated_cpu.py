"""ONNX Runtime's AVX2 kernels, run for real: the interpreter runs under user-mode QEMU with
the CPU model of an AMD EPYC Zen 3 (``qemu-x86_64 -cpu EPYC-Milan``: AVX2, no VNNI), so MLAS
reads that CPU's CPUID and takes its ``vpmaddubsw`` u8s8 kernels. The presets named for that CPU
class must reproduce it bit for bit: the conv layers of the engines issue, and every committed
ONNX model replayed whole. Skipped where ``qemu-x86_64`` is not installed (``make test``
installs it with apt-get where it can)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fxq_explore.engines.runners import (
    EMULATED_AVX2_CPU,
    available,
    emulator,
    run_cases_in_subprocess,
)
from fxq_explore.engines.saturation import make_case

PREFIX = emulator(EMULATED_AVX2_CPU)
pytestmark = pytest.mark.skipif(PREFIX is None, reason="qemu-x86_64 not installed")

SHAPES = [
    dict(c=64, k=64, r=3, hw=14),
    dict(c=3, k=16, r=3, hw=14),
    dict(c=5, k=24, r=3, hw=12, stride=2),
    dict(c=24, k=24, r=5, hw=12),
    dict(c=24, k=32, r=1, hw=10, padding=0),
    dict(c=32, k=32, r=3, hw=10, groups=32),  # depthwise: MLAS's exact kernel
    dict(c=48, k=48, r=3, hw=10, groups=2),
]


def _need_ort():
    ok, why = available("onnxruntime")
    if not ok:
        pytest.skip(why)


def test_onnxruntime_on_an_emulated_zen3_equals_the_avx2_preset():
    _need_ort()
    cases = [make_case(**s, seed=i) for i, s in enumerate(SHAPES)]
    ys = run_cases_in_subprocess(
        "onnxruntime", [c.runner_case() for c in cases], prefix=PREFIX, timeout=900
    )
    saturated = 0
    for case, y in zip(cases, ys, strict=True):
        want = case.conv(engine="onnxruntime-avx2")
        assert np.array_equal(want, y), (case.label, int((want != y).sum()))
        saturated += int(np.count_nonzero(y != case.exact()))
    assert saturated > 0  # the emulated CPU did take the saturating kernels


CHILD = """
import sys
import numpy as np
from fxq_explore import models
from fxq_explore.models.data import digits, model_files, model_input
from fxq_explore.models.runtime import run_onnxruntime
x, _ = digits("test")
out = {}
for p in model_files("onnx"):
    g = models.load(p)
    for k, v in run_onnxruntime(g, model_input(g, x), intermediates=False).items():
        out[p.name + "|" + k] = v
np.savez(sys.argv[1], **out)
"""


def test_every_onnx_model_replays_as_onnxruntime_on_an_emulated_zen3(tmp_path):
    _need_ort()
    from fxq_explore import models
    from fxq_explore.models.data import digits, model_files, model_input

    out = tmp_path / "ort.npz"
    p = subprocess.run(
        [*PREFIX, sys.executable, "-c", CHILD, str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    ort = np.load(out)
    x, _ = digits("test")
    differ_from_vnni = 0
    files = model_files("onnx")
    assert len(files) == 6
    for path in files:
        g = models.load(path)
        xin = model_input(g, x)
        r = models.replay(g, xin, engine="onnxruntime-avx2")
        name, avx2 = next(iter(r.outputs.items()))
        vnni = models.replay(g, xin, engine="onnxruntime-vnni").outputs[name]
        want = ort[f"{path.name}|{name}"]
        assert np.array_equal(avx2, want), (path.name, int((avx2 != want).sum()))
        differ_from_vnni += int((vnni != want).sum())
    assert differ_from_vnni > 0  # the u8s8 models do saturate on that CPU
