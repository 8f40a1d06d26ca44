"""The command line and the dashboard are thin shells (issue 21): no function in them is
long, no module of ``cli/`` imports the package's ``__init__`` (arrows run one way), and
neither decides by itself whether a database exists (``storage.database_exists`` does)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tickvault"
SHELLS = [*sorted((SRC / "cli").glob("*.py")), *sorted((SRC / "dashboard").glob("*.py"))]
MAX_LINES = 60
assert len(SHELLS) > 20, f"the shells' modules were not found under {SRC}"


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def long_functions(tree: ast.AST, limit: int = MAX_LINES) -> list[str]:
    return [
        f"{n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n.end_lineno or n.lineno) - n.lineno + 1 > limit
    ]


def imports_of_package_init(tree: ast.AST, package: str, submodules: set[str]) -> list[str]:
    """``from . import x`` where x is not a submodule, or ``from tickvault.cli import x``."""
    found = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.ImportFrom):
            continue
        relative_init = n.level == 1 and n.module is None
        absolute_init = n.level == 0 and n.module == package
        if relative_init or absolute_init:
            found += [a.name for a in n.names if a.name not in submodules]
    return found


@pytest.mark.parametrize("path", SHELLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_long_functions_in_the_shells(path: Path) -> None:
    assert long_functions(_tree(path)) == []


def test_no_cli_module_imports_the_cli_package() -> None:
    submodules = {p.stem for p in (SRC / "cli").glob("*.py")}
    offenders = {
        p.name: names
        for p in sorted((SRC / "cli").glob("*.py"))
        if p.name != "__init__.py"
        and (names := imports_of_package_init(_tree(p), "tickvault.cli", submodules))
    }
    assert offenders == {}


@pytest.mark.parametrize("path", SHELLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_shells_do_not_look_for_the_marker_file(path: Path) -> None:
    tree = _tree(path)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "MARKER" not in names
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.BinOp)
        and isinstance(n.op, ast.Div)
        and isinstance(n.right, ast.Constant)
        and n.right.value == "tickvault.json"
    ]
    assert calls == []


def test_the_checks_can_fail() -> None:
    """Each check finds what it looks for in code written to break it."""
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(ast.parse(f"def f():\n{long_body}\n")) == [f"f ({MAX_LINES + 1} lines)"]
    tree = ast.parse("from . import _date, common\nfrom tickvault.cli import build_parser\n")
    assert imports_of_package_init(tree, "tickvault.cli", {"common"}) == ["_date", "build_parser"]
