"""Seed layer benchmark: fxq_explore's C conv with fused requantization vs ONNX Runtime and torch.

The layer of the seed thread: 1x64x56x56 uint8 input (zero point 128), 64x64x3x3 int8 weights,
int32 bias, pad 1, stride 1, one thread; 115.6 M MACs = 231.2 M int8 ops.  Requantized to uint8
with a per-tensor scale of about 1.2e-4 (``x_scale * w_scale / y_scale`` in float32, as ONNX
Runtime computes it).

Timing (house style): every candidate is warmed up, then timed in blocks -- ``--block`` runs of one
candidate, then the next, the whole round repeated ``--rounds`` times -- so a fast kernel is never
timed right after a slow one evicted its caches.  Reported: median ms per call over all timed runs,
GOPS, % of the single-core ``vpdpbusd zmm`` peak quoted in ../shared/perf-anchors.md (862 GOPS)
and of the peak measured here by ``fxq_probe_vpdpbusd_zmm`` (20 independent ``vpdpbusd zmm`` in a
loop), and the ratio to ONNX Runtime's QLinearConv measured in the same process.  The machine is
shared and noisy: compare ratios within one run, not absolute times across runs.

Also: the requantization alone (``fxq_explore.kernels.requantize`` on the layer's 200,704 int32
accumulators) in ns/element next to a plain copy of the same bytes, and a bit-exactness check of
every C output against the numpy reference on the benchmark data.

Usage::

    python benchmarks/seed_layer.py            # full run (about a minute)
    python benchmarks/seed_layer.py --quick    # smoke run
    python benchmarks/seed_layer.py --json     # machine-readable
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

OPS = 2 * 64 * 64 * 9 * 56 * 56  # 231,211,008 int8 ops
PEAK_GOPS = 862.0  # vpdpbusd zmm, one core (perf-anchors.md)
SCHEMES = ("float32_rne", "pow2", "tflite", "tflite_single")
X_SCALE, W_SCALE, Y_SCALE = 0.02, 0.003, 0.5  # real multiplier ~ 1.2e-4


def make_data(seed=0):
    """Seed-layer tensors: uniform uint8 input, normal int8 weights (sigma 12), int32 bias."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(1, 64, 56, 56)).astype(np.uint8)
    w = np.clip(np.rint(rng.normal(0, 12, size=(64, 64, 3, 3))), -127, 127).astype(np.int8)
    bias = np.rint(rng.normal(0, 2000, size=64)).astype(np.int32)
    # the effective scale exactly as ONNX Runtime forms it (float32 arithmetic)
    scale = float(np.float32(np.float32(X_SCALE) * np.float32(W_SCALE)) / np.float32(Y_SCALE))
    return x, w, bias, scale


# ---------------------------------------------------------------------------------------------
# candidates


def fxq_candidates(x, w, bias, scale, layouts):
    from fxq_explore.kernels import conv

    cands = {}
    for layout in layouts:
        if layout == "NCHW16c":
            xi, wi = conv.nchw_to_nchw16c(x), conv.oihw_to_oihw4i16o4i(w)
        else:
            xi, wi = x, w
        tag = "NCHW16c" if layout == "NCHW16c" else "NCHW"
        cands[f"fxq conv2d() int32 out ({tag})"] = lambda xi=xi, wi=wi, layout=layout: conv.conv2d(
            xi, wi, bias, x_zero_point=128, padding=1, layout=layout
        )
        for scheme in SCHEMES:
            cands[f"fxq conv2d() fused {scheme} ({tag})"] = (
                lambda xi=xi, wi=wi, layout=layout, scheme=scheme: conv.conv2d(
                    xi,
                    wi,
                    bias,
                    scale=scale,
                    scheme=scheme,
                    x_zero_point=128,
                    out_zero_point=0,
                    padding=1,
                    layout=layout,
                )
            )
        # conv2d() re-checks every argument on each call and compares w and bias with the
        # copies behind its memo of packed weights; a prepared Conv2d packs once and checks
        # only x, as an inference session does (ORT, torch)
        for scheme in (None,) + SCHEMES:
            layer = conv.Conv2d(
                wi,
                bias,
                scale=scale if scheme else None,
                scheme=scheme,
                x_zero_point=128,
                out_zero_point=0,
                padding=1,
                layout=layout,
            )
            name = "int32 out" if scheme is None else f"fused {scheme}"
            cands[f"fxq Conv2d prepared {name} ({tag})"] = lambda layer=layer, xi=xi: layer(xi)
    return cands


