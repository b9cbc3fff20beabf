"""Train the small digits CNN used by ``fxq_explore.e2e`` (plain numpy, CPU, < 1 min).

Usage::

    python scripts/train_digits.py [--epochs 40] [--seed 0] [--out fxq_explore/data/digits_cnn.npz]

The model (see ``fxq_explore.e2e``)::

    x (N,1,8,8) = pixels/16
    conv1 3x3, 1->16, pad 1            -> ReLU -> (N,16,8,8)
    conv2 3x3, 16->32, pad 1, stride 2 -> ReLU -> (N,32,4,4)
    fc    as a 4x4 conv, 32->10, valid -> logits (N,10,1,1)

Data: ``sklearn.datasets.load_digits`` (ships inside scikit-learn; nothing is downloaded),
split with scikit-learn's ``train_test_split`` (stratified, 25 % test, ``random_state=0``);
the split indices are saved with the weights so that ``fxq_explore.e2e`` need not import
scikit-learn.
Training: softmax cross-entropy, Adam, mini-batches of 64, cosine learning-rate decay,
light L2, random +-1 pixel shifts as augmentation. Deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fxq_explore.studies import e2e


def _im2col(x, r, s, stride, pad):
    """(N,C,H,W) -> (N,C,R,S,Ho,Wo) view of the padded input."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (r, s), axis=(2, 3))  # N,C,H',W',R,S
    win = win[:, :, ::stride, ::stride]
    return xp.shape, win.transpose(0, 1, 4, 5, 2, 3)


def conv_forward(x, w, b, stride, pad):
    _, cols = _im2col(x, w.shape[2], w.shape[3], stride, pad)
    y = np.einsum("ncrshw,kcrs->nkhw", cols, w, optimize=True) + b[None, :, None, None]
    return y, cols


def conv_backward(dy, x_shape, cols, w, stride, pad):
    dw = np.einsum("ncrshw,nkhw->kcrs", cols, dy, optimize=True)
    db = dy.sum(axis=(0, 2, 3))
    n, c, h, wd = x_shape
    dxp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=dy.dtype)
    dcols = np.einsum("nkhw,kcrs->ncrshw", dy, w, optimize=True)
    ho, wo = dy.shape[2], dy.shape[3]
    for r in range(w.shape[2]):
        for s in range(w.shape[3]):
            dxp[:, :, r : r + stride * ho : stride, s : s + stride * wo : stride] += dcols[
                :, :, r, s
            ]
    dx = dxp[:, :, pad : pad + h, pad : pad + wd]
    return dx, dw, db


def init_params(rng):
    def he(shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float64)

    return {
        "w1": he((16, 1, 3, 3)),
        "b1": np.zeros(16),
        "w2": he((32, 16, 3, 3)),
        "b2": np.zeros(32),
        "w3": he((10, 32, 4, 4)) * 0.5,
        "b3": np.zeros(10),
    }


def loss_and_grads(p, x, y, wd):
    a1, c1 = conv_forward(x, p["w1"], p["b1"], 1, 1)
    h1 = np.maximum(a1, 0)
    a2, c2 = conv_forward(h1, p["w2"], p["b2"], 2, 1)
    h2 = np.maximum(a2, 0)
    z, c3 = conv_forward(h2, p["w3"], p["b3"], 1, 0)
    logits = z[:, :, 0, 0]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    prob = e / e.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = -np.log(prob[np.arange(n), y] + 1e-12).mean()
    dz = prob.copy()
    dz[np.arange(n), y] -= 1
    dz = (dz / n)[:, :, None, None]
    g = {}
    dh2, g["w3"], g["b3"] = conv_backward(dz, h2.shape, c3, p["w3"], 1, 0)
    da2 = dh2 * (a2 > 0)
    dh1, g["w2"], g["b2"] = conv_backward(da2, h1.shape, c2, p["w2"], 2, 1)
    da1 = dh1 * (a1 > 0)
    _, g["w1"], g["b1"] = conv_backward(da1, x.shape, c1, p["w1"], 1, 1)
    for k in ("w1", "w2", "w3"):
        loss += 0.5 * wd * float((p[k] ** 2).sum())
        g[k] = g[k] + wd * p[k]
    return loss, g


def shift_batch(x, rng):
    """Random shift by -1, 0 or +1 pixel in each direction (zero fill)."""
    out = np.zeros_like(x)
    dy, dx = rng.integers(-1, 2, size=2)
    src = x[:, :, max(0, -dy) : 8 - max(0, dy), max(0, -dx) : 8 - max(0, dx)]
    out[:, :, max(0, dy) : max(0, dy) + src.shape[2], max(0, dx) : max(0, dx) + src.shape[3]] = src
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--out", default=str(Path(e2e.__file__).parent / "data" / "digits_cnn.npz"))
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    x_tr, y_tr, x_te, y_te = e2e.load_split(use_sklearn=True)
    train_idx, test_idx = e2e.sklearn_split_indices()
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    step, bs = 0, 64
    steps_total = args.epochs * int(np.ceil(len(x_tr) / bs))
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_tr))
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            xb = shift_batch(x_tr[idx], rng) if rng.random() < 0.5 else x_tr[idx]
            loss, g = loss_and_grads(p, xb, y_tr[idx], args.wd)
            step += 1
            lr = args.lr * 0.5 * (1 + np.cos(np.pi * step / steps_total))
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                mh = m[k] / (1 - b1**step)
                vh = v[k] / (1 - b2**step)
                p[k] -= lr * mh / (np.sqrt(vh) + eps)
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            params32 = {k: val.astype(np.float32) for k, val in p.items()}
            acc = (e2e.forward_fp32(params32, x_te).argmax(axis=1) == y_te).mean()
            print(
                f"epoch {epoch + 1:3d}  loss {loss:.4f}  test acc {acc:.4f}  "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    params32 = {k: val.astype(np.float32) for k, val in p.items()}
    acc = (e2e.forward_fp32(params32, x_te).argmax(axis=1) == y_te).mean()
    np.savez_compressed(
        args.out,
        **params32,
        train_idx=train_idx.astype(np.int16),
        test_idx=test_idx.astype(np.int16),
    )
    print(f"saved {args.out}: fp32 test accuracy {acc:.4f}, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
