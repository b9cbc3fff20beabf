"""Op-by-op integer arithmetic of each engine family, as read from the engines' sources.

Each function takes the graph, the node, the environment of computed tensors and the engine
recipe (a row of :data:`~fxq_explore.models.presets.ENGINES`) and returns ``{name: array}``.
Requantization sites also report ``(acc, scale, zero_point)`` in ``sites`` for fingerprint
and inspect. Facts used (restated, no code copied):

TFLite (LiteRT ``tflite/kernels``):

* conv / depthwise per channel (``kernel_util.cc`` PopulateConvolutionQuantizationParams):
  scale_c = double(s_in) * double(s_w[c]) / double(s_out) -> QuantizeMultiplier;
  reference ``integer_ops/conv.h``: MultiplyByQuantizedMultiplier (double rounding, RHA
  at the shift); optimized: ruy's AVX-512 kernel ``kernel_avx512.cc`` (RHU @2^31, then a
  RHU rounding right shift).
* FULLY_CONNECTED int8 per tensor, reference (``fully_connected.cc`` FullyConnectedInt8 ->
  ``reference/integer_ops/fully_connected.h``): ``round(double(acc) * scale)`` in double,
  ties away from zero; optimized: ruy (as conv).
* ADD int8 (``add.cc`` Prepare): left_shift 20, twice_max = 2*max(s1, s2), input
  multipliers s_i / twice_max, output multiplier twice_max / (2^20 * s_out), all by
  QuantizeMultiplierSmallerThanOneExp; reference ``integer_ops/add.h``: each input
  ``MBQMSmallerThanOneExp((x - zp) << 20)``, sum, MBQMSmallerThanOneExp, + zp, clamp.
  optimized ``optimized/integer_ops/add.h`` AddElementwiseInt8 (NEON, on x86 via NEON_2_SSE
  -- ``neon_check.h`` defines USE_NEON with SSE4.1): the input right shift is folded into
  the left shift (``x << (20 + shift_i)``) then SQRDMULH, no separate rounding; output
  SQRDMULH + gemmlowp RoundingDivideByPOT; 16 lanes at a time, the tail as the reference.
* MEAN int8, keep_dims=False (``reduce.cc`` EvalMean -> reference QuantizedMeanOrSum, for
  both kernel types): multiplier = QuantizeMultiplier(s_in / s_out); shift_n =
  min(floor(log2 N), 32, 31 + shift); multiplier = (multiplier << shift_n) // N;
  shift -= shift_n; out = MBQM(sum(x) - zp_in * N) + zp_out, clamp.

XNNPACK (google/XNNPACK ``src``):

* conv / FC QS8 and QC8W (``operators/convolution-nhwc.c`` init_requantization_scale_*):
  float32 scale = s_in * s_w[c] / s_out (binary32, in that order); fp32 requantization
  (clamp in float, round to nearest even, + zp).
* add QS8 (``microparams-init.c`` xnn_init_qs8_add_minmax_scalar_params): r_a = f32(s_a/s_out),
  shift = 20 - exponent(max(r_a, r_b)), m_a = lrintf(r_a * 2^shift), bias = 2^(shift-1) -
  m_a zp_a - m_b zp_b; out = asr(bias + a m_a + b m_b, shift) + zp_out, clamp.
* mean QS8 (``operators/reduce-nd.c``, ``microparams-init.c`` xnn_init/update_qs8_reduce,
  ``reference-utils.h`` quantize): int32 sum of raw x; inv = f32(f32(s_in/s_out) * f32(1/N));
  zp' = f32(zp_out - f32(N*zp_in) * inv); out = nearbyint(f32(sum) * inv + zp'), saturate.

ONNX Runtime (microsoft/onnxruntime):

* QLinearConv / QGemm: float scale = f32(f32(s_x * s_w[c]) / s_y); MlasRequantizeOutput
  (float multiply, clamp, RNE, + zp). Accumulation as the engine row's ``accumulate``:
  exact (VNNI, and every s8s8 / u8u8 kernel), or for u8 x s8 without VNNI MLAS's int16 pair
  saturation (:mod:`fxq_explore.kernels.accumulate` ``mlas_u8s8``: flat-K pairs of the
  ``(kh, kw, c)`` im2col / ConvSym order, depthwise exact; QGemm and QLinearMatMul pair
  adjacent k in the same QGEMM kernel). Dilated convolutions are refused under it.
* QLinearAdd (``mlas/lib/intrinsics/avx2/qladd_avx2.cpp``): r_a = f32(s_a/s_c), r_b likewise,
  fixed = f32(zp_c - (r_a zp_a + r_b zp_b)); v = fma(a, r_a, fma(b, r_b, fixed)); cvtps
  (RNE), saturating packs.
* QLinearGlobalAveragePool (``mlas/lib/qlgavgpool.cpp``): acc = sum(x) - zp_x * N, scale =
  f32(s_x / f32(s_y * N)), MlasRequantizeOutput.
* QuantizeLinear: saturate(RNE(x / s) + zp) in float32; DequantizeLinear: (q - zp) * s.
"""

from __future__ import annotations

import numpy as np