def ort_candidate(x, w, bias):
    """ONNX Runtime QLinearConv on an in-memory model, one intra-op thread."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        return None, f"onnxruntime/onnx not importable ({e})"
    inits = [
        numpy_helper.from_array(np.array(X_SCALE, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(W_SCALE, np.float32), "w_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
        numpy_helper.from_array(np.array(Y_SCALE, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(0, np.uint8), "y_zp"),
        numpy_helper.from_array(bias, "b"),
    ]
    node = helper.make_node(
        "QLinearConv",
        ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"],
        ["y"],
        pads=[1, 1, 1, 1],
        strides=[1, 1],
        kernel_shape=[3, 3],
    )
    graph = helper.make_graph(
        [node],
        "seed",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 64, 56, 56])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"x": x}
    return (lambda: sess.run(None, feed)[0]), f"onnxruntime {ort.__version__} QLinearConv"


def torch_candidates(x, w, bias):
    """PyTorch quantized Conv2d on every available x86 engine, one thread, NCHW input."""
    try:
        import torch
    except ImportError as e:
        return {}, f"torch not importable ({e})"
    torch.set_num_threads(1)
    supported = torch.backends.quantized.supported_engines
    engines = [e for e in ("x86", "onednn", "fbgemm") if e in supported]
    cands = {}
    xf = torch.from_numpy((x.astype(np.float32) - 128) * X_SCALE)
    qx = torch.quantize_per_tensor(xf, X_SCALE, 128, torch.quint8)
    wq = torch.quantize_per_tensor(
        torch.from_numpy(w.astype(np.float32) * W_SCALE), W_SCALE, 0, torch.qint8
    )
    bf = torch.from_numpy(bias.astype(np.float32) * X_SCALE * W_SCALE)
    for eng in engines:
        torch.backends.quantized.engine = eng
        m = torch.ao.nn.quantized.Conv2d(64, 64, 3, padding=1)
        m.set_weight_bias(wq, bf)
        m.scale, m.zero_point = Y_SCALE, 0

        def run(m=m, eng=eng):
            torch.backends.quantized.engine = eng
            with torch.no_grad():
                return m(qx)

        try:
            run()
        except Exception as e:  # noqa: BLE001 (an engine may be listed but unusable)
            print(f"torch engine {eng}: {e}", file=sys.stderr)
            continue
        cands[f"torch {torch.__version__} quantized conv ({eng})"] = run
    return cands, f"torch {torch.__version__}"


# ---------------------------------------------------------------------------------------------
# timing


def time_blocks(cands, rounds, block, progress=True):
    """{name: [seconds per call]} timed in blocks of `block` runs per candidate, `rounds` times."""
    names = list(cands)
    for f in cands.values():  # warm up: first calls allocate, pack, build caches
        for _ in range(3):
            f()
    times = {n: [] for n in names}
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(
                total=rounds * len(names), desc="timing", unit="block", file=sys.stderr, leave=False
            )
        except ImportError:
            bar = None
    clock = time.perf_counter
    for _ in range(rounds):
        for n in names:
            f = cands[n]
            f()  # one untimed call after switching candidates
            ts = times[n]
            for _ in range(block):
                t0 = clock()
                f()
                ts.append(clock() - t0)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return times


def requant_only(acc, scale, rounds, block):
    """ns/element of the C requantization of the layer's accumulators vs plain copies."""
    from fxq_explore.kernels import _ffi as kernels

    out8 = np.empty(acc.shape, np.uint8)
    dst32 = np.empty_like(acc)
    cands = {
        f"C requantize {s}": (
            lambda s=s: kernels.requantize(acc, scale, s, dtype="uint8", zero_point=0)
        )
        for s in SCHEMES
    }
    cands["C memcpy of the int32 bytes (4 B/elem)"] = lambda: kernels.copy_bytes(dst32, acc)
    cands["numpy copyto int32->uint8 (wraps)"] = lambda: np.copyto(out8, acc, casting="unsafe")
    t = time_blocks(cands, rounds, block, progress=False)
    return {k: statistics.median(v) * 1e9 / acc.size for k, v in t.items()}


