"""BM25 over a collection's chunks in memory, scoring exactly as SQLite FTS5's ``bm25()``.

FTS5 keeps the lexical index in the same transaction as the documents, but its ``bm25()``
runs once per matching row: a query with a common word matches a third of a collection, and
on 104,500 real chunks a search spends ~20 ms there (the MATCH itself takes ~1 ms). The same
scores computed from posting arrays with NumPy take ~1 ms. FTS5 stays the source of truth; the
arrays are a derived cache, like the vector index:

- built from the FTS5 table's own tokens, so the terms are exactly the ones FTS5 matches;
- kept current from the store's change log (added chunks read, removed chunks masked), and
  rebuilt when the log has been trimmed past it or ids arrive out of order;
- immutable snapshots: a sync makes a new one and swaps it in, so a search never sees half
  of a change and needs no lock.

Scores reproduce FTS5's (``fts5_aux.c``): k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) /
(n + 0.5)) floored at 1e-6, N and the average length over the live chunks, summed over the
query's distinct terms in query order, in float64.

A process pays the build (~5 µs a chunk) only when it has spent as long in FTS5's ``bm25()``
("ski rental"): a one-shot CLI search never builds, a server or an evaluation run builds after
a few queries. Collections of more than :data:`MAX_TOKENS` tokens stay on FTS5.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import fts

log = logging.getLogger(__name__)

K1, B = 1.2, 0.75
#: Collections with more indexed tokens stay on FTS5 (memory: ~8 bytes a posting, at most one
#: per token, plus 17 bytes a chunk; 20M tokens is ~100k chunks of 200 tokens, ~150 MB).
MAX_TOKENS = 20_000_000
#: Seconds per chunk a build takes (measured: 0.51 s for 104,500 chunks, bench/RESULTS.md).
BUILD_SECONDS_PER_CHUNK = 5e-6


@dataclass(frozen=True)
class _Segment:
    """Postings of some chunks, grouped by term id: term t's are ``indptr[t]:indptr[t + 1]``."""

    indptr: np.ndarray  # int64, one more than the vocabulary size when built
    rows: np.ndarray  # int32 row numbers into the snapshot's per-chunk arrays
    tf: np.ndarray  # float32 term frequency in that chunk

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        if term + 1 >= len(self.indptr):
            return self.rows[:0], self.tf[:0]
        a, b = self.indptr[term], self.indptr[term + 1]
        return self.rows[a:b], self.tf[a:b]


def _segment(term_ids: np.ndarray, rows: np.ndarray, vocab_size: int) -> _Segment:
    """Postings (term, row, tf) from one (term, row) pair per token occurrence."""
    key = term_ids.astype(np.int64) << 32 | rows.astype(np.int64)
    unique, tf = np.unique(key, return_counts=True)
    terms = (unique >> 32).astype(np.int64)
    indptr = np.zeros(vocab_size + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms, minlength=vocab_size), out=indptr[1:])
    return _Segment(indptr, (unique & 0xFFFFFFFF).astype(np.int32), tf.astype(np.float32))


