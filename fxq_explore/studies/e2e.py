"""An integer-only network on real data: scikit-learn's digits, every calibrator, every scheme.

What it shows: at int8 the *calibration* matters more than the requantization arithmetic, as
long as the arithmetic rounds to nearest; the arithmetic separates in **fidelity** (SQNR of the
logits against fp32) and in how many requantized activations differ from exact rounding.

Model (trained by ``scripts/train_digits.py``, weights in ``fxq_explore/data/digits_cnn.npz``)::

    x (N,1,8,8) = pixels/16
    conv1 3x3, 1->16, pad 1            -> ReLU -> (N,16,8,8)
    conv2 3x3, 16->32, pad 1, stride 2 -> ReLU -> (N,32,4,4)
    fc    as a 4x4 conv, 32->10, valid -> logits (N,10)

Post-training quantization (:func:`quantize_model`)

* input: the pixel itself, ``q0 = 16·x`` in 0..16 (scale 1/16, zero point 0), lossless;
* weights: per output channel, symmetric int8, ``s_w[k] = max|w_k| / 127`` (max calibration,
  as Wu et al. 2020 recommend for weights); bias int32 ``round(b / (s_in·s_w[k]))``;
* hidden activations (after ReLU): per tensor, unsigned ``uintN`` (N = 8, 6 or 4), zero point
  0, ``s = T / (2^N - 1)`` with ``T`` from the calibrator on the fp32 activations of the
  calibration set (the first 256 training images). The requantization's clamp at 0 is the ReLU;
* logits: per tensor, signed int8 (``T/127``), at every N: the classifier output stays 8-bit.

Integer-only inference (:func:`run_integer`) goes through the model machinery of chapter 09,
the one route to run a quantized network: :func:`to_graph` writes the quantized network as an
in-memory ONNX QOperator graph (three ``QLinearConv``, then ``Flatten``) and
``fxq_explore.models.replay(graph, q0, scheme=...)`` runs it: ``acc = conv(q_in, q_w) + q_b``
exactly (the C convolution of ``fxq_explore.kernels.conv`` where it applies), then
``requantize(acc, s_in·s_w[k]/s_out, scheme, dtype=...)`` per channel, with the scales in
float64 as :meth:`QuantizedModel.multipliers` gives them and the ``uintN`` clamp of the hidden
activations (``Tensor.qdtype``). Only the final ``argmax`` and the SQNR measurement look at
real numbers.

Calibrators (``CALIBRATIONS``; ``fxq_explore.calibration.CALIBRATORS``): ``max``,
``percentile`` (99.99 %, sample quantile), ``mse`` (pytorch-quantization histogram MSE),
``kl_tvm`` (TVM ``MinimizeKL``), ``kl_tensorrt`` (2048 bins of ``|x|``, TensorRT / pytorch-
quantization search without the zero-bin fix) and ``kl_tensorrt_zfix`` (with ``bins[0] =
bins[1]``). For 6 and 4 bits the KL searches use ``2·(2^N-1)+1`` (TVM, unsigned) or ``2^N``
(TensorRT, unsigned) levels -- an extrapolation: the engines only calibrate 8 bits.

The ``pow2`` scheme keeps the calibrated scales and replaces each effective per-channel
multiplier by its nearest power of two (``fxq_explore.requantize``), a gain error of up to
±41 % per channel and layer; TVM's own power-of-two flow instead chose power-of-two *scales*
during calibration.

What the committed weights give (see ``fxq-explore e2e``): fp32 98.44 %; every
round-to-nearest scheme at 8 bits within 0.5 point of fp32 whatever the calibrator; SQNR
about 38-39 dB at 8 bits, 34-36 dB at 6, 24-27 dB at 4 for max/percentile/MSE; ``pow2``
9-17 dB and up to 3.3 points of accuracy lost at 8 and 6 bits; single-rounding schemes equal
to exact rounding except for at most ~20 of ~580 000 activations, TFLite's double rounding
different in 0.3-5 % of them (with no consistent cost in accuracy or SQNR: +-0.4 dB either
way). At 8 bits with ``max`` a third of the logits' error energy comes from the two test
logits beyond the calibrated range (-20.0 and -18.3, clipped at -17.4), which is why
``tvm_2019_float``'s clip at -127 instead of -128 costs 0.2 dB. The calibrator matters more
than the arithmetic: ``kl_tensorrt`` without the zero-bin fix loses ~20 dB at 8 bits on these
ReLU activations (the spike of exact zeros dominates the search), and ``kl_tvm`` extrapolated
to 4 bits clips the second layer to an eighth of its range (90.7 %).

Columns of the table

``accuracy``
    test accuracy (450 images, stratified split, ``random_state=0``);
``sqnr_db``
    ``10·log10(Σ z² / Σ (ẑ - z)²)``, dequantized logits ``ẑ`` vs fp32 ``z``;
``mismatch_vs_exact``
    fraction of all requantized activations (three layers, test set) that differ from the
    same network run with the ``"exact"`` scheme (same calibration and bits; differences
    propagate through the layers).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.calibration import CALIBRATORS, calibrate, threshold_to_scale
from ..core import validate
from ..schemes import EXACT, SCHEMES

__all__ = [
    "LAYERS",
    "load_split",
    "load_params",
    "forward_fp32",
    "quantize_model",
    "to_graph",
    "replay_integer",
    "run_integer",
    "evaluate",
    "format_table",
    "main",
    "BITS",
    "CALIBRATIONS",
]

#: Layers: name, stride, padding.
LAYERS = (("conv1", 1, 1), ("conv2", 2, 1), ("fc", 1, 0))
#: Hidden-activation bit widths in the table.
BITS = (8, 6, 4)
#: Calibrator labels (see ``fxq_explore.calibration.CALIBRATORS``).
CALIBRATIONS = ("max", "percentile", "mse", "kl_tvm", "kl_tensorrt", "kl_tensorrt_zfix")
#: Number of training images used for calibration.
N_CALIBRATION = 256
WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "digits_cnn.npz"


# ---------------------------------------------------------------------------------------------
# data and fp32 model
# ---------------------------------------------------------------------------------------------


def load_digits_arrays():
    """scikit-learn's digits, read from the CSV inside the installed package.

    The same file and parsing as ``sklearn.datasets.load_digits`` (nothing is downloaded), but
    without importing scikit-learn, which takes seconds.

    Returns
    -------
    images : ndarray, float64 (1797, 8, 8), pixel values 0..16
    target : ndarray, int64 (1797,)
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("scikit-learn is needed for the digits data: pip install scikit-learn")
    data = np.loadtxt(
        Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz", delimiter=","
    )
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)


