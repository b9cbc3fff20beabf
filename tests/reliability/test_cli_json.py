"""The command line on bad and extreme input (issue 13): under ``--json`` every error is one JSON
object ``{"error": ...}`` on stdout with exit code 2, success exits 0; without ``--json`` one line
on stderr, exit 2; never a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fxq_explore.cli import main


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``fxq-explore argv`` in-process."""
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def json_error(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 2, (code, out, err)
    doc = json.loads(out)
    assert set(doc) == {"error"} and isinstance(doc["error"], str)
    return doc["error"]


# ---- the reproducers ------------------------------------------------------------------


def test_decompose_max_double_prints(capsys):
    code, out, _ = run(capsys, "decompose", "1.7976931348623157e308")
    assert code == 0 and "beyond the double range" in out
    code, out, _ = run(capsys, "decompose", "1.7976931348623157e308", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["value"] is None and doc["value_exact"].startswith("1")


def test_float32_scale_beyond_range_is_an_error(capsys):
    msg = json_error(capsys, "requantize", "0", "--scale", "1e300", "--scheme", "float32_rne")
    assert "scale" in msg and "3.4e38" in msg
    code, out, err = run(capsys, "requantize", "0", "--scale", "1e300", "--scheme", "float32_rne")
    assert code == 2 and out == "" and "scale" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv,name",
    [
        (["bench", "--rounds", "-5"], "--rounds"),
        (["bench", "--block", "0"], "--block"),
        (["bench", "--layouts", "foo"], "unrecognized arguments: --layouts"),
        (["verify", "--scales", "-1"], "--scales"),
        (["verify", "--scales", "1000000000"], "--scales"),
        (["verify", "--accs", "1000000000"], "--accs"),
        (["decompose", "1e400"], "scale"),
        (["decompose", "abc"], "scale"),
        (["explain", "1", "1e-50", "--scheme", "float32_rne"], "scale"),
        (["compare", "1", "0.1", "--schemes", "nope"], "schemes"),
        (["requantize", "1", "--scale", "0.1", "--dtype", "int64"], "dtype"),
        (["nope"], "command"),
    ],
)
def test_bad_arguments_json_and_text(capsys, argv, name):
    assert name in json_error(capsys, *argv)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and name in err and err.count("\n") == 1


def test_bench_quick_json_exits_0(capsys):
    code, out, _ = run(capsys, "bench", "--quick", "--no-compare", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["rounds"] == 1 and all(doc["bit_exact"].values())


def test_e2e_bad_arguments_json(capsys):
    assert "e2e" in json_error(capsys, "e2e", "--bits", "1")


def test_success_exits_0(capsys):
    for argv in (["decompose", "0.0018843"], ["schemes"], ["explain", "265", "0.0018843"]):
        code, out, _ = run(capsys, *argv, "--json")
        assert code == 0 and json.loads(out)


# ---- generated command lines ------------------------------------------------------------------

TOKENS = st.sampled_from(
    ["0", "-1", "1e300", "1e-300", "nan", "inf", "abc", "2147483648", "0.0018843", "5e-324"]
)
COMMANDS = st.sampled_from(
    [
        ["decompose", "{0}"],
        ["decompose", "0.5", "--bits", "{0}"],
        ["requantize", "{0}", "--scale", "{1}"],
        ["requantize", "1", "--scale", "{0}", "--scheme", "float32_rne"],
        ["requantize", "1", "--scale", "{0}", "--scheme", "pow2", "--dtype", "int32"],
        ["explain", "{0}", "{1}"],
        ["explain", "1", "{0}", "--scheme", "xnnpack_rndnu"],
        ["compare", "{0}", "{1}"],
        ["verify", "--scales", "{0}", "--accs", "{1}"],
        ["decompose", "{0}", "--convention", "fbgemm"],
    ]
)


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=COMMANDS, a=TOKENS, b=TOKENS)
def test_generated_command_lines_json(capsys, cmd, a, b):
    argv = [t.format(a, b) for t in cmd]
    if argv[0] == "verify" and (a not in ("0", "-1") or b not in ("0", "-1")):
        argv = ["verify", "--scales", "-1" if a != "0" else "0", "--accs", "0"]
    code, out, err = run(capsys, *argv, "--json")
    assert code in (0, 2), (argv, code, out, err)
    doc = json.loads(out)
    if code == 2:
        assert set(doc) == {"error"}
    assert "Traceback" not in err
