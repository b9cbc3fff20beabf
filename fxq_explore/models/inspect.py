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
    bias scale|None, route) for every conv / fc requantization site; ``route`` is
    ``"integer"`` (a quantized kernel) or ``"float"`` (a QDQ group ORT runs in float)."""
    from .load_onnx import const_scalar

    producer = {o: n for n in graph.nodes for o in n.outputs}
    consumers: dict[str, list] = {}
    for n in graph.nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
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
                   None if b is None or b.scale is None else b.scale, "integer")  # fmt: skip
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
            yield (n, sx, sw, float(sy), zx, xdt, ydt, w, graph.const(b) if b else None, None,
                   "integer")  # fmt: skip
        elif graph.format == "onnx" and n.op in _ONNX_FLOAT_GEMM:
            site = _float_site(graph, n, producer, consumers)
            if site is not None:
                yield site


#: float ops that a QDQ model can leave between DequantizeLinear and QuantizeLinear when ONNX
#: Runtime's fusion does not take the group (the requantization then happens in float)
_ONNX_FLOAT_GEMM = ("Conv", "Gemm", "MatMul")


def _float_site(graph, n, producer, consumers):
    """The site of a DequantizeLinear -> Conv / Gemm / MatMul -> QuantizeLinear group that ORT
    runs in float (not fused into a QLinear kernel), or None if ``n`` is not such a group."""
    from .load_onnx import const_scalar

    dq_x, dq_w = (producer.get(n.inputs[0]), producer.get(n.inputs[1]))
    outs = consumers.get(n.outputs[0], [])
    if not (
        dq_x is not None
        and dq_w is not None
        and dq_x.op == dq_w.op == "DequantizeLinear"
        and graph.tensor(dq_w.inputs[0]).is_const
        and len(outs) == 1
        and outs[0].op == "QuantizeLinear"
    ):
        return None
    q = outs[0]
    xi, wi = dq_x.inputs, dq_w.inputs
    sx, zx = (
        float(const_scalar(graph, xi[1])),
        int(const_scalar(graph, xi[2] if len(xi) > 2 else "")),
    )
    # the activation type is the zero point's (ONNX: uint8 when the zero point is omitted)
    xdt = str(np.asarray(graph.const(xi[2])).dtype) if len(xi) > 2 and xi[2] else "uint8"
    w = graph.const(wi[0]).astype(np.int64)
    sw = np.asarray(graph.const(wi[1]), dtype=np.float32).reshape(-1)
    zw = (
        np.asarray(graph.const(wi[2]), dtype=np.int64).reshape(-1)
        if len(wi) > 2 and wi[2]
        else np.zeros(1, np.int64)
    )
    if n.op == "Conv":
        w = w - (zw.reshape(-1, 1, 1, 1) if zw.size > 1 else zw[0])
    else:  # (K, N) -> (N, K), one row per output channel
        w = (w.T if n.op == "Gemm" and n.attrs.get("transB", 0) else w).T
        w = w - (zw.reshape(-1, 1) if zw.size > 1 else zw[0])
    bias = bscale = None
    if len(n.inputs) > 2 and n.inputs[2]:
        dq_b = producer.get(n.inputs[2])
        if (
            dq_b is not None
            and dq_b.op == "DequantizeLinear"
            and graph.tensor(dq_b.inputs[0]).is_const
        ):
            bias = graph.const(dq_b.inputs[0]).astype(np.int64).reshape(-1)
            bscale = np.asarray(graph.const(dq_b.inputs[1]), dtype=np.float32).reshape(-1)
    sy = float(const_scalar(graph, q.inputs[1]))
    ydt = (
        str(np.asarray(graph.const(q.inputs[2])).dtype)
        if len(q.inputs) > 2 and q.inputs[2]
        else "uint8"
    )
    return (n, sx, sw, sy, zx, xdt, ydt, w, bias, bscale, "float")


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

    Columns: ``layer, op``, ``route`` (``"integer"``: a quantized kernel requantizes the
    accumulators; ``"float"``: a QDQ group DequantizeLinear -> Conv / Gemm / MatMul ->
    QuantizeLinear that ONNX Runtime did not fuse and runs in float, so only the final
    QuantizeLinear rounds), ``channel, s_in, s_w, s_out, scale`` (double, TFLite's derivation),
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
    for n, sx, sw, sy, zx, xdt, _ydt, w, bias, bscale, route in _sites(graph):
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
                "route": route,
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
                # int16 pairs exist only in the integer kernels (u8 activations)
                "pair_sum_max": _pair_sum(wc) if xdt == "uint8" and route == "integer" else 0,
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
