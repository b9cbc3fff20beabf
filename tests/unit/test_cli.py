import json
import subprocess
import sys

import pytest

from fxq_explore.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_decompose_text_and_json(capsys):
    code, out, _ = run(capsys, "decompose", "0.0018843")
    assert code == 0 and "2071809760" in out and "right_shift 40" in out
    code, out, _ = run(capsys, "decompose", "0.0018843", "--json")
    d = json.loads(out)
    assert (d["multiplier"], d["shift"], d["right_shift"]) == (2071809760, -9, 40)
    _, out, _ = run(capsys, "decompose", "0.0018843", "--convention", "xnnpack", "--json")
    assert json.loads(out)["multiplier"] == 2071809792


def test_requantize(capsys):
    _, out, _ = run(
        capsys, "requantize", "--scheme", "tflite", "--scale", "0.0018843", "265", "-265", "70000"
    )
    assert out.split() == ["1", "-1", "127"]
    _, out, _ = run(
        capsys,
        "requantize",
        "--scheme",
        "tflite_single",
        "--scale",
        "0.0018843",
        "--zero-point",
        "128",
        "--dtype",
        "uint8",
        "--json",
        "265",
    )
    assert json.loads(out)["output"] == [128]


def test_explain_and_compare(capsys):
    _, out, _ = run(capsys, "explain", "265", "0.0018843")
    assert "TIE" in out and "result 1" in out
    _, out, _ = run(capsys, "compare", "265", "1000", "0.0018843", "--json")
    d = json.loads(out)
    rows = {r["scheme"]: r["mismatches"] for r in d["rows"]}
    assert rows["tflite"] == 1 and rows["tflite_single"] == 0 and d["differing_acc"][0] == 265


def test_schemes(capsys):
    _, out, _ = run(capsys, "schemes", "--json")
    names = [s["name"] for s in json.loads(out)]
    assert "tflite_single" in names and "xnnpack_rndnu" in names


def test_verify_small(capsys):
    code, out, _ = run(capsys, "verify", "--scales", "3", "--accs", "20")
    assert code == 0 and "bit-exact: yes" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["decompose", "abc"], "scale must be a number"),
        (["decompose", "-1"], "scale must be positive"),
        (["decompose", "0.1", "--bits", "64"], "bits must be in [2, 32]"),
        (["requantize", "--scheme", "nope", "--scale", "0.1", "1"], "unknown scheme 'nope'"),
        (["requantize", "--scale", "0.1", "4294967296"], "int32 range"),
        (["explain", "1", "0.1", "--dtype", "int64"], "unsupported dtype"),
    ],
)
def test_bad_arguments_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_module_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "fxq_explore", "decompose", "0.5", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(r.stdout)["multiplier"] == 2**30
