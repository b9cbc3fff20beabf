"""The kernel benchmark: the seed layer, a MobileNet-like depthwise layer and small fully
connected layers, fxq_explore's C kernels next to every peer installed, in one process.

What it prints (medians of block-timed runs, ratios from the same run; the machine is shared and
noisy, so compare ratios within one run):

* the CPU (model name, features) and the SIMD path of each fxq candidate;
* the MAC throughput peaks that exist on this CPU, measured by C probes (``fxq_probe_macs``:
  ``vpmaddwd``, the ``vpmaddubsw + vpmaddwd + vpaddd`` triple, fxq's exact ``vpxor`` + triple
  (and the ``vpsignb`` form it used before), ``vpdpbusd`` ymm/zmm, AMX ``tdpbusd``), each with
  the seed layer's floor;
* every candidate: median ms, the fraction of the relevant peak, the ratio to ONNX Runtime u8s8,
  and whether it is **exact on full-range per-channel weights** (max ``|w|`` = 127 per channel,
  uint8 activations uniform 0..255, zero point 128) -- computed by comparing its output with the
  exact reference in this run (an output that differs from the reference requantized by every
  rounding scheme by at most 1 counts as exact accumulation with another rounding);
* the requantization alone against a numpy copy, the depthwise and FC layers against LiteRT
  XNNPACK, and the issue's targets as met / not met.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time

import numpy as np

from ..kernels import _ffi as kernels
from ..kernels import conv
from ..kernels.reference import conv2d_reference, fully_connected_reference
from ..requantization import requantize
from ..schemes import SCHEMES

SEED_MACS = 64 * 64 * 9 * 56 * 56
X_SCALE = 0.02
Y_SCALE = 0.5
PROBES = (  # (enum name, label, MACs per instruction mix)
    ("FXQ_PROBE_VPMADDWD_YMM", "vpmaddwd + vpaddd (ymm, exact int16)"),
    ("FXQ_PROBE_VPMADDUBSW_TRIPLE", "vpmaddubsw + vpmaddwd + vpaddd (ymm, saturating)"),
    ("FXQ_PROBE_VPSIGNB_QUAD", "vpsignb + the triple (ymm, an exact AVX2 form)"),
    ("FXQ_PROBE_VPXOR_QUAD", "vpxor + the triple (ymm, fxq's exact AVX2)"),
    ("FXQ_PROBE_VPDPBUSD_YMM", "vpdpbusd ymm"),
    ("FXQ_PROBE_VPDPBUSD_ZMM", "vpdpbusd zmm"),
    ("FXQ_PROBE_VPDPBUSD_BCAST", "vpbroadcastd m32 + 2 vpdpbusd (zmm, fxq's AVX-512)"),
    ("FXQ_PROBE_TDPBUSD", "tdpbusd (AMX tiles, 16x16x64)"),
)
# which peak bounds which candidate: fxq's path -> probe; engines by what they run here
PATH_PEAK = {
    "avx2": "FXQ_PROBE_VPXOR_QUAD",
    "avx512": "FXQ_PROBE_VPDPBUSD_ZMM",
    "amx": "FXQ_PROBE_TDPBUSD",
}
# XNNPACK picks its avx512amx microkernels where the CPU has AMX (perf on such a CPU shows
# xnn_qs8_qc8w_igemm_minmax_fp32_ukernel_16x64c4__avx512amx for the seed layer)
XNNPACK_AMX_NOTE = (
    "LiteRT XNNPACK runs its avx512amx microkernels on a CPU with AMX: its % peak is against "
    "tdpbusd there"
)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_peaks(iters: int = 1_000_000, repeats: int = 5) -> dict[str, float]:
    """GMAC/s of each probe this CPU can run (best of ``repeats``)."""

    lib = kernels._ext().lib
    out = {}
    for name, _ in PROBES:
        best = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            macs = lib.fxq_probe_macs(getattr(lib, name), iters)
            dt = time.perf_counter() - t0
            if macs < 0:
                best = None
                break
            rate = macs / dt / 1e9
            best = rate if best is None else max(best, rate)
        if best is not None:
            out[name] = best
    return out


# ---------------------------------------------------------------------------------------------
# data: full-range per-channel weights


def make_data(seed: int = 0, c: int = 64, k: int = 64, r: int = 3, s: int = 3, hw: int = 56):
    """uint8 x uniform 0..255 (zero point 128); per-channel symmetric int8 weights quantized from
    normal floats, so each output channel has max ``|w|`` = 127; int32 bias; per-channel scales."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(1, c, hw, hw)).astype(np.uint8)
    wf = rng.normal(0, 1, size=(k, c, r, s))
    amax = np.abs(wf).reshape(k, -1).max(axis=1)
    w = np.clip(np.rint(wf / amax[:, None, None, None] * 127), -127, 127).astype(np.int8)
    w_scale = (amax / 127 * 0.05).astype(np.float32)
    bias = np.rint(rng.normal(0, 2000, size=k)).astype(np.int32)
    # the effective scale as engines form it (float32)
    scale = (np.float32(X_SCALE) * w_scale / np.float32(Y_SCALE)).astype(np.float64)
    return x, w, bias, w_scale, scale


