"""Metadata filters answered from an SQLite index: a typed key/value table a query reads only where it needs.

Every scalar of every document's metadata (each element of a list) is one row of ``facets``:
``(key, kind, value, doc)`` with kind 0 = text, 1 = number, 2 = boolean, the table's primary key
in that order (a ``WITHOUT ROWID`` table, so the key *is* the index).
Triggers fill it from the documents' JSON when a document is inserted or its metadata changes
and empty it when a document is removed, in the same transaction, so it never disagrees with the
store (a kill at any instant leaves both as they were or both changed). Values no filter can
match (null, objects, nested lists) are not kept, as in :func:`semsearch.filters.matches`.

A filter compiles two ways:

* a *set*: the rowids of the documents it matches, driven by the primary key (``key = ? AND kind
  = ? AND value < ?`` is one range of the index; ``$and``/``$or`` are ``INTERSECT``/``UNION``,
  ``$ne``/``$nin`` the complement), for counting and for small allow-lists;
* a *check*: the reference SQL (:func:`semsearch.filters.to_sql`, ``json_each`` over one
  document's metadata) evaluated per candidate, for keeping the candidates of a search that
  match, whatever the filter's size.

So no filter ever reads every document's metadata: a count reads the index entries of the
values asked for, and a check reads a few rows per candidate. Document-text conditions
(``$contains``) stay an ``instr`` over the text (no substring index): as a check they cost a
row per candidate, as a set a scan of the texts.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...filters import And, Compare, Contains, Node, Or, to_sql
from ...types import Document
from .store import Store

TEXT, NUMBER, BOOLEAN = 0, 1, 2  # facets.kind (schema.py)
#: Filter counts a process remembers (FacetIndex.document_count), and allow-lists (chunk_ids):
#: at most LISTS_KEPT of at most LISTS_KEPT_MAX ids each (~5 MB).
COUNTS_KEPT = 256
LISTS_KEPT = 64
LISTS_KEPT_MAX = 10_000
# Metadata SQLite's JSON cannot read (NaN, Infinity) matches no condition, as in the facets table.
READABLE_METADATA = "iif(json_valid(t.metadata), t.metadata, '{}')"
_OPS = {"$eq": "=", "$ne": "=", "$in": "=", "$nin": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


@dataclass(frozen=True)
class CompiledFilter:
    """A filter as SQL over the local schema (see the module docstring)."""

    node: Node
    documents_sql: str  # SELECT of matching document rowids
    documents_params: tuple[Any, ...]
    check_sql: str  # boolean expression over a document rowid written ``{doc}``
    check_params: tuple[Any, ...]

    def check(self, doc: str) -> tuple[str, list[Any]]:
        """The check for the document rowid expression ``doc`` (a trusted column name) and its parameters."""
        return self.check_sql.replace("{doc}", doc), list(self.check_params)


def compile_filter(node: Node) -> CompiledFilter:
    """The set and check SQL of a parsed filter.

    Raises:
        FilterError: a key filters cannot address (the SQL reference compiler's rules).
    """
    check_sql, check_params = to_sql(node, metadata=READABLE_METADATA, text="t.text")
    set_params: list[Any] = []
    documents_sql = _set(node, set_params)
    check_sql = f"EXISTS (SELECT 1 FROM documents t WHERE t.rowid = {{doc}} AND {check_sql})"
    return CompiledFilter(node, documents_sql, tuple(set_params), check_sql, tuple(check_params))


def _kind_and_value(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return BOOLEAN, int(value)
    if isinstance(value, (int, float)):
        return NUMBER, value
    return TEXT, value


def _terms(node: Compare, params: list[Any]) -> str:
    """``(kind = ? AND value <op> ?) OR ...`` over facets rows for one comparison's values."""
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    by_kind: dict[int, list[Any]] = {}
    for v in values:
        kind, sql_value = _kind_and_value(v)
        by_kind.setdefault(kind, []).append(sql_value)
    op = _OPS[node.op]
    terms = []
    for kind, kind_values in by_kind.items():
        if op == "=" and len(kind_values) > 1:
            params.append(kind)
            params.extend(kind_values)
            terms.append(f"(kind = ? AND value IN ({','.join('?' * len(kind_values))}))")
        else:
            for v in kind_values:
                params.extend([kind, v])
                terms.append(f"(kind = ? AND value {op} ?)")
    return " OR ".join(terms)


def _negated(node: Node) -> bool:
    return isinstance(node, Compare) and node.op in ("$ne", "$nin")


def _set(node: Node, params: list[Any]) -> str:
    if isinstance(node, (And, Or)):
        word = " INTERSECT " if isinstance(node, And) else " UNION "
        return word.join(f"SELECT * FROM ({_set(p, params)})" for p in node.parts)
    if isinstance(node, Contains):
        params.append(node.text)
        return f"SELECT rowid FROM documents WHERE instr(text, ?) {'=' if node.negate else '>'} 0"
    params.append(node.key)
    matching = f"SELECT doc FROM facets WHERE key = ? AND ({_terms(node, params)})"
    if _negated(node):
        return f"SELECT rowid FROM documents EXCEPT {matching}"
    return matching


class FacetIndex:
    """The ``facets`` table of one store: counting, listing and checking what a filter matches."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._counts: OrderedDict[tuple[Any, ...], int] = OrderedDict()
        self._lists: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._counts_lock = threading.Lock()  # a server's threads share them

    def document_count(self, compiled: CompiledFilter) -> int:
        """How many documents match, for planning: it reads only the index entries of the values
        asked for, and counts a document once per matching element of a list (an upper bound).

        Remembered per filter until the store changes (a warm process asking for the same filter
        again reads nothing: 500,000 entries are ~30 ms); a metadata update, which the change log
        does not record, leaves at most a stale plan, never a wrong result.
        """
        with self.store.read() as con:
            key = (self.store.head(), compiled.documents_sql, compiled.documents_params)
            with self._counts_lock:
                count = self._counts.get(key)
            if count is None:
                sql = f"SELECT count(*) FROM ({compiled.documents_sql})"
                count = int(con.execute(sql, compiled.documents_params).fetchone()[0])
                with self._counts_lock:
                    self._counts[key] = count
                    while len(self._counts) > COUNTS_KEPT:
                        self._counts.popitem(last=False)
        return count

    def chunk_ids(self, compiled: CompiledFilter) -> np.ndarray:
        """Ascending ids of the chunks whose document matches (read-only; remembered, like counts,
        until the store changes, for lists of at most :data:`LISTS_KEPT_MAX` ids)."""
        q = f"SELECT c.rowid FROM chunks c WHERE c.doc IN ({compiled.documents_sql}) ORDER BY c.rowid"
        with self.store.read() as con:
            key = ("chunks", self.store.head(), compiled.documents_sql, compiled.documents_params)
            with self._counts_lock:
                known = self._lists.get(key)
            if known is not None:
                return known
            rows = con.execute(q, compiled.documents_params).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        ids.flags.writeable = False
        if len(ids) <= LISTS_KEPT_MAX:
            with self._counts_lock:
                self._lists[key] = ids
                while len(self._lists) > LISTS_KEPT:
                    self._lists.popitem(last=False)
        return ids

    def document_rowids(self, compiled: CompiledFilter) -> np.ndarray:
        """Ascending rowids of the documents that match."""
        with self.store.read() as con:
            rows = con.execute(f"SELECT DISTINCT * FROM ({compiled.documents_sql}) ORDER BY 1",
                               compiled.documents_params)
            found = rows.fetchall()
        return np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))

    def documents(self, compiled: CompiledFilter | None, limit: int | None = None) -> list[Document]:
        """The matching documents (every one for None), in insertion order, at most ``limit``."""
        where, params = ("1", []) if compiled is None else (f"d.rowid IN ({compiled.documents_sql})",
                                                            list(compiled.documents_params))
        q = f"SELECT d.id, d.text, d.metadata, d.source FROM documents d WHERE {where} ORDER BY d.rowid"
        if limit is not None:
            q, params = q + " LIMIT ?", [*params, int(limit)]
        with self.store.read() as con:
            return [Document(r[0], r[1], json.loads(r[2]), r[3]) for r in con.execute(q, params)]

    def kept(self, compiled: CompiledFilter, chunk_ids: np.ndarray) -> np.ndarray:
        """Those of ``chunk_ids`` that exist and whose document matches (a few rows read per chunk)."""
        if len(chunk_ids) == 0:
            return np.empty(0, dtype=np.int64)
        check, params = compiled.check("c.doc")
        q = f"SELECT c.rowid FROM chunks c WHERE c.rowid IN (SELECT value FROM json_each(?)) AND {check}"
        with self.store.read() as con:
            rows = con.execute(q, [json.dumps(np.asarray(chunk_ids).tolist()), *params]).fetchall()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))


__all__ = ["CompiledFilter", "FacetIndex", "compile_filter"]