from ..core.fixedpoint import (
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from ..core.multiplier import decompose as _decompose
from ..core.validate import dtype_range
from ..engines import presets as _engine_presets
from ..kernels.accumulate import get_model
from ..requantization import requantize as _requantize
from . import mlas, presets
from .ir import Graph, Node, UnsupportedOpError
from .kernels import conv_nchw_exact, conv_nhwc, same_pads

F32 = np.float32
_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": None}


def qrange(dtype: str):
    """(qmin, qmax) of a storage dtype of the formats (int32: None, no clamp)."""
    return _RANGES[dtype]


def requant_dtype(tensor, dtype: str) -> str:
    """The type an output tensor is requantized to: its storage ``dtype``, or the narrower
    ``tensor.qdtype`` of an in-memory graph (``"uint4"`` stored in ``"uint8"``).

    Raises ValueError if ``qdtype`` is not a narrower integer type stored in ``dtype``. The
    loaders never set ``qdtype``, so a model file always gets ``dtype`` itself.
    """
    q = None if tensor is None else tensor.qdtype
    if q is None:
        return dtype
    _, _, storage, bits, _ = dtype_range("qdtype", q)
    if np.dtype(storage).name != dtype or bits >= 8 * np.dtype(storage).itemsize:
        raise ValueError(
            f"tensor {tensor.name!r}: qdtype {q!r} must be an integer type narrower than its "
            f"storage dtype {dtype!r} and stored in it (e.g. 'uint4' in 'uint8')"
        )
    return q


def narrow_range(dtype: str):
    """(qmin, qmax) of a storage dtype or of a narrower ``qdtype`` such as ``"uint4"``."""
    if dtype in _RANGES:
        return _RANGES[dtype]
    qmin, qmax = dtype_range("dtype", dtype)[:2]
    return qmin, qmax


def tflite_round(x):
    """TfLiteRound / std::round: half away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def activation_range(act: str, scale: float, zp: int, dtype: str):
    """CalculateActivationRangeQuantized (TFLite): the clamp for a fused activation."""
    qmin, qmax = qrange(dtype)
    s = F32(scale)

    def q(v):
        return int(zp + tflite_round(F32(v) / s))

    if act == "NONE":
        return qmin, qmax
    if act == "RELU":
        return max(qmin, q(0.0)), qmax
    if act == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"activation {act!r}")


def requant(acc, scale, scheme, zp, dtype, axis=None):
    """The requantization step: fxq_explore.requantize, or the reference FC double path."""
    scale = np.asarray(scale, dtype=np.float64)
    if scheme == "double_round_half_away":
        s = scale if axis is None else scale.reshape([-1 if i == axis % acc.ndim else 1
                                                       for i in range(acc.ndim)])  # fmt: skip
        v = tflite_round(acc.astype(np.float64) * s) + zp
        lo, hi = qrange(dtype)
        return np.clip(v, lo, hi).astype(dtype)
    if scale.size == 1:
        return _requantize(acc, float(scale.reshape(())), scheme, zero_point=int(zp),
                             dtype=dtype)  # fmt: skip
    return _requantize(acc, scale, scheme, zero_point=int(zp), dtype=dtype, axis=axis)


def gemm_scale(s_in, s_w, s_out, how: str):
    """Effective per-channel scale as each engine derives it.

    ``how``: ``"double"`` (TFLite: the float32 scales widened, ``s_in * s_w / s_out`` in
    double), ``"float32"`` (XNNPACK, ONNX Runtime: the same in binary32) or ``"float64"`` (the
    scales *as given*, in double, without rounding them to float32 first: for in-memory graphs
    whose scales are float64, ``fxq_explore.studies.e2e``; on float32 scales it equals
    ``"double"``).
    """
    if how == "float64":
        s_w64 = np.atleast_1d(np.asarray(s_w, dtype=np.float64))
        return np.float64(s_in) * s_w64 / np.float64(s_out)
    s_w = np.atleast_1d(np.asarray(s_w, dtype=np.float32))
    if how == "double":
        return float(np.float32(s_in)) * s_w.astype(np.float64) / float(np.float32(s_out))
    return ((F32(s_in) * s_w) / F32(s_out)).astype(np.float32)


def mbqm(x, q, e):
    """TFLite MultiplyByQuantizedMultiplier (double rounding) with raw (q, e)."""
    x = np.asarray(x, dtype=np.int64)
    left, right = max(e, 0), max(-e, 0)
    y = saturating_rounding_doubling_high_mul(x * (1 << left), q)
    return rounding_divide_by_pot(y, right)


def qmul(scale: float):
    """QuantizeMultiplier(double) -> (multiplier, shift) via fxq_explore.decompose."""
    d = _decompose(float(scale), convention="tflite")
    return int(np.asarray(d.multiplier)), int(np.asarray(d.shift))


# ---------------------------------------------------------------------------------------------
# TFLite


def _t(graph, name):
    return graph.tensor(name)


def tfl_conv(graph: Graph, node: Node, env, eng, sites):
    x_t, w_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.inputs[1]), _t(graph, node.outputs[0])
    b_name = node.inputs[2] if len(node.inputs) > 2 else ""
    if x_t.dtype != "int8" or w_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{x_t.dtype} x {w_t.dtype} (int8 only)")
    x = env[x_t.name].astype(np.int64) - int(x_t.zero_point[0])
    w = graph.const(w_t.name).astype(np.int64)
    a = node.attrs
    if node.op == "DEPTHWISE_CONV_2D":
        cin = x.shape[-1]
        mult = w.shape[-1] // cin
        if mult != 1:
            # output channel oc = ic * mult + m: expand the input channels
            x = np.repeat(x, mult, axis=-1)
        w = w[0].transpose(2, 0, 1)[..., None]  # (O, KH, KW, 1)
        groups = w.shape[0]
    else:
        groups = x.shape[-1] // w.shape[-1]
    kh, kw = w.shape[1], w.shape[2]
    pads = (
        same_pads(x.shape[1:3], (kh, kw), a["stride"], a["dilation"])
        if a["padding"] == "SAME"
        else (0, 0, 0, 0)
    )
    acc = conv_nhwc(x, w, stride=a["stride"], dilation=a["dilation"], pads=pads, groups=groups)
    if b_name:
        acc = acc + graph.const(b_name).astype(np.int64)
    return _finish_gemm(graph, node, x_t, w_t, y_t, acc, eng, eng["gemm"], sites)


def _finish_gemm(graph, node, x_t, w_t, y_t, acc, eng, scheme, sites):
    scale = gemm_scale(x_t.scale[0], w_t.scale, y_t.scale[0], eng["scale"])
    zp = int(y_t.zero_point[0])
    axis = -1 if scale.size > 1 else None
    sites[node.name] = {"acc": acc, "scale": scale, "zero_point": zp, "axis": axis,
                        "dtype": y_t.dtype, "scheme": scheme}  # fmt: skip
    y = requant(acc, scale, scheme, zp, y_t.dtype, axis)
    lo, hi = activation_range(node.attrs.get("activation", "NONE"), y_t.scale[0], zp, y_t.dtype)
    sites[node.name]["clamp"] = (lo, hi)
    return {y_t.name: np.clip(y, lo, hi).astype(y_t.dtype)}


def tfl_fc(graph, node, env, eng, sites):
    x_t, w_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.inputs[1]), _t(graph, node.outputs[0])
    if x_t.dtype != "int8" or w_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{x_t.dtype} x {w_t.dtype} (int8 only)")
    w = graph.const(w_t.name).astype(np.int64) - int(w_t.zero_point[0])
    xin = env[x_t.name]
    x = xin.reshape(-1, w.shape[1]).astype(np.int64) - int(x_t.zero_point[0])
    acc = x @ w.T
    if len(node.inputs) > 2 and node.inputs[2]:
        acc = acc + graph.const(node.inputs[2]).astype(np.int64)
    scheme = eng["fc"]
    if scheme == "double_round_half_away" and w_t.per_channel:
        scheme = "double_round_half_away"  # reference per-channel FC also uses the float path
    out = _finish_gemm(graph, node, x_t, w_t, y_t, acc, eng, scheme, sites)
    if node.attrs.get("keep_num_dims"):
        out = {k: v.reshape(*xin.shape[:-1], w.shape[0]) for k, v in out.items()}
    return out


def tfl_add(graph, node, env, eng, sites):
    a_t, b_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.inputs[1]), _t(graph, node.outputs[0])
    if y_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{y_t.dtype} output (int8 only)")
    a, b = env[a_t.name].astype(np.int64), env[b_t.name].astype(np.int64)
    if a.shape != b.shape:
        raise UnsupportedOpError(node.op, node.name, "broadcasting ADD")
    za, zb, zy = int(a_t.zero_point[0]), int(b_t.zero_point[0]), int(y_t.zero_point[0])
    sa, sb, sy = float(a_t.scale[0]), float(b_t.scale[0]), float(y_t.scale[0])
    lo, hi = activation_range(node.attrs.get("activation", "NONE"), sy, zy, "int8")
    recipe = eng["add"]
    if recipe in ("tflite_reference", "tflite_neon"):
        left = 20
        twice_max = 2 * max(sa, sb)
        qa, ea = qmul(sa / twice_max)
        qb, eb = qmul(sb / twice_max)
        qo, eo = qmul(twice_max / ((1 << left) * sy))
        xa, xb = (a - za) << left, (b - zb) << left
        if recipe == "tflite_reference":
            ya, yb = mbqm(xa, qa, ea), mbqm(xb, qb, eb)
            raw = mbqm(ya + yb, qo, eo)
        else:
            n = a.size
            flat_a, flat_b = (a - za).ravel(), (b - zb).ravel()
            ya = saturating_rounding_doubling_high_mul(flat_a << (left + ea), qa)
            yb = saturating_rounding_doubling_high_mul(flat_b << (left + eb), qb)
            s = saturating_rounding_doubling_high_mul(ya + yb, qo)
            s = rounding_divide_by_pot(s, -eo)
            # the NEON loop handles whole blocks of 16 lanes; the tail runs the scalar code
            tail = n - n % 16 if n >= 16 else 0
            ref = mbqm(mbqm(xa.ravel(), qa, ea) + mbqm(xb.ravel(), qb, eb), qo, eo)
            s = np.where(np.arange(n) < tail, s, ref)
            # vmovn_s32 narrows to int16 (wraps), + offset in int16, then saturate to int8
            s16 = ((s + 32768) % 65536) - 32768
            raw = (((s16 + zy) + 32768) % 65536 - 32768 - zy).reshape(a.shape)
        y = np.clip(raw + zy, lo, hi)
        sites[node.name] = {"kind": "add", "recipe": recipe}
        return {y_t.name: y.astype(np.int8)}
    if recipe == "xnnpack":
        ra, rb = F32(F32(sa) / F32(sy)), F32(F32(sb) / F32(sy))
        mx = max(abs(ra), abs(rb))
        exp = int((np.array(mx, np.float32).view(np.uint32) >> 23) & 0xFF) - 127
        shift = 20 - exp
        ma = int(np.rint(np.float64(ra) * 2.0**shift))  # exact scaling, lrintf = RNE
        mb = int(np.rint(np.float64(rb) * 2.0**shift))
        bias = (1 << (shift - 1)) - ma * za - mb * zb
        acc = bias + a * ma + b * mb
        y = np.clip((acc >> shift) + zy, lo, hi)
        sites[node.name] = {"kind": "add", "recipe": recipe}
        return {y_t.name: y.astype(np.int8)}
    raise ValueError(f"add recipe {recipe!r}")


def tfl_mean(graph, node, env, eng, sites):
    x_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.outputs[0])
    if x_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{x_t.dtype} input (int8 only)")
    axes = tuple(int(v) % env[x_t.name].ndim for v in np.atleast_1d(graph.const(node.inputs[1])))
    keep = node.attrs.get("keep_dims", False)
    if keep and eng is presets.ENGINES["tflite-optimized"] and len(axes) == 2:
        # keep_dims over H, W takes optimized_integer_ops::Mean (a different recipe)
        raise UnsupportedOpError(node.op, node.name, "keep_dims=True (optimized Mean path)")
    x = env[x_t.name].astype(np.int64)
    n = int(np.prod([x.shape[i] for i in axes]))
    total = x.sum(axis=axes, keepdims=keep)
    zx, zy = int(x_t.zero_point[0]), int(y_t.zero_point[0])
    sx, sy = float(x_t.scale[0]), float(y_t.scale[0])
    if eng["mean"] == "tflite_reference":
        q, e = qmul(sx / sy)
        sh = min(n.bit_length() - 1, 32, 31 + e)
        q = (q << sh) // n
        e -= sh
        y = mbqm(total - zx * n, q, e) + zy
    elif eng["mean"] == "xnnpack":
        inv = F32(F32(F32(sx) / F32(sy)) * F32(F32(1.0) / F32(n)))
        zp2 = F32(F32(zy) - F32(F32(n * zx) * inv))
        v = (total.astype(np.float32) * inv).astype(np.float32) + zp2
        y = np.rint(v.astype(np.float32))
    else:
        raise ValueError(f"mean recipe {eng['mean']!r}")
    sites[node.name] = {"kind": "mean", "recipe": eng["mean"]}
    return {y_t.name: np.clip(y, -128, 127).astype(np.int8)}


def tfl_reshape(graph, node, env, eng, sites):
    x = env[node.inputs[0]]
    y_t = _t(graph, node.outputs[0])
    shape = list(y_t.shape)
    if shape and shape[0] in (-1, 1) and x.shape[0] != 1:
        shape[0] = x.shape[0]
    return {y_t.name: x.reshape([s if s != -1 else -1 for s in shape])}


def tfl_quantize(graph, node, env, eng, sites):
    x_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.outputs[0])
    x = env[x_t.name]
    lo, hi = qrange(y_t.dtype)
    if x_t.dtype == "float32":
        v = tflite_round(x.astype(np.float32) / F32(y_t.scale[0])) + int(y_t.zero_point[0])
        return {y_t.name: np.clip(v, lo, hi).astype(y_t.dtype)}
    # requantize int -> int (reference Requantize: MBQM of s_in / s_out)
    q, e = qmul(float(x_t.scale[0]) / float(y_t.scale[0]))
    v = mbqm(x.astype(np.int64) - int(x_t.zero_point[0]), q, e) + int(y_t.zero_point[0])
    return {y_t.name: np.clip(v, lo, hi).astype(y_t.dtype)}


def tfl_dequantize(graph, node, env, eng, sites):
    x_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.outputs[0])
    x = env[x_t.name].astype(np.int32) - int(x_t.zero_point[0])
    return {y_t.name: (x.astype(np.float32) * F32(x_t.scale[0])).astype(np.float32)}


def tfl_max_pool(graph, node, env, eng, sites):
    x = env[node.inputs[0]]
    y_t = _t(graph, node.outputs[0])
    a = node.attrs
    kh, kw = a["filter"]
    if a["padding"] == "SAME":
        pads = same_pads(x.shape[1:3], (kh, kw), a["stride"], (1, 1))
    else:
        pads = (0, 0, 0, 0)
    lo = np.iinfo(x.dtype).min
    xp = np.pad(x, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3]), (0, 0)), constant_values=lo)
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, :: a["stride"][0], :: a["stride"][1]]
    y = win.max(axis=(-2, -1))
    lo_a, hi_a = activation_range(a["activation"], y_t.scale[0], int(y_t.zero_point[0]), y_t.dtype)
    return {y_t.name: np.clip(y, lo_a, hi_a).astype(y_t.dtype)}


def _bcast(graph, env, name):
    return env[name] if name in env else graph.const(name)


def tfl_mul(graph, node, env, eng, sites):
    """MUL int8. TFLite (``mul.cc`` Prepare; ``reference/integer_ops/mul.h``): multiplier =
    QuantizeMultiplier(double(s1) * double(s2) / double(s_out)); ``out = zp_out + MBQM((x1 -
    zp1)(x2 - zp2))``, clamped to the fused activation range (the broadcast path is the same
    per element). XNNPACK (``xnn_init_qs8_mul_minmax_scalar_params`` / fp32 requantization):
    ``f32(f32(s1 * s2) / s_out)`` times the int32 product converted to float, clamped in
    float, round to nearest even, + zp_out."""
    a_t, b_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.inputs[1]), _t(graph, node.outputs[0])
    if y_t.dtype != "int8" or a_t.dtype != "int8" or b_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{a_t.dtype} x {b_t.dtype} (int8 only)")
    a, b = _bcast(graph, env, a_t.name), _bcast(graph, env, b_t.name)
    za, zb, zy = int(a_t.zero_point[0]), int(b_t.zero_point[0]), int(y_t.zero_point[0])
    sa, sb, sy = float(a_t.scale[0]), float(b_t.scale[0]), float(y_t.scale[0])
    lo, hi = activation_range(node.attrs.get("activation", "NONE"), sy, zy, "int8")
    prod = (a.astype(np.int64) - za) * (b.astype(np.int64) - zb)
    recipe = eng.get("mul", "tflite_reference")
    if recipe == "tflite_reference":
        q, e = qmul(sa * sb / sy)
        y = mbqm(prod, q, e) + zy
    elif recipe == "xnnpack":
        scale = F32(F32(F32(sa) * F32(sb)) / F32(sy))
        v = (prod.astype(F32) * scale).astype(F32)
        v = np.clip(v, F32(lo - zy), F32(hi - zy))
        y = np.rint(v) + zy
    else:
        raise ValueError(f"mul recipe {recipe!r}")
    sites[node.name] = {"kind": "mul", "recipe": recipe}
    return {y_t.name: np.clip(y, lo, hi).astype(np.int8)}


def tfl_avg_pool(graph, node, env, eng, sites):
    """AVERAGE_POOL_2D int8 (``reference/integer_ops/pooling.h`` AveragePool): the raw int8
    values summed over the window's pixels inside the image, ``count`` = their number;
    ``(sum + count/2) / count`` for sum > 0, ``(sum - count/2) / count`` otherwise (C
    division, truncating: rounds half away from zero), clamped to the activation range."""
    x_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.outputs[0])
    if x_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{x_t.dtype} input (int8 only)")
    x = env[x_t.name].astype(np.int64)
    a = node.attrs
    kh, kw = a["filter"]
    sh, sw = a["stride"]
    n, h, w, c = x.shape
    if a["padding"] == "SAME":
        t, left, _, _ = same_pads((h, w), (kh, kw), (sh, sw), (1, 1))
        ho, wo = -(-h // sh), -(-w // sw)
    else:
        t = left = 0
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    total = np.zeros((n, ho, wo, c), np.int64)
    count = np.zeros((ho, wo), np.int64)
    for i in range(ho):
        h0 = i * sh - t
        hs, he = max(h0, 0), min(h0 + kh, h)
        for j in range(wo):
            w0 = j * sw - left
            ws, we = max(w0, 0), min(w0 + kw, w)
            total[:, i, j] = x[:, hs:he, ws:we].sum(axis=(1, 2))
            count[i, j] = (he - hs) * (we - ws)
    cnt = count[None, :, :, None]
    half = cnt // 2
    num = np.where(total > 0, total + half, total - half)
    avg = np.sign(num) * (np.abs(num) // cnt)  # C division truncates toward zero
    zy = int(y_t.zero_point[0])
    lo, hi = activation_range(a["activation"], y_t.scale[0], zy, "int8")
    sites[node.name] = {"kind": "avgpool", "recipe": "tflite_reference"}
    return {y_t.name: np.clip(avg, lo, hi).astype(np.int8)}


def tfl_pad(graph, node, env, eng, sites):
    """PAD: the padding value of a quantized tensor is its zero point (``pad.cc``)."""
    x_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.outputs[0])
    pads = np.asarray(graph.const(node.inputs[1]), dtype=np.int64).reshape(-1, 2)
    zp = int(y_t.zero_point[0]) if y_t.zero_point is not None else 0
    if x_t.zero_point is not None and int(x_t.zero_point[0]) != zp:
        raise UnsupportedOpError(node.op, node.name, "input and output zero points differ")
    x = env[x_t.name]
    return {y_t.name: np.pad(x, [tuple(p) for p in pads], constant_values=zp)}


def tfl_concat(graph, node, env, eng, sites):
    """CONCATENATION int8: ``concatenation.cc`` Prepare requires every int8 input to have the
    output's scale and zero point (no rescaling in the int8 kernel), so it is a copy."""
    y_t = _t(graph, node.outputs[0])
    parts = []
    for name in node.inputs:
        t = _t(graph, name)
        same = (
            t.scale is not None
            and y_t.scale is not None
            and F32(t.scale[0]) == F32(y_t.scale[0])
            and int(t.zero_point[0]) == int(y_t.zero_point[0])
        )
        if t.dtype != "int8" or not same:
            raise UnsupportedOpError(
                node.op, node.name, "int8 inputs with the output's scale and zero point only"
            )
        parts.append(_bcast(graph, env, name))
    if node.attrs.get("activation", "NONE") != "NONE":
        raise UnsupportedOpError(node.op, node.name, "fused activation")
    return {y_t.name: np.concatenate(parts, axis=int(node.attrs["axis"]))}


def tfl_logistic(graph, node, env, eng, sites):
    """LOGISTIC int8 -> int8: a 256-entry table built in float at Prepare (``activations.cc``
    PopulateLookupTable, used by the reference and the optimized kernels alike): for each
    ``q``, ``d = f32(s_in) * (q - zp_in)``, ``t = 1.0f / (1.0f + expf(-d))``, ``round(t *
    f32(1 / s_out))`` (half away from zero) ``+ zp_out``, clamped. The XNNPACK delegate gives
    the same table on this CPU (checked against LiteRT on every byte)."""
    x_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.outputs[0])
    if x_t.dtype != "int8" or y_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{x_t.dtype} -> {y_t.dtype} (int8 only)")
    q = np.arange(-128, 128)
    d = (F32(x_t.scale[0]) * (q - int(x_t.zero_point[0])).astype(F32)).astype(F32)
    t = (F32(1.0) / (F32(1.0) + np.exp(-d))).astype(F32)
    inv = F32(F32(1.0) / F32(y_t.scale[0]))
    v = tflite_round((t * inv).astype(F32)) + int(y_t.zero_point[0])
    table = np.clip(v, -128, 127).astype(np.int8)
    sites[node.name] = {"kind": "lookup", "recipe": "tflite float table"}
    return {y_t.name: table[env[x_t.name].astype(np.int64) + 128]}


