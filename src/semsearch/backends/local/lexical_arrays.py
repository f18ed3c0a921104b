"""Keeping a collection's BM25 arrays (:mod:`.bm25`) at the store's head: opening the saved ones,
building them in memory when that pays, catching up from the change log, saving and verifying.

Without saved arrays (a collection no writer has flushed since they exist), a process builds
them in memory (~5 µs a chunk) only when it has spent as long in FTS5's ``bm25()`` ("ski
rental"), and only up to :data:`MAX_TOKENS` tokens; a writer's flush saves them at any size
(:mod:`.lexical_file`), and every later process maps them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ...index.files import digest_of
from ...lexical import TOKENIZER_VERSION
from . import bm25, fts, lexical_file
from .bm25 import Snapshot, from_saved, saved_arrays
from .locking import WriteLock
from .store import Store

log = logging.getLogger(__name__)

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


class LexicalArrays:
    """The BM25 arrays of one collection: opening the saved ones, when to build them in memory,
    keeping them current, and saving them.

    ``current()`` gives a snapshot holding exactly the store's chunks, or None while FTS5
    should answer (none saved and not worth building yet, too large, or being built by another
    thread). Callers report the seconds FTS5 took with ``spent()``; a writer's flush calls
    ``save()`` (:mod:`.lexical_file`).
    """

    def __init__(self, store: Store, lock: WriteLock | None = None) -> None:
        self.store = store
        self.folder = store.folder
        self.write_lock = lock  # the collection's, taken (never waited for) only to record verified files
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._fts_seconds = 0.0
        self._queries = 0
        self._build_seconds: float | None = None
        self._too_large = False
        # The store's head when this process last looked for saved arrays and found none usable: it
        # looks again once the head moves (a writer may have saved them meanwhile).
        self._saved_looked_at: int | None = None

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
        if snap is None and self._saved_looked_at != head:
            with self._lock:
                if self._snapshot is None and self._saved_looked_at != head:
                    self._snapshot = self._saved(head, catch_up_any=bool(build))
                self._saved_looked_at = head
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
            snap = bm25.build(next(batches), batches, max_tokens, merge)
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
            self._saved_looked_at = head

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
                self._snapshot, self._saved_looked_at = None, None
        if not self.unsaved():
            return problems, []
        self.save()
        return problems, ["BM25 arrays rebuilt from the store and saved"] if problems else []
