"""Writing documents, the same way on every backend: check, chunk, encode, write.

``write_documents`` is ``add``/``upsert``; ``index_files`` is ``semsearch index``: it loads and
checks files with :mod:`semsearch.ingest.pipeline`, then chunks, encodes and commits in batches.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..errors import DuplicateIdError
from ..ingest.loaders import LoadOptions
from ..ingest.pipeline import (
    COMMIT_SECONDS,
    PARTIAL,
    SLICE_CHUNKS,
    PendingFile,
    check_unique_ids,
    files_gone,
    load_changed_files,
    plan_batches,
    skip_stored,
)
from ..ingest.progress import IndexProgress
from ..types import ChunkRow, DocumentRow, FileState, IndexReport
from ..validation import check_embeddings, document_rows


def write_documents(
    engine: Engine, embedder: Any, chunker: Any, documents: Any, ids: Any, metadatas: Any, embeddings: Any,
    sources: Any, *, replace: bool, progress: bool | None = None,
) -> list[str]:
    """Check the input, chunk and encode (unless ``embeddings`` are given: one chunk per
    document, nothing encoded), then write; returns the ids. See ``Collection.add``/``upsert``.

    Without ``replace``, existing ids are refused before anything is encoded; the engine's write
    refuses them too (atomically where it can), so with ``embeddings`` given, where there is
    nothing to encode, that one check is the only one (on Milvus each check is a round trip).

    Raises:
        DuplicateIdError, InvalidInputError, DimensionMismatchError (nothing is written).
    """
    rows = document_rows(documents, ids, metadatas, sources)
    if not rows:
        return []
    engine.check_rows(rows)
    id_list = [r.id for r in rows]
    if not replace and embeddings is None:
        existing = list(engine.sources_of(id_list))
        if existing:
            raise DuplicateIdError.for_ids(existing)
    if embeddings is not None:
        assert engine.manifest is not None
        vectors = check_embeddings(embeddings, len(rows), int(engine.manifest["dimension"]), engine.manifest["model"])
        for row, vec in zip(rows, vectors):
            row.chunks = [ChunkRow(0, 0, len(row.text), vec)]
    else:
        for row, chunks in zip(rows, chunker.split_many([r.text for r in rows])):
            row.chunks = [ChunkRow(c.position, c.start, c.end) for c in chunks]
        encode_rows(embedder, rows, progress)
    engine.write(rows, replace=replace)
    return id_list


def encode_rows(embedder: Any, rows: list[DocumentRow], progress: bool | None = None) -> None:
    """Fill in the embedding of every chunk of these rows, in one batched call (a progress bar
    when ``progress``, or by default on a terminal for 512 chunks or more)."""
    texts = [row.text[c.start : c.end] for row in rows for c in row.chunks]
    show = progress if progress is not None else (sys.stderr.isatty() and len(texts) >= 512)
    vectors = embedder.encode_documents(texts, show_progress=show)
    for chunk, vec in zip((c for row in rows for c in row.chunks), vectors):
        chunk.embedding = vec


def index_files(
    engine: Engine,
    embedder: Any,
    chunker: Any,
    paths: Iterable[str | os.PathLike[str]],
    options: LoadOptions | None,
    *,
    prune: bool = True,
    batch_chunks: int = 8192,
    commit_seconds: float = COMMIT_SECONDS,
    progress: IndexProgress | None = None,
) -> IndexReport:
    """Bring the collection in step with files and folders; see ``Collection.index_files`` and
    :mod:`semsearch.ingest.pipeline` (what is guaranteed).

    A batch is committed when it holds ``batch_chunks`` chunks or ``commit_seconds`` have passed
    since the last commit, whichever comes first (the vector index is not saved at each commit:
    the store is the truth). ``progress`` is told the work once it is known and each committed
    batch (its ``finish`` is left to the caller).
    """
    started = time.perf_counter()
    options = options or LoadOptions()
    path_list = [Path(p).expanduser() for p in paths]
    report = IndexReport()
    # A damaged store refuses writes; say so before "unchanged, skipped" can hide unreadable documents.
    engine.check_writable()
    known = engine.files()
    files, pending = load_changed_files(path_list, options, known, report, check=engine.check_rows)
    check_unique_ids(pending, engine.sources_of)
    gone = files_gone(known, files, path_list) if prune else []

    todo = skip_stored(pending, lambda ids: engine.documents(ids, None, None), report)
    all_rows = [row for f in todo for row in f.rows]
    for row, chunks in zip(all_rows, chunker.split_many([r.text for r in all_rows])):
        row.chunks = [ChunkRow(c.position, c.start, c.end) for c in chunks]
    if progress is not None:
        progress.start(len(todo), sum(len(r.chunks) for r in all_rows), unchanged_files=report.files_unchanged,
                       kept_documents=report.documents_unchanged)
    batch: list[tuple[PendingFile, list[DocumentRow], bool]] = []
    batch_size, last_commit = 0, time.monotonic()
    for piece in plan_batches(todo, min(SLICE_CHUNKS, batch_chunks)):
        rows = [row for _, part, _ in piece for row in part]
        if rows:
            encode_rows(embedder, rows, False)  # the run's reporter, not the encoder, shows progress
        batch.extend(piece)
        batch_size += sum(len(r.chunks) for r in rows)
        if batch_size >= batch_chunks or time.monotonic() - last_commit >= commit_seconds:
            commit_batch(engine, batch, report, progress)
            batch, batch_size, last_commit = [], 0, time.monotonic()
    if batch:
        commit_batch(engine, batch, report, progress)
    for source in gone:
        engine.delete_source(source)
    report.files_removed = len(gone)
    report.seconds = time.perf_counter() - started
    return report


def commit_batch(engine: Engine, batch: Sequence[tuple[PendingFile, list[DocumentRow], bool]], report: IndexReport,
                 progress: IndexProgress | None) -> None:
    """Write one batch of encoded rows with its files' states (a file's hash is recorded once its
    last document is in; until then it is marked partial) in one transaction, and count it."""
    rows = [row for _, part, _ in batch for row in part]
    n_chunks = sum(len(r.chunks) for r in rows)
    # A file spread over several slices of the batch: its last slice says whether it is complete.
    states = {f.key: FileState(f.digest, f.ids) if finished else FileState(PARTIAL + f.digest)
              for f, _, finished in batch}
    engine.write(rows, replace=True, files=states)
    done = [f for f, _, finished in batch if finished]
    for f in done:
        report.files_replaced += f.known
        report.files_added += not f.known
        report.files_resumed += f.resumed
    report.documents += len(rows)
    report.chunks += n_chunks
    if progress is not None:
        progress.batch_done(len(done), n_chunks, n_chunks)
