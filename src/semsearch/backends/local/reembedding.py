"""Re-encoding a local collection with another model: a staged embedding set swapped in at once.

The new vectors are written to a staging table (``reembedding``: chunk id -> vector) in
committed batches while the old ones go on serving searches; the manifest key
``reembedding`` records which model and dimension they are for, so a run that was killed
resumes where it stopped (a run for another target starts the staging afresh). When every
chunk has a staged vector, one SQLite transaction, under the write lock, replaces every
chunk's embedding, records the new model in the manifest, drops the staging table and moves
the change-log floor past every saved index file, so the derived FAISS index (and the
in-memory BM25) can only be rebuilt from the new vectors. A kill at any instant therefore
leaves the old set whole (before the commit) or the new one whole (after it), never a mix.

Chunks written by another process during the run are encoded too: whatever is not staged
when the write lock is taken for the swap is encoded under it. Processes that opened the
collection before the swap see the manifest's ``embeddings_id`` change and get
:class:`~semsearch.errors.EmbeddingsReplacedError` (the facade then reopens itself).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ...errors import CollectionBusyError, EmbeddingsReplacedError, InvalidInputError
from ...types import ReindexReport
from .locking import WriteLock
from .store import Store
from .vectors import DerivedIndex


class LocalCollection(Protocol):
    """What re-encoding (and re-chunking) needs of a local engine: its folder, store, write lock
    and derived index, its manifest, and a way to read them again after the swap."""

    folder: Path
    store: Store
    lock: WriteLock
    index: DerivedIndex

    @property
    def manifest(self) -> dict[str, Any] | None: ...

    def reload(self) -> None: ...

    def chunk_count(self) -> int: ...

PENDING = "reembedding"  # manifest key: the target the staged vectors are for
STAGED_CHUNKS = "rechunked_chunks"  # the staged chunks of a run that re-chunks (:mod:`.rechunking`)
STAGING_TABLES = ("reembedding", "rechunked_documents", STAGED_CHUNKS)
EMBEDDINGS_ID = "embeddings_id"  # manifest key: changes whenever the embedding set is replaced
# Keys that say which vectors a staged set holds: a resumed run must want the same (the chunking
# keys are None unless the run re-chunks too: see :mod:`.rechunking`).
IDENTITY = ("model", "dimension", "model_dimension", "chunk_size", "chunk_overlap")

_STAGING = "CREATE TABLE IF NOT EXISTS reembedding (chunk INTEGER PRIMARY KEY, embedding BLOB NOT NULL)"
_UNSTAGED = (
    "SELECT c.rowid, substr(d.text, c.start + 1, c.end - c.start) FROM chunks c JOIN documents d ON d.rowid = c.doc "
    "WHERE c.rowid > ? AND c.rowid NOT IN (SELECT chunk FROM reembedding) ORDER BY c.rowid LIMIT ?"
)


def identity(target: Mapping[str, Any]) -> dict[str, Any]:
    """What a staged set is for: a run resumes a staged set only if it wants the same."""
    return {k: target.get(k) for k in IDENTITY}


def manifest_value(con: sqlite3.Connection, key: str) -> Any:
    """A manifest value as committed in ``con``'s transaction (None if absent)."""
    row = con.execute("SELECT value FROM manifest WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def embeddings_id(con: sqlite3.Connection) -> str | None:
    """The id of the collection's current embedding set (None for one never re-encoded)."""
    return manifest_value(con, EMBEDDINGS_ID)


def check_embeddings(con: sqlite3.Connection, opened: str | None, where: object) -> None:
    """Raise EmbeddingsReplacedError when the embedding set changed since ``opened`` was read."""
    current = manifest_value(con, EMBEDDINGS_ID)
    if current != opened:
        model = manifest_value(con, "model")
        raise EmbeddingsReplacedError(
            f"{where} was re-encoded with {model!r} (dimension {manifest_value(con, 'dimension')}) by another process "
            "since this one opened it; open the collection again to use the new model"
        )


def pending(engine: LocalCollection) -> dict[str, Any] | None:
    """The target of an interrupted re-encoding, with how many chunks are staged; None if there is none."""
    with engine.store.read() as con:
        target = manifest_value(con, PENDING)
        if target is None:
            return None
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        staging = STAGED_CHUNKS if target.get("chunk_size") is not None else "reembedding"
        staged = con.execute(f"SELECT count(*) FROM {staging}").fetchone()[0] if staging in tables else 0
    shown = {k: v for k, v in identity(target).items() if v is not None or k not in ("chunk_size", "chunk_overlap")}
    return {**shown, "staged_chunks": int(staged)}


def reembed(engine: LocalCollection, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *,
            batch: int = 4096, progress: Callable[[int, int], None] | None = None) -> ReindexReport:
    """Re-encode every chunk with ``encode`` and swap the new set in (see the module docstring).

    ``target`` holds the manifest keys of the new set (model, dimension, prompts, ... and
    optionally ``index``); ``encode`` turns chunk texts into unit vectors of ``target["dimension"]``.
    ``progress(done, total)`` is called after each committed batch.

    Raises:
        InvalidInputError: ``encode`` returned vectors of another shape.
        CollectionBusyError: another process kept the write lock, or started another re-encoding meanwhile.
    """
    store = engine.store
    dim = int(target["dimension"])
    with engine.lock, store.write() as con:
        con.execute(_STAGING)
        recorded = manifest_value(con, PENDING)
        if recorded is None or identity(recorded) != identity(target):
            con.execute("DELETE FROM reembedding")  # staged for another target: of no use
            drop_staging(con, keep=("reembedding",))
            recorded = {**dict(target), "started_at": time.time()}
            store.set_manifest({PENDING: recorded}, con)
    with store.read() as con:
        total = int(con.execute("SELECT count(*) FROM chunks").fetchone()[0])
        resumed = int(
            con.execute("SELECT count(*) FROM reembedding r JOIN chunks c ON c.rowid = r.chunk").fetchone()[0]
        )
    report = ReindexReport(model=str(target["model"]), dimension=dim, chunks=total, resumed=resumed,
                           index=str(target.get("index") or engine.manifest["index"]))  # type: ignore[index]
    done, last = resumed, 0
    if progress is not None:
        progress(done, total)
    while True:
        with store.read() as con:
            rows = con.execute(_UNSTAGED, (last, batch)).fetchall()
        if not rows:
            break
        _stage(engine, rows, encode, dim, recorded)
        report.encoded += len(rows)
        done, last = min(total, done + len(rows)), rows[-1][0]
        if progress is not None:
            progress(done, total)
    with engine.lock:
        with store.read() as con:  # chunks another process wrote since the loop read them
            late = con.execute(_UNSTAGED, (0, 1 << 62)).fetchall()
        if late:
            _stage(engine, late, encode, dim, recorded)
            report.encoded += len(late)
        _swap(engine, target, recorded)
        engine.reload()  # the manifest, dimension and derived index of the new set
        engine.index.flush()  # rebuilt from the new vectors and saved before the lock is released
    report.chunks = engine.chunk_count()
    return report


def drop_staging(con: sqlite3.Connection, keep: tuple[str, ...]) -> None:
    """Drop the staging tables (but ``keep``) an earlier run for another target left."""
    for table in STAGING_TABLES:
        if table not in keep:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def _stage(engine: LocalCollection, rows: list[tuple[int, str]], encode: Callable[[list[str]], np.ndarray], dim: int,
           recorded: Mapping[str, Any]) -> None:
    vectors = np.asarray(encode([text for _, text in rows]), dtype=np.float32)
    if vectors.shape != (len(rows), dim):
        raise InvalidInputError(f"the new model gave vectors of shape {vectors.shape}, expected ({len(rows)}, {dim})")
    with engine.lock, engine.store.write() as con:
        check_recorded(con, engine, recorded)
        con.executemany("INSERT OR REPLACE INTO reembedding(chunk, embedding) VALUES (?, ?)",
                        [(cid, vec.tobytes()) for (cid, _), vec in zip(rows, vectors)])


def _swap(engine: LocalCollection, target: Mapping[str, Any], recorded: Mapping[str, Any]) -> None:
    """One transaction: new embeddings, new manifest, staging gone, every saved index made stale."""
    with engine.store.write() as con:
        check_recorded(con, engine, recorded)
        missing = con.execute(
            "SELECT count(*) FROM chunks WHERE rowid NOT IN (SELECT chunk FROM reembedding)"
        ).fetchone()[0]
        if missing:  # cannot happen under the write lock; never swap in a partial set
            raise CollectionBusyError(
                f"{missing} chunk(s) of {engine.folder} have no new vector yet; run reindex again"
            )
        con.execute(
            "UPDATE chunks SET embedding = (SELECT r.embedding FROM reembedding r WHERE r.chunk = chunks.rowid)"
        )
        commit_new_set(con, engine, target)


def check_recorded(con: sqlite3.Connection, engine: LocalCollection, recorded: Mapping[str, Any]) -> None:
    """CollectionBusyError unless the staged set is still the one this run records (inside a write)."""
    if manifest_value(con, PENDING) != recorded:
        raise CollectionBusyError(f"another process started re-encoding {engine.folder} with "
                                  f"{(manifest_value(con, PENDING) or {}).get('model')!r}; this run stopped")


def commit_new_set(con: sqlite3.Connection, engine: LocalCollection, target: Mapping[str, Any]) -> None:
    """The end of a swap, in its transaction: staging dropped, saved indexes stale, the new manifest."""
    drop_staging(con, keep=())
    # A marker change (op 2: neither added nor removed) moves the head past every saved
    # index file; forgetting the log up to it makes each of them stale (seq < floor), and the
    # in-memory BM25 and facets of every process too.
    con.execute("INSERT INTO changes(chunk, op) VALUES (0, 2)")
    head = int(con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()[0])
    con.execute("DELETE FROM changes WHERE seq <= ?", (head,))
    con.execute("DELETE FROM manifest WHERE key = ?", (PENDING,))
    engine.store.set_manifest({**dict(target), EMBEDDINGS_ID: uuid.uuid4().hex, "changes_floor": head,
                               "reembedded_at": time.time()}, con)
