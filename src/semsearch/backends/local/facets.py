"""Metadata facets in memory: what a ``where`` filter needs, in columns made for it.

A filtered search used to compile the filter to SQL over every document's metadata JSON
(``json_each``): 15-25 µs a document, seconds a query at 100k documents on a loaded machine.
Here every metadata value of every document is held once, in one column per key, split by
kind (text as codes of a shared vocabulary, numbers as float64, booleans), and a filter is
evaluated with NumPy over whole columns: a comparison is one vectorised pass over that key's
values (~1 ms per 100k), ``$and``/``$or`` are boolean operations over documents, and the
result maps to the ascending chunk ids the vector index and BM25 take. The store stays the truth; this is a
derived cache like they are:

- built from the store in one read snapshot, kept current from its change log (chunks added
  with their documents read; chunks removed masked), compacted when a quarter of its rows are
  dead, and rebuilt when the log no longer reaches back to it;
- immutable snapshots: a catch-up makes a new one and swaps it in, so a search never sees half
  of a change and needs no lock;
- exact: it follows :func:`semsearch.filters.matches`, the reference evaluator (kinds never mix,
  any element of a list matches, ``$ne``/``$nin`` also match documents without the key).
  Numbers float64 cannot hold exactly (integers beyond 2**53) are compared in Python.

Document-text filters (``where_document``) stay in SQL (``instr`` over the text), evaluated
once per document-filter subtree and combined with the metadata columns. Collections with
more than :data:`MAX_ENTRIES` metadata values fall back to the SQL filter.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ...filters import And, Compare, Contains, Node, Or, to_sql
from .store import Store, batched

log = logging.getLogger(__name__)

#: Metadata values (list elements counted one by one) beyond which filters stay in SQL
#: (memory: ~13 bytes a value, so ~260 MB at the bound).
MAX_ENTRIES = 20_000_000
#: Seconds per document a build takes, for deciding when a build pays off: about three SQL
#: filter passes (measured on a loaded machine at 100k documents of 3-4 values: 52 µs a
#: document against 15-25 µs for one json_each pass; bench/RESULTS.md, issue 18).
BUILD_SECONDS_PER_DOCUMENT = 1e-5
#: Collections whose build would take longer (200,000 documents) filter from the metadata index
#: on disk only (:mod:`.facet_index`).
MAX_BUILD_SECONDS = 2.0
_EXACT_FLOAT = 2.0**53  # float64 holds every number of smaller magnitude exactly
_RANGE = {"$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}


@dataclass(frozen=True)
class Column:
    """One metadata key's values, one entry per scalar (a list gives one per element), by kind.

    ``*_docs`` are document rows of the snapshot. Values that can never match a filter (null,
    objects, nested lists) are not kept: they match nothing, and ``$ne`` anyway.
    """

    text_docs: np.ndarray  # int32
    text_codes: np.ndarray  # int32, codes of the snapshot's vocabulary
    num_docs: np.ndarray  # int32
    nums: np.ndarray  # float64, |x| < 2**53 or not finite
    bool_docs: np.ndarray  # int32
    bools: np.ndarray  # bool
    big: tuple[tuple[int, int], ...]  # (document row, integer) of integers beyond 2**53

    @property
    def size(self) -> int:
        return len(self.text_docs) + len(self.num_docs) + len(self.bool_docs) + len(self.big)

    def mark(self, op: str, value: Any, vocab: dict[str, int], out: np.ndarray) -> None:
        """Set ``out[row]`` for every document with an element ``element <op> value`` ($eq or a range)."""
        if isinstance(value, bool):
            out[self.bool_docs[self.bools == value]] = True
        elif isinstance(value, str):
            code = vocab.get(value)
            if code is not None:
                out[self.text_docs[self.text_codes == code]] = True
        else:
            # Every kept float64 is exact, so comparing it with float(value) orders it as the
            # exact value would even when value itself is an integer beyond 2**53.
            compare = np.equal if op == "$eq" else _RANGE[op]
            out[self.num_docs[compare(self.nums, float(value))]] = True
            for row, x in self.big:
                if _exact_compare(x, op, value):
                    out[row] = True

    def mark_any_text(self, values: Iterable[str], vocab: dict[str, int], out: np.ndarray) -> None:
        codes = [c for c in (vocab.get(v) for v in values) if c is not None]
        if codes:
            out[self.text_docs[np.isin(self.text_codes, codes)]] = True


def _exact_compare(x: int, op: str, value: float) -> bool:
    return {"$eq": x == value, "$gt": x > value, "$gte": x >= value, "$lt": x < value, "$lte": x <= value}[op]


_TEXT, _NUMBER, _BOOL, _OTHER = 0, 1, 2, 3
_KINDS = {str: _TEXT, int: _NUMBER, float: _NUMBER, bool: _BOOL}


def _column(rows: list[int], values: list[Any], vocab: dict[str, int], base: Column | None = None) -> Column:
    """The column of one key's (document row, element) pairs, appended to ``base``."""
    kinds = np.fromiter((_KINDS.get(type(v), _OTHER) for v in values), dtype=np.int8, count=len(values))
    row_array = np.asarray(rows, dtype=np.int32)
    text = np.flatnonzero(kinds == _TEXT)
    codes = np.fromiter((vocab.setdefault(values[i], len(vocab)) for i in text.tolist()), dtype=np.int32,
                        count=len(text))
    number = np.flatnonzero(kinds == _NUMBER).tolist()
    # Floats are float64 already; integers beyond 2**53 are kept apart and compared in Python.
    exact = [i for i in number if type(values[i]) is float or abs(values[i]) < _EXACT_FLOAT]
    big = tuple((rows[i], values[i]) for i in number if type(values[i]) is int and abs(values[i]) >= _EXACT_FLOAT)
    flags = np.flatnonzero(kinds == _BOOL)
    parts: list[np.ndarray] = [
        row_array[text], codes, row_array[exact], np.fromiter((values[i] for i in exact), np.float64, len(exact)),
        row_array[flags], np.fromiter((values[i] for i in flags.tolist()), bool, len(flags)),
    ]
    if base is not None:
        old = (base.text_docs, base.text_codes, base.num_docs, base.nums, base.bool_docs, base.bools)
        parts = [np.concatenate([o, p]) for o, p in zip(old, parts)]
        big = base.big + big
    return Column(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], big)