def tfl_softmax(graph, node, env, eng, sites):
    """SOFTMAX int8 -> int8 over the last axis, the float-table kernel (TFLite
    ``optimized_ops`` Softmax with ``params.table``, PopulateSoftmaxLookupTable): ``table[255 -
    v] = expf(f32(-s_in * beta) * v)`` for v = 0..255; per row, ``e_j = table[255 - max + x_j]``,
    ``sum`` in float32 in index order, ``inv = 1.0f / (sum * s_out)``, ``round(e_j * inv)``
    (half away from zero) ``+ zp_out``, clamped. On this CPU all three LiteRT resolvers give
    exactly this (checked on the committed model)."""
    x_t, y_t = _t(graph, node.inputs[0]), _t(graph, node.outputs[0])
    if x_t.dtype != "int8" or y_t.dtype != "int8":
        raise UnsupportedOpError(node.op, node.name, f"{x_t.dtype} -> {y_t.dtype} (int8 only)")
    s = F32(-F32(x_t.scale[0]) * F32(node.attrs.get("beta", 1.0)))
    v = np.arange(256)
    table = np.empty(256, F32)
    table[255 - v] = np.exp((s * v.astype(F32)).astype(F32))
    x = env[x_t.name].astype(np.int64)
    e = table[255 - x.max(axis=-1, keepdims=True) + x]
    total = np.zeros(x.shape[:-1], F32)
    for j in range(x.shape[-1]):
        total = (total + e[..., j]).astype(F32)
    inv = (F32(1.0) / (total * F32(y_t.scale[0])).astype(F32)).astype(F32)
    p = (e * inv[..., None]).astype(F32)
    y = tflite_round(p) + int(y_t.zero_point[0])
    sites[node.name] = {"kind": "softmax", "recipe": "tflite float table"}
    return {y_t.name: np.clip(y, -128, 127).astype(np.int8)}


