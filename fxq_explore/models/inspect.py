"""Every requantization site of a model: scales, each engine's multiplier, hazards."""

from __future__ import annotations

import json

import numpy as np

from ..core.multiplier import decompose as _decompose
from ..requantization import requantize as _requantize
from . import presets
from .ops import gemm_scale, qrange
from .replay import as_graph

_TFL_GEMM = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def _sites(graph):
    """(node, s_in, s_w[], s_out, zp_in, in dtype, out dtype, w int array (O, ...), bias|None,
    bias scale|None) for every conv / fc requantization site."""
    from .load_onnx import const_scalar

    for n in graph.nodes:
        if graph.format == "tflite" and n.op in _TFL_GEMM:
            x, w = (graph.tensor(n.inputs[0]), graph.tensor(n.inputs[1]))
            y = graph.tensor(n.outputs[0])
            wd = graph.const(w.name).astype(np.int64)
            if n.op == "DEPTHWISE_CONV_2D":
                wd = wd[0].transpose(2, 0, 1)
            b = graph.tensor(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
            yield (n, float(x.scale[0]), w.scale, float(y.scale[0]), int(x.zero_point[0]),
                   x.dtype, y.dtype, wd, None if b is None else graph.const(b.name),
                   None if b is None or b.scale is None else b.scale)  # fmt: skip
        elif graph.format == "onnx" and n.op in ("QLinearConv", "QGemm", "QLinearMatMul"):
            i = n.inputs
            sx, zx = float(const_scalar(graph, i[1])), int(const_scalar(graph, i[2]))
            xdt = str(np.asarray(graph.const(i[2])).dtype) if i[2] else "uint8"
            w = graph.const(i[3]).astype(np.int64)
            sw = np.asarray(graph.const(i[4]), dtype=np.float32).reshape(-1)
            zw = np.asarray(graph.const(i[5]), dtype=np.int64).reshape(-1)
            if n.op == "QLinearConv":
                sy, zy_name, b = const_scalar(graph, i[6]), i[7], (i[8] if len(i) > 8 else "")
                w = w - (zw.reshape(-1, 1, 1, 1) if zw.size > 1 else zw[0])
            else:
                k_off = 7 if n.op == "QGemm" else 6
                sy, zy_name = const_scalar(graph, i[k_off]), i[k_off + 1]
                b = i[6] if n.op == "QGemm" and len(i) > 6 else ""
                w = (w.T if n.op == "QGemm" and n.attrs.get("transB", 0) else w).T  # (N, K)
                w = w - (zw.reshape(-1, 1) if zw.size > 1 else zw[0])
            ydt = str(np.asarray(graph.const(zy_name)).dtype)
            yield (n, sx, sw, float(sy), zx, xdt, ydt, w, graph.const(b) if b else None, None)


def _pair_sum(w_oc: np.ndarray) -> int:
    """Worst-case |u8 x s8| pair sum for one output channel (channels paired as (c, c+1) per
    tap, as vpmaddubsw pairs adjacent bytes): 255 * max(|w_c| + |w_c+1|)."""
    w = np.abs(w_oc.reshape(w_oc.shape[0], -1)) if w_oc.ndim > 1 else np.abs(w_oc)[None]
    if w.shape[0] < 2:
        return int(255 * w.max())
    pairs = w[: w.shape[0] // 2 * 2].reshape(-1, 2, *w.shape[1:]).sum(axis=1)
    return int(255 * max(pairs.max(), w.max()))


def _disagreement(scale: float, rng, n: int = 2048) -> dict[str, float]:
    """Fraction of accumulators (uniform over the output range) on which each pair of
    engine schemes disagrees -- the predicted +-1 rate for this channel."""
    span = int(min(2**31 - 1, max(4, 256 / max(scale, 1e-12))))
    acc = rng.integers(-span, span, n)
    outs = {
        s: _requantize(acc, scale, s, dtype="int32")
        for s in (presets.TFLITE, presets.TFLITE_OPTIMIZED, presets.FLOAT32_RNE)
    }
    return {
        "p_ref_vs_opt": float((outs[presets.TFLITE] != outs[presets.TFLITE_OPTIMIZED]).mean()),
        "p_ref_vs_fp32": float((outs[presets.TFLITE] != outs[presets.FLOAT32_RNE]).mean()),
    }


def inspect(model, *, seed: int = 0):
    """One row per requantization site and output channel.

    Columns: ``layer, op, channel, s_in, s_w, s_out, scale`` (double, TFLite's derivation),
    ``scale_f32`` (XNNPACK / ORT binary32 derivation), ``tflite_multiplier, tflite_shift``
    (QuantizeMultiplier), ``xnnpack_mantissa, xnnpack_right_shift`` (float32 mantissa),
    ``tvm_multiplier, tvm_shift``, hazards ``flushed_to_zero``, ``scale_ge_1``,
    ``bias_overflow`` (``abs(bias)`` + the worst-case ``abs(sum)`` > 2^31 - 1), ``bias_scale_mismatch``,
    ``pair_sum_max`` and ``pair_saturation_risk`` (u8 activations x s8 weights on x86 without
    VNNI: a pair sum above 32767), and the predicted disagreement rates ``p_ref_vs_opt``,
    ``p_ref_vs_fp32`` (TFLite reference vs optimized / vs float32 requantization).

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    graph = as_graph(model)
    rng = np.random.default_rng(seed)
    rows = []
    for n, sx, sw, sy, zx, xdt, _ydt, w, bias, bscale in _sites(graph):
        sw = np.atleast_1d(np.asarray(sw, dtype=np.float32))
        scale = gemm_scale(sx, sw, sy, "double")
        s32 = gemm_scale(sx, sw, sy, "float32")
        tfl = _decompose(scale, convention="tflite")
        tvm = _decompose(scale, convention="tvm")
        xnn = _decompose(s32.astype(np.float64), bits=25, convention="xnnpack")
        lo, hi = qrange(xdt)
        xmax = max(hi - zx, zx - lo)
        n_out = w.shape[0]
        for c in range(n_out):
            k = c if sw.size > 1 else 0
            wc = w[c]
            worst = int(np.abs(wc).sum()) * xmax
            b = 0 if bias is None else int(np.asarray(bias).reshape(-1)[c])
            row = {
                "layer": n.name,
                "op": n.op,
                "channel": c,
                "s_in": sx,
                "s_w": float(sw[k]),
                "s_out": sy,
                "scale": float(np.atleast_1d(scale)[k]),
                "scale_f32": float(np.atleast_1d(s32)[k]),
                "tflite_multiplier": int(np.atleast_1d(tfl.multiplier)[k]),
                "tflite_shift": int(np.atleast_1d(tfl.shift)[k]),
                "xnnpack_mantissa": int(np.atleast_1d(xnn.multiplier)[k]),
                "xnnpack_right_shift": int(np.atleast_1d(xnn.right_shift)[k]),
                "tvm_multiplier": int(np.atleast_1d(tvm.multiplier)[k]),
                "tvm_shift": int(np.atleast_1d(tvm.shift)[k]),
                "flushed_to_zero": int(np.atleast_1d(tfl.multiplier)[k]) == 0,
                "scale_ge_1": float(np.atleast_1d(scale)[k]) >= 1.0,
                "bias_overflow": abs(b) + worst > 2**31 - 1,
                "bias_scale_mismatch": bool(
                    bscale is not None
                    and abs(float(np.atleast_1d(bscale)[k]) - sx * float(sw[k]))
                    > 1e-6 * sx * float(sw[k])
                ),
                "pair_sum_max": _pair_sum(wc) if xdt == "uint8" else 0,
            }
            row["pair_saturation_risk"] = row["pair_sum_max"] > 32767
            row.update(_disagreement(row["scale"], rng, 512))
            rows.append(row)
    return pd.DataFrame(rows)


def to_json(df) -> str:
    """The inspect table as JSON (one object per site and channel)."""
    return json.dumps({"sites": json.loads(df.to_json(orient="records"))}, indent=1)


def plot_channels(df, column: str = "scale", ax=None):
    """Per-channel plot of one inspect column, one marker series per layer (log y)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for layer, part in df.groupby("layer", sort=False):
        ax.plot(part["channel"], part[column], "o-", ms=3, label=f"{layer}")
    if (df[column] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("output channel")
    ax.set_ylabel(column)
    ax.legend(fontsize=7)
    return ax
