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

Without saved arrays (a collection no writer has flushed since they exist), a process builds
them in memory (~5 µs a chunk) only when it has spent as long in FTS5's ``bm25()`` ("ski
rental"), and only up to :data:`MAX_TOKENS` tokens; a flush saves them at any size.
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

from ...index.files import digest_of
from ...lexical import TOKENIZER_VERSION
from . import fts, lexical_file

log = logging.getLogger(__name__)

K1, B = 1.2, 0.75
#: Collections with more indexed tokens stay on FTS5 (memory: ~8 bytes a posting, at most one
#: per token, plus 17 bytes a chunk; 20M tokens is ~100k chunks of 200 tokens, ~150 MB).
MAX_TOKENS = 20_000_000
#: Seconds per chunk a build takes (measured: 0.51 s for 104,500 chunks, bench/RESULTS.md).
BUILD_SECONDS_PER_CHUNK = 5e-6
#: Changes a process catches up from the change log on top of the saved arrays when it opens
#: them; further behind, FTS5 answers a one-shot search (catching up reads every added chunk).
CATCH_UP_MAX = 50_000
#: A writer's flush saves the arrays again once they are this many changes behind.
SAVE_BEHIND = 5_000
#: Collections from which a search leaves out terms held by half the chunks (Snapshot.search).
LEAVE_OUT_FREQUENT_FROM = 100_000
#: A query's postings are summed per row (no array over every chunk) when fewer than one in this many chunks.
SPARSE_BELOW = 16


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
        return sum(len(s.rows) for s in self.segments if not isinstance(s.rows, np.memmap))

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
    new_row = np.full(len(snap.alive), -1, dtype=np.int64)
    new_row[keep] = np.arange(len(keep))
    segment = _merge(snap.segments, snap.alive, len(new_term), new_row, new_term)
    counts = np.diff(segment.indptr)
    if not counts.all():  # terms of removed chunks only
        held = counts > 0
        blob = blob[np.repeat(held, np.diff(offsets))]
        offsets = np.concatenate([[0], np.cumsum(np.diff(offsets)[held])]).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts[held])]).astype(np.int64)
    else:
        indptr = segment.indptr
    most = int(segment.tf.max()) if segment.tf.size else 0
    tf = segment.tf.astype(np.uint8 if most < 256 else np.uint16 if most < 65536 else np.uint32)
    return {"chunk_ids": snap.chunk_ids[keep].astype(np.int64), "lengths": snap.lengths[keep].astype(np.uint32),
            "indptr": indptr, "rows": segment.rows, "tf": tf, "terms": blob, "term_offsets": offsets}


def from_saved(seq: int, arrays: dict[str, np.ndarray], total_tokens: float) -> Snapshot:
    """The snapshot of arrays :func:`saved_arrays` made (memory-mapped: nothing read until searched)."""
    n = len(arrays["chunk_ids"])
    vocab = lexical_file.DiskVocab(arrays["terms"], arrays["term_offsets"])
    segment = _Segment(arrays["indptr"], arrays["rows"], arrays["tf"])
    return Snapshot(seq, vocab, (segment,), arrays["chunk_ids"], arrays["lengths"], np.ones(n, dtype=bool), n,
                    float(total_tokens))