TFLITE_OPS = {
    "CONV_2D": tfl_conv,
    "DEPTHWISE_CONV_2D": tfl_conv,
    "FULLY_CONNECTED": tfl_fc,
    "ADD": tfl_add,
    "MEAN": tfl_mean,
    "RESHAPE": tfl_reshape,
    "QUANTIZE": tfl_quantize,
    "DEQUANTIZE": tfl_dequantize,
    "MAX_POOL_2D": tfl_max_pool,
    "MUL": tfl_mul,
    "AVERAGE_POOL_2D": tfl_avg_pool,
    "PAD": tfl_pad,
    "CONCATENATION": tfl_concat,
    "LOGISTIC": tfl_logistic,
    "SOFTMAX": tfl_softmax,
}

# ---------------------------------------------------------------------------------------------
# ONNX (QOperator, and the float ops ORT leaves between DequantizeLinear and QuantizeLinear)


def _c(graph, name, default=0):
    if not name:
        return default
    return np.asarray(graph.const(name))


def _scalar(graph, name, default=0):
    v = _c(graph, name, default)
    return np.asarray(v).reshape(-1)[0] if np.size(v) else default


def _onnx_dtype_of_zp(graph, name, default="uint8"):
    if not name:
        return default
    return str(np.asarray(graph.const(name)).dtype)


