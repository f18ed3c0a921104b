"""``where`` ASTs (:mod:`semsearch.filters`) -> Milvus boolean expressions with the same semantics.

Milvus compares JSON values loosely (Milvus Lite 3.2 finds ``{"a": true}`` with
``metadata["a"] == 1``) and has no "any element of a JSON list is greater than x". So each
row carries, next to its metadata, a *facets* JSON object built by :func:`facets`, and filters
are compiled against the facets, never against the raw metadata:

- ``n_<key>`` / ``s_<key>`` / ``b_<key>``: the key's numbers / strings / booleans, always as a
  list (a scalar is a list of one), so equality is ``json_contains_any`` on the list of the value's
  kind and a string never equals a number, ``true`` is never ``1``;
- ``lo_<key>`` / ``hi_<key>``: the smallest / largest number, so "any element > x" is
  ``hi > x`` and "any element < x" is ``lo < x`` — exact for lists and scalars alike;
- ``$ne`` / ``$nin`` are ``not (...)`` of the ``$eq`` / ``$in`` expression, so they match rows
  that lack the key, as locally.

Keys and string values are stored hex-encoded (``<key>`` above is the key's UTF-8 in hex), so
an expression only ever contains hex digits, numbers, ``true``/``false`` and our own syntax:
nothing a user typed is pasted into an expression (Milvus Lite does not implement filter
templating, so ``filter_params`` is not an option here).

Document-text conditions (``$contains``) are resolved by the caller into sets of document ids
(see :func:`compile_filter`'s ``resolve_contains``) because Milvus' ``like`` has no escape
for ``%``/``_`` in Milvus Lite and the text lives in another collection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from ...errors import FilterError
from ...filters import And, Compare, Contains, Node, Or

INT64_MAX = 2**63 - 1


def _hex(text: str) -> str:
    return text.encode("utf-8").hex()


def facets(metadata: dict[str, Any]) -> dict[str, Any]:
    """The filterable view of one row's metadata (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        k = _hex(key)
        elements = value if isinstance(value, list) else [value]
        nums = [e for e in elements if isinstance(e, (int, float)) and not isinstance(e, bool) and _finite(e)]
        strs = [_hex(e) for e in elements if isinstance(e, str)]
        bools = [e for e in elements if isinstance(e, bool)]
        if nums:
            out[f"n_{k}"] = nums
            out[f"lo_{k}"] = min(nums)
            out[f"hi_{k}"] = max(nums)
        if strs:
            out[f"s_{k}"] = strs
        if bools:
            out[f"b_{k}"] = bools
    return out


def _finite(x: float) -> bool:
    return math.isfinite(x) and abs(x) <= INT64_MAX


def literal(value: Any) -> str:
    """A Milvus expression literal for a number, boolean or (already safe) hex string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) > INT64_MAX:
            raise FilterError(f"{value} is outside the 64-bit integer range Milvus filters can compare")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{value} is not a comparable number")
        return repr(value)
    raise TypeError(f"not a literal kind: {type(value).__name__}")


def string_literal(text: str) -> str:
    """A double-quoted Milvus string literal (only for ids, which are ours to quote)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def id_list(ids: Iterable[str]) -> str:
    """``[...]`` of quoted ids for ``doc_id in [...]``."""
    return "[" + ", ".join(string_literal(i) for i in ids) + "]"


def compile_filter(node: Node | None, resolve_contains: Callable[[Contains], set[str]] | None = None) -> str:
    """A Milvus boolean expression over the ``facets`` and ``doc_id`` fields ("" = everything).

    ``resolve_contains`` maps a document-text condition to the ids of the documents whose
    text contains the substring (the caller checks it exactly); it is required when the
    filter has ``$contains`` / ``$not_contains``.

    Raises:
        FilterError: a construct that cannot keep the local semantics (a number beyond int64,
            a text filter without a resolver).
    """
    if node is None:
        return ""
    return _expr(node, resolve_contains)


def _expr(node: Node, resolve: Callable[[Contains], set[str]] | None) -> str:
    if isinstance(node, And):
        return "(" + " and ".join(_expr(p, resolve) for p in node.parts) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(_expr(p, resolve) for p in node.parts) + ")"
    if isinstance(node, Contains):
        if resolve is None:
            raise FilterError("document-text filters ($contains) need the documents collection; use where_document on "
                              "a collection")
        ids = resolve(Contains(node.text))
        inside = f"(doc_id in {id_list(sorted(ids))})" if ids else "false"
        return f"(not {inside})" if node.negate else inside
    return _compare(node)


def _compare(node: Compare) -> str:
    k = _hex(node.key)
    op = node.op
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        (v,) = values
        field = f'facets["hi_{k}"]' if op in ("$gt", "$gte") else f'facets["lo_{k}"]'
        sym = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
        return f"({field} {sym} {literal(v)})"
    by_kind: dict[str, list[str]] = {"n": [], "s": [], "b": []}
    for v in values:
        if isinstance(v, bool):
            by_kind["b"].append(literal(v))
        elif isinstance(v, (int, float)):
            by_kind["n"].append(literal(v))
        else:
            by_kind["s"].append(f'"{_hex(v)}"')
    terms = []
    for kind, lits in by_kind.items():
        if not lits:
            continue
        # Always the list form: Milvus Lite 3.2 cannot parse a negative number as a function
        # argument (``json_contains(f, -1)``) but can inside a list literal.
        terms.append(f"json_contains_any(facets[\"{kind}_{k}\"], [{', '.join(lits)}])")
    expr = terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"
    return f"(not {expr})" if op in ("$ne", "$nin") else expr
