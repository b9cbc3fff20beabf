"""``fxq-explore verify``: every vectorised scheme against its exact oracle, bit for bit."""

from __future__ import annotations

import math

import numpy as np
from tqdm.auto import tqdm

from ..core import validate
from ..oracles import EDGE_ACCS, INT32_MAX, INT32_MIN, ORACLES, SPECIAL_SCALES, Overflow, finish
from ..requantization import requantize
from ..schemes import SCHEMES


def verify(n_scales: int = 200, n_acc: int = 500, seed: int = 0, schemes=None, progress=None):
    """Check every vectorised scheme against its oracle on edge cases and random inputs.

    For each scheme: the special scales plus ``n_scales`` log-uniform random scales in
    ``[2^-40, 2^12]``; for each scale the edge accumulators, ``n_acc`` random accumulators (half
    over the whole int32 range, half within +-2^21), and, at power-of-two scales, exact ties.
    Returns one dict per scheme: ``cases``, ``mismatches``, ``refused`` (inputs where the engine's
    C code is undefined and both sides refuse), ``first_mismatch``.
    """
    n_scales = validate.int_in_range("n_scales", n_scales, 0, 10_000)
    n_acc = validate.int_in_range("n_acc", n_acc, 1, 100_000)
    seed = validate.int_in_range("seed", seed, 0, 2**63 - 1)
    rng = np.random.default_rng(seed)
    schemes = validate.each_choice("schemes", schemes or tuple(SCHEMES), SCHEMES)
    scales = list(SPECIAL_SCALES) + [float(2.0**x) for x in rng.uniform(-40, 12, n_scales)]
    scales += [2.0**-k for k in range(1, 32)]
    rows = []
    it = schemes
    if progress:
        it = tqdm(schemes, desc="verify")
    for name in it:
        cases = mism = refused = 0
        first = None
        for s in scales:
            try:  # a scheme that refuses this scale (XNNPACK: [2^-32, 256)) is not checked on it
                SCHEMES[name].params(np.array([s]))
            except ValueError:
                continue
            accs = list(EDGE_ACCS)
            accs += rng.integers(INT32_MIN, INT32_MAX, n_acc // 2, endpoint=True).tolist()
            accs += rng.integers(-(2**21), 2**21, n_acc - n_acc // 2, endpoint=True).tolist()
            k = -math.frexp(s)[1] + 1
            if s == 2.0**-k and 1 <= k <= 31:  # exact ties (2j+1) * 2^(k-1)
                accs += [
                    (2 * j + 1) * 2 ** (k - 1)
                    for j in rng.integers(-(2**20), 2**20, 50)
                    if INT32_MIN <= (2 * j + 1) * 2 ** (k - 1) <= INT32_MAX
                ]
            want = []
            for a in accs:
                try:
                    want.append(ORACLES[name](a, s))
                except Overflow:
                    want.append(None)
            ok = [w is not None for w in want]
            refused += ok.count(False)
            good = [a for a, o in zip(accs, ok, strict=False) if o]
            if len(good) < len(accs):  # the vectorised code must refuse those too
                bad = [a for a, o in zip(accs, ok, strict=False) if not o]
                try:
                    requantize(bad, s, name, dtype="int32")
                    mism += len(bad)
                except ValueError:
                    pass
            got = requantize(good, s, name, dtype="int32").tolist() if good else []
            exp = [
                finish(w, 0, INT32_MIN, INT32_MAX, name, INT32_MAX) for w in want if w is not None
            ]
            for a, g, w in zip(good, got, exp, strict=False):
                cases += 1
                if g != w:
                    mism += 1
                    first = first or (a, s, g, w)
        rows.append(
            dict(scheme=name, cases=cases, mismatches=mism, refused=refused, first_mismatch=first)
        )
    return rows