def onnx_quantize(graph, node, env, eng, sites):
    x = env[node.inputs[0]].astype(np.float32)
    s = _c(graph, node.inputs[1]).astype(np.float32)
    zname = node.inputs[2] if len(node.inputs) > 2 else ""
    zp = _c(graph, zname, np.uint8(0))
    dtype = str(zp.dtype)
    if s.size > 1:
        axis = node.attrs.get("axis", 1)
        shape = [1] * x.ndim
        shape[axis] = -1
        s, zp = s.reshape(shape), zp.reshape(shape)
    lo, hi = qrange(dtype)
    v = np.rint(x / s) + zp.astype(np.float32)
    return {node.outputs[0]: np.clip(v, lo, hi).astype(dtype)}


def onnx_dequantize(graph, node, env, eng, sites):
    name = node.inputs[0]
    x = env[name] if name in env else graph.const(name)
    s = _c(graph, node.inputs[1]).astype(np.float32)
    zp = _c(graph, node.inputs[2] if len(node.inputs) > 2 else "", np.int64(0))
    if s.size > 1 or np.size(zp) > 1:
        axis = node.attrs.get("axis", 1)
        shape = [1] * x.ndim
        shape[axis] = -1
        s = s.reshape(shape)
        zp = np.asarray(zp).reshape(shape) if np.size(zp) > 1 else zp
    v = (x.astype(np.int32) - np.asarray(zp).astype(np.int32)).astype(np.float32) * s
    return {node.outputs[0]: v.astype(np.float32)}


def _onnx_conv_geometry(node, x_shape, w_shape):
    a = node.attrs
    k = tuple(a.get("kernel_shape", w_shape[2:]))
    if len(k) != 2:
        raise UnsupportedOpError(node.op, node.name, f"{len(k)}-D convolution (2-D only)")
    strides = tuple(a.get("strides", (1, 1)))
    dil = tuple(a.get("dilations", (1, 1)))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        t, left, b, r = same_pads(x_shape[2:], k, strides, dil)
        if auto == "SAME_LOWER":
            t, b, left, r = b, t, r, left
        pads = (t, left, b, r)
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    else:
        p = tuple(a.get("pads", (0, 0, 0, 0)))
        pads = (p[0], p[1], p[2], p[3])  # onnx: (h_begin, w_begin, h_end, w_end)
    return strides, dil, pads, int(a.get("group", 1))


