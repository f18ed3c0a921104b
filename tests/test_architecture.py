"""The shape of the package: no import circle, dependencies pointing one way, rooms of a size a
reader can know. Run as a script to print the import graph's layers and every module's size:

    python tests/test_architecture.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "semsearch"
MAX_LINES = 400  # a module past this is split into rooms a reader can know


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _resolve(current: str, is_package: bool, level: int, name: str) -> str:
    if level == 0:
        return name
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports anywhere (functions too), except under TYPE_CHECKING."""

    def target(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            ):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if alias.name.startswith(PACKAGE) and (t := target(alias.name)):
                    found.add(t)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = _resolve(name, path.name == "__init__.py", node.level, node.module or "")
            if base.startswith(PACKAGE):
                for alias in node.names:
                    if t := target(f"{base}.{alias.name}") or target(base):
                        found.add(t)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), ignoring a package
    ``__init__`` that only re-exports its own children."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            strong(v)
    known = modules()
    real = []
    for component in found:
        members = set(component)
        pure = [m for m in component
                if not (known[m].name == "__init__.py" and all(x.startswith(m + ".") for x in edges[m] & members))]
        if len(pure) >= 2:
            real.append(component)
    return real


def reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_storage_imports_nothing_from_retrieval_or_the_facade():
    edges = graph()
    for name in edges:
        # MilvusCollection (compat, re-exported by the milvus package) is the facade under its old name
        if in_package(name, "semsearch.backends") and name not in ("semsearch.backends.milvus",
                                                                   "semsearch.backends.milvus.compat"):
            bad = {t for t in reaches(edges, name)
                   if in_package(t, "semsearch.retrieval") or t == "semsearch.collection"}
            assert not bad, f"{name} reaches {sorted(bad)}"
    for name in ("semsearch.index", "semsearch.lexical", "semsearch.filters", "semsearch.types", "semsearch.engine"):
        bad = {t for t in reaches(edges, name) if in_package(t, "semsearch.backends") or t == "semsearch.collection"}
        assert not bad, f"{name} reaches {sorted(bad)}"


def test_ranking_stages_take_data_not_collections():
    edges = graph()
    for stage in ("semsearch.retrieval.fusion", "semsearch.retrieval.rerank", "semsearch.retrieval.mmr"):
        bad = {t for t in reaches(edges, stage)
               if t in ("semsearch.collection", "semsearch.engine") or in_package(t, "semsearch.backends")}
        assert not bad, f"{stage} reaches {sorted(bad)}"
    # the pipeline knows the engine interface, never an engine
    assert not any(in_package(t, "semsearch.backends") for t in reaches(edges, "semsearch.retrieval.pipeline"))


def test_no_module_is_too_big_to_know():
    sizes = {name: sum(1 for _ in path.open(encoding="utf-8")) for name, path in modules().items()}
    big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


if __name__ == "__main__":
    edges = graph()
    for component in cycles(edges):
        print("cycle:", " <-> ".join(component))
    for name, path in modules().items():
        n = sum(1 for _ in path.open(encoding="utf-8"))
        print(f"{n:5d}  {name:45s} -> {', '.join(sorted(t.removeprefix('semsearch.') for t in edges[name]))}")
