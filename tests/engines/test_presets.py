"""Presets, detect() and the conv2d front door (no real engine needed)."""

import numpy as np
import pytest

from fxq_explore import engines
from fxq_explore.engines import PRESETS, conv2d, detect, format_table, resolve, table

ZEN3 = {"avx2", "fma", "sse4_1"}
SKYLAKE_X = ZEN3 | {"avx512f", "avx512dq", "avx512bw", "avx512vl"}
ICELAKE = SKYLAKE_X | {"avx512_vnni"}
ALDERLAKE = ZEN3 | {"avx_vnni"}
SAPPHIRE = ICELAKE | {"avx_vnni", "amx_tile", "amx_int8"}


@pytest.mark.parametrize(
    "flags,ort,fb,dnn",
    [
        (ZEN3, "onnxruntime-avx2", "torch-fbgemm-avx2", "torch-onednn-avx2"),
        (SKYLAKE_X, "onnxruntime-avx2", "torch-fbgemm-avx2", "torch-onednn-avx2"),
        (ICELAKE, "onnxruntime-vnni", "torch-fbgemm-vnni", "torch-onednn-vnni"),
        (ALDERLAKE, "onnxruntime-vnni", "torch-fbgemm-avx2", "torch-onednn-vnni"),
        (SAPPHIRE, "onnxruntime-vnni", "torch-fbgemm-vnni", "torch-onednn-vnni"),
    ],
)
def test_detect_per_cpu_class(flags, ort, fb, dnn):
    d = detect(flags, env={})
    assert (d["onnxruntime"].preset, d["torch-fbgemm"].preset, d["torch-onednn"].preset) == (
        ort,
        fb,
        dnn,
    )
    assert all(v.reason for v in d.values())


def test_env_overrides_cap_the_isa():
    d = detect(SAPPHIRE, env={"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert d["torch-fbgemm"].preset == "torch-fbgemm-avx2"
    assert d["torch-onednn"].preset == "torch-onednn-avx2"
    assert "FBGEMM_ENABLE_INSTRUCTIONS" in d["torch-fbgemm"].reason
    # a cap above what the CPU has changes nothing
    d2 = detect(ZEN3, env={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"})
    assert d2["torch-onednn"].preset == "torch-onednn-avx2"


def test_resolve_aliases_and_u8u8():
    assert resolve("onnxruntime", w_dtype=np.uint8).name == "onnxruntime-u8u8"
    assert resolve("onnxruntime", flags=ZEN3, env={}).name == "onnxruntime-avx2"
    assert resolve("tflite-reference").scheme == "tflite"
    with pytest.raises(ValueError, match="unknown engine 'nope'; valid: onnxruntime"):
        resolve("nope")


def test_every_preset_is_complete():
    needed = {
        "onnxruntime-avx2",
        "onnxruntime-vnni",
        "onnxruntime-u8u8",
        "torch-fbgemm-avx2",
        "torch-fbgemm-vnni",
        "torch-onednn-avx2",
        "torch-onednn-vnni",
        "tflite-reference",
        "tflite-optimized",
        "litert-xnnpack",
        "tvm-upward",
        "tvm-tonearest",
        "cmsis-nn",
    }
    assert needed <= set(PRESETS)
    from fxq_explore import SCHEMES

    for p in PRESETS.values():
        assert p.scheme in SCHEMES
        assert p.model.name == p.accumulate
        assert p.kernel_path and p.rounding and p.multiplier


def test_table_marks_this_cpu():
    rows = table(ZEN3, env={})
    here = {r["preset"] for r in rows if r["here"]}
    assert here == {"onnxruntime-avx2", "torch-fbgemm-avx2", "torch-onednn-avx2"}
    text = format_table(ZEN3, env={})
    assert "onnxruntime -> onnxruntime-avx2" in text and "cmsis-nn" in text


def _layer(xdtype=np.uint8, wdtype=np.int8):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(1, 4, 6, 6)).astype(xdtype)
    w = rng.integers(-127, 128, size=(4, 4, 3, 3)).astype(wdtype)
    return x, w


def test_conv2d_errors():
    x, w = _layer()
    with pytest.raises(ValueError, match="mutually exclusive"):
        conv2d(x, w, scale=0.01, engine="onnxruntime", scheme="tflite")
    with pytest.raises(ValueError, match="mutually exclusive"):
        conv2d(x, w, scale=0.01, engine="onnxruntime", accumulate="exact")
    with pytest.raises(ValueError, match="unknown engine 'bogus'; valid: .*cmsis-nn"):
        conv2d(x, w, scale=0.01, engine="bogus")
    xi = (x.astype(np.int16) - 128).astype(np.int8)
    with pytest.raises(ValueError, match="^x: engine 'onnxruntime-avx2' takes activations"):
        conv2d(xi, w, scale=0.01, engine="onnxruntime-avx2")
    with pytest.raises(ValueError, match="^w: engine 'torch-fbgemm-avx2' takes weights"):
        conv2d(x, w.astype(np.uint8), scale=0.01, engine="torch-fbgemm-avx2")
    with pytest.raises(ValueError, match="accumulate='pairs_flat_k' models u8 x s8"):
        conv2d(xi, w, scale=0.01, scheme="float32_rne", accumulate="pairs_flat_k")
    with pytest.raises(ValueError, match="x_scale, w_scale and y_scale"):
        conv2d(x, w, engine="onnxruntime-vnni")
    with pytest.raises(ValueError, match="unknown scheme"):
        conv2d(x, w, scale=0.01, scheme="nope")


def test_conv2d_engine_equals_explicit_scheme_and_accumulate():
    x, w = _layer()
    kw = dict(scale=0.004, x_zero_point=128, out_zero_point=128, padding=1)
    a = conv2d(x, w, engine="onnxruntime-avx2", **kw)
    b = conv2d(x, w, scheme="float32_rne", accumulate="mlas_u8s8", **kw)
    np.testing.assert_array_equal(a, b)
    t = conv2d(x, w, engine="tvm-upward", **kw)
    t2 = conv2d(x, w, scheme="tflite_single", **kw)
    np.testing.assert_array_equal(t, t2)


def test_multiplier_is_float32_as_the_engines():
    p = PRESETS["onnxruntime-vnni"]
    m = engines.multiplier(p, 0.1, np.array([0.3]), 0.7)
    want = np.float32(np.float32(0.1) * np.float32(0.3)) / np.float32(0.7)
    assert m[0] == np.float64(np.float32(want))
    d = engines.multiplier(PRESETS["tflite-reference"], 0.1, np.array([0.3]), 0.7)
    assert d[0] == 0.1 * 0.3 / 0.7


def test_fbgemm_groupwise_fast_path_is_refused_not_guessed():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(1, 16, 6, 6)).astype(np.uint8)
    w = rng.integers(-127, 128, size=(16, 4, 3, 3)).astype(np.int8)
    with pytest.raises(ValueError, match="^groups: FBGEMM sends this grouped layer"):
        conv2d(x, w, scale=0.01, padding=1, groups=4, engine="torch-fbgemm-avx2")
    # the VNNI preset (measured exact on a VNNI CPU) and other engines still run it
    conv2d(x, w, scale=0.01, padding=1, groups=4, engine="torch-fbgemm-vnni")
    conv2d(x, w, scale=0.01, padding=1, groups=4, engine="torch-onednn-avx2")
