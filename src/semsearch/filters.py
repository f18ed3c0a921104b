"""The ``where`` filter language (ChromaDB's vocabulary) -> a typed AST -> parameterized SQL.

Metadata filters (``where``)::

    {"topic": "ml"}                                  equality shorthand
    {"year": {"$gte": 2020}}                         $eq $ne $gt $gte $lt $lte $in $nin
    {"topic": "ml", "year": {"$gt": 2020}}          several keys: all must hold (implicit $and)
    {"$or": [{"topic": "ml"}, {"topic": "nlp"}]}     $and / $or over a list of filters

Document-text filters (``where_document``, as in ChromaDB)::

    {"$contains": "FAISS"}      the document's text contains this exact (case-sensitive) substring
    {"$not_contains": "draft"}  ... does not contain it
    {"$and": [...]} / {"$or": [...]}

Semantics (the same in SQL and in :func:`matches`, the pure-Python reference):

- Values are compared only with values of the same kind: a string never equals a number,
  ``True`` is not ``1``. ``$gt $gte $lt $lte`` take numbers only.
- A list-valued metadata field matches when any element matches (``{"tags": "ml"}`` finds
  ``{"tags": ["ml", "nlp"]}``), like MongoDB.
- ``$ne`` and ``$nin`` are the negation of ``$eq`` and ``$in``: they also match documents that
  lack the key.
- Every value reaches SQLite as a bound parameter; nothing from the filter is pasted into SQL.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .errors import FilterError

Scalar = str | int | float | bool

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
DOCUMENT_OPERATORS = ("$contains", "$not_contains")


@dataclass(frozen=True)
class Compare:
    """``key <op> value`` on metadata; ``value`` is a tuple for $in / $nin."""

    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class Contains:
    """The document text contains (or, with ``negate``, lacks) ``text``."""

    text: str
    negate: bool = False


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


Node = Compare | Contains | And | Or


# -- parsing -------------------------------------------------------------------------------
def parse_where(where: Any) -> Node | None:
    """Parse a metadata filter dict (or its JSON text) into an AST; ``None``/``{}`` means no filter.

    Raises:
        FilterError: malformed JSON, an unknown operator, a value of the wrong type; the
            message names the offending part.
    """
    where = _loads(where, "where")
    if where is None or where == {}:
        return None
    return _parse_metadata(where, "where")


def parse_where_document(where_document: Any) -> Node | None:
    """Parse a document-text filter (``{"$contains": "..."}``...) into an AST; ``None`` if empty."""
    where_document = _loads(where_document, "where_document")
    if where_document is None or where_document == {}:
        return None
    return _parse_document(where_document, "where_document")


def combine(*nodes: Node | None) -> Node | None:
    """The conjunction of the given filters (``None`` entries are ignored)."""
    present = tuple(n for n in nodes if n is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else And(present)


def _loads(value: Any, name: str) -> Any:
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise FilterError(f"{name} is not valid JSON ({exc}); write it like '{{\"topic\": \"ml\"}}'") from None
    return value


def _parse_metadata(where: Any, path: str) -> Node:
    if not isinstance(where, dict):
        raise FilterError(f"{path} must be an object like {{\"topic\": \"ml\"}}, got {_show(where)}")
    if not where:
        raise FilterError(f"{path} is an empty object; give at least one condition")
    parts: list[Node] = []
    for key, cond in where.items():
        if not isinstance(key, str):
            raise FilterError(f"{path}: keys must be strings, got {key!r}")
        if key in ("$and", "$or"):
            parts.append(_parse_combinator(key, cond, f"{path}.{key}", _parse_metadata))
        elif key.startswith("$"):
            hint = " ($contains filters document text: pass it in where_document)" if key in DOCUMENT_OPERATORS else ""
            raise FilterError(
                f"{path}: unknown operator {key!r} at the top level; use a metadata key, $and or $or{hint}"
            )
        else:
            parts.extend(_parse_condition(key, cond, f"{path}.{key}"))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_combinator(op: str, clauses: Any, path: str, parse_one: Any) -> Node:
    if not isinstance(clauses, list) or not clauses:
        raise FilterError(f"{path} needs a non-empty list of filters, got {_show(clauses)}")
    parts = tuple(parse_one(c, f"{path}[{i}]") for i, c in enumerate(clauses))
    if len(parts) == 1:
        return parts[0]
    return And(parts) if op == "$and" else Or(parts)


def _parse_condition(key: str, cond: Any, path: str) -> list[Node]:
    if not isinstance(cond, dict):
        return [Compare(key, "$eq", _scalar(cond, path))]
    if not cond:
        raise FilterError(f"{path} is an empty object; give an operator such as {{\"$eq\": ...}}")
    out: list[Node] = []
    for op, value in cond.items():
        where = f"{path}.{op}"
        if op not in COMPARISONS:
            raise FilterError(f"{where}: unknown operator {op!r}; use one of {', '.join(COMPARISONS)}")
        if op in ("$in", "$nin"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{where} needs a non-empty list of values, got {_show(value)}")
            values = tuple(_scalar(v, f"{where}[{i}]") for i, v in enumerate(value))
            out.append(Compare(key, op, values))
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FilterError(f"{where} compares numbers only, got {_show(value)}")
            out.append(Compare(key, op, _scalar(value, where)))
        else:
            out.append(Compare(key, op, _scalar(value, where)))
    return out


def _scalar(value: Any, path: str) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{path}: {value} is not a comparable number")
    if isinstance(value, (str, int, float, bool)):
        return value
    raise FilterError(f"{path}: expected a string, number or boolean, got {_show(value)}")


def _parse_document(where: Any, path: str) -> Node:
    if not isinstance(where, dict) or len(where) != 1:
        raise FilterError(
            f"{path} must be an object with one operator, like {{\"$contains\": \"text\"}}, got {_show(where)}"
        )
    (op, value), = where.items()
    if op in ("$and", "$or"):
        return _parse_combinator(op, value, f"{path}.{op}", _parse_document)
    if op not in DOCUMENT_OPERATORS:
        raise FilterError(f"{path}: unknown operator {op!r}; use $contains, $not_contains, $and or $or")
    if not isinstance(value, str) or not value:
        raise FilterError(f"{path}.{op} needs a non-empty string, got {_show(value)}")
    return Contains(value, negate=op == "$not_contains")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


# -- compiling to SQL ----------------------------------------------------------------------
def to_sql(node: Node, metadata: str = "d.metadata", text: str = "d.text") -> tuple[str, list[Any]]:
    """A SQL boolean expression over a documents row and its bound parameters.

    ``metadata`` and ``text`` are the SQL column expressions of the row's metadata JSON and
    text (trusted names from the caller, never user input).
    """
    params: list[Any] = []
    sql = _sql(node, metadata, text, params)
    return sql, params


def _sql(node: Node, metadata: str, text: str, params: list[Any]) -> str:
    if isinstance(node, And):
        return "(" + " AND ".join(_sql(p, metadata, text, params) for p in node.parts) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_sql(p, metadata, text, params) for p in node.parts) + ")"
    if isinstance(node, Contains):
        params.append(node.text)
        return f"(instr({text}, ?) {'=' if node.negate else '>'} 0)"
    op = node.op
    negate = op in ("$ne", "$nin")
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    # json_each over a path yields the element rows of an array and one row for a scalar,
    # so list-valued fields match when any element does; a missing key yields no row. It also
    # yields the members of an object (keyed by text), which never match (as in `matches`).
    params.append(_json_path(node.key))
    terms = []
    for v in values:
        kind, sql_value = _typed(v)
        sqlop = {"$eq": "=", "$ne": "=", "$in": "=", "$nin": "=",
                 "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
        params.append(sql_value)
        terms.append(f"({kind} AND j.value {sqlop} ?)")
    exists = (f"EXISTS (SELECT 1 FROM json_each({metadata}, ?) j WHERE typeof(j.key) <> 'text' "
              f"AND ({' OR '.join(terms)}))")
    return f"(NOT {exists})" if negate else exists


def _typed(value: Scalar) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("j.type = 'true'" if value else "j.type = 'false'"), int(value)
    if isinstance(value, (int, float)):
        return "j.type IN ('integer', 'real')", value
    return "j.type = 'text'", value


def _json_path(key: str) -> str:
    if '"' in key:
        raise FilterError(f"metadata key {key!r} contains a double quote, which filters cannot address; rename the key")
    return f'$."{key}"'


# -- the reference evaluator ---------------------------------------------------------------
def matches(node: Node | None, metadata: dict[str, Any], text: str = "") -> bool:
    """Whether a document matches, evaluated in Python (the oracle the SQL is tested against)."""
    if node is None:
        return True
    if isinstance(node, And):
        return all(matches(p, metadata, text) for p in node.parts)
    if isinstance(node, Or):
        return any(matches(p, metadata, text) for p in node.parts)
    if isinstance(node, Contains):
        return (node.text in text) != node.negate
    if node.key not in metadata:
        return node.op in ("$ne", "$nin")
    stored = metadata[node.key]
    elements = stored if isinstance(stored, list) else [stored]
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    base = {"$ne": "$eq", "$nin": "$in"}.get(node.op, node.op)
    hit = any(_compare(e, base, v) for e in elements for v in values)
    return not hit if node.op in ("$ne", "$nin") else hit


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _compare(element: Any, op: str, value: Scalar) -> bool:
    if _kind(element) is None or _kind(element) != _kind(value):
        return False
    if op in ("$eq", "$in"):
        return element == value
    return {"$gt": element > value, "$gte": element >= value, "$lt": element < value, "$lte": element <= value}[op]
