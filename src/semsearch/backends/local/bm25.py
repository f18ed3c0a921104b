"""BM25 over a collection's chunks from posting arrays, scoring exactly as SQLite FTS5's ``bm25()``.

FTS5 keeps the lexical index in the same transaction as the documents, but its ``bm25()``
runs once per matching row: a query with a common word matches a third of a collection, and
on 104,500 real chunks a search spends ~20 ms there (the MATCH itself takes ~1 ms); at a million
chunks, 0.3-1.2 s. The same scores computed from posting arrays with NumPy take ~1 ms. FTS5
stays the source of truth; the arrays are a derived cache, like the vector index:

- built from the FTS5 table's own tokens, so the terms are exactly the ones FTS5 matches;
- saved by a writer's flush and memory-mapped by every later process (:mod:`.lexical_file`), so
  a one-shot CLI search reads the posting lists of its own terms and nothing else;
- kept current from the store's change log (added chunks read, removed chunks masked), and
  rebuilt when the log has been trimmed past them or ids arrive out of order;
- immutable snapshots: a sync makes a new one and swaps it in, so a search never sees half
  of a change and needs no lock.

Scores reproduce FTS5's (``fts5_aux.c``): k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) /
(n + 0.5)) floored at 1e-6, N and the average length over the live chunks, summed over the
query's distinct terms in query order, in float64.

When they are built, opened, caught up and saved: :mod:`.lexical_arrays`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import lexical_file

K1, B = 1.2, 0.75
#: Collections from which a search leaves out terms held by half the chunks (Snapshot.search).
LEAVE_OUT_FREQUENT_FROM = 100_000
#: A query's postings are summed per row (no array over every chunk) when fewer than one in this many chunks.
SPARSE_BELOW = 16


@dataclass(frozen=True)
class _Segment:
    """Postings of some chunks, grouped by term id: term t's are ``indptr[t]:indptr[t + 1]``."""

    indptr: np.ndarray  # int64, one more than the vocabulary size when built
    rows: np.ndarray  # int32 row numbers into the snapshot's per-chunk arrays
    tf: np.ndarray  # float32 term frequency in that chunk (unsigned integers when saved)
    mapped: bool = False  # the arrays are views of saved files (lexical_file), not in this process's memory

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
    vocab: Any  # dict[str, int] or DiskVocab: shared and append-only, a later snapshot may know more terms
    segments: tuple[_Segment, ...]
    chunk_ids: np.ndarray  # int64, ascending, one per row
    lengths: np.ndarray  # float64 tokens per row
    alive: np.ndarray  # bool per row
    count: int  # live rows
    total_tokens: float  # over live rows

    @property
    def postings(self) -> int:
        return sum(len(s.rows) for s in self.segments)

    @property
    def resident_postings(self) -> int:
        """Postings held in this process's memory (those of a saved snapshot are mapped from disk)."""
        return sum(len(s.rows) for s in self.segments if not s.mapped)

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

        In a collection of :data:`LEAVE_OUT_FREQUENT_FROM` chunks or more, a term held by half the
        chunks or more ("the", "of": idf floored at 1e-6, so it adds at most 2.2e-6 to a score)
        is left out when the other terms find ``limit`` chunks, as :mod:`.lexical_index` does
        with FTS5: such a term's postings are most of a query's work at a million chunks.
        """
        if self.count == 0 or limit <= 0:
            return []
        postings = {term: self._postings(term) for term in dict.fromkeys(terms)}
        if self.count >= LEAVE_OUT_FREQUENT_FROM:
            informative = {t: p for t, p in postings.items() if 2 * p[0].size < self.count}
            if informative and len(informative) < len(postings):
                found = self._best(informative, limit, allow)
                if len(found) == limit:
                    return found
        return self._best(postings, limit, allow)

    def _best(self, postings: dict[str, tuple[np.ndarray, np.ndarray]], limit: int,
              allow: np.ndarray | None) -> list[tuple[int, float]]:
        avgdl = self.total_tokens / self.count
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for rows, tf in postings.values():  # in query order, as FTS5 sums them
            if rows.size == 0:
                continue
            n = rows.size
            idf = math.log((self.count - n + 0.5) / (n + 0.5))
            idf = idf if idf > 0.0 else 1e-6
            f = tf.astype(np.float64)
            parts.append((rows, idf * (f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * self.lengths[rows] / avgdl))))
        if not parts:
            return []
        total = sum(len(r) for r, _ in parts)
        if total * SPARSE_BELOW < len(self.chunk_ids):
            # Few postings: sum them per row without an array over every chunk (bincount adds in
            # array order, so each row's terms are summed in query order, as below).
            all_rows = np.concatenate([r for r, _ in parts])
            unique, inverse = np.unique(all_rows, return_inverse=True)
            rows = unique.astype(np.int64)
            sums: np.ndarray = np.bincount(inverse, weights=np.concatenate([c for _, c in parts]))
        else:
            scores = np.zeros(len(self.chunk_ids), dtype=np.float64)
            for r, c in parts:
                scores[r] += c
            # Every contribution is positive (idf >= 1e-6, tf >= 1): the matching rows are the nonzero ones.
            rows = np.flatnonzero(scores)
            sums = scores[rows]
        if allow is not None:
            inside = np.isin(self.chunk_ids[rows], allow, assume_unique=True)
            rows, sums = rows[inside], sums[inside]
        if rows.size > limit:
            best = np.argpartition(-sums, limit - 1)[:limit]
            rows, sums = rows[best], sums[best]
        order = np.lexsort((self.chunk_ids[rows], -sums))
        return list(zip(self.chunk_ids[rows[order]].tolist(), sums[order].tolist()))

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
           new_row: np.ndarray | None = None, new_term: np.ndarray | None = None) -> _Segment:
    """One segment with the live postings of ``segments`` (rows renumbered through ``new_row``,
    terms through ``new_term``).

    Each segment holds a term's rows in ascending order and a later segment only rows after an
    earlier one's (rows are appended), so a stable sort by term keeps every term's rows ascending.
    """
    term_parts, row_parts, tf_parts = [], [], []
    for s in segments:  # (int32 ids and rows: this holds every posting several times at once)
        terms = np.repeat(np.arange(len(s.indptr) - 1, dtype=np.int32), np.diff(s.indptr))
        live = alive[s.rows]
        term_parts.append(terms[live] if new_term is None else new_term[terms[live]].astype(np.int32))
        row_parts.append(s.rows[live] if new_row is None else new_row[s.rows[live]].astype(np.int32))
        tf_parts.append(s.tf[live])
        del terms, live
    terms, rows, tf = np.concatenate(term_parts), np.concatenate(row_parts), np.concatenate(tf_parts)
    order = np.argsort(terms, kind="stable")
    indptr = np.zeros(vocab_size + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms, minlength=vocab_size), out=indptr[1:])
    return _Segment(indptr, rows[order].astype(np.int32), tf[order])


def _tokens(chunks: list[tuple[int, str]], vocab: Any,
            first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term id per token, row per token, tokens per chunk) of (chunk id, FTS5 tokens) pairs.

    ``vocab`` is a dict or a :class:`.lexical_file.DiskVocab`: each distinct word is looked up once."""
    words: list[str] = []
    lengths = np.empty(len(chunks), dtype=np.float64)
    for i, (_, tokens) in enumerate(chunks):
        split = tokens.split()
        lengths[i] = len(split)
        words.extend(split)
    ids = {w: vocab.setdefault(w, len(vocab)) for w in dict.fromkeys(words)}
    rows = np.repeat(np.arange(first_row, first_row + len(chunks), dtype=np.int64), lengths.astype(np.int64))
    return np.fromiter((ids[w] for w in words), dtype=np.int64, count=len(words)), rows, lengths