def fc_data(n, c, k, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, c)).astype(np.uint8)
    wf = rng.normal(0, 1, size=(k, c))
    amax = np.abs(wf).max(axis=1)
    w = np.clip(np.rint(wf / amax[:, None] * 127), -127, 127).astype(np.int8)
    w_scale = (amax / 127 * 0.05).astype(np.float32)
    bias = np.rint(rng.normal(0, 2000, size=k)).astype(np.int32)
    scale = (np.float32(X_SCALE) * w_scale / np.float32(Y_SCALE)).astype(np.float64)
    return x, w, bias, w_scale, scale


def exactness(out, acc_exact, scale, zero_point=0, dtype="uint8", int8_shift=0):
    """(exact?, differing outputs, max ``|diff|``) of a peer's output against the exact accumulators
    requantized by the closest rounding scheme of the registry-free list below."""

    got = np.asarray(out).astype(np.int64) + int8_shift
    best = None
    for name in SCHEMES:
        try:
            want = requantize(acc_exact, scale, name, zero_point=zero_point, dtype=dtype, axis=1)
        except ValueError:
            continue
        d = np.abs(got - want.astype(np.int64))
        cand = (int((d != 0).sum()), int(d.max()) if d.size else 0)
        if best is None or cand < best:
            best = cand
    nbad, dmax = best
    return dmax <= 1, nbad, dmax


def preset_match(peer: str, y, x, w, bias, w_scale) -> tuple[str, int] | None:
    """(the fxq engine preset this CPU resolves for ``peer``, outputs where it differs from the
    peer's output) -- ``None`` for a peer without a preset here (LiteRT: int8 activations)."""
    from ..engines import presets

    if peer.startswith("ORT"):
        engine = "onnxruntime-u8u8" if peer.endswith("u8u8") else "onnxruntime"
    elif peer.startswith("torch"):
        engine = "torch-" + peer.rsplit(" ", 1)[1]
    else:
        return None
    kw = dict(x_scale=X_SCALE, w_scale=w_scale, y_scale=Y_SCALE, x_zero_point=128, padding=1)
    if engine.endswith("u8u8"):  # the peer's uint8 weights, zero point 128
        w, kw["w_zero_point"] = (w.astype(np.int16) + 128).astype(np.uint8), 128
    preset = presets.resolve(engine, w_dtype=w.dtype)
    got = presets.conv2d(x, w, bias, engine=preset.name, **kw)
    return preset.name, int((got != np.asarray(y)).sum())


# ---------------------------------------------------------------------------------------------
# peers (each returns {name: (run, output-as-NCHW-uint8-getter, note)} or notes why not)