# ---------------------------------------------------------------------------------------------


def measured_vnni_peak():
    """GOPS of back-to-back independent ``vpdpbusd zmm`` on this core (best of 7), or None."""
    from fxq_explore.kernels import _ffi as kernels

    lib = kernels._ext().lib
    n, best = 1_000_000, None
    for _ in range(7):
        t0 = time.perf_counter()
        if lib.fxq_probe_vpdpbusd_zmm(n) != 0:
            return None
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return 20 * n * 128 / best / 1e9


def bit_exact(x, w, bias, scale):
    """Each C output (both layouts, every scheme, int32) == reference conv + numpy requantize."""
    from fxq_explore import requantize
    from fxq_explore.kernels import conv
    from fxq_explore.kernels.reference import conv2d_reference

    acc = conv2d_reference(x, w, bias, x_zero_point=128, padding=1)
    res = {}
    x16, w16 = conv.nchw_to_nchw16c(x), conv.oihw_to_oihw4i16o4i(w)
    got = conv.conv2d(x, w, bias, x_zero_point=128, padding=1)
    res["int32"] = bool(np.array_equal(got, acc))
    got = conv.nchw16c_to_nchw(
        conv.conv2d(x16, w16, bias, x_zero_point=128, padding=1, layout="NCHW16c")
    )
    res["int32 NCHW16c"] = bool(np.array_equal(got, acc))
    for s in SCHEMES:
        want = requantize(acc, scale, s, dtype="uint8", axis=1)
        got = conv.conv2d(x, w, bias, scale=scale, scheme=s, x_zero_point=128, padding=1)
        got16 = conv.nchw16c_to_nchw(
            conv.conv2d(
                x16, w16, bias, scale=scale, scheme=s, x_zero_point=128, padding=1, layout="NCHW16c"
            )
        )
        res[s] = bool(np.array_equal(got, want) and np.array_equal(got16, want))
    return res, acc


