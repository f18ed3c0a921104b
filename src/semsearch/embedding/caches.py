"""Embedding caches: never encode the same text twice with the same model and precision.

Two bounded caches share one key, ``(model, precision, kind, sha256(text))``:

* :class:`QueryCache` keeps recent query vectors in memory (an LRU of a few thousand entries),
  so a repeated query costs a dictionary lookup instead of a model call.
* :class:`DiskEmbeddingCache` keeps document vectors in a small SQLite file next to a
  collection, so re-indexing a file whose chunks did not change re-encodes nothing. It is a
  derived cache, not part of the collection's truth: it may be deleted at any time, and a
  damaged file is discarded and recreated rather than trusted.

Both return float32 vectors exactly as the model produced them (already normalised).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHE_FILE = "embedding_cache.sqlite"


def text_key(model: str, precision: str, kind: str, text: str) -> bytes:
    """A 32-byte digest naming one (model, precision, kind, text) encoding."""
    h = hashlib.sha256()
    for part in (model, precision, kind):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.digest()


class QueryCache:
    """An in-memory LRU of query embeddings, bounded by entry count; thread-safe."""

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get_many(self, keys: Sequence[bytes]) -> list[np.ndarray | None]:
        """The cached vector for each key, or None where absent (hits become most recent)."""
        out: list[np.ndarray | None] = []
        with self._lock:
            for key in keys:
                vec = self._items.get(key)
                if vec is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                else:
                    self.misses += 1
                out.append(vec)
        return out

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Remember vectors (copied, read-only), evicting the least recently used beyond the bound."""
        if self.max_entries == 0:
            return
        with self._lock:
            for key, vec in zip(keys, vectors):
                stored = np.array(vec, dtype=np.float32, copy=True)
                stored.flags.writeable = False
                self._items[key] = stored
                self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class DiskEmbeddingCache:
    """Document embeddings in SQLite, bounded by entry count (least recently used evicted).

    Opening never fails because of the cache: an unreadable file is renamed aside and a fresh
    one started, since everything in it can be recomputed.
    """

    def __init__(self, path: str | Path, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.path = Path(path)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._held: list[tuple[bytes, bytes, float]] = []  # vectors made before the folder existed
        self.hits = 0
        self.misses = 0

    # -- connection --------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection | None:
        """The open cache, or None while its folder does not exist: a cache never creates the
        collection folder it lives in (a collection is created by its first write)."""
        if self._con is not None:
            return self._con
        if not self.path.parent.is_dir():
            return None
        try:
            con = self._open()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.broken-{int(time.time())}")
            log.warning("embedding cache %s is unreadable (%s); moved to %s and starting afresh", self.path, exc, aside)
            self.path.replace(aside)
            con = self._open()
        self._con = con
        return con

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=2.0)
        con.execute("PRAGMA journal_mode=WAL")
        # A lost write only costs a re-encode, so the cache does not pay for fsyncs.
        con.execute("PRAGMA synchronous=OFF")
        con.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " key BLOB PRIMARY KEY, vector BLOB NOT NULL, used REAL NOT NULL) WITHOUT ROWID"
        )
        con.execute("CREATE INDEX IF NOT EXISTS embeddings_used ON embeddings(used)")
        con.execute("SELECT count(*) FROM embeddings").fetchone()  # fail now if the file is damaged
        return con

    def close(self) -> None:
        if self._held:  # written once the folder exists (the collection was created meanwhile)
            self.put_many([], np.empty((0, 0), dtype=np.float32))
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __len__(self) -> int:
        with self._lock:
            con = self._connect()
            return len(self._held) if con is None else int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0])

    # -- lookups -----------------------------------------------------------------------
    def get_many(self, keys: Sequence[bytes], dim: int) -> list[np.ndarray | None]:
        """The cached vector for each key, or None where absent or of another dimension."""
        found: dict[bytes, np.ndarray] = {}
        try:
            self._lookup(keys, dim, found)
        except sqlite3.Error as exc:  # another writer holding the file, a full disk...: just a miss
            log.warning("embedding cache %s unavailable (%s); encoding without it", self.path, exc)
        out = [found.get(k) for k in keys]
        hits = sum(v is not None for v in out)
        self.hits += hits
        self.misses += len(out) - hits
        return out

    def _lookup(self, keys: Sequence[bytes], dim: int, found: dict[bytes, np.ndarray]) -> None:
        with self._lock:
            con = self._connect()
            if con is None:
                return
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                q = f"SELECT key, vector FROM embeddings WHERE key IN ({','.join('?' * len(part))})"
                for key, blob in con.execute(q, part):
                    if len(blob) == 4 * dim:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            if found:
                now = time.time()
                con.execute("BEGIN")
                try:
                    con.executemany("UPDATE embeddings SET used=? WHERE key=?", [(now, k) for k in found])
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store vectors, then evict the least recently used entries beyond the bound.

        A cache that cannot be written (locked by another process, disk full) is skipped with a
        warning: the vectors were computed, so the caller's work goes on.
        """
        if len(keys) == 0 and not self._held:
            return
        try:
            self._store(keys, vectors)
        except sqlite3.Error as exc:
            log.warning("embedding cache %s not updated (%s)", self.path, exc)

    def _store(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        now = time.time()
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes(), now) for k, v in zip(keys, vectors)]
        with self._lock:
            con = self._connect()
            if con is None:  # kept until the collection's folder exists (bounded like the cache)
                self._held = (self._held + rows)[-self.max_entries:]
                return
            rows, self._held = self._held + rows, []
            con.execute("BEGIN")
            try:
                con.executemany("INSERT OR REPLACE INTO embeddings(key, vector, used) VALUES (?, ?, ?)", rows)
                excess = int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0]) - self.max_entries
                if excess > 0:
                    con.execute(
                        "DELETE FROM embeddings WHERE key IN (SELECT key FROM embeddings ORDER BY used LIMIT ?)",
                        (excess,),
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def clear(self) -> None:
        with self._lock:
            self._held = []
            con = self._connect()
            if con is not None:
                con.execute("DELETE FROM embeddings")