class MemoryBM25:
    """The BM25 arrays of one collection: opening the saved ones, when to build them in memory,
    keeping them current, and saving them.

    ``current()`` gives a snapshot holding exactly the store's chunks, or None while FTS5
    should answer (none saved and not worth building yet, too large, or being built by another
    thread). Callers report the seconds FTS5 took with ``spent()``; a writer's flush calls
    ``save()`` (:mod:`.lexical_file`).
    """

    def __init__(self, store: Any, lock: Any = None) -> None:
        self.store = store
        self.folder = store.folder
        self.write_lock = lock  # the collection's, taken (never waited for) only to record verified files
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._fts_seconds = 0.0
        self._queries = 0
        self._build_seconds: float | None = None
        self._too_large = False
        self._opened_saved = False

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
        """The snapshot at the store's head (the saved one, else built now if ``build`` or worth
        it), else None."""
        snap = self._snapshot
        head = self.store.head()
        if snap is not None and snap.seq == head:
            return snap
        if snap is None and not self._opened_saved:
            with self._lock:
                if self._snapshot is None and not self._opened_saved:
                    self._snapshot = self._saved(head, catch_up_any=bool(build))
                self._opened_saved = True
            snap = self._snapshot
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
                if snap is None:  # the change log no longer reaches back: a writer saved newer arrays
                    snap = self._saved(self.store.head(), catch_up_any=True)
            if snap is None:
                snap = self._build()
            elif snap.resident_postings > MAX_TOKENS:  # grown past the bound by writes: back to FTS5
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

    def _build(self, max_tokens: int | None = MAX_TOKENS, merge: bool = True) -> Snapshot | None:
        started = time.perf_counter()
        batches = fts.token_batches(self.store)
        try:
            snap = build(next(batches), batches, max_tokens, merge)
        finally:
            batches.close()
        if snap is None:
            self._too_large = True
            log.info("the lexical index of %s holds over %d tokens: BM25 stays in SQLite FTS5", self.store.path,
                     MAX_TOKENS)
            return None
        log.info("lexical index of %d chunks built in memory in %.2f s", snap.count, time.perf_counter() - started)
        return snap

    # -- saved arrays ----------------------------------------------------------------------
    def _usable_meta(self, head: int) -> dict[str, Any] | None:
        """The saved arrays' metadata, if they hold a state the change log leads from to ``head``."""
        meta = lexical_file.read_meta(self.folder)
        if meta is None or meta.get("tokenizer") != TOKENIZER_VERSION:
            return None
        if not self.store.changes_floor() <= int(meta.get("seq", -1)) <= head:
            return None
        return meta

    def _saved(self, head: int, catch_up_any: bool) -> Snapshot | None:
        """The saved snapshot, memory-mapped and caught up to ``head``; None when there is none
        usable, or (unless ``catch_up_any``) it is over :data:`CATCH_UP_MAX` changes behind."""
        for attempt in range(2):
            meta = self._usable_meta(head)
            if meta is None:
                return None
            if not catch_up_any and head - int(meta["seq"]) > CATCH_UP_MAX:
                log.info("the saved lexical index of %s is %d changes behind: FTS5 answers until a writer saves it",
                         self.folder, head - int(meta["seq"]))
                return None
            try:
                arrays, hashed = lexical_file.load(self.folder, meta)
            except (OSError, ValueError, KeyError) as exc:
                if attempt == 0 and lexical_file.read_meta(self.folder) != meta:
                    head = self.store.head()  # a writer saved newer arrays meanwhile (and removed these)
                    continue
                log.warning("the saved lexical index of %s cannot be used (%s): FTS5 answers until a writer saves "
                            "it again", self.folder, exc)
                return None
            if hashed:
                self._record_verified(meta, hashed)
            snap = from_saved(int(meta["seq"]), arrays, float(meta["total_tokens"]))
            return self._catch_up(snap) if snap.seq < head else snap
        return None

    def _record_verified(self, meta: dict[str, Any], identities: dict[str, list[int]]) -> None:
        """Remember files this process hashed in full (best effort: only when the write lock is
        free at once and the metadata still names the same arrays)."""
        lock = self.write_lock
        if lock is None:
            return
        try:
            lock.acquire(timeout=0.0)
        except Exception:
            return
        try:
            current = lexical_file.read_meta(self.folder)
            if current is not None and current.get("seq") == meta["seq"] and current.get("files") == meta["files"]:
                current["verified"] = {**current.get("verified", {}), **identities}
                lexical_file.write_meta(self.folder, current)
        except OSError:
            pass  # a read-only folder: hashed again next time
        finally:
            lock.release()

    def unsaved(self) -> bool:
        """Whether a flush would save the arrays (none usable, or :data:`SAVE_BEHIND` changes behind)."""
        head = self.store.head()
        meta = self._usable_meta(head)
        return meta is None or head - int(meta["seq"]) >= SAVE_BEHIND

    def save(self) -> None:
        """Save the arrays at the store's head when :meth:`unsaved`, and pin the change log there
        (the vector index's save trims it no further). Write lock held: the store does not change."""
        if not self.unsaved():
            return
        started = time.perf_counter()
        head = self.store.head()
        snap = self._snapshot if self._snapshot is not None and self._snapshot.seq == head else None
        if snap is None:
            snap = self._saved(head, catch_up_any=True) or self._build(max_tokens=None, merge=False)
        assert snap is not None and snap.seq == head
        lexical_file.save(self.folder, snap.seq, saved_arrays(snap), snap.count, snap.total_tokens, TOKENIZER_VERSION)
        self.store.keep_changes_from(snap.seq)
        log.info("lexical index of %s saved: %d chunks at change %d in %.2f s", self.folder, snap.count, snap.seq,
                 time.perf_counter() - started)
        with self._lock:  # the mapped arrays replace the ones built in memory
            self._snapshot = self._saved(head, catch_up_any=True)
            self._opened_saved = True

    def saved_details(self) -> dict[str, Any]:
        """What ``info`` shows of the saved arrays (empty when there are none)."""
        meta = lexical_file.read_meta(self.folder)
        if meta is None:
            return {}
        return {"chunks": meta.get("count"), "terms": meta.get("terms"), "postings": meta.get("postings"),
                "file_bytes": sum(f.get("bytes", 0) for f in meta.get("files", {}).values()),
                "changes_behind": max(0, self.store.head() - int(meta.get("seq", 0)))}

    def verify(self) -> tuple[list[str], list[str]]:
        """(problems, repairs): every saved file hashed in full against what was written; damaged
        arrays are removed and saved again from the store, missing or stale ones saved. Write lock held."""
        problems: list[str] = []
        meta = lexical_file.read_meta(self.folder)
        for name, digest in (meta or {}).get("files", {}).items():
            try:
                if digest_of(self.folder / name) != digest:
                    problems.append(f"{name} does not hold what was written (checksum)")
            except OSError as exc:
                problems.append(f"{name} cannot be read ({exc})")
        if problems:
            lexical_file.remove(self.folder)
            with self._lock:
                self._snapshot, self._opened_saved = None, False
        if not self.unsaved():
            return problems, []
        self.save()
        return problems, ["BM25 arrays rebuilt from the store and saved"] if problems else []
