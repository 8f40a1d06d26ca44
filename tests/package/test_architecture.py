"""The import graph of the package is layered: no circles, and each layer imports only the
layers below it (docs/architecture.md). Parsed from the source, so a new import that breaks
the rule fails here before it becomes a habit."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "tickvault"

#: the floors, lowest first; a module may import its own floor's and lower floors' modules
GROUND = {
    "errors",
    "keys",
    "formats",
    "times",
    "tickers",
    "convert",
    "schema",
    "adjust",
    "adjust_index",
    "csv_export",
    "modes",
    "future_bars",
    "calendars",
    "data_checks",
    "sessions",
    "resample",
}
FLOORS: list[tuple[str, set[str]]] = [
    ("ground floor", {f"tickvault.{m}" for m in GROUND}),
    ("storage core", {"tickvault.storage.core"}),
    ("storage wings", {"tickvault.storage.upkeep", "tickvault.storage.readers"}),
    ("storage facade", {"tickvault.storage"}),
    ("sources", {"tickvault.sources"}),
    (
        "pipeline, freshness, import",
        {"tickvault.pipeline", "tickvault.data_freshness", "tickvault.parquet_import"},
    ),
    ("shells", {"tickvault.cli", "tickvault.dashboard", "=tickvault", "tickvault.__main__"}),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str], typing: bool = False) -> set[str]:
    """Modules of the package that ``name`` imports at run time (TYPE_CHECKING blocks are
    skipped unless ``typing``: they never run, but a reader still follows them). ``from pkg
    import sub`` counts as importing ``pkg.sub``."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if typing:
            break
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for b in node.body for n in ast.walk(b))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tickvault"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("tickvault"):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
    return {m for m in out if m in known and m != name}


def _graph(typing: bool = False) -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods), typing) for name, path in mods.items()}


def _floor(module: str) -> int:
    best, depth = -1, -1
    for i, (_, prefixes) in enumerate(FLOORS):
        for p in prefixes:
            if p.startswith("="):  # this module only (the package's public face)
                if module == p[1:] and len(p) > depth:
                    best, depth = i, len(p)
                continue
            if (module == p or module.startswith(p + ".")) and len(p) > depth:
                best, depth = i, len(p)
    assert best >= 0, f"{module} is on no floor: add it to FLOORS"
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circles():
    graph = _graph()
    assert len(graph) > 60
    # a package's __init__ hands its children's names on: it imports them, they must not
    # import it back (that is a circle too)
    assert _cycles(graph) == []


def test_type_only_imports_make_no_circle_either():
    """Imports under TYPE_CHECKING never run, but a reader follows them like any other:
    a lower module names what it needs as a Protocol instead of importing a higher one."""
    assert _cycles(_graph(typing=True)) == []


def test_every_import_runs_down_or_across_a_floor():
    graph = _graph(typing=True)
    upward = sorted(
        (a, b, FLOORS[_floor(a)][0], FLOORS[_floor(b)][0])
        for a, targets in graph.items()
        for b in targets
        if _floor(b) > _floor(a)
    )
    assert upward == []


def test_the_storage_core_imports_neither_upkeep_nor_readers():
    graph = _graph()
    core = {m: t for m, t in graph.items() if m.startswith("tickvault.storage.core")}
    assert len(core) >= 10
    bad = {
        m: sorted(t for t in targets if t.startswith("tickvault.") and _floor(t) > 1)
        for m, targets in core.items()
    }
    assert {m: t for m, t in bad.items() if t} == {}


def test_the_checks_can_fail():
    """The helpers see a real circle and a real upward import."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _floor("tickvault.storage.core.table") < _floor("tickvault.storage.upkeep.compaction")
    graph = _graph()
    assert "tickvault.storage.core.store" in graph["tickvault.storage.core.table"]


def test_every_package_import_names_a_module_that_exists():
    """Lazy imports inside functions run only when called: a stale path after a move is
    caught here, not by a user."""
    mods = _modules()
    missing = []
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.startswith("tickvault") and target not in mods:
                    missing.append((name, target))
            elif isinstance(node, ast.Import):
                missing += [
                    (name, a.name)
                    for a in node.names
                    if a.name.startswith("tickvault") and a.name not in mods
                ]
    assert missing == []