def onnx_qlinearconv(graph, node, env, eng, sites):
    i = node.inputs
    if node.domain == "com.microsoft" and node.attrs.get("channels_last", 0):
        raise UnsupportedOpError(node.op, node.name, "channels_last QLinearConv")
    x = env[i[0]]
    sx, zx = float(_scalar(graph, i[1])), int(_scalar(graph, i[2]))
    w_raw = graph.const(i[3])
    sw = np.asarray(_c(graph, i[4])).reshape(-1)  # float32 in a file; gemm_scale casts
    zw = _c(graph, i[5]).astype(np.int64).reshape(-1)
    sy, zy_arr = float(_scalar(graph, i[6])), _c(graph, i[7])
    zy, dtype = int(np.asarray(zy_arr).reshape(-1)[0]), str(np.asarray(zy_arr).dtype)
    strides, dil, pads, groups = _onnx_conv_geometry(node, x.shape, w_raw.shape)
    model = _u8s8_model(eng, x, w_raw)
    if model is not None and model.saturates_on(w_raw.shape, strides, pads[:2], groups):
        if tuple(dil) != (1, 1):
            raise UnsupportedOpError(
                node.op, node.name,
                f"dilations {tuple(dil)} with the {model.name!r} int16 pair-saturating "
                f"accumulation of {eng.get('preset', 'this engine')!r} (not modelled; "
                "onnxruntime-vnni replays it exactly)",
            )  # fmt: skip
        t, left, b, r = pads
        if (t, left) != (b, r):  # padded pixels hold the raw zero point in MLAS's im2col
            x = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=zx)
            t = left = 0
        acc = _engine_presets.accumulators(
            np.ascontiguousarray(x), np.ascontiguousarray(w_raw), x_zero_point=zx,
            w_zero_point=zw if zw.size > 1 else int(zw[0]), stride=strides, padding=(t, left),
            groups=groups, accumulate=model,
        ).astype(np.int64)  # fmt: skip
    else:
        acc = conv_nchw_exact(x, zx, w_raw, zw, stride=strides, dilation=dil, pads=pads,
                              groups=groups)  # fmt: skip
    if len(i) > 8 and i[8]:
        acc = acc + graph.const(i[8]).astype(np.int64).reshape(1, -1, 1, 1)
    return _onnx_finish(graph, node, acc, sx, sw, sy, zy, dtype, eng, sites, axis=1)


def _u8s8_model(eng, x, w):
    """The saturating accumulation model of ``eng`` if it applies to these operands (raw
    uint8 activations x int8 weights), else None: s8s8 and u8u8 are exact in MLAS (operands
    widened to int16 before ``vpmaddwd``), and so is every engine without a pair model."""
    model = get_model(eng.get("accumulate", "exact"))
    if not model.saturates or x.dtype != np.uint8 or w.dtype != np.int8:
        return None
    return model


def _onnx_finish(graph, node, acc, sx, sw, sy, zy, dtype, eng, sites, axis):
    scale = gemm_scale(sx, sw, sy, eng["scale"])
    ax = axis if scale.size > 1 else None
    # the output's own type: the zero point's dtype, or an in-memory graph's narrower qdtype
    qdt = requant_dtype(graph.tensors.get(node.outputs[0]), dtype)
    sites[node.name] = {"acc": acc, "scale": scale, "zero_point": zy, "axis": ax,
                        "dtype": qdt, "scheme": eng["gemm"], "clamp": narrow_range(qdt)}  # fmt: skip
    y = requant(acc, scale, eng["gemm"], zy, qdt, ax)
    return {node.outputs[0]: y.astype(dtype, copy=False)}


def onnx_qgemm(graph, node, env, eng, sites):
    i = node.inputs
    a = env[i[0]]
    sa, za = float(_scalar(graph, i[1])), int(_scalar(graph, i[2]))
    b_raw = graph.const(i[3])
    sb = _c(graph, i[4]).astype(np.float32).reshape(-1)
    zb = _c(graph, i[5]).astype(np.int64).reshape(-1)
    if node.op == "QGemm":
        if float(node.attrs.get("alpha", 1.0)) != 1.0:
            raise UnsupportedOpError(node.op, node.name, "alpha != 1")
        c_name = i[6] if len(i) > 6 else ""
        if len(i) < 8 or not i[7]:
            raise UnsupportedOpError(node.op, node.name, "float output (no y_scale)")
        sy, zy_arr = float(_scalar(graph, i[7])), _c(graph, i[8])
        ta, tb = node.attrs.get("transA", 0), node.attrs.get("transB", 0)
    else:  # QLinearMatMul
        c_name = ""
        sy, zy_arr = float(_scalar(graph, i[6])), _c(graph, i[7])
        ta, tb = 0, 0
    zy, dtype = int(np.asarray(zy_arr).reshape(-1)[0]), str(np.asarray(zy_arr).dtype)
    if a.ndim != 2 and node.op == "QGemm":
        raise UnsupportedOpError(node.op, node.name, f"{a.ndim}-D input")
    model = _u8s8_model(eng, a, b_raw)
    if model is not None and b_raw.ndim != 2:
        raise UnsupportedOpError(
            node.op, node.name,
            f"{b_raw.ndim}-D B with the {model.name!r} int16 pair-saturating accumulation of "
            f"{eng.get('preset', 'this engine')!r} (2-D B only)",
        )  # fmt: skip
    if model is not None:
        # MLAS QGEMM u8s8 without VNNI (qgemm_kernel_avx2.cpp, PackedK = 4): products of
        # adjacent k (2j, 2j+1) paired and saturated to int16 -- the kernel that runs the
        # im2col'ed convolutions, so a matmul is the 1x1 convolution with C = K
        a2 = a.T if ta else a
        lead, k = a2.shape[:-1], a2.shape[-1]
        bt = b_raw if tb else b_raw.T  # (N, K)
        acc = _engine_presets.accumulators(
            np.ascontiguousarray(a2.reshape(-1, k, 1, 1)),
            np.ascontiguousarray(bt.reshape(bt.shape[0], k, 1, 1)), x_zero_point=za,
            w_zero_point=zb if zb.size > 1 else int(zb[0]), accumulate=model,
        ).astype(np.int64).reshape(*lead, bt.shape[0])  # fmt: skip
    else:
        am = a.astype(np.int64) - za
        if ta:
            am = am.T
        bm = b_raw.astype(np.int64)
        bm = bm.T if tb else bm  # (K, N)
        bm = bm - (zb.reshape(1, -1) if zb.size > 1 else zb[0])
        acc = am @ bm
    if c_name:
        acc = acc + graph.const(c_name).astype(np.int64)
    return _onnx_finish(graph, node, acc, sa, sb, sy, zy, dtype, eng, sites, axis=-1)


def onnx_qlinearadd(graph, node, env, eng, sites):
    i = node.inputs
    a, b = env[i[0]], env[i[3]]
    sa, za = F32(_scalar(graph, i[1])), int(_scalar(graph, i[2]))
    sb, zb = F32(_scalar(graph, i[4])), int(_scalar(graph, i[5]))
    sc, zc_arr = F32(_scalar(graph, i[6])), _c(graph, i[7])
    zc, dtype = int(np.asarray(zc_arr).reshape(-1)[0]), str(np.asarray(zc_arr).dtype)
    if a.shape != b.shape:
        raise UnsupportedOpError(node.op, node.name, "broadcasting QLinearAdd")
    ra, rb = F32(sa / sc), F32(sb / sc)
    # fixed part: zc - (ra*za + rb*zb); GCC contracts the inner sum into one fma
    inner = F32(np.float64(ra) * za + np.float64(F32(rb * F32(zb))))
    fixed = F32(F32(zc) - inner)
    t = (b.astype(np.float64) * np.float64(rb) + np.float64(fixed)).astype(np.float32)
    v = (a.astype(np.float64) * np.float64(ra) + t.astype(np.float64)).astype(np.float32)
    lo, hi = qrange(dtype)
    sites[node.name] = {"kind": "add", "recipe": eng["add"]}
    return {node.outputs[0]: np.clip(np.rint(v), lo, hi).astype(dtype)}