def main(argv=None):
    ap = argparse.ArgumentParser(prog="fxq-explore bench", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="rounds of blocks (default 10)")
    ap.add_argument("--block", type=int, default=10, help="timed runs per block (default 10)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3, no torch")
    ap.add_argument("--no-compare", action="store_true", help="skip ONNX Runtime and torch")
    ap.add_argument(
        "--layouts",
        default="NCHW16c,NCHW",
        help="comma-separated fxq layouts to time (default NCHW16c,NCHW)",
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = ap.parse_args(argv)
    rounds, block = (1, 3) if args.quick else (args.rounds, args.block)
    if rounds * block < 50 and not args.quick:
        ap.error("need at least 50 timed runs per candidate: rounds * block >= 50")

    from fxq_explore.kernels import _ffi as kernels
    from fxq_explore.kernels import conv

    x, w, bias, scale = make_data()
    exact, acc = bit_exact(x, w, bias, scale)
    layouts = [s.strip() for s in args.layouts.split(",") if s.strip()]
    cands = fxq_candidates(x, w, bias, scale, layouts)
    notes = {"fxq": kernels.info()}
    ort_name = None
    if not args.no_compare:
        f, desc = ort_candidate(x, w, bias)
        notes["onnxruntime"] = desc
        if f is not None:
            ort_name = desc
            cands[ort_name] = f
            y = f()
            ours = conv.conv2d(
                x, w, bias, scale=scale, scheme="float32_rne", x_zero_point=128, padding=1
            )
            notes["ort_vs_fxq_float32_rne_equal_fraction"] = float(np.mean(y == ours))
        if not args.quick:
            tc, desc = torch_candidates(x, w, bias)
            notes["torch"] = desc
            cands.update(tc)
    peak = measured_vnni_peak()
    times = time_blocks(cands, rounds, block, progress=not args.json)
    peak_after = measured_vnni_peak()
    if peak and peak_after:
        peak = max(peak, peak_after)
    ort_ms = statistics.median(times[ort_name]) * 1e3 if ort_name else None
    rows = []
    for name, ts in times.items():
        ms = statistics.median(ts) * 1e3
        gops = OPS / (ms * 1e-3) / 1e9
        rows.append(
            {
                "name": name,
                "median_ms": ms,
                "min_ms": min(ts) * 1e3,
                "runs": len(ts),
                "gops": gops,
                "pct_peak": 100 * gops / PEAK_GOPS,
                "pct_measured_peak": 100 * gops / peak if peak else None,
                "vs_ort": ms / ort_ms if ort_ms else None,
            }
        )
    med = {r["name"]: r["median_ms"] for r in rows}
    ratios = {}
    for tag in layouts:
        t = "NCHW16c" if tag == "NCHW16c" else "NCHW"
        for kind in ("fxq conv2d()", "fxq Conv2d prepared"):
            fl = med.get(f"{kind} fused float32_rne ({t})")
            if fl:
                for s in ("tflite", "tflite_single", "pow2"):
                    ratios[f"{kind}: {s} / float32_rne ({t})"] = med[f"{kind} fused {s} ({t})"] / fl
    rq = requant_only(acc.astype(np.int32), scale, 3 if args.quick else 10, 20)
    copy_ns = rq["C memcpy of the int32 bytes (4 B/elem)"]
    result = {
        "layer": "1x64x56x56 u8 (zp 128) * 64x64x3x3 s8, pad 1, stride 1, 1 thread",
        "ops": OPS,
        "scale": scale,
        "rounds": rounds,
        "block": block,
        "vnni_peak_gops_anchor": PEAK_GOPS,
        "vnni_peak_gops_measured": peak,
        "python": platform.python_version(),
        "bit_exact": exact,
        "timings": rows,
        "fixed_vs_float": ratios,
        "requantize_ns_per_element": rq,
        "requantize_vs_copy": {k: v / copy_ns for k, v in rq.items()},
        "notes": notes,
        "threads_env": os.environ.get("OMP_NUM_THREADS"),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(
        f"Seed layer: {result['layer']}; scale {scale:.6g}; {OPS / 1e6:.1f} M ops; "
        f"{rounds} rounds x {block} runs per candidate (medians)"
    )
    print(f"fxq path: {notes['fxq']['path']} (features: {', '.join(notes['fxq']['cpu_features'])})")
    if peak:
        print(
            f"vpdpbusd zmm peak measured on this core: {peak:.0f} GOPS (layer floor "
            f"{OPS / peak / 1e6:.3f} ms); perf-anchors.md quotes {PEAK_GOPS:.0f} GOPS"
        )
    print(
        f"bit-exact (C vs reference conv + numpy requantize): "
        f"{'yes' if all(exact.values()) else 'NO'} {exact}"
    )
    if "ort_vs_fxq_float32_rne_equal_fraction" in notes:
        print(
            f"ONNX Runtime output == fxq float32_rne output: "
            f"{100 * notes['ort_vs_fxq_float32_rne_equal_fraction']:.3f} % of elements"
        )
    print()
    print(
        f"{'candidate':<58} {'median ms':>9} {'min ms':>8} {'GOPS':>6} {'%862':>6} "
        f"{'%meas':>6} {'vs ORT':>7}"
    )
    for r in rows:
        vs = f"{r['vs_ort']:.3f}" if r["vs_ort"] else "-"
        pm = f"{r['pct_measured_peak']:5.1f}%" if r["pct_measured_peak"] else "     -"
        print(
            f"{r['name']:<58} {r['median_ms']:9.3f} {r['min_ms']:8.3f} {r['gops']:6.0f} "
            f"{r['pct_peak']:5.1f}% {pm} {vs:>7}"
        )
    print()
    for k, v in ratios.items():
        print(f"fused {k}: {v:.3f}")
    print()
    print(f"{'requantize only (200,704 int32 -> uint8)':<44} {'ns/elem':>8} {'vs memcpy':>9}")
    for k, v in rq.items():
        print(f"{k:<44} {v:8.4f} {v / copy_ns:9.2f}")
    return result


if __name__ == "__main__":
    main()
