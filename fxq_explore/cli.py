"""The ``fxq-explore`` command line (also ``python -m fxq_explore``).

Readable text by default, ``--json`` for machines; bad arguments exit with code 2 and a one-line
message.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import engines
from .analysis.explain import compare, explain
from .analysis.verify import verify
from .core import validate
from .core.multiplier import decompose
from .engines import saturation
from .models import cli as models_cli
from .requantization import requantize
from .schemes import DEFAULT, SCHEMES, markdown_table
from .studies.e2e import main as e2e_main

#: the model commands (their own argparse in fxq_explore.models.cli sees every option)
_MODEL_COMMANDS = {
    "inspect": "requantization sites of a quantized .onnx/.tflite model and their hazards",
    "replay": "integer replay of a model in one engine's arithmetic",
    "fingerprint": "which arithmetic a runtime used, layer by layer",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"fxq-explore: error: {message}\n")


def _scale(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale must be a number, got {text!r}") from None


def _int(text):
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _jsonable(v):
    if isinstance(v, Fraction):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def _cmd_decompose(a):
    d = decompose(a.scale, bits=a.bits, convention=a.convention)
    if a.json:
        return dict(
            scale=d.scale,
            multiplier=d.multiplier,
            shift=d.shift,
            right_shift=d.right_shift,
            bits=d.bits,
            convention=d.convention,
            value=float(d.value),
            value_exact=str(d.value),
            abs_error=d.abs_error,
            rel_error=d.rel_error,
            flushed=d.flushed,
        )
    return repr(d)


def _cmd_requantize(a):
    out = requantize(
        np.array(a.acc, dtype=np.int64),
        a.scale,
        a.scheme,
        zero_point=a.zero_point,
        dtype=a.dtype,
        pow2_mode=a.pow2_mode,
    )
    if a.json:
        return dict(
            scheme=a.scheme,
            scale=a.scale,
            zero_point=a.zero_point,
            dtype=a.dtype,
            acc=a.acc,
            output=out.tolist(),
        )
    return " ".join(str(int(v)) for v in out)


def _cmd_explain(a):
    e = explain(a.acc, a.scale, a.scheme, zero_point=a.zero_point, dtype=a.dtype)
    if a.json:
        return dict(
            acc=e.acc,
            scale=e.scale,
            scheme=e.scheme,
            result=e.result,
            exact=float(e.exact),
            steps=[dict(step=t, detail=x) for t, x in e.steps],
        )
    return str(e)


def _cmd_compare(a):
    c = compare(a.acc, a.scale, a.schemes, zero_point=a.zero_point, dtype=a.dtype)
    if a.json:
        return dict(
            scale=c.scale,
            n=c.n,
            rows=c.rows,
            differing_acc=c.differing_acc.tolist(),
            exact=c.exact_outputs.tolist(),
            outputs={k: v.tolist() for k, v in c.outputs.items()},
        )
    return str(c)


def _cmd_schemes(a):
    if a.markdown:
        return markdown_table()
    if a.json:
        return [
            dict(
                name=s.name,
                formula=s.formula,
                tie=s.tie,
                engines=s.engines,
                multiplier=s.multiplier,
            )
            for s in SCHEMES.values()
        ]
    lines = []
    for s in SCHEMES.values():
        lines += [
            s.name,
            f"    formula : {s.formula}",
            f"    ties    : {s.tie}",
            f"    scale as: {s.multiplier}",
            f"    engines : {s.engines}",
        ]
    return "\n".join(lines)


def _cmd_engines(a):
    if a.mismatch:
        size = validate.int_in_range("--size", a.size, 4, 56)
        out = {}
        for weights in ("normal", "full_range"):
            case = saturation.make_case(c=64, k=64, r=3, hw=size, weights=weights, seed=0)
            out[case.label] = saturation.mismatch_rows(case)
        if a.json:
            return out
        return "\n\n".join(
            f"{label}\n{saturation.format_rows(rows)}" for label, rows in out.items()
        )
    if a.json:
        return {
            "presets": engines.table(),
            "detect": {k: vars(v) for k, v in engines.detect().items()},
        }
    return engines.format_table()


def _cmd_verify(a):
    rows = verify(n_scales=a.scales, n_acc=a.accs, seed=a.seed, progress=sys.stderr.isatty())
    if a.json:
        return dict(rows=rows, all_bit_exact=all(r["mismatches"] == 0 for r in rows))
    lines = [
        "every scheme vs its Python-int / Fraction oracle (fxq_explore/oracles)",
        f"{'scheme':<17} {'cases':>8} {'mismatches':>10} {'refused (UB)':>13}",
    ]
    for r in rows:
        lines.append(
            f"{r['scheme']:<17} {r['cases']:>8d} {r['mismatches']:>10d} {r['refused']:>13d}"
        )
    ok = all(r["mismatches"] == 0 for r in rows)
    lines.append("bit-exact: " + ("yes, every scheme" if ok else "NO"))
    a._exit = 0 if ok else 1
    return "\n".join(lines)


def _run_script(path: Path, argv):
    if not path.exists():
        raise SystemExit(f"fxq-explore: error: {path} not found (run from a source checkout)")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


def build_parser():
    p = _Parser(prog="fxq-explore", description="See and measure fixed-point requantization.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp, scheme=True):
        if scheme:
            sp.add_argument("--scheme", default=DEFAULT, help="requantization scheme")
        sp.add_argument("--zero-point", type=_int, default=0)
        sp.add_argument("--dtype", default="int8")
        sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = sub.add_parser("decompose", help="scale -> multiplier and shift")
    sp.add_argument("scale", type=_scale)
    sp.add_argument("--bits", type=_int, default=32)
    sp.add_argument("--convention", default="tflite")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_decompose)

    sp = sub.add_parser("requantize", help="requantize accumulators with one scheme")
    sp.add_argument("acc", nargs="+", type=_int)
    sp.add_argument("--scale", type=_scale, required=True)
    sp.add_argument("--pow2-mode", default="nearest")
    common(sp)
    sp.set_defaults(func=_cmd_requantize)

    sp = sub.add_parser("explain", help="trace one accumulator through a scheme")
    sp.add_argument("acc", type=_int)
    sp.add_argument("scale", type=_scale)
    common(sp)
    sp.set_defaults(func=_cmd_explain)

    sp = sub.add_parser("compare", help="where schemes disagree with exact rounding")
    sp.add_argument("acc", nargs="+", type=_int)
    sp.add_argument("scale", type=_scale)
    sp.add_argument("--schemes", nargs="+", default=None)
    common(sp, scheme=False)
    sp.set_defaults(func=_cmd_compare)

    sp = sub.add_parser("schemes", help="list the schemes and the engines they match")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--markdown", action="store_true", help="the README's table")
    sp.set_defaults(func=_cmd_schemes)

    sp = sub.add_parser("engines", help="engine presets, what each engine runs on this CPU")
    sp.add_argument(
        "--mismatch", action="store_true", help="each preset vs exact and vs its engine"
    )
    sp.add_argument("--size", type=_int, default=56, help="spatial size of the seed-like layer")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_engines)

    sp = sub.add_parser("verify", help="check every scheme bit for bit against exact oracles")
    sp.add_argument("--scales", type=_int, default=200, help="random scales per scheme")
    sp.add_argument("--accs", type=_int, default=500, help="random accumulators per scale")
    sp.add_argument("--seed", type=_int, default=0)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_verify)

    root = Path(__file__).resolve().parent.parent
    for name, script, text in (
        (
            "bench",
            root / "benchmarks" / "seed_layer.py",
            "time the seed layer per scheme (benchmarks/seed_layer.py)",
        ),
    ):
        sp = sub.add_parser(name, help=text, add_help=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)
        sp.set_defaults(script=script)
    sp = sub.add_parser("e2e", help="the integer-only digits network table", add_help=False)
    sp.add_argument("rest", nargs=argparse.REMAINDER)
    sp.set_defaults(module="e2e")
    for name, text in _MODEL_COMMANDS.items():
        sp = sub.add_parser(name, help=text, add_help=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # pass-through commands: their own argparse sees every option
    if argv and argv[0] in _MODEL_COMMANDS:
        return getattr(models_cli, f"{argv[0]}_main")(argv[1:])
    if argv and argv[0] == "e2e":
        return e2e_main(argv[1:])
    if argv and argv[0] == "bench":
        return _run_script(
            Path(__file__).resolve().parent.parent / "benchmarks" / "seed_layer.py", argv[1:]
        )
    a = parser.parse_args(argv)
    if getattr(a, "script", None):
        return _run_script(a.script, a.rest)
    if getattr(a, "module", None):
        mod = importlib.import_module(f"fxq_explore.{a.module}")
        return mod.main(a.rest)
    try:
        out = a.func(a)
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"fxq-explore: error: {exc}\n")
    if getattr(a, "json", False):
        print(json.dumps(out, default=_jsonable, indent=1))
    else:
        print(out)
    return getattr(a, "_exit", 0)


if __name__ == "__main__":
    sys.exit(main())
