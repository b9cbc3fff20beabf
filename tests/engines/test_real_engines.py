"""Each preset bit for bit against its real engine, on the CPU at hand.

Full-range per-channel weights (each output channel's max |w| = 127), activations uniform in
0..255 with zero point 128, int32 bias. The preset under test is the one ``engines.detect()``
resolves for this CPU. Kernel paths this CPU does not take by itself are forced where the engine
has an override, in a subprocess: FBGEMM ``FBGEMM_ENABLE_INSTRUCTIONS`` (``src/Utils.cc``) and
oneDNN ``ONEDNN_MAX_CPU_ISA``. ONNX Runtime has no such override: its AVX2 preset is checked
only on an AVX2 CPU (skipped elsewhere, saying so).
"""

import numpy as np
import pytest

from fxq_explore.engines import detect
from fxq_explore.engines.runners import available, run_cases_in_subprocess, run_engine
from fxq_explore.engines.saturation import make_case

SHAPES = [
    dict(c=64, k=64, r=3, hw=14),  # the seed layer, smaller image
    dict(c=3, k=16, r=3, hw=14),
    dict(c=5, k=24, r=3, hw=12, stride=2),
    dict(c=24, k=24, r=5, hw=12),
    dict(c=24, k=32, r=1, hw=10, padding=0),
    dict(c=24, k=24, r=3, hw=11, stride=2, padding=0),
    dict(c=32, k=32, r=3, hw=10, groups=32),  # depthwise
    dict(c=32, k=32, r=5, hw=10, groups=32, stride=2),  # depthwise 5x5, stride 2
    dict(c=48, k=48, r=3, hw=10, groups=2),  # grouped, 24 channels per group (im2col)
]
IDS = [
    f"{s['r']}x{s['r']}-{s['c']}to{s['k']}-s{s.get('stride', 1)}-g{s.get('groups', 1)}"
    for s in SHAPES
]
CASES = [make_case(**s, seed=i) for i, s in enumerate(SHAPES)]


def _need(engine):
    ok, why = available(engine)
    if not ok:
        pytest.skip(why)


def _check(preset, case, y):
    want = case.conv(engine=preset)
    mism = int(np.count_nonzero(want != y))
    assert mism == 0, f"{preset} differs from the engine on {mism} of {y.size} outputs"


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize(
    "alias,runner",
    [("onnxruntime", "onnxruntime"), ("torch-fbgemm", "fbgemm"), ("torch-onednn", "onednn")],
)
def test_preset_detected_here_equals_engine(alias, runner, case):
    _need(runner)
    preset = detect()[alias].preset
    y = run_engine(runner, case.x, case.w, case.bias, **case.kwargs())
    _check(preset, case, y)


@pytest.mark.parametrize("case", CASES[:4], ids=IDS[:4])
def test_onnxruntime_u8u8_equals_engine(case):
    _need("onnxruntime")
    from dataclasses import replace

    cu = replace(case, w=(case.w.astype(np.int16) + 128).astype(np.uint8), w_zero_point=128)
    y = run_engine("onnxruntime", cu.x, cu.w, cu.bias, **cu.kwargs())
    _check("onnxruntime-u8u8", cu, y)
    # same real weights as the int8 layer: u8u8 is the exact result
    np.testing.assert_array_equal(y, case.exact())


@pytest.mark.parametrize(
    "runner,env,preset",
    [
        ("fbgemm", {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}, "torch-fbgemm-avx2"),
        ("fbgemm", {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512"}, "torch-fbgemm-avx2"),
        ("onednn", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "torch-onednn-avx2"),
        ("onednn", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, "torch-onednn-avx2"),
    ],
)
def test_forced_non_vnni_paths_equal_presets(runner, env, preset):
    _need(runner)
    flags = {"avx2"} if "AVX2" in str(env) else {"avx512f", "avx512bw"}
    from fxq_explore.engines import cpu_flags

    if not flags <= cpu_flags():
        pytest.skip(f"this CPU lacks {sorted(flags)}: the override cannot select that path")
    ys = run_cases_in_subprocess(runner, [c.runner_case() for c in CASES], env=env)
    total = 0
    for case, y in zip(CASES, ys, strict=True):
        _check(preset, case, y)
        total += int(np.count_nonzero(y != case.exact()))
    assert total > 0  # the forced path does saturate on these layers


def test_onnxruntime_avx2_needs_an_avx2_cpu():
    _need("onnxruntime")
    if detect()["onnxruntime"].preset != "onnxruntime-avx2":
        pytest.skip(
            "this CPU has VNNI: ONNX Runtime takes its exact path and has no ISA override; "
            "onnxruntime-avx2 is checked here on an emulated Zen 3 (test_emulated_cpu.py)"
        )
    total = 0
    for case in CASES:
        y = run_engine("onnxruntime", case.x, case.w, case.bias, **case.kwargs())
        _check("onnxruntime-avx2", case, y)
        total += int(np.count_nonzero(y != case.exact()))
    assert total > 0


def test_onednn_float_operations_on_the_full_seed_layer():
    # oneDNN applies x, w and 1/y scales in turn and adds the output zero point in float: on the
    # 56x56 seed layer with normal(0, 12) weights one output shows it (a single float32
    # multiplier, as ORT and fbgemm use, gives 131 where oneDNN gives 132).
    _need("onednn")
    from dataclasses import replace

    case = make_case(c=64, k=64, r=3, hw=56, weights="normal", seed=0)
    for c in (case, replace(case, bias=None)):
        y = run_engine("onednn", c.x, c.w, c.bias, **c.kwargs())
        _check(detect()["torch-onednn"].preset, c, y)
        assert int(np.count_nonzero(y != c.exact())) == 1
