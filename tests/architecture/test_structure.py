"""The architecture as tests: no import cycles, one definition per scheme, the README table."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp  # in the test extra: the architecture tests run in CI
import pytest

import fxq_explore as fx

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "fxq_explore"


def test_no_import_cycle_anywhere_function_level_imports_included():
    graph = grimp.build_graph("fxq_explore", include_external_packages=False)
    modules = sorted(graph.modules)
    direct = {m: graph.find_modules_directly_imported_by(m) for m in modules}
    cycles = []
    for a in modules:
        for b in direct[a]:
            if b != a and b != "fxq_explore" and graph.find_shortest_chain(importer=b, imported=a):
                cycles.append((a, b))
    assert not cycles, f"import cycles: {cycles[:5]}"


def _string_literals(path: Path) -> list[str]:
    """String constants of a module's code, docstrings excluded."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            docs.add(id(body[0].value))
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


# "tflite" is left out: it is also a multiplier convention, an engine and a model format; so is
# "exact": it is also the exact accumulation model (accumulate="exact") of the engine presets
CHECKED = sorted(set(fx.SCHEMES) - {"tflite", "exact"})


@pytest.mark.parametrize("name", CHECKED)
def test_each_scheme_name_is_written_in_at_most_three_files(name):
    files = sorted(PACKAGE.rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
    hits = [p.relative_to(REPO) for p in files if name in _string_literals(p)]
    c_hits = [
        p.relative_to(REPO)
        for p in sorted((REPO / "csrc").glob("*.[ch]"))
        if f'"{name}"' in p.read_text()
    ]
    where = hits + c_hits
    assert len(where) <= 3, f"{name!r} is written in {len(where)} files: {where}"
    assert Path("fxq_explore/schemes") / f"{name}.py" in where


def test_every_scheme_module_is_registered_once():
    mods = sorted(p.stem for p in (PACKAGE / "schemes").glob("*.py") if not p.stem.startswith("_"))
    assert mods == sorted(fx.SCHEMES)


def test_readme_scheme_table_is_the_generated_one():
    assert fx.schemes.markdown_table() in (REPO / "README.md").read_text()
    for name, s in fx.SCHEMES.items():  # and the table says what the registry says
        assert f"| `{name}` | `{s.formula}` | {s.tie} |" in fx.schemes.markdown_table()


def test_no_absolute_paths_or_outside_docs_in_the_package():
    for p in sorted(PACKAGE.rglob("*.py")):
        text = p.read_text()
        assert "/work/" not in text and "/root/" not in text, p
        assert "conventions.md" not in text, p