def sklearn_split_indices(test_size=0.25, random_state=0):
    """``train_test_split`` indices (stratified) as scikit-learn computes them."""
    from sklearn.model_selection import train_test_split

    _, y = load_digits_arrays()
    tr, te = train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=random_state, stratify=y
    )
    return tr, te


def load_split(*, use_sklearn=False):
    """Digits data, split as in training (stratified, 25 % test, ``random_state=0``).

    Parameters
    ----------
    use_sklearn : bool
        Recompute the split with scikit-learn instead of reading the indices stored next to
        the weights (identical; the test suite checks it).

    Returns
    -------
    x_train, y_train, x_test, y_test
        ``x`` float32 ``(N, 1, 8, 8)`` = pixels/16 in [0, 1]; ``y`` int64 labels 0..9.
        1347 training and 450 test images.
    """
    images, y = load_digits_arrays()
    x = (images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    if use_sklearn or not WEIGHTS.exists():
        tr, te = sklearn_split_indices()
    else:
        with np.load(WEIGHTS) as f:
            tr, te = f["train_idx"].astype(np.int64), f["test_idx"].astype(np.int64)
    return x[tr], y[tr], x[te], y[te]


def load_params(path=None):
    """Load the committed fp32 weights: ``w1, b1, w2, b2, w3, b3`` (float32)."""
    with np.load(WEIGHTS if path is None else path) as f:
        return {k: f[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2", "w3", "b3")}


def _windows(x, r, s, stride, pad):
    from numpy.lib.stride_tricks import sliding_window_view

    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return sliding_window_view(xp, (r, s), axis=(2, 3))[:, :, ::stride, ::stride]


def _conv_float(x, w, b, stride, pad):
    win = _windows(x, w.shape[2], w.shape[3], stride, pad)
    return np.einsum("nchwrs,kcrs->nkhw", win, w, optimize=True) + b[None, :, None, None]


def forward_fp32(params, x, return_activations=False):
    """Float forward pass.

    Returns
    -------
    logits : ndarray (N, 10)
    activations : list of ndarray, optional
        The outputs of the three layers (after ReLU for the hidden ones).
    """
    acts = []
    h = x
    for i, (_, stride, pad) in enumerate(LAYERS):
        h = _conv_float(h, params[f"w{i + 1}"], params[f"b{i + 1}"], stride, pad)
        if i < len(LAYERS) - 1:
            h = np.maximum(h, 0)
        acts.append(h)
    logits = h[:, :, 0, 0]
    return (logits, acts) if return_activations else logits


# ---------------------------------------------------------------------------------------------
# quantization
# ---------------------------------------------------------------------------------------------


@dataclass
class QuantizedModel:
    """Integer parameters of the digits network.

    Attributes
    ----------
    weights : list of ndarray, int8 (K, C, R, S)
    w_scales : list of ndarray, float64 (K,)
    biases : list of ndarray, int32 (K,)
    act_scales : list of float
        ``s0`` (input, 1/16), ``s1``, ``s2`` (hidden), ``s3`` (logits).
    out_dtypes : list of str
        Requantization output dtype per layer (``"uintN"``, ``"uintN"``, ``"int8"``).
    thresholds : list of float
        Calibrated thresholds ``T1, T2, T3``.
    """

    weights: list
    w_scales: list
    biases: list
    act_scales: list
    out_dtypes: list
    thresholds: list

    def multipliers(self, layer):
        """Per-channel effective scale ``s_in·s_w[k]/s_out`` of ``layer`` (0, 1, 2)."""
        return self.act_scales[layer] * self.w_scales[layer] / self.act_scales[layer + 1]


def quantize_model(params, thresholds, bits=8):
    """Quantize the fp32 parameters given activation thresholds ``(T1, T2, T3)``.

    Parameters
    ----------
    params : dict
        fp32 weights (:func:`load_params`).
    thresholds : sequence of 3 floats
        Clipping thresholds of the two hidden activations and of the logits.
    bits : int, 2..8
        Bit width of the hidden activations (unsigned); logits are int8.

    Returns
    -------
    QuantizedModel
    """

    if not 2 <= int(bits) <= 8:
        raise ValueError(f"bits must be in [2, 8] for this network; got {bits}")
    s_act = [
        1.0 / 16.0,
        threshold_to_scale(thresholds[0], bits, signed=False),
        threshold_to_scale(thresholds[1], bits, signed=False),
        threshold_to_scale(thresholds[2], 8, signed=True),
    ]
    weights, w_scales, biases = [], [], []
    for i in range(3):
        w = params[f"w{i + 1}"].astype(np.float64)
        b = params[f"b{i + 1}"].astype(np.float64)
        amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
        sw = np.where(amax > 0, amax / 127.0, 1.0)
        weights.append(np.clip(np.rint(w / sw[:, None, None, None]), -127, 127).astype(np.int8))
        w_scales.append(sw)
        biases.append(np.rint(b / (s_act[i] * sw)).astype(np.int32))
    dt = [f"uint{bits}", f"uint{bits}", "int8"]
    return QuantizedModel(weights, w_scales, biases, s_act, dt, list(map(float, thresholds)))


def quantize_input(x):
    """``q0 = round(16·x)``: the digits' pixels, uint8 in 0..16 (scale 1/16)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 16.0), 0, 255).astype(np.uint8)


#: Tensor names of :func:`to_graph`: the input, each layer's output, the flattened logits.
TENSORS = ("x_q", "h1", "h2", "logits_map", "logits")


def to_graph(qm):
    """The quantized network as an in-memory ONNX QOperator graph (``fxq_explore.models``).

    Three ``QLinearConv`` nodes named as :data:`LAYERS` (``conv1``, ``conv2``, ``fc``), then
    ``Flatten`` to ``(N, 10)``; every weight, bias, scale and zero point a constant tensor, as
    the QLinearConv inputs of ONNX expect them: ``x`` uint8 (zero point 0), weights int8 per
    output channel (zero point 0), bias int32, hidden outputs uint8 (zero point 0), logits int8.

    Two things no ONNX file can hold, both marked on the tensors: the scales are float64 (the
    exact doubles of :meth:`QuantizedModel.multipliers`, replayed with the ``"float64"`` scale
    recipe of ``fxq_explore.models.presets.scheme_row``), and a hidden activation of
    ``uintN``, N < 8, is stored in uint8 with ``Tensor.qdtype = "uintN"``: the
    requantization clamps it to ``[0, 2^N - 1]``.

    Parameters
    ----------
    qm : QuantizedModel

    Returns
    -------
    fxq_explore.models.Graph
        ``format="onnx"``, ``flavor="qoperator"``, input ``"x_q"`` (N, 1, 8, 8) uint8,
        output ``"logits"`` (N, 10) int8.
    """
    from ..models.ir import Graph, Node, Tensor

    tensors = {}

    def const(name, value):
        arr = np.asarray(value)
        tensors[name] = Tensor(name, arr.dtype.name, arr.shape, data=arr)
        return name

    shapes = [(-1, 1, 8, 8), (-1, 16, 8, 8), (-1, 32, 4, 4), (-1, 10, 1, 1)]
    storage = ["uint8", "uint8", "uint8", "int8"]
    dtypes = ["uint8", *qm.out_dtypes]
    for j, name in enumerate(TENSORS[:4]):
        tensors[name] = Tensor(
            name,
            storage[j],
            shapes[j],
            scale=np.array([qm.act_scales[j]], dtype=np.float64),
            zero_point=np.zeros(1, dtype=storage[j]),
            qdtype=None if dtypes[j] == storage[j] else dtypes[j],
        )
    tensors["logits"] = Tensor("logits", "int8", (-1, 10))
    nodes = []
    for i, (name, stride, pad) in enumerate(LAYERS):
        w = qm.weights[i]
        x_in, y_out = TENSORS[i], TENSORS[i + 1]
        inputs = [
            x_in,
            const(f"{name}.x_scale", np.float64(qm.act_scales[i])),
            const(f"{name}.x_zero_point", np.zeros((), dtype=storage[i])),
            const(f"{name}.w", w),
            const(f"{name}.w_scale", np.asarray(qm.w_scales[i], dtype=np.float64)),
            const(f"{name}.w_zero_point", np.zeros(w.shape[0], dtype=np.int8)),
            const(f"{name}.y_scale", np.float64(qm.act_scales[i + 1])),
            const(f"{name}.y_zero_point", np.zeros((), dtype=storage[i + 1])),
            const(f"{name}.b", np.asarray(qm.biases[i], dtype=np.int32)),
        ]
        attrs = {
            "kernel_shape": list(w.shape[2:]),
            "strides": [stride, stride],
            "pads": [pad] * 4,
            "group": 1,
        }
        nodes.append(Node("QLinearConv", name, inputs, [y_out], attrs))
    nodes.append(Node("Flatten", "flatten", ["logits_map"], ["logits"], {"axis": 1}))
    return Graph("onnx", "<fxq_explore.studies.e2e.to_graph>", nodes, tensors, ["x_q"],
                 ["logits"], flavor="qoperator")  # fmt: skip


def replay_integer(qm, q0, scheme):
    """:func:`fxq_explore.models.replay` of :func:`to_graph` with a requantization scheme.

    Returns
    -------
    fxq_explore.models.ReplayResult
        ``.tensors`` by :data:`TENSORS`, ``.sites`` by layer name (``"acc"``: the int64
        accumulators, bias included; ``"scale"``: the float64 effective scales).
    """
    from ..models.replay import replay

    return replay(to_graph(qm), q0, scheme=scheme)


def run_integer(qm, q0, scheme):
    """Integer-only inference, through ``fxq_explore.models.replay`` (:func:`replay_integer`).

    Parameters
    ----------
    qm : QuantizedModel
    q0 : ndarray, uint8 (N, 1, 8, 8)
        Quantized input (:func:`quantize_input`).
    scheme : str
        A requantization scheme of ``fxq_explore.SCHEMES``.

    Returns
    -------
    logits_q : ndarray, int8 (N, 10)
    outputs : list of ndarray
        The requantized output of each layer (``(N, 16, 8, 8)``, ``(N, 32, 4, 4)`` uint8,
        ``(N, 10, 1, 1)`` int8).
    """
    env = replay_integer(qm, q0, scheme).tensors
    return env["logits"], [env[t] for t in TENSORS[1:4]]


def _sqnr_db(ref, approx):
    ref = np.asarray(ref, dtype=np.float64)
    err = np.asarray(approx, dtype=np.float64) - ref
    num, den = float(np.sum(ref**2)), float(np.sum(err**2))
    return math.inf if den == 0 else 10.0 * math.log10(num / den)


def calibration_thresholds(params, x_cal, bits_list=BITS, calibrations=CALIBRATIONS):
    """Thresholds ``(T1, T2, T3)`` per (calibration, bits) from the fp32 activations.

    Hidden activations are calibrated as unsigned ``uint<bits>`` tensors (``unsigned=True``:
    TVM KL uses ``2·(2^bits-1)+1`` levels, TensorRT KL ``2^bits``), logits as signed int8.
    """

    _, acts = forward_fp32(params, x_cal, return_activations=True)
    out = {}
    for label in calibrations:
        method, variant, kw = CALIBRATORS[label]
        t3 = calibrate(acts[2], method, variant=variant, bits=8, unsigned=False, **kw)
        for bits in bits_list:
            if method in ("max", "percentile") and (label, bits_list[0]) in out:
                out[(label, bits)] = out[(label, bits_list[0])]  # bit-independent
                continue
            t1, t2 = (
                calibrate(a, method, variant=variant, bits=bits, unsigned=True, **kw)
                for a in acts[:2]
            )
            out[(label, bits)] = (t1, t2, t3)
    return out


def evaluate(params=None, *, schemes=None, calibrations=CALIBRATIONS, bits_list=BITS):
    """Compute the table rows.

    Returns
    -------
    list of dict
        ``scheme``, ``calibration``, ``bits``, ``accuracy``, ``sqnr_db``, ``mismatch_vs_exact``
        (the fp32 row has ``scheme="fp32"``, ``bits=32`` and ``None`` for the last two).
    """

    schemes = (
        list(SCHEMES)
        if schemes is None
        else list(validate.each_choice("schemes", schemes, SCHEMES))
    )
    calibrations = validate.each_choice("calibrations", calibrations, CALIBRATORS)
    if isinstance(bits_list, (str, bytes)) or not hasattr(bits_list, "__iter__"):
        raise TypeError(f"bits_list must be a sequence of integers in [2, 8]; got {bits_list!r}")
    bits_list = tuple(validate.int_in_range("bits_list", b, 2, 8) for b in bits_list)
    if not bits_list:
        raise ValueError("bits_list must not be empty")
    params = load_params() if params is None else params
    x_tr, _, x_te, y_te = load_split()
    z = forward_fp32(params, x_te)
    rows = [
        {
            "scheme": "fp32",
            "calibration": "none",
            "bits": 32,
            "accuracy": float((z.argmax(axis=1) == y_te).mean()),
            "sqnr_db": None,
            "mismatch_vs_exact": None,
        }
    ]
    ths = calibration_thresholds(params, x_tr[:N_CALIBRATION], bits_list, calibrations)
    q0 = quantize_input(x_te)
    for label in calibrations:
        for bits in bits_list:
            qm = quantize_model(params, ths[(label, bits)], bits)
            _, ref_outs = run_integer(qm, q0, EXACT.name)
            total = sum(o.size for o in ref_outs)
            for scheme in schemes:
                if scheme == EXACT.name:
                    lq, outs = ref_outs[-1][:, :, 0, 0], ref_outs
                else:
                    lq, outs = run_integer(qm, q0, scheme)
                zhat = lq.astype(np.float64) * qm.act_scales[3]
                mism = sum(
                    int(np.count_nonzero(a != b)) for a, b in zip(outs, ref_outs, strict=False)
                )
                rows.append(
                    {
                        "scheme": scheme,
                        "calibration": label,
                        "bits": bits,
                        "accuracy": float((lq.argmax(axis=1) == y_te).mean()),
                        "sqnr_db": _sqnr_db(z, zhat),
                        "mismatch_vs_exact": mism / total,
                    }
                )
    return rows


def format_table(rows):
    """Plain-text table of :func:`evaluate` rows."""
    head = (
        f"{'scheme':<17} {'calibration':<17} {'bits':>4} {'accuracy':>8} "
        f"{'sqnr_db':>8} {'mismatch_vs_exact':>17}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        sq = "-" if r["sqnr_db"] is None else f"{r['sqnr_db']:8.2f}"
        mm = "-" if r["mismatch_vs_exact"] is None else f"{r['mismatch_vs_exact']:.2e}"
        lines.append(
            f"{r['scheme']:<17} {r['calibration']:<17} {r['bits']:>4} "
            f"{100 * r['accuracy']:7.2f}% {sq:>8} {mm:>17}"
        )
    return "\n".join(lines)


def main(argv=None):
    """``fxq-explore e2e [--json] [--bits 8 6 4] [--calibration ...] [--scheme ...]``.

    Prints the table (or, with ``--json``, one object ``{"rows": [...]}``) and returns 0.
    """

    ap = argparse.ArgumentParser(
        prog="fxq-explore e2e",
        description="Integer-only digits CNN: every calibrator x "
        "requantization scheme x activation bit width.",
    )
    ap.add_argument("--json", action="store_true", help='print {"rows": [...]} as JSON')
    ap.add_argument(
        "--bits",
        type=int,
        nargs="+",
        default=list(BITS),
        choices=range(2, 9),
        metavar="N",
        help="hidden-activation bit widths (2..8; default 8 6 4)",
    )
    ap.add_argument(
        "--calibration",
        nargs="+",
        default=list(CALIBRATIONS),
        choices=list(CALIBRATORS),
        help="calibrators (default: all)",
    )
    ap.add_argument(
        "--scheme",
        nargs="+",
        default=None,
        choices=list(SCHEMES),
        help="requantization schemes (default: all)",
    )
    argv = list(argv) if argv is not None else None
    if argv and argv[0] == "--":  # "fxq-explore e2e -- --json" from a REMAINDER parser
        argv = argv[1:]
    args = ap.parse_args(argv)
    rows = evaluate(
        schemes=args.scheme,
        calibrations=tuple(args.calibration),
        bits_list=tuple(args.bits),
    )
    if args.json:
        print(json.dumps({"rows": rows}))
    else:
        print(format_table(rows))
        print(
            "\nrun by fxq_explore.models.replay (e2e.to_graph); hidden activations uintN, logits "
            f"int8, weights int8 per channel; {N_CALIBRATION} calibration images"
        )
    return 0
