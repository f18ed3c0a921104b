"""A demo corpus present on every machine: docstrings of the Python standard library.

Sources are parsed with `ast`, never imported, so walking them has no side effects and works
for modules whose imports would fail on this platform.
"""

from __future__ import annotations

import ast
import inspect
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

from semsearch.errors import InvalidInputError
from semsearch.ingest.loaders import Record

# Test suites, IDE/GUI demos and packaging internals: many docstrings, little a user searches
# for. "encodings" is ~100 generated codec modules with near-identical docstrings that would
# crowd the results of any query about text or encodings.
SKIPPED_PACKAGES = frozenset(
    {"test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip", "site-packages",
     "dist-packages", "__pycache__", "encodings"}
)
MIN_DOCSTRING_CHARS = 40
# Docstrings can run to pages; the first paragraphs say what the thing is, which is what a
# search hit needs. Chunking would only split the rest into weakly related pieces.
MAX_TEXT_CHARS = 1000
ALL_KINDS = frozenset({"module", "function", "class", "method"})


def stdlib_docstrings(
    limit_modules: Iterable[str] | None = None,
    kinds: Iterable[str] = ALL_KINDS,
) -> list[Record]:
    """Return one Record per public docstring of the standard library, sorted by module.

    Each Record has id = qualified name ("json.dumps", "json.JSONEncoder.encode"),
    text = "qualified.name: first paragraph(s)", metadata {"module", "kind", "name", "line"}
    and source = the .py file. `limit_modules` keeps only those modules and their submodules
    (e.g. ["json"] gives json, json.decoder...). `kinds` selects among "module", "function",
    "class" and "method"; the default takes all four, since the full walk is small (about
    3,850 records in ~1.3 s on CPython 3.11, so ~20 s to encode at 200 docs/s).
    Docstrings shorter than MIN_DOCSTRING_CHARS are skipped.

    Raises InvalidInputError for an unknown kind.
    """
    wanted_kinds = frozenset(kinds)
    if unknown := wanted_kinds - ALL_KINDS:
        raise InvalidInputError(
            f"unknown docstring kind(s) {sorted(unknown)}; choose from {sorted(ALL_KINDS)}"
        )
    prefixes = tuple(limit_modules) if limit_modules is not None else None
    root = Path(sysconfig.get_paths()["stdlib"])
    records: list[Record] = []
    for path, module in _modules(root):
        if prefixes is not None and not any(
            module == prefix or module.startswith(prefix + ".") for prefix in prefixes
        ):
            continue
        records.extend(_module_records(path, module, wanted_kinds))
    return records


def _modules(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield (file, dotted module name) for public stdlib modules, in sorted order."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if any(part in SKIPPED_PACKAGES or part.startswith(("_", ".")) for part in parts[:-1]):
            continue
        name = parts[-1]
        if name == "__init__":
            parts = parts[:-1]
        elif name.startswith("_") or name in SKIPPED_PACKAGES:
            continue  # private modules and __main__.py
        if parts and "-" not in "".join(parts):  # "-" marks scripts, never importable modules
            yield path, ".".join(parts)


def _module_records(path: Path, module: str, kinds: frozenset[str]) -> Iterator[Record]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return  # a few stdlib files are templates or target other Python versions
    if "module" in kinds:
        yield from _record(path, module, module, "module", tree, 1)
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if node.name.startswith("_"):
            continue
        qualified = f"{module}.{node.name}"
        if isinstance(node, ast.ClassDef):
            if "class" in kinds:
                yield from _record(path, module, qualified, "class", node, node.lineno)
            if "method" in kinds:
                for member in node.body:
                    if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and not (
                        member.name.startswith("_")
                    ):
                        yield from _record(
                            path, module, f"{qualified}.{member.name}", "method", member,
                            member.lineno,
                        )
        elif "function" in kinds:
            yield from _record(path, module, qualified, "function", node, node.lineno)


def _record(
    path: Path, module: str, qualified: str, kind: str, node: ast.AST, line: int
) -> Iterator[Record]:
    docstring = ast.get_docstring(node, clean=False)  # type: ignore[arg-type]
    if not docstring:
        return
    summary = _summary(inspect.cleandoc(docstring))
    if len(summary) < MIN_DOCSTRING_CHARS:
        return
    yield Record(
        text=f"{qualified}: {summary}",
        id=qualified,
        metadata={"module": module, "kind": kind, "name": qualified, "line": line},
        source=str(path),
        position=line,
    )


def _summary(docstring: str) -> str:
    """Whole paragraphs from the start of the docstring, up to about MAX_TEXT_CHARS."""
    paragraphs = [p.strip() for p in docstring.split("\n\n") if p.strip()]
    kept: list[str] = []
    size = 0
    for paragraph in paragraphs:
        if kept and size + len(paragraph) > MAX_TEXT_CHARS:
            break
        kept.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(kept)[: MAX_TEXT_CHARS * 2]