def onnx_qlgap(graph, node, env, eng, sites):
    i = node.inputs
    if node.attrs.get("channels_last", 0):
        raise UnsupportedOpError(node.op, node.name, "channels_last")
    x = env[i[0]]
    sx, zx = F32(_scalar(graph, i[1])), int(_scalar(graph, i[2]))
    sy, zy_arr = F32(_scalar(graph, i[3])), _c(graph, i[4])
    zy, dtype = int(np.asarray(zy_arr).reshape(-1)[0]), str(np.asarray(zy_arr).dtype)
    n = int(np.prod(x.shape[2:]))
    acc = x.astype(np.int64).sum(axis=tuple(range(2, x.ndim)), keepdims=True) - zx * n
    scale = F32(sx / F32(sy * F32(n)))
    sites[node.name] = {"acc": acc, "scale": np.atleast_1d(scale), "zero_point": zy,
                        "axis": None, "dtype": dtype, "scheme": eng["gemm"],
                        "clamp": qrange(dtype)}  # fmt: skip
    return {node.outputs[0]: requant(acc, float(scale), presets.FLOAT32_RNE, zy, dtype)}


def _zp_dtype(graph, name, default="uint8"):
    """(zero point, dtype) of an optional zero-point input."""
    if not name:
        return 0, default
    z = np.asarray(graph.const(name))
    return int(z.reshape(-1)[0]), str(z.dtype)


def onnx_qlinearmul(graph, node, env, eng, sites):
    """QLinearMul (``mlas/lib/qlmul.cpp``, the SSE2 kernel ORT builds on x86-64): the int16
    product ``(a - za)(b - zb)`` widened to int32, converted to float, times
    ``f32(f32(s_a s_b) / s_c)``, plus ``f32(zp_c)`` (separate multiply and add), cvtps (RNE),
    saturating packs. A scalar / broadcast operand gives the same per-element arithmetic."""
    i = node.inputs
    a, b = env[i[0]], (env[i[3]] if i[3] in env else graph.const(i[3]))
    sa, za = F32(_scalar(graph, i[1])), int(_scalar(graph, i[2]))
    sb, zb = F32(_scalar(graph, i[4])), int(_scalar(graph, i[5]))
    sc = F32(_scalar(graph, i[6]))
    zc, dtype = _zp_dtype(graph, i[7] if len(i) > 7 else "", str(a.dtype))
    ratio = F32(F32(sa * sb) / sc)
    prod = (a.astype(np.int32) - za) * (b.astype(np.int32) - zb)
    v = (prod.astype(F32) * ratio).astype(F32) + F32(zc)
    lo, hi = qrange(dtype)
    sites[node.name] = {"kind": "mul", "recipe": "mlas_sse2 (float ratio, RNE)"}
    return {node.outputs[0]: np.clip(np.rint(v.astype(F32)), lo, hi).astype(dtype)}


def onnx_qlinear_avgpool(graph, node, env, eng, sites):
    """QLinearAveragePool (``contrib_ops/cpu/quantization/qlinear_pool.cc``): a kernel
    covering the whole image with no pads falls back to QLinearGlobalAveragePool; otherwise
    the input is dequantized (``f32(s_x) * (x - zp_x)``), each window summed in float32 in
    row-major order (h, then w), divided by the count (the kernel size with
    ``count_include_pad``, else the pixels inside the image), and quantized as
    ``saturate(nearbyintf(f32(y / s_y) + zp_y))``."""
    i, a = node.inputs, node.attrs
    x = env[i[0]]
    if a.get("channels_last", 0) or a.get("ceil_mode", 0):
        raise UnsupportedOpError(node.op, node.name, "channels_last / ceil_mode")
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    k = tuple(int(v) for v in a["kernel_shape"])
    if x.ndim != 4 or len(k) != 2 or auto not in ("NOTSET", "VALID") or a.get("dilations"):
        raise UnsupportedOpError(node.op, node.name, "2-D, explicit pads, no dilation only")
    strides = tuple(a.get("strides", (1, 1)))
    p = tuple(a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
    sx, zx = F32(_scalar(graph, i[1])), int(_scalar(graph, i[2]))
    sy = F32(_scalar(graph, i[3]))
    zy, dtype = _zp_dtype(graph, i[4] if len(i) > 4 else "", str(x.dtype))
    h, w = x.shape[2:]
    if k == (h, w) and not any(p):
        g = onnx_qlgap(graph, node, env, eng, sites)
        return g
    ho = (h + p[0] + p[2] - k[0]) // strides[0] + 1
    wo = (w + p[1] + p[3] - k[1]) // strides[1] + 1
    deq = (sx * (x.astype(np.int32) - zx).astype(F32)).astype(F32)
    xp = np.pad(deq, ((0, 0), (0, 0), (p[0], p[2] + k[0]), (p[1], p[3] + k[1])))
    acc = np.zeros(x.shape[:2] + (ho, wo), F32)
    hs = np.arange(ho) * strides[0]  # window starts in padded coordinates
    ws = np.arange(wo) * strides[1]
    for dh in range(k[0]):
        for dw in range(k[1]):
            acc = (acc + xp[:, :, hs[:, None] + dh, ws[None, :] + dw]).astype(F32)
    if a.get("count_include_pad", 0):
        count = np.full((ho, wo), k[0] * k[1])
    else:
        h0, w0 = hs - p[0], ws - p[1]
        ch = np.minimum(h0 + k[0], h) - np.maximum(h0, 0)
        cw = np.minimum(w0 + k[1], w) - np.maximum(w0, 0)
        count = ch[:, None] * cw[None, :]
    y = (acc / count.astype(F32)).astype(F32)
    v = np.rint(((y / sy).astype(F32) + F32(zy)).astype(F32))
    lo, hi = qrange(dtype)
    sites[node.name] = {"kind": "avgpool", "recipe": "float32 window sum"}
    return {node.outputs[0]: np.clip(v, lo, hi).astype(dtype)}


def onnx_qlinearconcat(graph, node, env, eng, sites):
    """QLinearConcat (``qlinear_concat.cc``): an input whose scale and zero point equal the
    output's is copied; any other goes through a 256-entry table built with the identity
    transform (dequantize in float32, MlasQuantizeLinear to the output's parameters)."""
    i = node.inputs
    sy = F32(_scalar(graph, i[0]))
    zy, dtype = _zp_dtype(graph, i[1])
    parts = []
    for j in range(2, len(i), 3):
        x = env[i[j]] if i[j] in env else graph.const(i[j])
        sx, zx = F32(_scalar(graph, i[j + 1])), int(_scalar(graph, i[j + 2]))
        if sx == sy and zx == zy:
            parts.append(x)
        else:
            table = mlas.build_table(lambda v: v, sx, zx, sy, zy, dtype)
            parts.append(mlas.apply_table(table, x))
    sites[node.name] = {"kind": "concat", "recipe": "copy / identity lookup table"}
    return {node.outputs[0]: np.concatenate(parts, axis=int(node.attrs["axis"]))}


def onnx_qlinear_lookup(graph, node, env, eng, sites):
    """QLinearLeakyRelu / QLinearSigmoid (``qlinear_activations.cc``): a 256-entry table built
    in float32 -- LeakyRelu ``v >= 0 ? v : f32(alpha) * v``; Sigmoid MlasComputeLogistic (the
    FMA3 kernel on x86-64) -- then a byte lookup."""
    i = node.inputs
    x = env[i[0]]
    sx, zx = F32(_scalar(graph, i[1])), int(_scalar(graph, i[2])) if i[2] else 0
    sy = F32(_scalar(graph, i[3]))
    zy, dtype = _zp_dtype(graph, i[4] if len(i) > 4 else "", str(x.dtype))
    if node.op == "QLinearLeakyRelu":
        alpha = F32(node.attrs.get("alpha", 0.01))

        def fn(v):
            return np.where(v >= 0, v, (alpha * v).astype(F32)).astype(F32)
    else:
        fn = mlas.logistic_fma3
    table = mlas.build_table(fn, sx, zx, sy, zy, dtype)
    sites[node.name] = {"kind": "lookup", "recipe": "mlas float32 table"}
    return {node.outputs[0]: mlas.apply_table(table, x)}


def onnx_flatten(graph, node, env, eng, sites):
    x = env[node.inputs[0]]
    ax = node.attrs.get("axis", 1) % max(x.ndim, 1)
    return {node.outputs[0]: x.reshape(int(np.prod(x.shape[:ax])), -1)}


def onnx_reshape(graph, node, env, eng, sites):
    x = env[node.inputs[0]]
    shape = [int(s) for s in graph.const(node.inputs[1])]
    shape = [x.shape[k] if s == 0 else s for k, s in enumerate(shape)]
    return {node.outputs[0]: x.reshape(shape)}


def onnx_transpose(graph, node, env, eng, sites):
    x = env[node.inputs[0]]
    return {node.outputs[0]: x.transpose(node.attrs.get("perm", None))}


def onnx_squeeze(graph, node, env, eng, sites):
    x = env[node.inputs[0]]
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(v) for v in graph.const(node.inputs[1])]
    if node.op == "Squeeze":
        return {node.outputs[0]: np.squeeze(x, axis=tuple(axes) if axes is not None else None)}
    return {node.outputs[0]: np.expand_dims(x, tuple(axes))}