@dataclass(frozen=True)
class Snapshot:
    """The BM25 state of the store at change-log position ``seq`` (never changed once made)."""

    seq: int
    vocab: dict[str, int]  # shared and append-only: a later snapshot may know more terms
    segments: tuple[_Segment, ...]
    chunk_ids: np.ndarray  # int64, ascending, one per row
    lengths: np.ndarray  # float64 tokens per row
    alive: np.ndarray  # bool per row
    count: int  # live rows
    total_tokens: float  # over live rows

    @property
    def postings(self) -> int:
        return sum(len(s.rows) for s in self.segments)

    def term_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many live chunks contain each term (FTS5's document frequency)."""
        return {t: int(self._postings(t)[0].size) for t in dict.fromkeys(terms)}

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        tid = self.vocab.get(term)
        if tid is None:
            return np.empty(0, np.int32), np.empty(0, np.float32)
        parts = [s.postings(tid) for s in self.segments]
        rows = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        tf = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        if self.count == len(self.alive):  # nothing removed since the last merge
            return rows, tf
        keep = self.alive[rows]
        return rows[keep], tf[keep]

    def search(self, terms: Sequence[str], limit: int, allow: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best ``limit`` chunks containing any of ``terms``.

        ``allow`` (ascending chunk ids) restricts the chunks; the order is by score, then id.
        """
        if self.count == 0 or limit <= 0:
            return []
        avgdl = self.total_tokens / self.count
        scores = np.zeros(len(self.chunk_ids), dtype=np.float64)
        touched = False
        for term in dict.fromkeys(terms):
            rows, tf = self._postings(term)
            if rows.size == 0:
                continue
            n = rows.size
            idf = math.log((self.count - n + 0.5) / (n + 0.5))
            idf = idf if idf > 0.0 else 1e-6
            f = tf.astype(np.float64)
            scores[rows] += idf * (f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * self.lengths[rows] / avgdl))
            touched = True
        if not touched:
            return []
        # Every contribution is positive (idf >= 1e-6, tf >= 1): the matching rows are the nonzero ones.
        rows = np.flatnonzero(scores)
        if allow is not None:
            rows = rows[np.isin(self.chunk_ids[rows], allow, assume_unique=True)]
        if rows.size > limit:
            rows = rows[np.argpartition(-scores[rows], limit - 1)[:limit]]
        order = np.lexsort((self.chunk_ids[rows], -scores[rows]))
        rows = rows[order]
        return list(zip(self.chunk_ids[rows].tolist(), scores[rows].tolist()))

    # -- changes -------------------------------------------------------------------------
    def with_changes(self, seq: int, added: list[tuple[int, str]], removed: np.ndarray) -> Snapshot | None:
        """A new snapshot with chunks added and removed, or None when it must be rebuilt."""
        alive = self.alive
        count, total = self.count, self.total_tokens
        if removed.size:
            pos = np.searchsorted(self.chunk_ids, removed)
            inside = pos < len(self.chunk_ids)
            pos = pos[inside][self.chunk_ids[pos[inside]] == removed[inside]]
            pos = pos[alive[pos]]
            alive = alive.copy()
            alive[pos] = False
            count -= len(pos)
            total -= float(self.lengths[pos].sum())
        if not added:
            snap = Snapshot(seq, self.vocab, self.segments, self.chunk_ids, self.lengths, alive, count, total)
            return snap._merged() if snap.count < 0.75 * len(snap.alive) else snap
        ids = np.array([cid for cid, _ in added], dtype=np.int64)
        if len(self.chunk_ids) and ids.min() <= self.chunk_ids[-1]:
            return None  # ids are never reused, so this only happens if changes were missed
        term_ids, rows, lengths = _tokens(added, self.vocab, first_row=len(self.chunk_ids))
        alive = np.concatenate([alive, np.ones(len(ids), dtype=bool)])
        # Size-tiered merging: a new segment at least half its predecessor's size is merged
        # into it, so there are O(log n) segments and each posting is merged O(log n) times.
        segments = [*self.segments, _segment(term_ids, rows, len(self.vocab))]
        while len(segments) > 1 and 2 * len(segments[-1].rows) >= len(segments[-2].rows):
            segments[-2:] = [_merge(segments[-2:], alive, len(self.vocab))]
        snap = Snapshot(
            seq, self.vocab, tuple(segments), np.concatenate([self.chunk_ids, ids]),
            np.concatenate([self.lengths, lengths]), alive, count + len(ids), total + float(lengths.sum()),
        )
        # Removed chunks stay as dead rows until they are a quarter of all rows.
        return snap._merged() if snap.count < 0.75 * len(snap.alive) else snap

    def _merged(self) -> Snapshot:
        """One segment holding the live postings of all, dead rows dropped and rows renumbered."""
        keep = np.flatnonzero(self.alive)
        new_row = np.full(len(self.alive), -1, dtype=np.int64)
        new_row[keep] = np.arange(len(keep))
        segment = _merge(self.segments, self.alive, len(self.vocab), new_row)
        return Snapshot(
            self.seq, self.vocab, (segment,), self.chunk_ids[keep], self.lengths[keep],
            np.ones(len(keep), dtype=bool), self.count, self.total_tokens,
        )


def _merge(segments: Sequence[_Segment], alive: np.ndarray, vocab_size: int,
           new_row: np.ndarray | None = None) -> _Segment:
    """One segment with the live postings of ``segments`` (rows renumbered through ``new_row``)."""
    term_parts, row_parts, tf_parts = [], [], []
    for s in segments:
        terms = np.repeat(np.arange(len(s.indptr) - 1, dtype=np.int64), np.diff(s.indptr))
        live = alive[s.rows]
        term_parts.append(terms[live])
        row_parts.append(s.rows[live] if new_row is None else new_row[s.rows[live]])
        tf_parts.append(s.tf[live])
    terms, rows, tf = np.concatenate(term_parts), np.concatenate(row_parts), np.concatenate(tf_parts)
    order = np.lexsort((rows, terms))
    indptr = np.zeros(vocab_size + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms, minlength=vocab_size), out=indptr[1:])
    return _Segment(indptr, rows[order].astype(np.int32), tf[order])


def _tokens(chunks: list[tuple[int, str]], vocab: dict[str, int],
            first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term id per token, row per token, tokens per chunk) of (chunk id, FTS5 tokens) pairs."""
    term_ids: list[int] = []
    lengths = np.empty(len(chunks), dtype=np.float64)
    setdefault = vocab.setdefault
    for i, (_, tokens) in enumerate(chunks):
        words = tokens.split()
        lengths[i] = len(words)
        term_ids.extend([setdefault(w, len(vocab)) for w in words])
    rows = np.repeat(np.arange(first_row, first_row + len(chunks), dtype=np.int64), lengths.astype(np.int64))
    return np.asarray(term_ids, dtype=np.int64), rows, lengths


def build(seq: int, batches: Iterable[list[tuple[int, str]]], max_tokens: int | None = None) -> Snapshot | None:
    """A snapshot of (chunk id, FTS5 tokens) pairs given in ascending id order, in batches
    (each becomes a segment, merged at the end); None once more than ``max_tokens`` tokens."""
    vocab: dict[str, int] = {}
    segments: list[_Segment] = []
    ids: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    rows = tokens = 0
    for chunks in batches:
        term_ids, token_rows, chunk_lengths = _tokens(chunks, vocab, first_row=rows)
        tokens += len(term_ids)
        if max_tokens is not None and tokens > max_tokens:
            return None
        segments.append(_segment(term_ids, token_rows, len(vocab)))
        ids.append(np.array([cid for cid, _ in chunks], dtype=np.int64))
        lengths.append(chunk_lengths)
        rows += len(chunks)
    all_lengths = np.concatenate(lengths) if lengths else np.empty(0, np.float64)
    snap = Snapshot(
        seq, vocab, tuple(segments) or (_segment(np.empty(0, np.int64), np.empty(0, np.int64), 0),),
        np.concatenate(ids) if ids else np.empty(0, np.int64), all_lengths, np.ones(rows, dtype=bool), rows,
        float(all_lengths.sum()),
    )
    return snap._merged() if len(snap.segments) > 1 else snap


class MemoryBM25:
    """The in-memory BM25 of one collection: when to build it, and keeping it current.

    ``current()`` gives a snapshot holding exactly the store's chunks, or None while FTS5
    should answer (not worth building yet, too large, or being built by another thread).
    Callers report the seconds FTS5 took with ``spent()``.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._fts_seconds = 0.0
        self._queries = 0
        self._build_seconds: float | None = None
        self._too_large = False

    def spent(self, seconds: float) -> None:
        # The first FTS5 query of a process reads the index from disk (cold pages): it says
        # little about later queries, and a one-shot CLI search must never pay for a build.
        self._queries += 1
        if self._queries > 1:
            self._fts_seconds += seconds

    def worth_building(self) -> bool:
        """True once FTS5 has spent as long as building would take (estimated at the first ask)."""
        if self._too_large:
            return False
        if self._build_seconds is None:
            with self.store.read() as con:
                chunks, tokens = fts.fts_totals(con)
            self._too_large = tokens > MAX_TOKENS  # known before reading a token
            self._build_seconds = BUILD_SECONDS_PER_CHUNK * chunks
        return self._fts_seconds >= self._build_seconds

    def current(self, build: bool | None = None) -> Snapshot | None:
        """The snapshot at the store's head (built now if ``build`` or worth it), else None."""
        snap = self._snapshot
        head = self.store.head()
        if snap is not None and snap.seq == head:
            return snap
        if snap is None:
            worth = self.worth_building()  # also learns whether the collection is too large to hold
            if self._too_large or not (build or (build is None and worth)):
                return None
        if not self._lock.acquire(blocking=snap is not None or bool(build)):
            return None  # another thread is building; FTS5 answers meanwhile
        try:
            snap = self._snapshot
            if snap is not None and snap.seq < self.store.head():
                snap = self._catch_up(snap)
            if snap is None:
                snap = self._build()
            elif snap.postings > MAX_TOKENS:  # grown past the bound by writes: back to FTS5
                self._too_large, snap = True, None
                log.info("the lexical index of %s outgrew %d postings: BM25 goes back to SQLite FTS5", self.store.path,
                         MAX_TOKENS)
            self._snapshot = snap
            return snap
        finally:
            self._lock.release()

    def _catch_up(self, snap: Snapshot) -> Snapshot | None:
        if snap.seq < self.store.changes_floor():
            return None  # the change log no longer reaches back to it
        changes = self.store.changes_since(snap.seq)
        added = fts.tokens(self.store, changes.added) if changes.added.size else []
        return snap.with_changes(changes.head, added, changes.removed)

    def _build(self) -> Snapshot | None:
        started = time.perf_counter()
        batches = fts.token_batches(self.store)
        try:
            snap = build(next(batches), batches, MAX_TOKENS)
        finally:
            batches.close()
        if snap is None:
            self._too_large = True
            log.info("the lexical index of %s holds over %d tokens: BM25 stays in SQLite FTS5", self.store.path,
                     MAX_TOKENS)
            return None
        log.info("lexical index of %d chunks built in memory in %.2f s", snap.count, time.perf_counter() - started)
        return snap
