"""Notebooks are committed without outputs or execution counts (they are executed by nbval)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "00_the_question",
    "01_decompose_a_scale",
    "02_three_ways_to_requantize",
    "03_compare_rounding_conventions",
    "04_sweep_bit_widths",
    "05_time_the_kernel",
    "06_calibrate_the_scale",
    "07_run_end_to_end",
]


def test_the_eight_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; clear them "
        f"(jupyter nbconvert --clear-output --inplace {path.name})"
    )
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: saved widget state"
