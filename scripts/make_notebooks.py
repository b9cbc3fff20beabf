"""Write the eight tutorial notebooks in notebooks/ (without outputs).

Run ``python scripts/make_notebooks.py`` after editing; the notebooks are generated, so edit the
cells here. Cells are kept short: the computing happens in ``fxq_explore``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "notebooks"
IGNORE = ["nbval-ignore-output"]


def md(text):
    return new_markdown_cell(text.strip("\n"))


def code(src, tags=()):
    c = new_code_cell(src.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def explorer(src):
    """An interactive cell: output ignored by nbval (widgets are not compared)."""
    return code(src, IGNORE)


IMPORTS = """
import numpy as np
import matplotlib.pyplot as plt

import fxq_explore as fx
from fxq_explore import analysis, plotting, widgets
"""

NOTEBOOKS = {}

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["00_the_question"] = [
    md("""
# 0. The question: why is there a float multiply in my int8 graph?

In 2019 a TVM user quantized a network with `relay.quantize` and printed the graph of one conv layer twice
([discuss.tvm.ai/t/4135](https://discuss.tvm.ai/t/4135)). With the default power-of-two scales the layer
ends in integer operations only:

```
conv (int32) -> add bias -> relu -> add 64 -> right_shift 7 -> clip(-127, 127) -> cast uint8
```

After KL-divergence calibration, the same layer contained **float** arithmetic:

```
conv (int32) -> cast float32 -> multiply 0.0018843 -> round -> clip(-127, 127) -> cast int32 -> ...
             -> cast float32 -> multiply 0.0340026 -> round -> clip(-127, 127) -> cast uint8
```

The question of the thread: *why does the float multiply appear, and how do we keep the whole graph integer?*
This tutorial answers it with numbers computed in front of you.

**What you'll learn**
- what the two graphs compute, run on data of the seed layer's shapes;
- why a calibrated scale such as 0.0018843 cannot be a shift, and what replacing it by one costs;
- the road map of the following notebooks.

**What you need**: Python and numpy; no prior knowledge of quantization. Run the cells top to bottom.
"""),
    code(
        IMPORTS + "from fxq_explore import seed\nfrom fxq_explore.schemes import pow2_exponent"
    ),
    md("""
## Both graphs, run

`fxq_explore.seed.replay` builds deterministic synthetic inputs in the seed's shapes (input NCHW16c
`(1, 4, 56, 56, 16)` uint8, weights `(4, 4, 3, 3, 4, 16, 4)` int8), runs the conv once, and finishes it three
ways: graph 1 (power-of-two scales), graph 2 as printed (float multiplies), and graph 2 with each float
multiply replaced by TVM's fixed-point multiply (the change TVM made in PR #4160, October 2019).
"""),
    code("""
r = seed.replay(seed=0)
print(r.pow2.shape, r.pow2.dtype)
r
"""),
    code("""
rows = {(row["a"], row["b"]): row for row in r.table()}
float_vs_fixed = rows[("float", "fixed")]
float_vs_pow2 = rows[("float", "pow2")]
print(f"float vs fixed point: {float_vs_fixed['mismatches']} of {float_vs_fixed['elements']} outputs differ")
print(f"float vs power of two: {float_vs_pow2['fraction']:.1%} differ, by up to {float_vs_pow2['max_abs_diff']}")
# the fixed-point graph reproduces the float graph on this data; the shift-only graph does not
assert r.pow2.shape == r.float.shape == r.fixed.shape == seed.SEED_SHAPE
assert float_vs_fixed["fraction"] < 1e-3
assert float_vs_pow2["fraction"] > 0.1 and float_vs_pow2["max_abs_diff"] >= 3
"""),
    md("""
The fixed-point version of graph 2 agrees with the float version on (almost) every output: an integer
multiply and a shift can stand in for the float multiply. The power-of-two graph is a *different model*:
a large share of the outputs move, by several steps. (The two graphs' constants were printed for different
calibrations, so graph 1 is not expected to match graph 2; the point is what a shift can and cannot express.)
"""),
    code("""
ax = plotting.plot_seed_outputs({"fixed - float": (r.float, r.fixed), "pow2 - float": (r.float, r.pow2)})
ax.set_title("seed layer, 200 704 uint8 outputs: how far each graph is from graph 2 as printed");
"""),
    md("""
## Why the float multiply appeared

A conv in int8 produces an int32 accumulator `acc`; the next layer wants an int8 value `q = round(acc · s)`
with `s = s_in · s_w / s_out`. With power-of-two scales, `s = 2^-n` and the multiply is a shift: the `add 64,
right_shift 7` of graph 1 is `round(acc · 2^-7)`. KL calibration picks thresholds that are not powers of two,
so `s = 0.0018843`, and in 2019 `relay.quantize` simply emitted a float multiply for it.
"""),
    code("""
s = 0.0018843
e = int(pow2_exponent(s))           # the nearest power of two, computed exactly
g = analysis.gain_error(s)
print(f"nearest power of two: 2^{e} = {2.0**e}; replacing s by it scales every output by {1 + g:.4f}")
assert e == -9 and round(g, 4) == 0.0365
"""),
    md("""
A shift would scale the whole layer by 1.0365: a **3.65 % gain error**, on every layer with such a scale.

## Keeping the whole graph integer

The alternative is to write `s` as an integer multiplier and a shift, `s ≈ q · 2^(shift − 31)` with a 31-bit
`q`. The multiply then runs in integers, to within about `2^-31` relative error:
"""),
    code("""
d = fx.decompose(s)
print(d)
assert (d.multiplier, d.shift) == (2071809760, -9)
assert abs(d.rel_error) < 2.0**-31
# relay.quantize computed the ratio in float32, so TVM's multiplier was the float32 one
assert seed.fixed_point_multiplier(s) == (2071809792, -9)
"""),
    md("""
## Road map

| notebook | question it answers |
|---|---|
| 01 Decompose a scale | how is `s` written as multiplier and shift, and why is the multiplier in `[2^30, 2^31)`? |
| 02 Three ways to requantize | float vs power of two vs fixed point, against exact arithmetic |
| 03 Rounding conventions | why TFLite, TVM, ONNX Runtime and XNNPACK sometimes differ by one |
| 04 Bit-width sweeps | how many multiplier bits and output bits are enough |
| 05 The kernel | what requantization costs next to the convolution itself |
| 06 Calibration | where 0.0018843 comes from, and how calibrators choose thresholds |
| 07 End to end | does any of it change accuracy of a real integer-only network? |

## Summary
- The float multiply came from a calibrated, non-power-of-two scale; a shift cannot express 0.0018843
  without a 3.65 % gain error.
- A fixed-point multiplier (2071809760, shift −9) expresses it to about 1e−10, and on the seed layer the
  integer graph reproduces the float graph.

## Exercises
1. Re-run `seed.replay(seed=1)` and `seed.replay(0, float_round="even")`: do the mismatch counts change?
2. Compute the gain error of the second multiplier, 0.0340026. Is it better or worse than the first?
3. `seed.replay(0, ratio_precision="float64")` uses a multiplier from a double ratio: does any output change?
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["01_decompose_a_scale"] = [
    md("""
# 1. Decompose a scale into a multiplier and a shift

**What you'll learn**
- how a real scale `s` is written as `s ≈ multiplier · 2^(shift − 31)` (TFLite's `QuantizeMultiplier`);
- why the multiplier is normalised into `[2^30, 2^31)` and what error is left;
- how the error grows when the multiplier has fewer bits.

**What you need**: notebook 00 (optional); binary numbers.

The int32 multiplier is a fixed-point fraction `q / 2^31` in `[1/2, 1)` (Q31); `frexp` splits `s` into such
a fraction and a power of two, and rounding the fraction to 31 bits gives `q`.
"""),
    code(IMPORTS),
    md("## The seed's multiplier, bit by bit"),
    code("""
d, fig = widgets.decomposition_view(0.0018843, bits=32)
"""),
    code("""
print(d)
assert (d.multiplier, d.shift, d.right_shift) == (2071809760, -9, 40)
assert 2**30 <= d.multiplier < 2**31                         # normalised: the leading bit is set
assert f"{d.rel_error:.2e}" == "-1.05e-10" and abs(d.rel_error) <= 2.0**-31
"""),
    md("""
`0.0018843 = 0.96476… × 2^-9`: the fraction `0.96476…` becomes `q = round(0.96476… · 2^31) = 2071809760`, and
the total right shift is `31 + 9 = 40`. In integers: `acc · s ≈ (acc · 2071809760) >> 40`.

## Why normalise into [2^30, 2^31)?

Without normalisation we could store `round(s · 2^31)` directly. For a small scale most of the 31 bits would
be leading zeros, and the relative error would be much larger:
"""),
    code("""
s = 0.0018843
q_plain = round(s * 2**31)                  # un-normalised Q31: no exponent
rel_plain = q_plain / 2**31 / s - 1
print(f"un-normalised: q = {q_plain} ({q_plain.bit_length()} significant bits), relative error {rel_plain:+.2e}")
print(f"normalised:    q = {d.multiplier} ({d.multiplier.bit_length()} significant bits), relative error {d.rel_error:+.2e}")
assert q_plain.bit_length() == 22 and abs(rel_plain) > 1000 * abs(d.rel_error)
"""),
    md("""
Normalising spends every bit on significant digits: the relative error is at most half a unit in the last
place, `2^-(bits-1)` for a `bits`-wide signed multiplier, whatever the scale.
"""),
    code("""
scales = np.geomspace(1e-6, 10, 3000)
d8 = fx.decompose(scales, bits=8)
ax = plotting.plot_relative_error(scales, d8.rel_error, bits=8)
ax.set_title("8-bit multiplier: the relative error is a sawtooth under its bound");
assert np.all(np.abs(d8.rel_error) <= 2.0**-7)
"""),
    code("""
bits = np.arange(2, 33)
rel = np.array([abs(fx.decompose(0.0018843, bits=int(b)).rel_error) for b in bits])
ax = plotting.plot_series(bits, {"0.0018843": np.where(rel > 0, rel, np.nan), "bound 2^-(bits-1)": 2.0 ** -(bits - 1.0)},
                          xlabel="multiplier bits", ylabel="|relative error|", logy=True)
assert np.all(rel <= 2.0 ** -(bits - 1.0))
print(f"16-bit multiplier: {fx.decompose(0.0018843, bits=16).multiplier}, relative error {rel[bits == 16][0]:.1e}")
"""),
    md("""
## Edge cases

TFLite flushes scales below about `2^-32` to a zero multiplier, and the scale `1.0` becomes `2^30 · 2^(1−31)`:
the shift is positive (a left shift).
"""),
    code("""
tiny, one = fx.decompose(2.0**-33), fx.decompose(1.0)
print(tiny.multiplier, tiny.shift, tiny.flushed, "|", one.multiplier, one.shift)
assert tiny.flushed and tiny.multiplier == 0
assert (one.multiplier, one.shift) == (2**30, 1)
"""),
    md("""
## Explore

Move the **scale** slider (log scale, 1e−6 … 10) and the **multiplier bits** slider: the readout shows the
multiplier, the shift, the represented value and the error; the picture shows the bits.
"""),
    explorer("""
explorer = widgets.decompose_explorer(0.0018843, bits=32)
explorer
"""),
    code("""
# the explorer computes what decompose computes
explorer.bits.value = 16
assert explorer.last_result.multiplier == fx.decompose(0.0018843, bits=16).multiplier
assert str(explorer.last_result.multiplier) in explorer.readout.value
explorer.bits.value = 32
"""),
    md("""
## Summary
- `s ≈ q · 2^(shift − 31)`: `q = 2071809760`, `shift = −9` (right shift 40) for 0.0018843.
- Normalising `q` into `[2^30, 2^31)` makes the relative error at most `2^-31`, independent of the scale;
  a `b`-bit multiplier leaves at most `2^-(b-1)`.
- Tiny scales are flushed to zero; scales ≥ 1/2 need a left shift.

## Exercises
1. Find a scale whose 8-bit multiplier rounds up to `2^7` (the fraction rounds to 1.0). What does `decompose`
   do with the shift?
2. Compare `fx.decompose(0.0018843, convention="xnnpack")`: which multiplier does a float32 scale give?
3. With the explorer, find the smallest number of multiplier bits for which 0.0018843's relative error is
   below 1e−4.
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["02_three_ways_to_requantize"] = [
    md("""
# 2. Three ways to requantize

**What you'll learn**
- the three ways engines turn an int32 accumulator into int8: a float multiply, a power-of-two shift, and a
  fixed-point multiply;
- how far each lands from the exact value `acc · s`, per accumulator and as a histogram;
- the 3.65 % gain error of rounding 0.0018843 to `2^-9`, and how the choice of power of two changes it.

**What you need**: notebook 01 (multiplier and shift).

Errors are measured in output steps (LSB) against the exact real value `acc · s + zero_point`. Exact
rounding is never more than 0.5 LSB away; anything beyond is the scheme's own error.
"""),
    code(IMPORTS),
    code("""
rng_seed = 0
acc = analysis.random_accumulators(200_000, seed=rng_seed, spread=67_000)   # |acc·s| < 127: no clamping
s = 0.0018843
a = analysis.error_vs_exact(acc, s, ("float32_rne", "pow2", "tflite"))
print(a)
"""),
    md("## Error per accumulator and error histograms"),
    code("""
res, fig = widgets.requantization_view(s, acc=acc, dtype="int32")   # no clamping: the pure errors
"""),
    code("""
summary = {row["scheme"]: row for row in a.summary()}
assert summary["float32_rne"]["max_abs_error"] <= 0.5 + 1e-9 and a.mismatches["float32_rne"] == 0
assert summary["tflite"]["max_abs_error"] < 0.51                       # fixed point: within a hair of exact
assert 0 < a.mismatches["tflite"] < 0.002 * acc.size                   # ... but not always equal (notebook 03)
assert summary["pow2"]["max_abs_error"] > 4                            # power of two: several LSB off
"""),
    md("""
The float32 multiply and the fixed-point multiply both stay within half a step of the exact value (the
fixed-point one differs from exact rounding on about 0.1 % of accumulators — notebook 03 explains why). The
power of two drifts away linearly with the accumulator: its error is not rounding, it is a **gain error**.

## The gain error of a power of two
"""),
    code("""
g = analysis.gain_error(s)
worst = a.worst("pow2", n=1)[0]
print(f"2^-9 / {s} - 1 = {g:+.4f}; worst accumulator {worst[0]}: pow2 gives {worst[1]}, exact {worst[2]:.2f}")
assert round(g, 4) == 0.0365
# the power-of-two error grows like g * acc * s: the line in the left plot
slope = np.polyfit(a.real, a.errors["pow2"], 1)[0]
assert abs(slope - g) < 0.002
"""),
    md("""
Which power of two? `pow2_mode` picks the nearest (in log2), the next larger or the next smaller one; for
0.0018843 "nearest" and "ceil" both give `2^-9`, "floor" gives `2^-10`, which halves every output.
"""),
    code("""
modes = {m: analysis.gain_error(s, m) for m in ("nearest", "ceil", "floor")}
print({m: f"{v:+.2%}" for m, v in modes.items()})
assert modes["nearest"] == modes["ceil"] and modes["floor"] < -0.4
"""),
    md("""
## Zero point

An asymmetric output adds the zero point *after* rounding, so the error in LSB does not depend on it; with
int8 clamping, a zero point only moves where the output saturates.
"""),
    code("""
a_zp = analysis.error_vs_exact(acc, s, ("float32_rne", "tflite"), zero_point=-20)
assert all(a_zp.mismatches[k] == a.mismatches[k] for k in ("float32_rne", "tflite"))
"""),
    md("""
## Explore

**scale**, **zero point** and **pow2 mode**: the readout shows the pow2 gain error and, per scheme, the
largest error, the mean error (bias) and the share of results that differ from exact rounding.
"""),
    explorer("""
explorer = widgets.requantization_explorer(s)
explorer
"""),
    code("""
explorer.pow2_mode.value = "floor"
assert "-48" in explorer.readout.value            # 2^-10 / 0.0018843 - 1 = -48.2 %
explorer.pow2_mode.value = "nearest"
"""),
    md("""
## Summary
- A float32 multiply and a 31-bit fixed-point multiply are both within half an LSB of exact (the fixed-point
  one agrees with exact rounding on ~99.9 % of accumulators).
- A power-of-two scale has a gain error: +3.65 % for 0.0018843, i.e. up to ~5 LSB at the edge of int8.
- The zero point is added after rounding and does not change the rounding error.

## Exercises
1. Find a scale in the explorer for which the power of two is almost exact. What is special about it?
2. Use `analysis.error_vs_exact(acc, s, ["tvm_2019_float"])`: how does the seed thread's float path compare?
3. With `dtype="int8"` in `error_vs_exact` and `spread=70_000`, where does clamping show up in the histogram?
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["03_compare_rounding_conventions"] = [
    md("""
# 3. Rounding conventions: why engines differ by one

**What you'll learn**
- single vs double rounding: TFLite's reference kernels round twice (`SaturatingRoundingDoublingHighMul`,
  then `RoundingDivideByPOT`), TFLite's single-rounding build, TVM and XNNPACK round once;
- tie rules: half up, half away from zero, half to even;
- on which accumulators the engines disagree, traced step by step with `explain`;
- how often double rounding differs from single rounding, as a function of the right shift.

**What you need**: notebooks 01 and 02.
"""),
    code(IMPORTS),
    code("""
for name, sc in fx.SCHEMES.items():
    print(f"{name:<17} ties: {sc.tie:<42} {sc.engines}")
"""),
    md("""
## One accumulator, two answers

`265 · 0.0018843 = 0.4993`: exact rounding gives 0. TFLite's first stage rounds the 64-bit product to
`256 = 0.5 · 2^9`, an exact tie for the second stage, which rounds it away from zero to 1.
"""),
    code("""
ex = fx.explain(265, 0.0018843, "tflite")
print(ex)
assert ex.result == 1 and float(ex.exact) < 0.5
assert fx.explain(265, 0.0018843, "tflite_single").result == 0
"""),
    md("## All schemes against exact rounding"),
    code("""
acc = analysis.random_accumulators(200_000, seed=0, spread=67_000)
s = 0.0018843
cmp = fx.compare(acc, s)
cmp
"""),
    code("""
rows = {row["scheme"]: row for row in cmp.rows}
ax = plotting.plot_scheme_disagreement([r for r in cmp.rows if r["scheme"] != "pow2"])
ax.set_title("results that differ from exact rounding (pow2 omitted: 89 %)");
for double in ("tflite", "tflite_optimized"):                  # off by one, never more, on ~0.1 %
    assert rows[double]["max_abs_diff"] == 1 and 0.0005 < rows[double]["mismatch_rate"] < 0.002, double
for single in ("tflite_single", "tvm_tonearest", "xnnpack_rndnu", "float32_rne"):
    assert rows[single]["mismatches"] == 0, single
assert rows["tvm_2019_float"]["mismatches"] < 10
"""),
    md("""
The schemes that round once — in 64-bit integers, or in float32 with ties to even — reproduce exact rounding
on these accumulators. The double-rounding ones (`tflite`, `tflite_optimized`) differ by exactly one on about
0.1 %. The seed thread's own float path, `tvm_2019_float`, misses a handful: float32 rounds `acc · s` to 24 bits
before the final rounding, which is double rounding again, in floating point. Here is a `tflite` mismatch,
traced:
"""),
    code("""
a0 = int(cmp.differing_acc[np.flatnonzero(cmp.outputs["tflite"] != fx.requantize(cmp.differing_acc, s, "exact"))[0]])
print(fx.explain(a0, s, "tflite"))
print(fx.explain(a0, s, "tflite_single"))
"""),
    md("""
## Tie rules

Ties are values exactly halfway between two integers. With `s = 1/16`, the accumulators `±8, ±24` land on
`±0.5, ±1.5`; the tie rule decides:
"""),
    code("""
ties = [-24, -8, 8, 24]
table = {t: fx.requantize(ties, 1 / 16, "exact", tie=t, dtype="int32").tolist()
         for t in ("HALF_UP", "HALF_AWAY_FROM_ZERO", "HALF_TO_EVEN")}
for t, v in table.items():
    print(f"{t:<20} {v}")
assert table["HALF_UP"] == [-1, 0, 1, 2] and table["HALF_AWAY_FROM_ZERO"] == [-2, -1, 1, 2]
assert table["HALF_TO_EVEN"] == [-2, 0, 0, 2]
"""),
    md("""
## Disagreement against the right shift

Double rounding goes wrong only when the first stage creates a tie for the second, i.e. when the `R` bits
that stage 2 drops are exactly `100…0`. For random accumulators that happens with probability about
`2^-R`, and half of those ties are resolved differently from exact rounding: a rate of about `2^-(R+1)`.
We move the scale by powers of two so that the stage-2 right shift `R` runs from 1 to 12:
"""),
    code("""
R = np.arange(1, 13)
rate = np.array([analysis.disagreement_rate(acc, s * 2.0 ** (9 - r), "tflite", "tflite_single", dtype="int32")
                 for r in R])
ax = plotting.plot_series(R, {"tflite vs tflite_single (measured)": rate, "2^-(R+1)": 2.0 ** -(R + 1.0)},
                          xlabel="right shift R of the second rounding", ylabel="disagreement rate", logy=True)
ratio = rate / 2.0 ** -(R + 1.0)
print(np.round(ratio, 2))
assert np.all((ratio[:10] > 0.6) & (ratio[:10] < 1.5))
"""),
    md("""
Where do the differences sit? Against the fractional part of `acc · s`, exact rounding draws two clean lines
(error `−f` below one half, `1 − f` above); the double-rounding mismatches are the red points, all just below
one half, rounded up:
"""),
    code("""
res, fig = widgets.scheme_view("tflite", s, acc=acc)
frac = res["analysis"].real - np.floor(res["analysis"].real)
d = np.isin(res["analysis"].acc, res["differing"])
assert np.all(np.abs(frac[d] - 0.5) < 1e-3)          # every mismatch is a near-tie
"""),
    md("""
## Explore

Pick a **scheme** from the dropdown and move the **scale**: the readout shows the mismatch count against
exact rounding and the `explain` trace of the first accumulator where the scheme differs.
"""),
    explorer("""
explorer = widgets.scheme_explorer("tflite", s)
explorer
"""),
    code("""
explorer.scheme.value = "tflite_single"
assert explorer.last_result["analysis"].mismatches["tflite_single"] == 0
explorer.scheme.value = "tflite"
assert explorer.last_result["differing"].size > 0
"""),
    md("""
## Summary
- Engines that round once to nearest (TFLite single rounding, TVM, XNNPACK, float32 paths) agree with exact
  rounding at this scale; TFLite's default double rounding is off by one on about `2^-(R+1)` of accumulators.
- Ties are resolved differently by each rule; on negative ties `HALF_UP` and `HALF_AWAY_FROM_ZERO` differ.
- `fx.explain` shows exactly which stage creates the difference.

## Exercises
1. Which accumulators near 0 make `tflite_optimized` differ from `tflite`? (Hint: negative ties.)
2. Repeat the right-shift plot for `tflite_optimized` vs `tflite_single`.
3. Find a scale at which `float32_rne` differs from exact rounding (hint: large accumulators, float32 has 24 bits).
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["04_sweep_bit_widths"] = [
    md("""
# 4. Bit-width sweeps: how many bits are enough?

**What you'll learn**
- how the error falls as the fixed-point multiplier gets wider (2 … 32 bits);
- how the signal-to-quantization-noise ratio (SQNR) grows with the output width (2 … 16 bits): about 6 dB per
  bit, unless the scale itself is wrong;
- how to read max error, mismatch rate, bias and SQNR side by side.

**What you need**: notebooks 01–03.

`SQNR = 10 log10(Σ (acc·s)² / Σ (q − acc·s)²)`.
"""),
    code(IMPORTS),
    code("""
acc = analysis.random_accumulators(50_000, seed=0, spread=67_000)
s = 0.0018843
mult = analysis.sweep_multiplier_bits(acc, s, progress=False)
out = analysis.sweep_output_bits(acc, s, progress=False)
"""),
    md("## Multiplier bits"),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
plotting.plot_sweep(mult, "sqnr_db", ax=axes[0])
plotting.plot_sweep(mult, "mismatch_rate", ax=axes[1]).set_yscale("symlog", linthresh=1e-5);
"""),
    code("""
i = {int(b): k for k, b in enumerate(mult.bits)}
sq = mult.sqnr_db["tflite_single"]
print(f"SQNR: 4 bits {sq[i[4]]:.1f} dB, 8 bits {sq[i[8]]:.1f} dB, 16 bits {sq[i[16]]:.2f} dB, 32 bits {sq[i[32]]:.2f} dB")
assert sq[i[32]] - sq[i[4]] > 15                 # a few-bit multiplier is a real loss
assert abs(sq[i[32]] - sq[i[9]]) < 0.05          # from ~9 bits on, the output rounding dominates
mm = mult.mismatch_rate
assert mm["tflite_single"][i[20]] == 0 and mm["tflite_single"][i[32]] == 0
assert mm["tflite"][i[32]] > 0.0005               # double rounding keeps its mismatches at any width
"""),
    md("""
The SQNR saturates near 48 dB after about 9 bits: from there the output rounding (0.29 LSB rms) dominates.
The mismatch rate keeps falling until ~20 bits for single rounding, but double rounding (`tflite`) keeps its
~0.1 % of off-by-one results at any width: it is a property of the arithmetic, not of the precision.

## Output bits
"""),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
plotting.plot_sweep(out, "sqnr_db", ax=axes[0])
plotting.plot_sweep(out, "max_abs_error", ax=axes[1]);
"""),
    code("""
j = {int(b): k for k, b in enumerate(out.bits)}
per_bit = (out.sqnr_db["float32_rne"][j[14]] - out.sqnr_db["float32_rne"][j[6]]) / 8
print(f"float32: {per_bit:.2f} dB per output bit; pow2 at 16 bits: {out.sqnr_db['pow2'][j[16]]:.1f} dB")
assert 5.5 < per_bit < 6.5                          # the textbook 6.02 dB/bit
assert out.sqnr_db["pow2"][j[16]] < 35 < out.sqnr_db["float32_rne"][j[16]]   # the gain error caps pow2
"""),
    md("""
Each output bit buys ~6 dB, as long as the scale is right. The power-of-two scale is capped near 31 dB by its
3.65 % gain error: more bits cannot fix a wrong scale.

## Explore

Choose a **metric** and move the **multiplier bits** / **output bits** sliders; the dashed lines mark the
chosen widths and the readout shows each scheme's value there.
"""),
    explorer("""
explorer = widgets.sweep_explorer((mult, out))
explorer
"""),
    code("""
explorer.output_bits.value = 4
assert explorer.last_result["output_bits"]["float32_rne"] == out.sqnr_db["float32_rne"][j[4]]
"""),
    md("""
## Summary
- 16 multiplier bits already give the full int8 SQNR for this scale; 32 bits remove (almost) all mismatches
  for single rounding, while double rounding keeps its ~0.1 %.
- Output width gives ~6 dB per bit; a power-of-two scale saturates at ~31 dB whatever the width.

## Exercises
1. Repeat the multiplier sweep for a scale whose binary fraction has few ones (e.g. 0.75 · 2^-9). Why is it flat?
2. Plot the `bias` metric: which scheme has a systematic offset at 4 output bits?
3. At which output width does `tflite` start to lose SQNR against `float32_rne`? (Hint: the scale grows with
   the width; look at the right shift, and at notebook 03's last plot.)
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["05_time_the_kernel"] = [
    md("""
# 5. The kernel: what does requantization cost?

**What you'll learn**
- the C conv kernel with requantization fused into its epilogue, run per scheme on the seed layer;
- that it is bit-exact with the readable numpy reference;
- what requantization costs next to a fast conv and next to a slow one, and how the kernel compares with
  ONNX Runtime (and PyTorch) when they are installed.

**What you need**: notebooks 02–03. The C extension must be built (`make lab` / `make test` do it).

Timings depend on the machine and its load: cells that print times are not checked by the tests, and no
claim here relies on a speed ratio between two fast things.
"""),
    code(
        IMPORTS
        + """import contextlib, importlib.util, io, timeit
from pathlib import Path

from fxq_explore import seed, kernels
from fxq_explore.kernels.conv import oihw4i16o4i_to_oihw"""
    ),
    code("""
info = kernels.info()
print("SIMD path:", info["path"], "| available:", info["available_paths"])
"""),
    md("""
## The seed layer, bit-exact

Input `(1, 4, 56, 56, 16)` uint8 in NCHW16c, weights `(4, 4, 3, 3, 4, 16, 4)` int8: a 64→64 channel 3×3
conv, 200 704 outputs, 116 M multiply-adds.
"""),
    code("""
inp = seed.make_inputs(0)
x, w = inp["x"], inp["w"]
s = 0.0018843
conv = dict(layout="NCHW16c", padding=1)
acc = fx.conv2d(x, w, **conv)                              # int32 accumulators (scheme=None)
assert np.array_equal(acc, fx.conv2d(x, w, backend="reference", **conv))
schemes = ["float32_rne", "pow2", "tflite", "tflite_single"]
fused = {sch: fx.conv2d(x, w, scale=s, scheme=sch, out_dtype="int8", **conv) for sch in schemes}
for sch in schemes:   # the fused C kernel is bit-exact with conv, then requantize in numpy
    assert np.array_equal(fused[sch], fx.requantize(acc, s, sch)), sch
    assert np.array_equal(fx.requantize(acc, s, sch, backend="c"), fx.requantize(acc, s, sch)), sch
print("C kernels bit-exact with the reference for", schemes)
"""),
    md("""
## Timing

Each candidate runs in a block (one warm-up, then a few calls; best of three blocks), so a slow candidate does
not evict the caches of a fast one.
"""),
    code(
        """
def best_ms(fn, number=5, repeat=3):
    fn()                                                    # warm up
    return 1e3 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number

rows = [{"name": "C conv, int32 out", "ms": best_ms(lambda: fx.conv2d(x, w, **conv))}]
for sch in schemes:
    rows.append({"name": f"C conv + fused {sch}",
                 "ms": best_ms(lambda: fx.conv2d(x, w, scale=s, scheme=sch, out_dtype="int8", **conv))})
for sch in ("float32_rne", "tflite"):
    rows.append({"name": f"C requantize only, {sch}", "ms": best_ms(lambda: fx.requantize(acc, s, sch, backend="c"))})
    rows.append({"name": f"numpy requantize only, {sch}", "ms": best_ms(lambda: fx.requantize(acc, s, sch))})
rows.append({"name": "numpy reference conv", "ms": best_ms(lambda: fx.conv2d(x, w, backend="reference", **conv),
                                                           number=1, repeat=2)})
""",
        IGNORE,
    ),
    md("""
A truly naive loop (one Python multiply-add at a time) is far too slow for the whole layer; we time it on a
single output pixel and scale up to the 200 704 outputs.
"""),
    code(
        """
xr = x[0].transpose(0, 3, 1, 2).reshape(64, 56, 56).astype(np.int64)             # NCHW16c -> CHW
wr = oihw4i16o4i_to_oihw(w).astype(np.int64)                                       # -> OIHW

def naive_pixel(k=0, oy=10, ox=10):
    total = 0
    for c in range(64):
        for r in range(3):
            for q in range(3):
                total += int(xr[c, oy + r - 1, ox + q - 1]) * int(wr[k, c, r, q])
    return total

assert naive_pixel() == int(acc[0, 0, 10, 10, 0])
rows.append({"name": "naive Python loop (extrapolated)", "ms": best_ms(naive_pixel, number=3, repeat=2) * acc.size})
""",
        IGNORE,
    ),
    code(
        """
ax = plotting.plot_timings(rows)
ax.set_xscale("log")
ax.set_title("seed layer: 1x64x56x56, 3x3, 64 channels (log scale)");
""",
        IGNORE,
    ),
    code(
        """
t = {row["name"]: row["ms"] for row in rows}
requant = t["numpy requantize only, tflite"]
print(f"numpy requantize: {requant:.2f} ms = {requant / t['numpy reference conv']:.1%} of the numpy reference conv, "
      f"{requant / t['naive Python loop (extrapolated)']:.4%} of the naive loop")
print(f"C requantize: {t['C requantize only, tflite']:.3f} ms; C conv: {t['C conv, int32 out']:.3f} ms")
# robust claims only: requantizing 200 704 values is cheap next to computing them naively
assert requant < 0.5 * t["numpy reference conv"]
assert requant < 0.01 * t["naive Python loop (extrapolated)"]
""",
        IGNORE,
    ),
    md("""
Next to a slow conv, requantization is noise. Next to a fast one it is not: compare the printed times. When
this was written, a separate numpy requantization pass cost several times the whole C conv, and even the
separate C pass over the int32 accumulators was a visible fraction of it. Fused into the epilogue, while the
accumulators are still in registers, it costs next to nothing: compare "C conv, int32 out" with the fused rows.

## Next to ONNX Runtime and PyTorch

`benchmarks/seed_layer.py` times the same layer shape (its own random data, zero point 128) against ONNX
Runtime's `QLinearConv` and PyTorch's quantized conv when they are installed, in blocks, one thread. We run
its quick mode (ONNX Runtime only, a few runs).
"""),
    code(
        """
root = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "benchmarks" / "seed_layer.py").exists()), None)
bench = None
if root is not None:
    spec = importlib.util.spec_from_file_location("seed_layer", root / "benchmarks" / "seed_layer.py")
    bench_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_module)
    with contextlib.redirect_stdout(io.StringIO()):
        bench = bench_module.main(["--quick", "--json", "--layouts", "NCHW16c"])
    print("bit-exact:", bench["bit_exact"])
    print("compared with:", bench["notes"].get("onnxruntime", "-"))
    ax = plotting.plot_timings(bench["timings"], value="median_ms", xlabel="median time per call (ms)")
    ax.set_title("benchmarks/seed_layer.py --quick")
else:
    print("benchmarks/seed_layer.py not found: run this notebook from the repository")
""",
        IGNORE,
    ),
    code("""
if bench is not None:
    assert all(bench["bit_exact"].values())
    same = bench["notes"].get("ort_vs_fxq_float32_rne_equal_fraction")
    if same is not None:   # ONNX Runtime requantizes in float32 with ties to even, like float32_rne
        print(f"ONNX Runtime output equal to fxq float32_rne on {same:.3%} of the outputs")
        assert same > 0.999
"""),
    md("""
## Summary
- The fused C kernel is bit-exact with the numpy reference for every fused scheme (and, per the benchmark,
  its `float32_rne` output matches ONNX Runtime's `QLinearConv`).
- Requantization is a tiny fraction of a naive conv and a small part of a numpy one; next to a fast conv a
  separate pass is expensive, so fast kernels fuse it.
- In these timings fixed point and float32 requantization cost about the same once fused: the choice between
  them is about exactness and portability more than speed, on this CPU.

## Exercises
1. Pass `path="scalar"` to `fx.conv2d` (or set `FXQ_KERNEL_PATH=scalar`) and re-time: which rows change?
2. Run `python benchmarks/seed_layer.py` (full mode) from a terminal: how do the fused schemes compare?
3. Why can `tflite` with a scale ≥ 1/2 not be fused (hint: the left shift)?
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["06_calibrate_the_scale"] = [
    md("""
# 6. Calibration: where 0.0018843 comes from

**What you'll learn**
- how a requantization scale is built from three calibrated scales, `s = s_in · s_w / s_out`;
- what the max, percentile, MSE and KL calibrators pick on real activations;
- the ReLU spike: why an entropy calibrator can clip far too much after a ReLU;
- the trade-off every threshold makes between clipping error and rounding error.

**What you need**: notebooks 01–02; histograms.

We use the activations of a small convolutional network trained on scikit-learn's digits (the network of
notebook 07), on 256 calibration images.
"""),
    code(IMPORTS + "from fxq_explore import calibration, e2e"),
    code("""
params = e2e.load_params()
x_train, y_train, x_test, y_test = e2e.load_split()
_, acts = e2e.forward_fp32(params, x_train[: e2e.N_CALIBRATION], return_activations=True)
act = acts[1].ravel()                               # after conv2 + ReLU
print(f"{act.size} values, {np.mean(act == 0):.0%} exact zeros (ReLU), max {act.max():.3f}")
"""),
    md("## Five calibrators on one tensor"),
    code("""
thresholds = calibration.calibrate_all(act)
ax = plotting.plot_calibration_histogram(act, thresholds)
ax.set_title("conv2 activations after ReLU, with each calibrator's threshold");
for k, v in thresholds.items():
    print(f"{k:<12} T = {v:.4f}")
assert thresholds["max"] == max(thresholds.values())           # max never clips
assert min(thresholds.values()) < 0.8 * thresholds["max"]        # calibrators disagree by tens of percent
"""),
    md("""
## The ReLU spike

After a ReLU a large share of the values are exactly 0: one histogram bin holds a spike. TensorRT's entropy
calibrator builds its reference distribution from the histogram including that bin; the spike dominates the
KL divergence and the search settles on a threshold that clips much of the real range.
NVIDIA's pytorch-quantization flattens the spike first (`bins[0] = bins[1]`).
"""),
    code("""
t_trt = calibration.calibrate(act, "kl", variant="tensorrt")
t_fix = calibration.calibrate(act, "kl", variant="tensorrt", zero_bin_fix=True)
clipped = lambda t: np.mean(act > t)
print(f"TensorRT KL: T = {t_trt:.3f} clips {clipped(t_trt):.2%}; with the zero-bin fix T = {t_fix:.3f} clips {clipped(t_fix):.2%}")
assert t_trt < 0.7 * t_fix
"""),
    md("The KL divergence against the candidate threshold, without and with the fix:"),
    code("""
from fxq_explore.viz.calibration_plots import plot_kl_curve

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained", sharey=True)
plot_kl_curve(act, "tensorrt", ax=axes[0]).set_title("TensorRT KL on ReLU output")
plot_kl_curve(act, "tensorrt", zero_bin_fix=True, ax=axes[1]).set_title("... with bins[0] = bins[1]");
"""),
    md("""
## From thresholds to 0.0018843

Each tensor gets `scale = T / 127` (signed int8). A conv's requantization scale combines the input, weight and
output scales; here is the one for conv2 of this network with max-calibrated weights and KL-calibrated
activations:
"""),
    code("""
t_in = calibration.calibrate(acts[0], "kl")
t_out = calibration.calibrate(acts[1], "kl")
s_in, s_out = (calibration.threshold_to_scale(t) for t in (t_in, t_out))
s_w = calibration.threshold_to_scale(np.abs(params["w2"]).max())
m = s_in * s_w / s_out
print(f"s_in = {s_in:.5g}, s_w = {s_w:.5g}, s_out = {s_out:.5g}  ->  s = {m:.7f}")
print(fx.decompose(m))
assert 0 < m < 1                   # a ratio of scales: not a power of two, hence a multiplier
"""),
    md("""
The seed thread's 0.0018843 is the same kind of number for its own network and data: a product of three
calibrated scales, which no calibrator makes a power of two.

## Clipping error against rounding error

A small threshold gives a fine step (small rounding error) but clips the tail; a large threshold clips
nothing but rounds coarsely. The total squared error has a minimum in between, which the MSE calibrator looks for.
"""),
    code("""
ts = np.linspace(act.max() / 50, act.max(), 120)
clip_err, round_err = analysis.threshold_errors(act, ts)
ax = plotting.plot_threshold_tradeoff(ts, clip_err, round_err, mark=thresholds["mse"])
best = ts[np.argmin(clip_err + round_err)]
print(f"minimum of the total error at T = {best:.3f}; MSE calibrator: {thresholds['mse']:.3f}; max: {act.max():.3f}")
assert np.all(np.diff(clip_err) <= 1e-12)           # clipping error only falls as T grows
assert best < act.max()                             # the best threshold clips something
"""),
    md("""
## Explore

Move the **threshold**: the readout gives the clipping, rounding and total error; the calibrators' thresholds
are marked on the histogram.
"""),
    explorer("""
explorer = widgets.threshold_explorer(act, thresholds["kl_tvm"], calibrated=thresholds)
explorer
"""),
    code("""
explorer.threshold.value = explorer.threshold.max
assert explorer.last_result["clip_error"] == 0.0
"""),
    md("""
## Summary
- A requantization scale is `s_in · s_w / s_out`; calibrated scales make it an arbitrary real number.
- Calibrators differ by tens of percent on the same tensor; after a ReLU, TensorRT-style KL without the
  zero-bin fix clips far too much.
- Every threshold trades clipping error against rounding error.

## Exercises
1. Run `calibration.calibrate_all(acts[0])`: is the spike problem as large for conv1?
2. Compare `calibrate(act, "kl", unsigned=True)` with the signed result. Why does it differ?
3. With `bits=4` in `analysis.threshold_errors`, where does the minimum move, and why?
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["07_run_end_to_end"] = [
    md("""
# 7. End to end: does requantization change the answer?

**What you'll learn**
- an integer-only network (scikit-learn digits, two convs and a classifier), quantized post-training with
  each calibrator and run with each requantization scheme;
- what changes accuracy (calibration, bit width, power-of-two scales) and what only changes bits
  (double vs single rounding);
- SQNR of the logits as a finer measure than accuracy.

**What you need**: notebooks 01–06.
"""),
    code(IMPORTS + "from fxq_explore import e2e"),
    code("""
schemes = ["exact", "float32_rne", "pow2", "tflite", "tflite_single"]
rows = e2e.evaluate(schemes=schemes, calibrations=e2e.CALIBRATIONS, bits_list=(8, 6, 4))
print(e2e.format_table(rows))
print("conv:", e2e.conv_backend_name())
"""),
    code("""
fp32 = rows[0]["accuracy"]
r = {(row["scheme"], row["calibration"], row["bits"]): row for row in rows[1:]}
print(f"fp32 accuracy {fp32:.2%}")
assert fp32 > 0.95
for cal in e2e.CALIBRATIONS:
    for sch in ("exact", "float32_rne", "tflite", "tflite_single"):
        assert r[(sch, cal, 8)]["accuracy"] >= fp32 - 0.02, (sch, cal)      # int8, round to nearest: ~fp32
    assert r[("tflite_single", cal, 8)]["mismatch_vs_exact"] == 0                # single rounding = exact
    assert r[("pow2", cal, 8)]["sqnr_db"] < r[("tflite", cal, 8)]["sqnr_db"] - 5   # the gain errors add up
    assert r[("pow2", cal, 8)]["accuracy"] <= r[("exact", cal, 8)]["accuracy"]
    assert 0.005 < r[("tflite", cal, 8)]["mismatch_vs_exact"] < 0.1                # a few % of activations
"""),
    md("## SQNR of the logits per scheme, calibrator and bit width"),
    code("""
fig, axes = plt.subplots(1, len(e2e.CALIBRATIONS), figsize=(14, 3.2), layout="constrained", sharey=True)
for ax, cal in zip(axes, e2e.CALIBRATIONS):
    plotting.plot_series([8, 6, 4], {sch: [r[(sch, cal, b)]["sqnr_db"] for b in (8, 6, 4)] for sch in schemes},
                         ax=ax, xlabel="activation bits", ylabel="SQNR (dB)")
    ax.set_title(cal)
    ax.invert_xaxis()
    if ax is not axes[0]:
        ax.get_legend().remove()
"""),
    code("""
spread8 = [r[("exact", cal, 8)]["accuracy"] for cal in e2e.CALIBRATIONS]
spread4 = [r[("exact", cal, 4)]["accuracy"] for cal in e2e.CALIBRATIONS]
dbl = max(abs(r[("tflite", cal, b)]["accuracy"] - r[("exact", cal, b)]["accuracy"])
          for cal in e2e.CALIBRATIONS for b in (8, 6, 4))
print(f"accuracy range over calibrators: int8 {min(spread8):.2%}-{max(spread8):.2%}, 4 bit {min(spread4):.2%}-{max(spread4):.2%}")
print(f"largest accuracy change from double rounding: {dbl:.2%}")
assert dbl < 0.01                             # double rounding: (almost) no prediction changes
assert max(spread4) - min(spread4) > dbl      # at low width the calibrator matters more than the rounding
if {"kl_tensorrt", "kl_tensorrt_zfix"} <= set(e2e.CALIBRATIONS):   # the ReLU spike of notebook 06
    assert r[("exact", "kl_tensorrt", 8)]["sqnr_db"] < r[("exact", "kl_tensorrt_zfix", 8)]["sqnr_db"] - 10
"""),
    md("""
## Summary
- At 8 bits every round-to-nearest scheme keeps fp32 accuracy; TFLite's double rounding changes a few
  percent of the activations by one and almost no predictions.
- Power-of-two scales lose SQNR everywhere (tens of dB with a good calibrator) and up to a few points of
  accuracy.
- The calibrator matters more than the rounding: TensorRT-style KL without the zero-bin fix (notebook 06)
  clips so much that its int8 SQNR is far below the others, and at 4 bits the calibrators' accuracies spread
  by more than double rounding ever moves them.
- The seed thread's question has its answer: the float multiply can be replaced by a 31-bit fixed-point
  multiply and a shift, bit-exactly with single rounding, without any cost in accuracy.

## Exercises
1. Add `"tvm_2019_float"` and `"tflite_optimized"` to `schemes`. Which one is closest to `exact`?
2. Run `e2e.main(["--bits", "4", "--calibration", "kl_tensorrt"])`: what does the ReLU spike (notebook 06) do
   to accuracy?
3. Which layer contributes most to `mismatch_vs_exact`? (Use `e2e.run_integer` directly.)
"""),
]


def build(names=None):
    OUT.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nb.metadata["language_info"] = {"name": "python"}
        for i, c in enumerate(nb.cells):
            c["id"] = f"{name[:2]}-{i:02d}"
        nbformat.validate(nb)
        nbformat.write(nb, OUT / f"{name}.ipynb")
        print("wrote", OUT / f"{name}.ipynb")


if __name__ == "__main__":
    build(sys.argv[1:])
