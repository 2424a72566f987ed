"""The import graph, read from the source (no module is imported): no loop between modules, and
the boundaries of docs/DESIGN.md hold — trainables/ never reaches up into the orchestrator or the
studies (but for trainables.testing, the contract suite, whose through-Tune check runs a study),
the orchestrator never imports a study (it finds them through entry points)."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("orchestrator", "trainables", "studies")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Modules imported anywhere (function level too), but not under ``if TYPE_CHECKING:``."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            modules = [s for s in subs if _exists(s)]
            found.extend(modules if len(modules) == len(subs) else [*modules, node.module])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            module = _module_name(path)
            for name in _runtime_imports(ast.parse(path.read_text())):
                parts = name.split(".")
                while parts and not _exists(".".join(parts)):
                    parts.pop()
                target = ".".join(parts)
                if parts and parts[0] in PACKAGES and target != module and not module.startswith(target + "."):
                    graph[module].add(target)  # a package's own __init__ runs first anyway
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


def test_the_boundaries_hold():
    graph = import_graph()
    up = sorted((a, b) for a, targets in graph.items() for b in targets
                if a.startswith("trainables") and a != "trainables.testing" and not b.startswith("trainables"))
    assert up == [], "trainables/ reaches up"
    into_studies = sorted((a, b) for a, targets in graph.items() for b in targets
                          if a.startswith("orchestrator") and b.startswith("studies"))
    assert into_studies == [], "the orchestrator imports a study"


def test_the_check_sees_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
