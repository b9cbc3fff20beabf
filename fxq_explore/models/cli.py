"""Command-line entry points for the lead to wire as ``fxq-explore inspect|replay|fingerprint``.

Each ``*_main(argv)`` returns an exit code: 0 on success, 2 on an error (printed as JSON
``{"error": ...}`` under ``--json``, as a message on stderr otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _fail(msg: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": msg}))
    else:
        print(f"error: {msg}", file=sys.stderr)
    return 2


def _read_inputs(path: str, graph):
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    if p.suffix == ".npz":
        with np.load(p) as z:
            return {k: z[k] for k in z.files}
    return np.load(p)


def add_parsers(subparsers) -> None:
    """Add ``inspect``, ``replay`` and ``fingerprint`` to an argparse subparsers object."""
    p = subparsers.add_parser("inspect", help="requantization sites of a quantized model")
    _inspect_args(p)
    p.set_defaults(func=lambda a: _inspect(a))
    p = subparsers.add_parser("replay", help="integer replay of a model in an engine's arithmetic")
    _replay_args(p)
    p.set_defaults(func=lambda a: _replay(a))
    p = subparsers.add_parser("fingerprint", help="which arithmetic a runtime used, per layer")
    _fingerprint_args(p)
    p.set_defaults(func=lambda a: _fingerprint(a))


def _inspect_args(p):
    p.add_argument("model", help=".tflite or .onnx file")
    p.add_argument("--json", action="store_true", help="JSON output")


def _replay_args(p):
    from .presets import ALIASES, ENGINES

    p.add_argument("model", help=".tflite or .onnx file")
    p.add_argument("--input", required=True, help=".npy (one input) or .npz keyed by input name")
    p.add_argument(
        "--engine",
        required=True,
        choices=list(ALIASES) + list(ENGINES),
        help="engine preset; onnxruntime: the ONNX Runtime preset for this CPU",
    )
    p.add_argument("--output", required=True, help=".npy (one output) or .npz")
    p.add_argument("--json", action="store_true", help="JSON summary on stdout")


def _fingerprint_args(p):
    from .presets import RUNTIMES

    p.add_argument("model", help=".tflite or .onnx file")
    p.add_argument("--input", required=True, help=".npy or .npz")
    p.add_argument("--runtime", required=True, choices=list(RUNTIMES))
    p.add_argument("--json", action="store_true", help="JSON output")


def _guard(fn, args) -> int:
    try:
        return fn(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError, NotImplementedError,
            ImportError) as e:  # fmt: skip
        return _fail(f"{type(e).__name__}: {e}", args.json)


def _inspect(args) -> int:
    def run(a):
        from .inspect import inspect, to_json

        df = inspect(a.model)
        if a.json:
            print(to_json(df))
        else:
            cols = ["layer", "channel", "scale", "tflite_multiplier", "tflite_shift",
                    "xnnpack_mantissa", "xnnpack_right_shift", "scale_f32", "p_ref_vs_fp32"]  # fmt: skip
            print(df[cols].to_string(index=False))
            hz = ["flushed_to_zero", "scale_ge_1", "bias_overflow", "bias_scale_mismatch",
                  "pair_saturation_risk"]  # fmt: skip
            print("\nhazards (channels):", {h: int(df[h].sum()) for h in hz})
        return 0

    return _guard(run, args)


def _replay(args) -> int:
    def run(a):
        from .replay import load, replay

        g = load(a.model)
        x = _read_inputs(a.input, g)
        big = sum(n.op.endswith("CONV_2D") or n.op == "QLinearConv" for n in g.nodes) > 20
        n_in = (x if not isinstance(x, dict) else next(iter(x.values()))).shape[0]
        r = replay(g, x, a.engine, progress=(big or n_in >= 1024) and not a.json)
        out = Path(a.output)
        if out.suffix == ".npz":
            np.savez(out, **r.outputs)
        else:
            if len(r.outputs) != 1:
                raise ValueError(f"the model has {len(r.outputs)} outputs: use an .npz --output")
            np.save(out, r.output)
        if a.json:
            print(json.dumps({
                "engine": a.engine,
                "preset": r.engine,
                "outputs": {k: {"dtype": str(v.dtype), "shape": list(v.shape)}
                            for k, v in r.outputs.items()},
                "output_file": str(out),
            }))  # fmt: skip
        return 0

    return _guard(run, args)


def _fingerprint(args) -> int:
    def run(a):
        from .fingerprint import fingerprint
        from .replay import load

        g = load(a.model)
        fp = fingerprint(g, _read_inputs(a.input, g), a.runtime)
        print(json.dumps(fp.to_dict(), indent=1) if a.json else fp)
        return 0

    return _guard(run, args)


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line (JSON under --json), exit code 2: see _main
        raise _ArgumentError(message)


def _main(prog, add, fn, argv) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _Parser(prog=f"fxq-explore {prog}")
    add(p)
    try:
        args = p.parse_args(argv)
    except _ArgumentError as e:
        return _fail(f"{prog}: {e}", "--json" in argv)
    return fn(args)


def inspect_main(argv=None) -> int:
    """``fxq-explore inspect MODEL [--json]``."""
    return _main("inspect", _inspect_args, _inspect, argv)


def replay_main(argv=None) -> int:
    """``fxq-explore replay MODEL --input X --engine E --output Y [--json]``."""
    return _main("replay", _replay_args, _replay, argv)


def fingerprint_main(argv=None) -> int:
    """``fxq-explore fingerprint MODEL --input X --runtime R [--json]``."""
    return _main("fingerprint", _fingerprint_args, _fingerprint, argv)


if __name__ == "__main__":  # python -m fxq_explore.models.cli inspect|replay|fingerprint ...
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    mains = {"inspect": inspect_main, "replay": replay_main, "fingerprint": fingerprint_main}
    if cmd not in mains:
        print("usage: python -m fxq_explore.models.cli {inspect,replay,fingerprint} ...")
        raise SystemExit(2)
    raise SystemExit(mains[cmd](sys.argv[2:]))
