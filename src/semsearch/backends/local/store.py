"""The SQLite store: the one source of truth for documents, chunks, metadata and embeddings.

Reads and writes of the schema in :mod:`.schema`; the change log it keeps is what derived
structures (the vector index, the BM25 arrays) catch up from.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import NotACollectionError
from ...lexical import index_text
from ...types import Document, DocumentRow, StoredChunk
from .damage import note_damage, roll_back_quietly
from .schema import DB_NAME, create_database

#: The most of the database file each connection of a warm process reads through a memory map
#: (address space, not memory: the pages are the OS file cache's, shared and reclaimable).
MMAP_BYTES = 1 << 30


@dataclass
class ChangeSet:
    """What happened to chunks after a sequence number, reduced to its net effect."""

    head: int
    added: np.ndarray  # chunk ids added and still present
    removed: np.ndarray  # chunk ids removed (some may never have reached the index)


#: The manifest key of :meth:`Store.keep_changes_from`.
KEPT_FROM = "changes_kept_from"


class Store:
    """SQLite (WAL) storage of one collection.

    Reads use one connection per thread, so readers never block each other and always see
    the last committed state. Writes go through :meth:`write`, one transaction each; the
    caller serialises writers across processes with the collection's write lock.
    """

    def __init__(self, folder: Path, *, create: bool) -> None:
        self.folder = folder
        self.path = folder / DB_NAME
        if not self.path.exists():
            if not create:
                raise NotACollectionError(
                    f"{folder} is not a semsearch collection (no {DB_NAME}); "
                    "check the path, or create one by indexing into it"
                )
            create_database(folder)
        self._local = threading.local()
        self._memory_map = False
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._check_is_collection()

    # -- connections -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before add() returns, so it survives kill -9 and power loss.
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    def use_memory_map(self) -> None:
        """Read through a memory map from now on (every thread's connection, as it next reads).

        A warm process's search looks up a few hundred random chunk and document rows, and at
        170k documents a map took half the time of a read() and a copy per page (1.8 -> 0.9 ms
        per 200 rows; hybrid search without the encode 13.4 -> 11.7 ms p50, bench/RESULTS.md).
        A process that searches once is better without: every page it touches through the map
        brings its neighbours into its resident memory (the kernel's fault-around), ~0.5 GB for a
        filtered search at 200k documents against 80 MB with reads. Writes always go through the WAL.
        """
        self._memory_map = True

    @property
    def memory_mapped(self) -> bool:
        """Whether this process reads through a memory map (it searches often: a warm one)."""
        return self._memory_map

    @property
    def con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._connect()
            self._local.con = con
            self._local.mapped = False
            with self._connections_lock:
                self._connections.append(con)
        if self._memory_map and not self._local.mapped:
            con.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._local.mapped = True
        return con

    def close(self) -> None:
        with self._connections_lock:
            for con in self._connections:
                try:
                    con.close()
                except sqlite3.ProgrammingError:
                    pass  # closed from its own thread already
            self._connections.clear()
        self._local = threading.local()

    def _check_is_collection(self) -> None:
        try:
            tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise NotACollectionError(
                f"{self.path} is not a semsearch collection database ({exc}); "
                "point --collection at a collection folder"
            ) from exc
        if not {"manifest", "documents", "chunks", "changes"} <= tables:
            raise NotACollectionError(
                f"{self.path} is an SQLite file but not a semsearch collection; "
                "point --collection at a collection folder"
            )

    def data_version(self) -> int:
        """SQLite's ``data_version`` of this thread's connection: it changes when another connection
        (another process, or another thread or collection object here) commits; one cheap call."""
        return int(self.con.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on error
        (StoreDamagedError, and the collection marked so, when SQLite finds the file damaged)."""
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException as exc:
            roll_back_quietly(con)
            note_damage(self.folder, exc)
            raise
        con.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed snapshot (errors as :meth:`write`)."""
        con = self.con
        if con.in_transaction:  # nested inside a write or read on this thread
            yield con
            return
        con.execute("BEGIN")
        try:
            yield con
        except BaseException as exc:
            roll_back_quietly(con)  # a damaged file can fail the end of the transaction too: the first error counts
            note_damage(self.folder, exc)
            raise
        con.execute("COMMIT")

    # -- manifest ----------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.con.execute("SELECT key, value FROM manifest")}

    def set_manifest(self, values: dict[str, Any], con: sqlite3.Connection | None = None) -> None:
        rows = [(k, json.dumps(v)) for k, v in values.items()]
        if con is not None:
            con.executemany("INSERT OR REPLACE INTO manifest(key, value) VALUES (?, ?)", rows)
            return
        with self.write() as c:
            c.executemany("INSERT OR REPLACE INTO manifest(key, value) VALUES (?, ?)", rows)

    # -- writes ------------------------------------------------------------------------
    @staticmethod
    def existing_ids(con: sqlite3.Connection, ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for part in batched(ids, 900):
            q = f"SELECT id FROM documents WHERE id IN ({','.join('?' * len(part))})"
            found.extend(r[0] for r in con.execute(q, part))
        return found

    @staticmethod
    def insert_documents(con: sqlite3.Connection, docs: Iterable[DocumentRow]) -> None:
        for doc in docs:
            cur = con.execute(
                "INSERT INTO documents(id, text, metadata, source) VALUES (?, ?, ?, ?)",
                (doc.id, doc.text, json.dumps(doc.metadata, ensure_ascii=False), doc.source),
            )
            doc_rowid = cur.lastrowid
            con.executemany(
                "INSERT INTO chunks(doc, position, start, end, embedding) VALUES (?, ?, ?, ?, ?)",
                [
                    (doc_rowid, c.position, c.start, c.end,
                     np.ascontiguousarray(c.embedding, dtype=np.float32).tobytes())
                    for c in doc.chunks
                ],
            )
            if not doc.chunks:
                continue
            # Chunk rowids of this document are the last len(chunks) assigned, in order.
            last = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()[0]
            first = last - len(doc.chunks) + 1
            con.executemany(
                "INSERT INTO chunks_fts(rowid, tokens) VALUES (?, ?)",
                [(first + i, index_text(doc.text[c.start : c.end])) for i, c in enumerate(doc.chunks)],
            )

    @staticmethod
    def delete_documents(con: sqlite3.Connection, ids: Sequence[str]) -> int:
        """Delete documents (and their chunks) by id; returns how many existed."""
        deleted = 0
        for part in batched(ids, 900):
            marks = ",".join("?" * len(part))
            con.execute(
                f"DELETE FROM chunks WHERE doc IN (SELECT rowid FROM documents WHERE id IN ({marks}))", part
            )
            deleted += con.execute(f"DELETE FROM documents WHERE id IN ({marks})", part).rowcount
        return deleted

    @staticmethod
    def delete_source(con: sqlite3.Connection, source: str) -> int:
        con.execute(
            "DELETE FROM chunks WHERE doc IN (SELECT rowid FROM documents WHERE source = ?)", (source,)
        )
        n = con.execute("DELETE FROM documents WHERE source = ?", (source,)).rowcount
        con.execute("DELETE FROM sources WHERE path = ?", (source,))
        return n

    @staticmethod
    def source_document_ids(con: sqlite3.Connection, source: str) -> list[str]:
        """Ids of the documents indexed from a file."""
        return [r[0] for r in con.execute("SELECT id FROM documents WHERE source = ?", (source,))]

    @staticmethod
    def record_source(con: sqlite3.Connection, path: str, content_hash: str) -> None:
        con.execute(
            "INSERT OR REPLACE INTO sources(path, content_hash, indexed_at) VALUES (?, ?, ?)",
            (path, content_hash, time.time()),
        )

    def source_hashes(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT path, content_hash FROM sources"))

    def truncate_changes(self, upto: int) -> None:
        """Forget change-log entries a saved index already contains, but none after the point
        another saved structure was pinned at (:meth:`keep_changes_from`)."""
        with self.write() as con:
            kept = self._manifest_value(con, KEPT_FROM, None)
            upto = upto if kept is None else min(upto, int(kept))
            floor = max(upto, int(self._manifest_value(con, "changes_floor", 0)))
            con.execute("DELETE FROM changes WHERE seq <= ?", (floor,))
            self.set_manifest({"changes_floor": floor}, con)

    def keep_changes_from(self, seq: int) -> None:
        """Keep the change log from ``seq`` on: a saved structure holds the store as it was there
        (the saved BM25 arrays) and its readers catch up from the log."""
        with self.write() as con:
            self.set_manifest({KEPT_FROM: int(seq)}, con)

    # -- reads -------------------------------------------------------------------------
    @staticmethod
    def _manifest_value(con: sqlite3.Connection, key: str, default: Any) -> Any:
        row = con.execute("SELECT value FROM manifest WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def head(self) -> int:
        """The sequence number of the last committed change (0 if none)."""
        return self.head_in(self.con)

    @staticmethod
    def head_in(con: sqlite3.Connection) -> int:
        """:meth:`head` as the read snapshot of ``con`` sees it."""
        row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return int(row[0]) if row else 0

    def changes_floor(self) -> int:
        """Changes up to this sequence number have been forgotten (a saved index holds them)."""
        return int(self._manifest_value(self.con, "changes_floor", 0))

    def changes_since(self, seq: int) -> ChangeSet:
        with self.read() as con:
            head = self.head_in(con)
            rows = np.array(
                con.execute("SELECT chunk, op FROM changes WHERE seq > ? AND seq <= ?", (seq, head)).fetchall(),
                dtype=np.int64,
            ).reshape(-1, 2)
        added = rows[rows[:, 1] == 1, 0]
        removed = rows[rows[:, 1] == 0, 0]
        # Ids are never reused, so an id both added and removed in the window is simply gone.
        added = np.setdiff1d(added, removed, assume_unique=False)
        return ChangeSet(head=head, added=added, removed=np.unique(removed))

    def embeddings(self, chunk_ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of the given chunks that still exist: (ids, vectors)."""
        ids: list[int] = []
        blobs: list[bytes] = []
        with self.read() as con:
            for part in batched(chunk_ids.tolist(), 900):
                q = f"SELECT rowid, embedding FROM chunks WHERE rowid IN ({','.join('?' * len(part))})"
                for rowid, blob in con.execute(q, part):
                    ids.append(rowid)
                    blobs.append(blob)
        return _as_arrays(ids, blobs, dim)

    def all_embeddings(self, dim: int, batch: int = 65536) -> Iterator[Any]:
        """First the head of one snapshot, then every chunk's (ids, vectors) in it, in batches."""
        with self.read() as con:
            yield self.head_in(con)
            cur = con.execute("SELECT rowid, embedding FROM chunks ORDER BY rowid")
            while True:
                rows = cur.fetchmany(batch)
                if not rows:
                    break
                ids, blobs = zip(*rows)
                yield _as_arrays(list(ids), list(blobs), dim)

    def chunk_ids(self) -> np.ndarray:
        """Every chunk id (= vector id), ascending."""
        with self.read() as con:
            rows = con.execute("SELECT rowid FROM chunks ORDER BY rowid").fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def chunk_count(self) -> int:
        """How many chunks there are (one row read: the schema's tallies)."""
        return int(self.con.execute("SELECT n FROM tallies WHERE name = 'chunks'").fetchone()[0])

    def document_count(self) -> int:
        """How many documents there are (one row read: the schema's tallies)."""
        return int(self.con.execute("SELECT n FROM tallies WHERE name = 'documents'").fetchone()[0])

    def sources_of(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Id -> source of those of ``ids`` that exist."""
        out: dict[str, str | None] = {}
        with self.read() as con:
            for part in batched(list(ids), 900):
                out.update(con.execute(f"SELECT id, source FROM documents WHERE id IN ({','.join('?' * len(part))})",
                                       part))
        return out

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        """The chunk ids of each given document that exists, in position order."""
        out: dict[str, list[int]] = {}
        with self.read() as con:
            for part in batched(list(doc_ids), 900):
                q = (
                    "SELECT d.id, c.rowid FROM chunks c JOIN documents d ON d.rowid = c.doc "
                    f"WHERE d.id IN ({','.join('?' * len(part))}) ORDER BY c.doc, c.position"
                )
                for doc_id, chunk_id in con.execute(q, part):
                    out.setdefault(doc_id, []).append(int(chunk_id))
        return out

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        out: dict[int, StoredChunk] = {}
        with self.read() as con:
            for part in batched(list(chunk_ids), 900):
                q = (
                    "SELECT c.rowid, d.id, substr(d.text, c.start + 1, c.end - c.start), d.metadata, d.source, "
                    "c.position, c.start, c.end FROM chunks c JOIN documents d ON d.rowid = c.doc "
                    f"WHERE c.rowid IN ({','.join('?' * len(part))})"
                )
                for row in con.execute(q, part):
                    out[row[0]] = StoredChunk(
                        chunk_id=row[0], doc_id=row[1], text=row[2], metadata=json.loads(row[3]),
                        source=row[4], position=row[5], start=row[6], end=row[7],
                    )
        return out

    def chunk_documents(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The document id of each given chunk that still exists."""
        out: dict[int, str] = {}
        with self.read() as con:
            for part in batched(list(chunk_ids), 900):
                q = (
                    "SELECT c.rowid, d.id FROM chunks c JOIN documents d ON d.rowid = c.doc "
                    f"WHERE c.rowid IN ({','.join('?' * len(part))})"
                )
                out.update(con.execute(q, part))
        return out

    def documents(self, ids: Sequence[str]) -> list[Document]:
        found: dict[str, Document] = {}
        with self.read() as con:
            for part in batched(list(ids), 900):
                q = f"SELECT id, text, metadata, source FROM documents WHERE id IN ({','.join('?' * len(part))})"
                for row in con.execute(q, part):
                    found[row[0]] = Document(row[0], row[1], json.loads(row[2]), row[3])
        return [found[i] for i in ids if i in found]

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def _as_arrays(ids: list[int], blobs: list[bytes], dim: int) -> tuple[np.ndarray, np.ndarray]:
    if not ids:
        return np.empty(0, dtype=np.int64), np.empty((0, dim), dtype=np.float32)
    vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dim)
    return np.asarray(ids, dtype=np.int64), vectors


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
