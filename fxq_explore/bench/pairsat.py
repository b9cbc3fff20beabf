"""The benchmark of the int16 pair-saturating accumulation: what replaying ORT / fbgemm on an x86
CPU without VNNI costs (``python -m fxq_explore.bench.pairsat``).

The seed layer (3x3, 64 -> 64, 56x56, uint8 activations uniform 0..255 with zero point 128,
per-channel full-range int8 weights, padding 1), one thread, one process, medians of block-timed
runs, ratios from the same run:

* the C pair-saturating kernel (:mod:`fxq_explore.kernels.pairsat`), weights packed beforehand,
  int32 accumulators only, on each path this CPU runs (AVX2: ``vpmaddubsw`` + ``vpmaddwd``, the
  engines' instructions; scalar: the portable C);
* the whole ``engines.Conv2d(engine="onnxruntime-avx2")`` call (C accumulators on the widest
  path, int32 bias and float32 RNE requantization in C);
* the numpy model (:func:`~fxq_explore.kernels.accumulate.conv2d_accumulate`, the oracle);
* ONNX Runtime's QLinearConv u8s8 and torch fbgemm, where installed -- as they run on *this* CPU
  (on a VNNI CPU their exact ``vpdpbusd`` kernels; the column ``saturates here`` says so);
* torch fbgemm / oneDNN **forced to their AVX2 (saturating) kernels** (``FBGEMM_ENABLE_INSTRUCTIONS``,
  ``ONEDNN_MAX_CPU_ISA``), which needs a fresh process: timed there the same way, the ratio marked
  as across processes, the output checked against the ``*-avx2`` preset here;
* the ``vpmaddubsw + vpmaddwd + vpaddd`` peak of this CPU (``fxq_probe_macs``) and the layer's
  floor from it.

Every candidate's output is checked in the same run: the C accumulators against the numpy model,
the engine call against the numpy-backed preset, the engines against their detected preset.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..engines import detect
from ..engines.api import Conv2d
from ..engines.presets import conv2d as preset_conv2d
from ..engines.saturation import make_case
from ..kernels import _ffi as kernels
from ..kernels import pairsat
from ..kernels.accumulate import conv2d_accumulate
from .seed import SEED_MACS, X_SCALE, Y_SCALE, cpu_name, ort_candidates, torch_candidates

__all__ = ["run", "main"]


def _median_ms(f: Callable[[], Any], rounds: int, block: int, budget_s: float) -> float:
    """Median over ``rounds`` x ``block`` timed calls (fewer when one call exceeds the budget)."""
    f()
    t0 = time.perf_counter()
    f()
    one = time.perf_counter() - t0
    n = max(3, min(rounds * block, int(budget_s / max(one, 1e-9))))
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


_FORCED = (
    ("torch-fbgemm-avx2", "fbgemm", {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}),
    ("torch-onednn-avx2", "onednn", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
)


def _child(engine: str, rounds: int, block: int, budget: float, out_path: str) -> None:
    """In the forced-ISA subprocess: time the torch engine on the seed layer, save y and ms."""
    case = make_case(c=64, k=64, r=3, hw=56, seed=0)
    notes: list[str] = []
    cands = torch_candidates(case.x, case.w, case.bias, case.w_scale.astype(np.float32), notes)
    name = next((n for n in cands if n.endswith(" " + engine)), None)
    if name is None:
        raise SystemExit(f"torch {engine} not available: {notes}")
    f = cands[name][0]
    ms = _median_ms(f, rounds, block, budget)
    np.savez(out_path, y=np.asarray(f()), ms=ms, name=name)


def _forced(preset: str, engine: str, env: dict, rounds: int, block: int, budget: float):
    """(name, ms, y) from a subprocess with ``env``, or (None, reason, None)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "y.npz")
        code = (
            "from fxq_explore.bench.pairsat import _child; "
            f"_child({engine!r}, {rounds}, {block}, {budget}, {path!r})"
        )
        full = dict(os.environ, OMP_NUM_THREADS="1", **env)
        p = subprocess.run(
            [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=600
        )
        if p.returncode != 0:
            return None, (p.stderr.strip().splitlines() or ["failed"])[-1], None
        r = np.load(path)
        return f"{r['name']} forced AVX2", float(r["ms"]), r["y"]


def _triple_peak() -> float | None:
    lib = kernels._ext().lib
    iters = 2_000_000
    if lib.fxq_probe_macs(lib.FXQ_PROBE_VPMADDUBSW_TRIPLE, 1000) < 0:
        return None
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        macs = lib.fxq_probe_macs(lib.FXQ_PROBE_VPMADDUBSW_TRIPLE, iters)
        best = max(best, macs / (time.perf_counter() - t0))
    return best


def run(
    rounds: int = 10,
    block: int = 10,
    quick: bool = False,
    out: Any = sys.stdout,
    forced: bool = True,
) -> list[dict]:
    """Time the candidates, print the table and return its rows (``forced=False``: without the
    torch engines forced to AVX2 in subprocesses)."""
    if quick:
        rounds, block = 1, 3
    budget = 0.5 if quick else 3.0

    def pr(*a: object) -> None:
        print(*a, file=out)

    case = make_case(c=64, k=64, r=3, hw=56, seed=0)
    x, w, bias = case.x, case.w, case.bias
    w_scale = case.w_scale.astype(np.float32)
    geo = dict(x_zero_point=128, padding=1)
    want_acc = conv2d_accumulate(x, w, accumulate="pairs_flat_k", **geo)
    exact_acc = conv2d_accumulate(x, w, accumulate="exact", **geo)
    rows: list[dict] = []

    def row(name: str, ms: float, exact_vs: str, bit_exact: bool, saturates: str) -> None:
        rows.append(
            dict(name=name, ms=ms, checked=exact_vs, bit_exact=bit_exact, saturates=saturates)
        )

    layer = pairsat.PairSatConv2d(w, **geo)
    for p in pairsat.available_paths()[::-1]:
        got = layer(x, path=p)
        ms = _median_ms(lambda p=p: layer.accumulators_nhwc(x, path=p), rounds, block, budget)
        row(
            f"fxq C pairsat {p} (accumulators)",
            ms,
            "numpy model",
            bool(np.array_equal(got, want_acc)),
            "yes",
        )
    qkw = dict(
        x_scale=X_SCALE,
        w_scale=w_scale,
        y_scale=Y_SCALE,
        x_zero_point=128,
        out_zero_point=0,
        padding=1,
    )
    eng = Conv2d(w, bias, engine="onnxruntime-avx2", **qkw)
    y_c = eng(x)
    y_np = preset_conv2d(x, w, bias, engine="onnxruntime-avx2", acc_backend="numpy", **qkw)
    row(
        f"fxq engines.Conv2d('onnxruntime-avx2') {pairsat.available_paths()[-1]}",
        _median_ms(lambda: eng(x), rounds, block, budget),
        "numpy-backed preset",
        bool(np.array_equal(y_c, y_np)),
        "yes",
    )
    row(
        "numpy model conv2d_accumulate('pairs_flat_k')",
        _median_ms(
            lambda: conv2d_accumulate(x, w, accumulate="pairs_flat_k", **geo),
            1,
            3,
            budget,
        ),
        "(the oracle)",
        True,
        "yes",
    )
    notes: list[str] = []
    here = detect()
    peers = {}
    peers.update(ort_candidates(x, w, bias, w_scale, notes))
    peers.update(torch_candidates(x, w, bias, w_scale, notes))
    for name, (f, _) in peers.items():
        if "u8u8" in name or "onednn" in name:
            continue
        alias = "onnxruntime" if name.startswith("ORT") else "torch-fbgemm"
        preset = here[alias].preset
        y = np.asarray(f())
        ref = preset_conv2d(x, w, bias, engine=preset, acc_backend="numpy", **qkw)
        sat = "yes" if "avx2" in preset else "no (exact kernel on this CPU)"
        row(
            name,
            _median_ms(f, rounds, block, budget),
            f"preset {preset}",
            bool(np.array_equal(y, ref)),
            sat,
        )
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    from ..engines import cpu_flags

    if forced and have_torch and "avx2" in cpu_flags():
        for preset, engine, env in _FORCED:
            name, ms, y = _forced(preset, engine, env, rounds, block, budget)
            if name is None:
                notes.append(f"{preset}: {ms}")
                continue
            ref = preset_conv2d(x, w, bias, engine=preset, acc_backend="numpy", **qkw)
            row(
                name + " [other process]",
                float(ms),
                f"preset {preset}",
                bool(np.array_equal(y, ref)),
                "yes (forced)",
            )
    peak = _triple_peak()
    pr(f"CPU: {cpu_name()}; pair-saturating paths: {', '.join(pairsat.available_paths())}")
    pr(
        "seed layer 3x3 64->64 56x56, full-range per-channel weights, x uniform 0..255, zp 128; "
        f"{int(np.count_nonzero(want_acc != exact_acc))} of {want_acc.size} accumulators saturate"
    )
    if peak:
        pr(
            f"vpmaddubsw + vpmaddwd + vpaddd peak: {peak / 1e9:.1f} GMAC/s -> seed-layer floor "
            f"{SEED_MACS / peak * 1e3:.3f} ms"
        )
    ort_ms = next((r["ms"] for r in rows if r["name"].startswith("ORT")), None)
    c_ms = next((r["ms"] for r in rows if r["name"].startswith("fxq C pairsat avx2")), None)
    head = f"{'candidate':56s} {'median ms':>10s} {'vs C avx2':>10s} {'vs ORT':>8s}"
    pr(head + f"  {'bit-exact vs':22s} saturates here")
    for r in rows:
        rc = f"{r['ms'] / c_ms:10.2f}" if c_ms else f"{'-':>10s}"
        ro = f"{r['ms'] / ort_ms:8.2f}" if ort_ms else f"{'-':>8s}"
        ok = ("yes: " if r["bit_exact"] else "NO: ") + r["checked"]
        pr(f"{r['name']:56s} {r['ms']:10.3f} {rc} {ro}  {ok:22s} {r['saturates']}")
        r["vs_c_avx2"] = r["ms"] / c_ms if c_ms else None
        r["vs_ort"] = r["ms"] / ort_ms if ort_ms else None
    for n in notes:
        pr(f"note: {n}")
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    args = sys.argv[1:] if argv is None else argv
    return run(quick="--quick" in args, forced="--no-forced" not in args)


if __name__ == "__main__":
    main()
