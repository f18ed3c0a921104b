"""The shape of the package, measured: no import circle (not even for type annotations),
dependencies pointing one way (doors -> collection -> engine protocol <- backends), doors that
only translate, no reaching into another module's private names, and functions short enough to
read or carrying the reason they are not. Run as a script to print the import graph:

    python tests/test_architecture.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "semsearch"
#: A function longer than this says why beside its ``def`` (a ``# long: ...`` comment).
MAX_FUNCTION_LINES = 80
#: The doors: they translate arguments and results, and call the facade.
DOORS = ("semsearch.cli", "semsearch.server", "semsearch.mcp_server")
#: What a door may import besides its own package: the facade (the collection package itself,
#: not its rooms), the vocabulary every layer shares, and the features that are commands of their
#: own built on the facade (indexing files, evaluation, fine-tuning, answers' chat settings).
DOOR_MAY_IMPORT = ("semsearch", "semsearch.collection", "semsearch.types", "semsearch.errors", "semsearch.options",
                   "semsearch.version", "semsearch.filters", "semsearch.ingest", "semsearch.evaluation",
                   "semsearch.finetune", "semsearch.answer")
#: What only the facade (and the engines) may reach: storage and the ranking machinery.
FACADE_ONLY = ("semsearch.engine", "semsearch.backends", "semsearch.retrieval", "semsearch.index",
               "semsearch.embedding", "semsearch.corpus", "semsearch.validation")


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
    """Modules of the package that ``name`` imports anywhere: functions and TYPE_CHECKING blocks too."""

    def target(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE) and (t := target(alias.name)):
                    found.add(t)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node.level, node.module or "")
            if base.startswith(PACKAGE):
                for alias in node.names:
                    if t := target(f"{base}.{alias.name}") or target(base):
                        found.add(t)
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


def in_package(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_no_import_cycle_not_even_for_annotations():
    assert cycles(graph()) == []


def test_storage_imports_nothing_from_retrieval_or_the_facade():
    edges = graph()
    for name in edges:
        # MilvusCollection (compat, re-exported by the milvus package) is the facade under its old name
        if in_package(name, "semsearch.backends") and name not in ("semsearch.backends.milvus",
                                                                   "semsearch.backends.milvus.compat"):
            bad = {t for t in reaches(edges, name) if in_package(t, "semsearch.retrieval", "semsearch.collection")}
            assert not bad, f"{name} reaches {sorted(bad)}"
    for name in ("semsearch.index", "semsearch.lexical", "semsearch.filters", "semsearch.types", "semsearch.engine",
                 "semsearch.options"):
        bad = {t for t in reaches(edges, name) if in_package(t, "semsearch.backends", "semsearch.collection")}
        assert not bad, f"{name} reaches {sorted(bad)}"


def test_ranking_stages_take_data_not_collections_or_engines():
    edges = graph()
    for name in edges:
        if in_package(name, "semsearch.retrieval", "semsearch.corpus.near_duplicates", "semsearch.corpus.topic_model",
                      "semsearch.corpus.vectors", "semsearch.corpus.labels"):
            bad = {t for t in edges[name] if in_package(t, "semsearch.collection", "semsearch.engine",
                                                        "semsearch.backends", *DOORS)}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_the_facade_is_the_only_client_of_the_engine():
    """Only the collection package and the engines themselves import the Engine protocol."""
    edges = graph()
    users = {name for name, targets in edges.items() if "semsearch.engine" in targets}
    allowed = {name for name in users if in_package(name, "semsearch.collection", "semsearch.backends")}
    assert users == allowed, f"outside the facade: {sorted(users - allowed)}"


def test_doors_only_translate():
    """A door imports the facade and the shared vocabulary, never storage, ranking or encoding."""
    edges = graph()
    for name, targets in edges.items():
        if not in_package(name, *DOORS):
            continue
        outside = {t for t in targets if not in_package(t, *DOORS)}
        bad = {t for t in outside if in_package(t, *FACADE_ONLY)
               or (in_package(t, "semsearch.collection") and t != "semsearch.collection")
               or not (t in DOOR_MAY_IMPORT or in_package(t, *DOOR_MAY_IMPORT[2:]))}
        assert not bad, f"door {name} imports {sorted(bad)}"


def private_uses(path: Path) -> list[str]:
    """Uses of a private name (``_x``) that the module does not define itself: ``obj._x`` where
    ``obj`` is not ``self``/``cls``, and ``from m import _x``. A library's own private name that
    no public API replaces is allowed where a ``# third-party private: <why>`` comment stands on
    or just above the line."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    allowed = {i + 1 for i, line in enumerate(lines) if "# third-party private:" in line}
    allowed |= {i + 1 for i in allowed}
    tree = ast.parse(text)
    defined: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            defined.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            defined.add(n.id)
        elif isinstance(n, ast.arg):
            defined.add(n.arg)
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__") \
                and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")) and n.attr not in defined \
                and n.lineno not in allowed:
            out.append(f"{path.name}:{n.lineno} .{n.attr}")
        if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in ("", PACKAGE) or \
                isinstance(n, ast.ImportFrom) and n.level > 0:
            out += [f"{path.name}:{n.lineno} import {a.name}" for a in n.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def test_no_module_reaches_into_another_modules_private_names():
    found = {name: uses for name, path in modules().items() if (uses := private_uses(path))}
    assert not found, found


def long_functions(path: Path) -> list[str]:
    """Functions over MAX_FUNCTION_LINES lines without a ``# long: <reason>`` comment on or above their ``def``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for n in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno > MAX_FUNCTION_LINES:
            start = (n.decorator_list[0].lineno if n.decorator_list else n.lineno) - 1
            near = lines[max(0, start - 1): n.lineno]
            if not any("# long:" in line for line in near):
                out.append(f"{path.name}:{n.lineno} {n.name} ({n.end_lineno - n.lineno} lines)")
    return out


def test_long_functions_say_why():
    found = {name: f for name, path in modules().items() if (f := long_functions(path))}
    assert not found, found


if __name__ == "__main__":
    edges = graph()
    for component in cycles(edges):
        print("cycle:", " <-> ".join(component))
    for name, path in modules().items():
        n = sum(1 for _ in path.open(encoding="utf-8"))
        print(f"{n:5d}  {name:45s} -> {', '.join(sorted(t.removeprefix('semsearch.') for t in edges[name]))}")
