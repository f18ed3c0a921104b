"""Re-chunking a local collection while re-encoding it: a staged set of chunk rows swapped in at once.

When the new model reads fewer tokens than the collection's chunks hold (or another chunk size
is asked for), every document is cut again from its stored text and its new chunks encoded.
Chunk rows change, not only their vectors, so the new chunks are staged apart
(``rechunked_chunks``: document rowid, position, offsets, lexical tokens, vector; with
``rechunked_documents`` listing the documents done) in committed batches while the old chunks
go on serving searches. The manifest key ``reembedding`` records the target, chunking
included, so a run that was killed resumes where it stopped (a run for another target starts
afresh).

When every document is staged, one SQLite transaction, under the write lock, deletes every
old chunk, inserts the staged ones (new chunk ids: ids are never reused, so no derived
structure can mistake a new chunk for an old one), fills the lexical index from the staged
tokens, records the new model and chunking in the manifest and moves the change-log floor past
every saved index file (see :func:`.reembedding.commit_new_set`). A kill at any instant leaves
the old collection whole (before the commit) or the new one whole (after it).

Documents written by another process during the run are cut and encoded too: whatever is not
staged when the write lock is taken for the swap is done under it. A document replaced
meanwhile has a new rowid (documents' rowids are never reused either), so its staged chunks
of the old text are left out by the swap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ...errors import CollectionBusyError, InvalidInputError
from ...lexical import index_text
from ...types import ReindexReport
from . import reembedding
from .reembedding import (
    PENDING,
    STAGED_CHUNKS,
    LocalCollection,
    check_recorded,
    commit_new_set,
    drop_staging,
    identity,
    manifest_value,
)

#: Cuts texts into chunks: for each text, its chunks' (start, end) character offsets in order.
Split = Callable[[list[str]], list[list[tuple[int, int]]]]

_STAGING = (
    "CREATE TABLE IF NOT EXISTS rechunked_documents (doc INTEGER PRIMARY KEY)",
    f"CREATE TABLE IF NOT EXISTS {STAGED_CHUNKS} (doc INTEGER NOT NULL, position INTEGER NOT NULL, "
    "start INTEGER NOT NULL, end INTEGER NOT NULL, tokens TEXT NOT NULL, embedding BLOB NOT NULL, "
    "PRIMARY KEY (doc, position))",
)
_UNSTAGED = (
    "SELECT rowid, text FROM documents WHERE rowid > ? AND rowid NOT IN (SELECT doc FROM rechunked_documents) "
    "ORDER BY rowid LIMIT ?"
)


def reembed(engine: LocalCollection, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *,
            batch: int = 4096, progress: Callable[[int, int], None] | None = None,
            split: Split | None = None) -> ReindexReport:
    """:func:`rechunk` with ``split``, else :func:`.reembedding.reembed` (the chunks stay as they are)."""
    if split is None:
        return reembedding.reembed(engine, target, encode, batch=batch, progress=progress)
    return rechunk(engine, target, split, encode, batch=batch, progress=progress)


def rechunk(engine: LocalCollection, target: Mapping[str, Any], split: Split, encode: Callable[[list[str]], np.ndarray],
            *, batch: int = 4096, progress: Callable[[int, int], None] | None = None) -> ReindexReport:
    """Cut every document again with ``split``, encode the chunks with ``encode`` and swap the new
    chunks in (see the module docstring).

    ``target`` holds the manifest keys of the new set (model, dimension, prompts, chunk_size,
    chunk_overlap, ... and optionally ``index``). ``batch`` bounds the chunks encoded and
    committed at once (a document's chunks are committed together). ``progress(done, total)``
    counts documents.

    Raises:
        InvalidInputError: ``encode`` returned vectors of another shape.
        CollectionBusyError: another process kept the write lock, or started another re-encoding meanwhile.
    """
    store = engine.store
    dim = int(target["dimension"])
    with engine.lock, store.write() as con:
        for statement in _STAGING:
            con.execute(statement)
        recorded = manifest_value(con, PENDING)
        if recorded is None or identity(recorded) != identity(target):
            con.execute("DELETE FROM rechunked_documents")  # staged for another target: of no use
            con.execute(f"DELETE FROM {STAGED_CHUNKS}")
            drop_staging(con, keep=("rechunked_documents", STAGED_CHUNKS))
            recorded = {**dict(target), "started_at": time.time()}
            store.set_manifest({PENDING: recorded}, con)
    with store.read() as con:
        total = int(con.execute("SELECT count(*) FROM documents").fetchone()[0])
        done = int(con.execute("SELECT count(*) FROM rechunked_documents r JOIN documents d ON d.rowid = r.doc")
                   .fetchone()[0])
        resumed = int(con.execute(f"SELECT count(*) FROM {STAGED_CHUNKS} r JOIN documents d ON d.rowid = r.doc")
                      .fetchone()[0])
    report = ReindexReport(model=str(target["model"]), dimension=dim, resumed=resumed,
                           index=str(target.get("index") or engine.manifest["index"]),  # type: ignore[index]
                           chunk_size=int(target["chunk_size"]), rechunked=True)
    if progress is not None:
        progress(done, total)
    last = 0
    while True:
        with store.read() as con:
            rows = con.execute(_UNSTAGED, (last, batch)).fetchall()
        if not rows:
            break
        report.encoded += _stage(engine, rows, split, encode, dim, recorded, batch)
        done, last = min(total, done + len(rows)), rows[-1][0]
        if progress is not None:
            progress(done, total)
    with engine.lock:
        with store.read() as con:  # documents another process wrote since the loop read them
            late = con.execute(_UNSTAGED, (0, 1 << 62)).fetchall()
        if late:
            report.encoded += _stage(engine, late, split, encode, dim, recorded, batch)
        _swap(engine, target, recorded)
        engine.reload()  # the manifest, dimension, chunking and derived index of the new set
        engine.index.flush()  # rebuilt from the new chunks and saved before the lock is released
    report.chunks = engine.chunk_count()
    return report


def _stage(engine: LocalCollection, documents: list[tuple[int, str]], split: Split,
           encode: Callable[[list[str]], np.ndarray], dim: int, recorded: Mapping[str, Any], batch: int) -> int:
    """Cut, encode and commit ``documents`` (rowid, text) in groups of about ``batch`` chunks; returns the chunks."""
    spans = split([text for _, text in documents])
    staged = 0
    for group in _groups(list(zip(documents, spans)), batch):
        pieces = [(doc, position, start, end, text[start:end])
                  for (doc, text), cuts in group for position, (start, end) in enumerate(cuts)]
        vectors = np.asarray(encode([p[4] for p in pieces]), dtype=np.float32) if pieces else np.empty((0, dim))
        if vectors.shape != (len(pieces), dim):
            raise InvalidInputError(
                f"the new model gave vectors of shape {vectors.shape}, expected ({len(pieces)}, {dim})")
        rows = [(doc, position, start, end, index_text(piece), vector.astype(np.float32).tobytes())
                for (doc, position, start, end, piece), vector in zip(pieces, vectors)]
        with engine.lock, engine.store.write() as con:
            check_recorded(con, engine, recorded)
            con.executemany("INSERT OR REPLACE INTO rechunked_documents(doc) VALUES (?)",
                            [(doc,) for (doc, _), _ in group])
            con.executemany(f"INSERT OR REPLACE INTO {STAGED_CHUNKS}(doc, position, start, end, tokens, embedding) "
                            "VALUES (?, ?, ?, ?, ?, ?)", rows)
        staged += len(rows)
    return staged


def _groups(items: list[Any], batch: int) -> Iterator[list[Any]]:
    """``items`` ((document, spans) pairs) in runs of at most ``batch`` chunks (at least one document each)."""
    group: list[Any] = []
    size = 0
    for item in items:
        if group and size + len(item[1]) > batch:
            yield group
            group, size = [], 0
        group.append(item)
        size += len(item[1])
    if group:
        yield group


def _swap(engine: LocalCollection, target: Mapping[str, Any], recorded: Mapping[str, Any]) -> None:
    """One transaction: the old chunks out, the staged ones in, the new manifest, every saved index stale."""
    with engine.store.write() as con:
        check_recorded(con, engine, recorded)
        missing = con.execute(
            "SELECT count(*) FROM documents WHERE rowid NOT IN (SELECT doc FROM rechunked_documents)"
        ).fetchone()[0]
        if missing:  # cannot happen under the write lock; never swap in a partial set
            raise CollectionBusyError(f"{missing} document(s) of {engine.folder} are not re-chunked yet; "
                                      "run reindex again")
        con.execute("DELETE FROM chunks_fts")
        con.execute("DELETE FROM chunks")
        con.execute(
            f"INSERT INTO chunks(doc, position, start, end, embedding) SELECT r.doc, r.position, r.start, r.end, "
            f"r.embedding FROM {STAGED_CHUNKS} r JOIN documents d ON d.rowid = r.doc ORDER BY r.doc, r.position"
        )
        con.execute(
            f"INSERT INTO chunks_fts(rowid, tokens) SELECT c.rowid, r.tokens FROM chunks c "
            f"JOIN {STAGED_CHUNKS} r ON r.doc = c.doc AND r.position = c.position"
        )
        commit_new_set(con, engine, target)