def onnx_maxpool(graph, node, env, eng, sites):
    x = env[node.inputs[0]]
    a = node.attrs
    if x.dtype not in (np.uint8, np.int8) or len(node.outputs) > 1 or a.get("ceil_mode", 0):
        raise UnsupportedOpError(node.op, node.name, "only int8/uint8 MaxPool, one output")
    k = tuple(a["kernel_shape"])
    strides, dil, pads, _ = _onnx_conv_geometry(node, x.shape, (0, 0) + k)
    lo = np.iinfo(x.dtype).min
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=lo)
    from numpy.lib.stride_tricks import sliding_window_view

    ek = (dil[0] * (k[0] - 1) + 1, dil[1] * (k[1] - 1) + 1)
    win = sliding_window_view(xp, ek, axis=(2, 3))[:, :, :: strides[0], :: strides[1]]
    win = win[..., :: dil[0], :: dil[1]]
    return {node.outputs[0]: win.max(axis=(-2, -1))}


# float ops (ORT leaves these unfused): float32 arithmetic
def onnx_float_conv(graph, node, env, eng, sites):
    x = env[node.inputs[0]].astype(np.float32)
    w = env[node.inputs[1]] if node.inputs[1] in env else graph.const(node.inputs[1])
    strides, dil, pads, groups = _onnx_conv_geometry(node, x.shape, w.shape)
    acc = conv_nhwc_float(x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1), strides, dil, pads,
                          groups)  # fmt: skip
    if len(node.inputs) > 2 and node.inputs[2]:
        b = env[node.inputs[2]] if node.inputs[2] in env else graph.const(node.inputs[2])
        acc = acc + b.astype(np.float64)
    sites[node.name] = {"kind": "float", "recipe": "float32 conv (not integer)"}
    return {node.outputs[0]: acc.astype(np.float32).transpose(0, 3, 1, 2)}


def conv_nhwc_float(x, w, strides, dil, pads, groups):
    """Float convolution computed in float64 (rounded to float32 by the caller)."""
    t, left, b, r = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (t, b), (left, r), (0, 0)))
    from numpy.lib.stride_tricks import sliding_window_view

    o, kh, kw, cg = w.shape
    ek = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    win = sliding_window_view(xp, ek, axis=(1, 2))[:, :: strides[0], :: strides[1]]
    win = win[..., :: dil[0], :: dil[1]]
    og = o // groups
    outs = [
        np.einsum(
            "nhwckl,oklc->nhwo",
            win[:, :, :, g * cg : (g + 1) * cg],
            w[g * og : (g + 1) * og].astype(np.float64),
        )  # fmt: skip
        for g in range(groups)
    ]
    return np.concatenate(outs, axis=-1)


def onnx_float_binary(graph, node, env, eng, sites):
    a, b = (env[n] if n in env else graph.const(n) for n in node.inputs[:2])
    f = {"Add": np.add, "Mul": np.multiply}[node.op]
    return {node.outputs[0]: f(a.astype(np.float32), b.astype(np.float32)).astype(np.float32)}


def onnx_relu(graph, node, env, eng, sites):
    return {node.outputs[0]: np.maximum(env[node.inputs[0]], np.float32(0))}


ONNX_OPS = {
    "QuantizeLinear": onnx_quantize,
    "DequantizeLinear": onnx_dequantize,
    "QLinearConv": onnx_qlinearconv,
    "QGemm": onnx_qgemm,
    "QLinearMatMul": onnx_qgemm,
    "QLinearAdd": onnx_qlinearadd,
    "QLinearGlobalAveragePool": onnx_qlgap,
    "QLinearMul": onnx_qlinearmul,
    "QLinearAveragePool": onnx_qlinear_avgpool,
    "QLinearConcat": onnx_qlinearconcat,
    "QLinearLeakyRelu": onnx_qlinear_lookup,
    "QLinearSigmoid": onnx_qlinear_lookup,
    "Flatten": onnx_flatten,
    "Reshape": onnx_reshape,
    "Transpose": onnx_transpose,
    "Squeeze": onnx_squeeze,
    "Unsqueeze": onnx_squeeze,
    "MaxPool": onnx_maxpool,
    "Conv": onnx_float_conv,
    "Add": onnx_float_binary,
    "Mul": onnx_float_binary,
    "Relu": onnx_relu,
}