@dataclass(frozen=True)
class Facets:
    """The metadata of the store's documents at change-log position ``seq`` (never changed once made)."""

    seq: int
    vocab: dict[str, int]  # shared and append-only: a later snapshot may know more values
    doc_rowids: np.ndarray  # int64 ascending, one per document row
    chunk_ids: np.ndarray  # int64 ascending
    chunk_docs: np.ndarray  # int32 document row of each chunk
    chunk_alive: np.ndarray  # bool per chunk
    live: int  # live chunks
    columns: dict[str, Column]
    entries: int

    def allowed(self, node: Node, documents: Callable[[Node], np.ndarray]) -> np.ndarray:
        """Ascending ids of the live chunks whose document matches ``node``.

        ``documents(subtree)`` gives the ascending rowids of the documents matching a
        document-text subtree (``$contains``...), which is answered in SQL.
        """
        mask = self._mask(node, documents)
        keep = mask[self.chunk_docs]
        if self.live < len(self.chunk_alive):
            keep &= self.chunk_alive
        return self.chunk_ids[keep]

    def _mask(self, node: Node, documents: Callable[[Node], np.ndarray]) -> np.ndarray:
        if _is_document_filter(node):
            rowids = documents(node)
            pos = np.searchsorted(self.doc_rowids, rowids)
            inside = pos < len(self.doc_rowids)
            pos = pos[inside][self.doc_rowids[pos[inside]] == rowids[inside]]
            mask = np.zeros(len(self.doc_rowids), dtype=bool)
            mask[pos] = True
            return mask
        if isinstance(node, (And, Or)):
            mask = self._mask(node.parts[0], documents)
            for part in node.parts[1:]:
                other = self._mask(part, documents)
                mask = mask & other if isinstance(node, And) else mask | other
            return mask
        assert isinstance(node, Compare)
        hit = np.zeros(len(self.doc_rowids), dtype=bool)
        column = self.columns.get(node.key)
        if column is not None:
            base = {"$ne": "$eq", "$in": "$eq", "$nin": "$eq"}.get(node.op, node.op)
            values = node.value if isinstance(node.value, tuple) else (node.value,)
            texts = [v for v in values if isinstance(v, str)]
            if len(texts) > 1:
                column.mark_any_text(texts, self.vocab, hit)
                values = tuple(v for v in values if not isinstance(v, str))
            for value in values:
                column.mark(base, value, self.vocab, hit)
        return ~hit if node.op in ("$ne", "$nin") else hit

    # -- changes -------------------------------------------------------------------------
    def with_changes(self, seq: int, added: list[tuple[int, int, str]], removed: np.ndarray,
                     max_entries: int | None = None) -> Facets | None:
        """A new snapshot with chunks (id, document rowid, metadata JSON) added and chunk ids
        removed; None when it must be rebuilt (ids out of order, or too many entries)."""
        alive, live = self.chunk_alive, self.live
        if removed.size:
            pos = np.searchsorted(self.chunk_ids, removed)
            inside = pos < len(self.chunk_ids)
            pos = pos[inside][self.chunk_ids[pos[inside]] == removed[inside]]
            pos = pos[alive[pos]]
            alive = alive.copy()
            alive[pos] = False
            live -= len(pos)
        snap: Facets | None = replace(self, seq=seq, chunk_alive=alive, live=live)
        if added:
            ids = np.array([a[0] for a in added], dtype=np.int64)
            if len(self.chunk_ids) and ids.min() <= self.chunk_ids[-1]:
                return None  # ids are never reused, so this only happens if changes were missed
            snap = snap._appended(added, max_entries)  # type: ignore[union-attr]
            if snap is None:
                return None
        assert snap is not None
        # Removed chunks stay as dead rows until they are a quarter of all rows.
        return snap._compacted() if snap.live < 0.75 * len(snap.chunk_alive) else snap

    def _appended(self, added: list[tuple[int, int, str]], max_entries: int | None) -> Facets | None:
        last_doc = int(self.doc_rowids[-1]) if len(self.doc_rowids) else 0
        new_docs: list[int] = []
        metadata: list[str] = []
        chunk_doc_rowids = np.array([a[1] for a in added], dtype=np.int64)
        for _, doc, meta in added:
            if not new_docs or new_docs[-1] != doc:
                if doc <= last_doc or (new_docs and doc < new_docs[-1]):
                    return None  # a document's chunks arrive with it, so its rowid is new
                new_docs.append(doc)
                metadata.append(meta)
        doc_rowids = np.concatenate([self.doc_rowids, np.asarray(new_docs, dtype=np.int64)])
        columns, entries = _columns(metadata, len(self.doc_rowids), self.vocab, self.columns)
        if max_entries is not None and self.entries + entries > max_entries:
            return None
        chunk_docs = np.searchsorted(doc_rowids, chunk_doc_rowids).astype(np.int32)
        return Facets(
            self.seq, self.vocab, doc_rowids, np.concatenate([self.chunk_ids, [a[0] for a in added]]).astype(np.int64),
            np.concatenate([self.chunk_docs, chunk_docs]),
            np.concatenate([self.chunk_alive, np.ones(len(added), bool)]),
            self.live + len(added), columns, self.entries + entries,
        )

    def _compacted(self) -> Facets:
        """Dead chunks dropped, and documents left without a live chunk; rows renumbered."""
        chunk_keep = self.chunk_alive
        doc_keep = np.zeros(len(self.doc_rowids), dtype=bool)
        doc_keep[self.chunk_docs[chunk_keep]] = True
        new_row = np.cumsum(doc_keep, dtype=np.int64) - 1
        columns: dict[str, Column] = {}
        entries = 0
        for key, c in self.columns.items():
            t, n, b = doc_keep[c.text_docs], doc_keep[c.num_docs], doc_keep[c.bool_docs]
            column = Column(
                new_row[c.text_docs[t]].astype(np.int32), c.text_codes[t], new_row[c.num_docs[n]].astype(np.int32),
                c.nums[n], new_row[c.bool_docs[b]].astype(np.int32), c.bools[b],
                tuple((int(new_row[r]), x) for r, x in c.big if doc_keep[r]),
            )
            if column.size:
                columns[key] = column
                entries += column.size
        return Facets(
            self.seq, self.vocab, self.doc_rowids[doc_keep], self.chunk_ids[chunk_keep],
            new_row[self.chunk_docs[chunk_keep]].astype(np.int32), np.ones(int(chunk_keep.sum()), dtype=bool),
            self.live, columns, entries,
        )