def build(seq: int, batches: Iterable[list[tuple[int, str]]], max_tokens: int | None = None,
          merge: bool = True) -> Snapshot | None:
    """A snapshot of (chunk id, FTS5 tokens) pairs given in ascending id order, in batches
    (each becomes a segment, merged at the end unless ``merge`` is False: saving merges them
    itself); None once more than ``max_tokens`` tokens."""
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
    return snap._merged() if merge and len(snap.segments) > 1 else snap


def saved_arrays(snap: Snapshot) -> dict[str, np.ndarray]:
    """The arrays :mod:`.lexical_file` saves of a snapshot: its live rows and their postings in one
    segment, terms sorted (a term's id is its rank) and those no live chunk holds left out."""
    blob, offsets, new_term = lexical_file.sorted_terms(snap.vocab)
    keep = np.flatnonzero(snap.alive)
    new_row = np.full(len(snap.alive), -1, dtype=np.int32)
    new_row[keep] = np.arange(len(keep), dtype=np.int32)
    indptr, rows, tf = _scattered(snap.segments, snap.alive, new_row, new_term.astype(np.int32))
    counts = np.diff(indptr)
    if not counts.all():  # terms of removed chunks only
        held = counts > 0
        blob = blob[np.repeat(held, np.diff(offsets))]
        offsets = np.concatenate([[0], np.cumsum(np.diff(offsets)[held])]).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts[held])]).astype(np.int64)
    return {"chunk_ids": snap.chunk_ids[keep].astype(np.int64), "lengths": snap.lengths[keep].astype(np.uint32),
            "indptr": indptr, "rows": rows, "tf": tf, "terms": blob, "term_offsets": offsets}