def ort_candidates(x, w, bias, w_scale, notes):
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        notes.append(f"ONNX Runtime: not importable ({e})")
        return {}
    k = w.shape[0]
    out = {}
    for kind in ("u8s8", "u8u8"):
        wk = w if kind == "u8s8" else (w.astype(np.int16) + 128).astype(np.uint8)
        wzp = np.array(0, np.int8) if kind == "u8s8" else np.array(128, np.uint8)
        inits = [
            numpy_helper.from_array(np.array(X_SCALE, np.float32), "x_scale"),
            numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
            numpy_helper.from_array(wk, "w"),
            numpy_helper.from_array(w_scale.astype(np.float32), "w_scale"),
            numpy_helper.from_array(wzp, "w_zp"),
            numpy_helper.from_array(np.array(Y_SCALE, np.float32), "y_scale"),
            numpy_helper.from_array(np.array(0, np.uint8), "y_zp"),
            numpy_helper.from_array(bias, "b"),
        ]
        node = helper.make_node(
            "QLinearConv",
            ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"],
            ["y"],
            pads=[1, 1, 1, 1],
            kernel_shape=[3, 3],
        )
        graph = helper.make_graph(
            [node],
            "seed",
            [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, k, 56, 56])],
            initializer=inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        try:
            sess = ort.InferenceSession(
                model.SerializeToString(), so, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # noqa: BLE001
            notes.append(f"ONNX Runtime {kind}: {e}")
            continue
        feed = {"x": x}
        out[f"ORT {ort.__version__} QLinearConv {kind}"] = (
            lambda s=sess, feed=feed: s.run(None, feed)[0],
            0,
        )
    return out


def torch_candidates(x, w, bias, w_scale, notes):
    try:
        import torch
    except ImportError as e:
        notes.append(f"torch: not importable ({e}); `pip install torch==2.13.0`")
        return {}
    torch.set_num_threads(1)
    out = {}
    xf = torch.from_numpy((x.astype(np.float32) - 128) * X_SCALE)
    qx = torch.quantize_per_tensor(xf, X_SCALE, 128, torch.quint8)
    ws = torch.from_numpy(w_scale.astype(np.float64))
    wq = torch.quantize_per_channel(
        torch.from_numpy(w.astype(np.float32)) * ws.float()[:, None, None, None],
        ws,
        torch.zeros(w.shape[0], dtype=torch.int64),
        0,
        torch.qint8,
    )
    bf = torch.from_numpy(bias.astype(np.float32)) * X_SCALE * ws.float()
    for eng in ("fbgemm", "onednn"):
        if eng not in torch.backends.quantized.supported_engines:
            continue
        torch.backends.quantized.engine = eng
        m = torch.ao.nn.quantized.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
        m.set_weight_bias(wq, bf)
        m.scale, m.zero_point = Y_SCALE, 0

        def run(m=m, eng=eng):
            torch.backends.quantized.engine = eng
            with torch.no_grad():
                return m(qx).int_repr().numpy()

        try:
            run()
        except Exception as e:  # noqa: BLE001
            notes.append(f"torch {eng}: {e}")
            continue
        out[f"torch {torch.__version__} {eng}"] = (run, 0)
    return out


def litert_candidate(op, x_nchw_or_nc, w, bias, w_scale, out_shape_tfl, notes, *, same=True):
    """LiteRT (XNNPACK delegate) on int8 activations x - 128 with zero point 0 -- the same
    accumulators as uint8 with zero point 128; int8 output, zero point 0."""
    try:
        from ._tflite import build_model, interpreter
    except ImportError as e:
        notes.append(f"LiteRT: not importable ({e})")
        return None
    try:
        if op == "fc":
            xt = (x_nchw_or_nc.astype(np.int16) - 128).astype(np.int8)
            wt = w
        else:
            xt = (x_nchw_or_nc.astype(np.int16) - 128).astype(np.int8).transpose(0, 2, 3, 1).copy()
            wt = (
                w.transpose(1, 2, 3, 0).copy()
                if op == "depthwise"
                else w.transpose(0, 2, 3, 1).copy()
            )
        model = build_model(
            op, list(xt.shape), wt, bias, X_SCALE, w_scale, Y_SCALE, out_shape_tfl, same=same
        )
        run = interpreter(model)
        run(xt)
    except Exception as e:  # noqa: BLE001
        notes.append(f"LiteRT {op}: {e}")
        return None
    return lambda: run(xt)


# ---------------------------------------------------------------------------------------------
# timing


def _ratio(v: float, limit: float) -> str:
    """``v`` as "1.234x" for a target line, with more digits where three would print the limit
    itself for a value on the other side of it (1.0504 fails <= 1.05 and must not read 1.050x)."""
    for digits in (3, 4, 5, 6):
        text = f"{v:.{digits}f}x"
        if v == limit or text != f"{limit:.{digits}f}x":
            return text
    return f"{v!r}x"


def time_blocks(cands, rounds, block):
    """{name: [seconds]}: warm up, then ``block`` runs of one candidate, then the next, ``rounds`` times."""
    for f in cands.values():
        for _ in range(3):
            f()
    times = {n: [] for n in cands}
    clock = time.perf_counter
    for _ in range(rounds):
        for n, f in cands.items():
            f()
            ts = times[n]
            for _ in range(block):
                t0 = clock()
                f()
                ts.append(clock() - t0)
    return {n: statistics.median(v) for n, v in times.items()}


SECTIONS = ("seed", "requantize", "small")


def run(
    rounds: int = 10,
    block: int = 10,
    quick: bool = False,
    out=sys.stdout,
    compare: bool = True,
    only: str | None = None,
) -> dict:
    """Run everything and print the tables; returns the numbers (for :func:`plot`).

    ``compare=False`` times fxq_explore's own kernels only (no ONNX Runtime, torch or LiteRT
    peers, so no ratio to them and no engine target). ``only`` runs one section of
    :data:`SECTIONS` ("seed": the seed layer, "requantize": requantization alone, "small": the
    depthwise and FC layers vs LiteRT); the result has the same keys, the skipped sections'
    entries empty, and only the targets of the sections run."""

    if only is not None and only not in SECTIONS:
        raise ValueError(
            f"only must be one of {', '.join(map(repr, SECTIONS))} or None; got {only!r}"
        )
    sections = SECTIONS if only is None else (only,)
    if quick:
        rounds, block = 1, 3
    pr = lambda *a: print(*a, file=out)  # noqa: E731
    info = kernels.info()
    paths = [p for p in ("amx", "avx512", "avx2", "scalar") if p in info["available_paths"]]
    timed_paths = [p for p in paths if p != "scalar"] or ["scalar"]
    pr(f"CPU: {cpu_name()}; features: {', '.join(info['cpu_features'])}")
    pr(
        f"fxq SIMD paths available: {', '.join(paths)} (auto = {info['best_path']}); "
        f"flags: {info['compile_flags']}"
    )
    peaks = measure_peaks(200_000 if quick else 1_000_000)
    labels = dict(PROBES)
    pr(
        "\nMAC throughput peaks on this CPU (C probes, register operands unless a load is named, best of 5):"
    )
    for name, g in peaks.items():
        pr(f"  {labels[name]:<52} {g:7.1f} GMAC/s   seed-layer floor {SEED_MACS / g / 1e6:6.3f} ms")
    notes: list[str] = []

    cands: dict = {}
    exact: dict = {}
    matches: dict[str, tuple[str, int]] = {}
    med: dict = {}
    rows: list = []
    ort = None
    if "seed" in sections:
        # ---- seed layer
        x, w, bias, w_scale, scale = make_data()
        acc = conv2d_reference(x, w, bias, x_zero_point=128, padding=1)
        cands, exact = {}, {}
        for p in timed_paths:
            for scheme in kernels.FUSED_SCHEMES + (None,):
                layer = conv.Conv2d(
                    w,
                    bias,
                    x_zero_point=128,
                    padding=1,
                    scheme=scheme,
                    scale=None if scheme is None else scale,
                    path=p,
                )
                name = f"fxq Conv2d {scheme or 'int32 out'} [{p}]"
                cands[name] = lambda layer=layer: layer(x)
                got = layer(x)
                want = (
                    acc if scheme is None else requantize(acc, scale, scheme, dtype="uint8", axis=1)
                )
                exact[name] = (bool(np.array_equal(got, want)), int((got != want).sum()), 0)
        cands["fxq conv2d() one-shot tflite [auto]"] = lambda: conv.conv2d(
            x, w, bias, x_zero_point=128, padding=1, scheme="tflite", scale=scale
        )
        exact["fxq conv2d() one-shot tflite [auto]"] = exact.get(
            f"fxq Conv2d tflite [{timed_paths[0]}]"
        )
        peers = {}
        if compare:
            peers.update(ort_candidates(x, w, bias, w_scale, notes))
            peers.update(torch_candidates(x, w, bias, w_scale, notes))
            lr = litert_candidate("conv", x, w, bias, w_scale, [1, 56, 56, 64], notes)
            if lr is not None:
                peers["LiteRT XNNPACK CONV_2D (int8)"] = (lambda: lr().transpose(0, 3, 1, 2), 0)
        else:
            notes.append("peers not run (compare=False): no engine ratios or engine targets")
        for name, (f, _shift) in peers.items():
            y = np.asarray(f())
            if (
                y.dtype == np.int8
            ):  # int8 output, zero point 0 == uint8 clamped at 0 ... compare in int8
                want_dtype, zp = "int8", 0
            else:
                want_dtype, zp = "uint8", 0
            exact[name] = exactness(y, acc, scale, zero_point=zp, dtype=want_dtype)
            m = preset_match(name, y, x, w, bias, w_scale)
            if m is not None:
                matches[name] = m
            cands[name] = f
        med = time_blocks(cands, rounds, block)
        ort = next((v for k, v in med.items() if "u8s8" in k), None)
        rows = []
        pr(
            f"\nSeed layer 1x64x56x56 u8 (zp 128) * 64x64x3x3 s8 full-range per-channel, pad 1, "
            f"1 thread; {rounds}x{block} runs, medians:"
        )
        pr(
            f"{'candidate':<44} {'median ms':>9} {'GMAC/s':>7} {'% peak':>7} {'vs ORT u8s8':>11}  exact on full-range weights?"
        )
        for name, t in med.items():
            ms = t * 1e3
            g = SEED_MACS / t / 1e9
            path = name[name.rfind("[") + 1 : -1] if name.endswith("]") else None
            if path == "auto":
                path = info["best_path"]
            if path is None and name.startswith("LiteRT XNNPACK") and "amx" in paths:
                path = "amx"  # its avx512amx microkernels (XNNPACK_AMX_NOTE)
            peak = peaks.get(
                PATH_PEAK.get(
                    path,
                    "FXQ_PROBE_VPDPBUSD_ZMM"
                    if "FXQ_PROBE_VPDPBUSD_ZMM" in peaks
                    else "FXQ_PROBE_VPMADDUBSW_TRIPLE",
                )
            )
            ex = exact.get(name)
            ex_s = (
                "-"
                if ex is None
                else ("yes" if ex[0] else f"no: {ex[1]} outputs differ, max {ex[2]}")
            )
            if ex is not None and ex[0] and ex[1]:
                ex_s = f"yes (rounding differs by 1 in {ex[1]})"
            rows.append(
                dict(
                    name=name,
                    ms=ms,
                    gmacs=g,
                    peak=peak,
                    vs_ort=ms / (ort * 1e3) if ort else None,
                    exact=ex_s,
                    path=path,
                )
            )
            pr(
                f"{name:<44} {ms:9.3f} {g:7.1f} {100 * g / peak if peak else float('nan'):6.1f}% "
                f"{(ms / (ort * 1e3)) if ort else float('nan'):11.3f}  {ex_s}"
            )

        if matches:
            pr(
                "\nEach engine's output against fxq_explore's preset for it on this CPU (fx.conv2d(engine=...)):"
            )
            for name, (preset, ndiff) in matches.items():
                verdict = "bit-exact" if ndiff == 0 else f"{ndiff} outputs differ"
                pr(f"  {name:<44} == fxq preset {preset:<20} {verdict}")

    rqm: dict = {}
    if "requantize" in sections:
        # ---- requantization alone
        acc32 = acc.astype(np.int32)
        rq = {
            f"requantize(backend='c') {s}": (
                lambda s=s: __import__("fxq_explore").requantize(acc32, 0.0018843, s, backend="c")
            )
            for s in kernels.FUSED_SCHEMES
        }
        rq["numpy copy of the int32 array"] = acc32.copy
        rqm = time_blocks(rq, rounds, 20)
        copy_t = rqm["numpy copy of the int32 array"]
        pr("\nRequantization alone, 200,704 int32 accumulators, whole Python call:")
        for k2, t in rqm.items():
            pr(f"  {k2:<44} {t * 1e6:8.1f} us  {t / copy_t:5.2f}x copy")

    small: dict = {}
    if "small" in sections:
        # ---- depthwise and FC vs LiteRT XNNPACK
        pr(
            "\nDepthwise 3x3 (MobileNet-like 1x64x56x56, pad 1) and fully connected, vs LiteRT "
            "XNNPACK; 'digits': the layer shapes of the committed digits models "
            "(scripts/make_models.py):"
        )
        small = {}
        rng = np.random.default_rng(5)

        def dw_data(c, hw):
            x = rng.integers(0, 256, size=(1, c, hw, hw)).astype(np.uint8)
            wf = rng.normal(0, 1, size=(c, 1, 3, 3))
            am = np.abs(wf).reshape(c, -1).max(axis=1)
            w = np.clip(np.rint(wf / am[:, None, None, None] * 127), -127, 127).astype(np.int8)
            ws = (am / 127 * 0.05).astype(np.float32)
            b = np.rint(rng.normal(0, 500, size=c)).astype(np.int32)
            sc = (np.float32(X_SCALE) * ws / np.float32(Y_SCALE)).astype(np.float64)
            return x, w, b, ws, sc

        shapes: list = [("depthwise 56x56x64 3x3", ("dw", 64, 56))]
        shapes += [
            (f"FC N={n} {c}->{k}", (n, c, k))
            for n, c, k in ((1, 512, 10), (1, 1024, 1000), (8, 256, 128), (1, 512, 32))
        ]
        shapes += [("digits dw 8x8x16 3x3", ("dw", 16, 8)), ("digits FC N=1 16->10", (1, 16, 10))]
        for label, fc in shapes:
            group = {}
            if fc[0] == "dw":
                _, dc, hw = fc
                dx, dw, db, dws, dscale = dw_data(dc, hw)
                dacc = conv2d_reference(dx, dw, db, x_zero_point=128, padding=1, groups=dc)
                for p in timed_paths:
                    layer = conv.Conv2d(
                        dw,
                        db,
                        x_zero_point=128,
                        padding=1,
                        groups=dc,
                        scheme="tflite",
                        scale=dscale,
                        path=p,
                    )
                    assert np.array_equal(
                        layer(dx), requantize(dacc, dscale, "tflite", dtype="uint8", axis=1)
                    )
                    group[f"fxq Conv2d(groups={dc}) tflite [{p}]"] = lambda layer=layer, dx=dx: (
                        layer(dx)
                    )
                f = (
                    litert_candidate("depthwise", dx, dw, db, dws, [1, hw, hw, dc], notes)
                    if compare
                    else None
                )
            else:
                n, c, k = fc
                fx_, fw, fb, fws, fsc = fc_data(n, c, k)
                facc = fully_connected_reference(fx_, fw, fb, x_zero_point=128)
                for p in timed_paths:
                    layer = conv.FullyConnected(
                        fw, fb, x_zero_point=128, scheme="tflite", scale=fsc, path=p
                    )
                    assert np.array_equal(
                        layer(fx_), requantize(facc, fsc, "tflite", dtype="uint8", axis=1)
                    )
                    group[f"fxq FullyConnected tflite [{p}]"] = lambda layer=layer, fx_=fx_: layer(
                        fx_
                    )
                f = litert_candidate("fc", fx_, fw, fb, fws, [n, k], notes) if compare else None
            if f is not None:
                group["LiteRT XNNPACK"] = f
            gm = time_blocks(group, rounds, block * 5)
            ref = gm.get("LiteRT XNNPACK")
            for name, t in gm.items():
                rel = f"{t / ref:6.3f}x XNNPACK" if ref else ""
                pr(f"  {label:<24} {name:<40} {t * 1e6:9.1f} us  {rel}")
                small[(label, name)] = (t, t / ref if ref else None)

    # ---- targets
    pr("\nTargets (issue 12; ratios from this run):")
    targets = []
    best = info["best_path"]
    fused = [r for r in rows if r["name"].startswith("fxq Conv2d") and "int32" not in r["name"]]
    u8u8 = next((v for k2, v in med.items() if "u8u8" in k2), None)
    xnn = med.get("LiteRT XNNPACK CONV_2D (int8)")
    for p, label in (("avx512", "AVX-512 VNNI"), ("amx", "AMX")):
        rp = [r for r in fused if r["path"] == p]
        if p in paths and ort and rp:
            worst = max(r["vs_ort"] for r in rp)
            targets.append(
                (
                    f"{label}: fxq [{p}] seed layer <= 0.9x ORT u8s8 (worst fused scheme)",
                    worst <= 0.9,
                    _ratio(worst, 0.9),
                )
            )
    bcast = peaks.get("FXQ_PROBE_VPDPBUSD_BCAST")
    r512 = [r for r in fused if r["path"] == "avx512"]
    if bcast and r512:
        worst_ms = max(r["ms"] for r in r512)
        form_floor = SEED_MACS / bcast / 1e6
        note = (
            f"fxq [avx512] worst fused scheme {worst_ms:.3f} ms = {100 * form_floor / worst_ms:.0f} % "
            f"of its tile form's floor ({form_floor:.3f} ms: vpbroadcastd m32 + 2 vpdpbusd zmm, "
            f"{100 * bcast / peaks['FXQ_PROBE_VPDPBUSD_ZMM']:.0f} % of the register-only vpdpbusd "
            "rate here)"
        )
        if ort:
            need = 0.9 * ort * 1e3
            note += (
                f"; <= 0.9x ORT means {need:.3f} ms, {100 * form_floor / need:.0f} % of that floor "
                "with the epilogue, the input packing and the call inside it"
            )
        notes.append(note)
    if "amx" in paths and xnn:
        worst_ms = max(r["ms"] for r in fused if r["path"] == "amx")
        v = worst_ms / (xnn * 1e3)
        targets.append(
            (
                "AMX: fxq [amx] seed layer <= 1.0x LiteRT XNNPACK (its AMX kernel; worst scheme)",
                v <= 1.0,
                _ratio(v, 1.0),
            )
        )
        notes.append(XNNPACK_AMX_NOTE)
    r2 = [r for r in fused if r["path"] == "avx2"]
    if "avx2" in paths and r2:
        quad = peaks.get("FXQ_PROBE_VPMADDUBSW_TRIPLE")  # the floor the issue names
        worst_ms = max(r["ms"] for r in r2)
        floor = SEED_MACS / quad / 1e6 if quad else None
        if floor:
            targets.append(
                (
                    "AVX2: >= 80 % of the vpmaddubsw-triple floor (worst fused scheme)",
                    floor / worst_ms >= 0.8,
                    f"{100 * floor / worst_ms:.0f} %",
                )
            )
            form = peaks.get("FXQ_PROBE_VPXOR_QUAD")
            if form:
                notes.append(
                    f"fxq [avx2] worst fused scheme {worst_ms:.3f} ms = "
                    f"{100 * SEED_MACS / form / 1e6 / worst_ms:.0f} % of its own form's floor "
                    f"(vpxor + the triple, {SEED_MACS / form / 1e6:.3f} ms); a kernel at that "
                    f"floor would reach {100 * form / quad:.0f} % of the triple floor"
                )
        if best == "avx2" and ort:
            targets.append(
                (
                    "AVX2 CPU: fxq <= 1.0x ORT u8s8",
                    max(r["vs_ort"] for r in r2) <= 1.0,
                    _ratio(max(r["vs_ort"] for r in r2), 1.0),
                )
            )
        for peer, t in (("ORT u8u8", u8u8), ("LiteRT XNNPACK", xnn)):
            if t and best == "avx2":
                v = worst_ms / (t * 1e3)
                targets.append((f"AVX2 CPU: fxq <= 0.7x {peer}", v <= 0.7, _ratio(v, 0.7)))
        if best != "avx2":
            notes.append(
                "AVX2-vs-engine targets need an AVX2-only CPU: here the engines run their "
                "AVX-512 kernels, so only fxq's AVX2 path vs the probe floors is measured"
            )
    for p in timed_paths:
        fl = med.get(f"fxq Conv2d float32_rne [{p}]")
        for s in ("tflite", "tflite_single"):
            t = med.get(f"fxq Conv2d {s} [{p}]")
            if fl and t:
                targets.append(
                    (
                        f"[{p}] fused {s} <= 1.05x fused float32_rne",
                        t / fl <= 1.05,
                        _ratio(t / fl, 1.05),
                    )
                )
    if rqm:
        worst_rq = (
            max(v for k2, v in rqm.items() if k2.startswith("requantize"))
            / rqm["numpy copy of the int32 array"]
        )
        targets.append(
            (
                "requantize(backend='c') whole call <= 3x numpy copy (worst scheme)",
                worst_rq <= 3.0,
                f"{worst_rq:.2f}x",
            )
        )
    for (label, name), (_t, rel) in small.items():
        if rel is not None and name.startswith("fxq") and name.endswith(f"[{best}]"):
            targets.append((f"{label}: fxq [{best}] <= 1.0x XNNPACK", rel <= 1.0, _ratio(rel, 1.0)))
    for t, ok, v in targets:
        pr(f"  {'MET    ' if ok else 'NOT MET'}  {t}: {v}")
    zmm = peaks.get("FXQ_PROBE_VPDPBUSD_ZMM")
    for r in rows:
        if zmm and r["gmacs"] > zmm and r["path"] != "amx":
            notes.append(
                f"{r['name']} runs above the vpdpbusd zmm peak: it uses a wider unit "
                "than AVX-512 VNNI here (AMX TDPBUSD where the CPU has it)"
            )
    if notes:
        pr("\nNotes:")
        for n_ in notes:
            pr(f"  - {n_}")
    return dict(
        cpu=cpu_name(),
        rounds=rounds,
        block=block,
        bit_exact={k: bool(v[0]) for k, v in exact.items() if v is not None},
        preset_match={k: {"preset": p, "differ": n} for k, (p, n) in matches.items()},
        info=info,
        peaks=peaks,
        rows=rows,
        requantize=rqm,
        small=small,
        targets=targets,
        notes=notes,
    )


def main(argv=None) -> dict:
    import argparse

    ap = argparse.ArgumentParser(prog="fxq-explore bench", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3")
    ap.add_argument(
        "--only",
        choices=SECTIONS,
        help="one section: the seed layer, requantization alone, or the small layers "
        "(depthwise and FC vs LiteRT XNNPACK)",
    )
    ap.add_argument(
        "--json", action="store_true", help="the numbers as JSON on stdout (the tables on stderr)"
    )
    ap.add_argument(
        "--no-compare",
        action="store_true",
        help="fxq_explore's kernels only: skip the ONNX Runtime, torch and LiteRT peers",
    )
    args = ap.parse_args(argv)
    result = run(
        args.rounds,
        args.block,
        args.quick,
        out=sys.stderr if args.json else sys.stdout,
        compare=not args.no_compare,
        only=args.only,
    )
    if args.json:
        import json

        small = {f"{k[0]} | {k[1]}": v for k, v in result["small"].items()}
        print(json.dumps({**result, "small": small}, indent=1, default=str))
    return result
