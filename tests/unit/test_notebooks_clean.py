"""The chapters are MyST Markdown sources (jupytext), one per chapter, and nothing else is committed.

Each ``notebooks/NN_verb_phrase.md`` carries the jupytext header (format ``myst``, kernel
``python3``), opens with what you will learn and what you need, ends with a summary and (at least)
three exercises, and imports only what it uses. No ``.ipynb`` is committed: ``make test`` converts
the sources into ``build/notebooks/`` for nbval, and the book reads the ``.md`` files directly.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
# The first eight chapters, under the names they have always had (more may follow: 08_..., 09_...).
FIRST_EIGHT = [
    "00_the_question",
    "01_decompose_a_scale",
    "02_three_ways_to_requantize",
    "03_compare_rounding_conventions",
    "04_sweep_bit_widths",
    "05_time_the_kernel",
    "06_calibrate_the_scale",
    "07_run_end_to_end",
]
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)


def split(path: Path) -> tuple[dict, str]:
    """(YAML front matter, body) of a MyST chapter."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path.name}: no YAML front matter (jupytext header)"
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def code_of(body: str) -> str:
    """The Python source of every code cell, cell options (``:tags:``) stripped."""
    cells = []
    for src in CODE_CELL.findall(body):
        lines = src.splitlines()
        if lines and lines[0].startswith("---"):  # YAML block form of the cell options
            end = lines.index("---", 1)
            lines = lines[end + 1 :]
        cells.append("\n".join(line for line in lines if not re.match(r"^:\w[\w-]*:", line)))
    return "\n\n".join(cells)


def test_the_chapters_exist_and_are_numbered_in_order():
    stems = [p.stem for p in CHAPTERS]
    assert stems[: len(FIRST_EIGHT)] == FIRST_EIGHT
    numbers = [int(s[:2]) for s in stems]
    assert numbers == list(range(len(numbers))), f"chapter numbers have a gap: {stems}"
    for stem in stems:
        assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)+", stem), f"{stem}: not NN_verb_phrase"


def test_no_notebook_is_committed():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "--", "*.ipynb"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed == [], f"committed notebooks (the chapters are the .md sources): {listed}"
    assert not (REPO / "scripts" / "make_notebooks.py").exists(), "the generator script is gone"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_the_jupytext_header(path):
    header, _ = split(path)
    assert header["jupytext"]["text_representation"]["format_name"] == "myst", path.name
    assert header["kernelspec"]["name"] == "python3", path.name
    assert header["kernelspec"]["language"] == "python", path.name
    # jupytext reads it as MyST: every {code-cell} becomes a code cell (else the header is wrong)
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(path)
    n_code = sum(cell.cell_type == "code" for cell in nb.cells)
    assert n_code == len(CODE_CELL.findall(path.read_text(encoding="utf-8"))) > 0, path.name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_structure(path):
    _, body = split(path)
    number = int(path.stem[:2])
    title = re.search(r"^# (\d+)\. ", body, re.M)
    assert title and int(title.group(1)) == number, f"{path.name}: title must start '# {number}. '"
    intro = body.split("```{code-cell}", 1)[0]
    assert re.search(r"\*\*What you'll learn\*\*", intro), f"{path.name}: no 'What you'll learn'"
    assert re.search(r"\*\*What you need\*\*", intro), f"{path.name}: no 'What you need'"
    headings = re.findall(r"^## (.+)$", body, re.M)
    assert headings[-2:] == ["Summary", "Exercises"], f"{path.name}: ends with {headings[-2:]}"
    exercises = body.rsplit("## Exercises", 1)[1]
    assert "```{code-cell}" not in exercises, f"{path.name}: code after the exercises"
    items = re.findall(r"^\d+\. ", exercises, re.M)
    assert len(items) == 3, f"{path.name}: {len(items)} exercises, expected three"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_imports_only_what_it_uses(path):
    _, body = split(path)
    tree = ast.parse(code_of(body))
    imported: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                imported[name] = node.lineno
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {
        n.value.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    unused = sorted(set(imported) - used)
    assert not unused, f"{path.name}: imported but never used: {unused}"