def _is_document_filter(node: Node) -> bool:
    if isinstance(node, Contains):
        return True
    return isinstance(node, (And, Or)) and all(_is_document_filter(p) for p in node.parts)


def _parse(metadata: list[str], first_row: int) -> dict[str, tuple[list[int], list[Any]]]:
    """Each key's (document rows, elements) in documents' metadata JSON (rows from ``first_row``);
    a list contributes one element per item, under its document's row."""
    found: dict[str, tuple[list[int], list[Any]]] = {}
    # One json.loads call for all of them: the per-call overhead is most of parsing small objects.
    parsed = json.loads("[" + ",".join(metadata) + "]") if metadata else []
    for row, meta in enumerate(parsed, first_row):
        for key, value in meta.items():
            pair = found.get(key)
            if pair is None:
                pair = found[key] = ([], [])
            if type(value) is list:
                pair[0].extend([row] * len(value))
                pair[1].extend(value)
            else:
                pair[0].append(row)
                pair[1].append(value)
    return found


def _columns(metadata: list[str], first_row: int, vocab: dict[str, int],
             base: dict[str, Column] | None = None) -> tuple[dict[str, Column], int]:
    """Columns holding the metadata (appended to ``base``) and how many entries were added."""
    columns = dict(base or {})
    added = 0
    for key, (rows, values) in _parse(metadata, first_row).items():
        before = columns[key].size if key in columns else 0
        columns[key] = _column(rows, values, vocab, columns.get(key))
        added += columns[key].size - before
    return columns, added