def _scattered(segments: Sequence[_Segment], alive: np.ndarray, new_row: np.ndarray,
               new_term: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, rows, tf) of the live postings of ``segments`` grouped by new term id, each written
    straight to its place (no sort, and only one segment's temporaries at a time: at a million
    chunks this holds the output and the segments, not several copies of every posting).

    A term's postings keep their order: segments hold ascending, disjoint ranges of rows."""
    lives, totals = [], np.zeros(len(new_term), dtype=np.int64)
    for s in segments:
        live = alive[s.rows]
        before = np.concatenate([[0], np.cumsum(live, dtype=np.int64)])  # live postings before each one
        per_term = before[s.indptr[1:]] - before[s.indptr[:-1]]
        totals[new_term[: len(per_term)]] += per_term  # (new_term is a permutation: no index repeats)
        lives.append((live, before[s.indptr[:-1]], per_term))
    indptr = np.zeros(len(new_term) + 1, dtype=np.int64)
    np.cumsum(totals, out=indptr[1:])
    most = max((int(s.tf.max()) for s in segments if s.tf.size), default=0)
    rows = np.empty(int(indptr[-1]), dtype=np.int32)
    tf = np.empty(len(rows), dtype=np.uint8 if most < 256 else np.uint16 if most < 65536 else np.uint32)
    fill = indptr[:-1].copy()  # where each term's next postings go
    for s, (live, live_before, per_term) in zip(segments, lives):
        terms = new_term[: len(per_term)]
        start = fill[terms]
        at = np.repeat(start - live_before, per_term) + np.arange(int(per_term.sum()), dtype=np.int64)
        everything = bool(live.all())
        rows[at] = new_row[s.rows if everything else s.rows[live]]
        tf[at] = s.tf if everything else s.tf[live]
        fill[terms] = start + per_term
    return indptr, rows, tf


def from_saved(seq: int, arrays: dict[str, np.ndarray], total_tokens: float) -> Snapshot:
    """The snapshot of arrays :func:`saved_arrays` made (memory-mapped: nothing read until searched)."""
    # Plain ndarray views of the maps: np.memmap's Python-level indexing costs microseconds a call,
    # and a term lookup indexes a few dozen times.
    a = {name: np.asarray(array) for name, array in arrays.items()}
    n = len(a["chunk_ids"])
    vocab = lexical_file.DiskVocab(a["terms"], a["term_offsets"])
    segment = _Segment(a["indptr"], a["rows"], a["tf"], mapped=True)
    return Snapshot(seq, vocab, (segment,), a["chunk_ids"], a["lengths"], np.ones(n, dtype=bool), n,
                    float(total_tokens))
