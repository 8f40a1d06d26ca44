"""The test suite keeps its own layout: every test module in a wing folder under a name no
other folder uses (the folders are not packages), helpers imported from the helpers
package, never from a conftest.py or another test module."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
WINGS = {"storage", "object_store", "pipeline", "sources", "cli", "dashboard", "package"}


def _test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_every_test_module_is_in_a_wing_under_a_unique_name():
    modules = _test_modules()
    assert len(modules) > 50
    assert {p.relative_to(TESTS).parts[0] for p in modules} <= WINGS
    assert all(len(p.relative_to(TESTS).parts) == 2 for p in modules)
    twice = [name for name, n in Counter(p.name for p in modules).items() if n > 1]
    assert twice == []


def test_test_modules_import_helpers_not_conftest_or_other_tests():
    bad = []
    for path in [*_test_modules(), *TESTS.rglob("helpers/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "conftest" or top.startswith("test_"):
                    bad.append(f"{path.relative_to(TESTS)}: {name}")
    assert bad == []


def test_conftest_files_hold_fixtures_not_helpers():
    for path in TESTS.rglob("conftest.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                decorators = [ast.unparse(d) for d in node.decorator_list]
                is_hook = node.name.startswith("pytest_")
                assert is_hook or any("fixture" in d for d in decorators), (path, node.name)
            assert not isinstance(node, ast.ClassDef), (path, node.name)