def build(seq: int, documents: list[tuple[int, str]], chunks: np.ndarray,
          max_entries: int | None = None) -> Facets | None:
    """A snapshot of (document rowid, metadata JSON) pairs by ascending rowid and (chunk id,
    document rowid) rows by ascending chunk id; None when over ``max_entries`` values."""
    vocab: dict[str, int] = {}
    columns, entries = _columns([m for _, m in documents], 0, vocab)
    if max_entries is not None and entries > max_entries:
        return None
    doc_rowids = np.array([d for d, _ in documents], dtype=np.int64)
    chunk_ids = chunks[:, 0].copy() if len(chunks) else np.empty(0, np.int64)
    chunk_docs = np.searchsorted(doc_rowids, chunks[:, 1]).astype(np.int32) if len(chunks) else np.empty(0, np.int32)
    return Facets(seq, vocab, doc_rowids, chunk_ids, chunk_docs, np.ones(len(chunk_ids), dtype=bool), len(chunk_ids),
                  columns, entries)


class MemoryFacets:
    """The facet snapshot of one collection: when to build it, and keeping it current.

    ``current()`` gives a snapshot holding exactly the store's chunks, or None while filters
    should run in SQL: a process pays the build (about three SQL filter passes) only once its filters
    have spent as long in SQL ("ski rental", as the in-memory BM25 does), so a one-shot CLI
    search never builds and a server builds after a few filtered searches (or at warm-up);
    and never when the metadata is too large to hold. Callers report SQL seconds with ``spent()``.
    """

    def __init__(self, store: Store, max_entries: int = MAX_ENTRIES) -> None:
        self.store = store
        self.max_entries = max_entries
        self._snapshot: Facets | None = None
        self._lock = threading.Lock()
        self._too_large = False
        self._sql_seconds = 0.0
        self._build_seconds: float | None = None

    def spent(self, seconds: float) -> None:
        self._sql_seconds += seconds

    def worth_building(self) -> bool:
        """True once SQL filtering has spent as long as a build would take (estimated at the first ask)."""
        if self._build_seconds is None:
            self._build_seconds = BUILD_SECONDS_PER_DOCUMENT * self.store.document_count()
            # The metadata index on disk answers large collections: a build that would stall a
            # search (or hold a server's start) for seconds never pays off.
            self._too_large = self._build_seconds > MAX_BUILD_SECONDS
        return not self._too_large and self._sql_seconds >= self._build_seconds

    def current(self, build: bool | None = None) -> Facets | None:
        """The snapshot at the store's head (built now if ``build`` or worth it), else None."""
        snap = self._snapshot
        if self._too_large:
            return None
        if snap is not None and snap.seq == self.store.head():
            return snap
        if snap is None:
            worth = self.worth_building()  # also learns whether a build would take too long
            if self._too_large or not (build or (build is None and worth)):
                return None
        if not self._lock.acquire(blocking=snap is not None or bool(build)):
            return None  # another thread is building; SQL answers meanwhile
        try:
            snap = self._snapshot
            if snap is not None and snap.seq < self.store.head():
                snap = self._catch_up(snap)
            if snap is None:
                snap = self._build()
                self._too_large = snap is None
            self._snapshot = snap
            return snap
        finally:
            self._lock.release()

    def _catch_up(self, snap: Facets) -> Facets | None:
        with self.store.read() as con:  # the changes and the rows they name, from one snapshot
            if snap.seq < self.store.changes_floor():
                return None  # the change log no longer reaches back to it
            changes = self.store.changes_since(snap.seq)
            added: list[tuple[int, int, str]] = []
            for part in batched(changes.added.tolist(), 900):
                added.extend(con.execute(
                    "SELECT c.rowid, c.doc, d.metadata FROM chunks c JOIN documents d ON d.rowid = c.doc "
                    f"WHERE c.rowid IN ({','.join('?' * len(part))})", part,
                ))
        added.sort()
        return snap.with_changes(changes.head, added, changes.removed, self.max_entries)

    def _build(self) -> Facets | None:
        with self.store.read() as con:
            head = self.store.head_in(con)
            documents = con.execute("SELECT rowid, metadata FROM documents ORDER BY rowid").fetchall()
            chunks = np.array(con.execute("SELECT rowid, doc FROM chunks ORDER BY rowid").fetchall(),
                              dtype=np.int64).reshape(-1, 2)
        snap = build(head, documents, chunks, self.max_entries)
        if snap is None:
            log.info("the metadata of %s holds over %d values: filters stay in SQL", self.store.path, self.max_entries)
        return snap


def matching_document_rowids(store: Store, node: Node) -> np.ndarray:
    """Ascending rowids of the documents matching a (document-text) filter, answered in SQL."""
    sql, params = to_sql(node)
    with store.read() as con:
        rows = con.execute(f"SELECT d.rowid FROM documents d WHERE {sql} ORDER BY d.rowid", params).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)
