"""Writing documents, the same way on every backend: check, chunk, encode, write.

``write_documents`` is ``add``/``upsert``; ``index_files`` is ``semsearch index``: it loads and
checks files with :mod:`semsearch.ingest.pipeline`, then chunks, encodes and commits in batches.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
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

log = logging.getLogger(__name__)


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
    the store is the truth). Batch N is committed by a writer thread while batch N+1 encodes;
    batches are committed in order, each in its own transaction, and the run returns (or raises
    the writer's error) only once every batch is committed. ``progress`` is told the work once
    it is known and each committed batch (its ``finish`` is left to the caller).
    """
    started = time.perf_counter()
    options = options or LoadOptions()
    path_list = [Path(p).expanduser() for p in paths]
    report = IndexReport()
    # A damaged store refuses writes; say so before "unchanged, skipped" can hide unreadable documents.
    engine.check_writable()
    known = engine.files()
    files, pending = load_changed_files(path_list, options, known, report, check=engine.check_rows)
    # Something to encode: ready the encoder (compile it, or load the model) while the rest is chunked.
    warming = warm_in_background(embedder) if any(f.rows for f in pending) else None
    check_unique_ids(pending, engine.sources_of)
    gone = files_gone(known, files, path_list) if prune else []

    todo = skip_stored(pending, lambda ids: engine.documents(ids, None, None), report)
    all_rows = [row for f in todo for row in f.rows]
    for row, chunks in zip(all_rows, chunker.split_many([r.text for r in all_rows])):
        row.chunks = [ChunkRow(c.position, c.start, c.end) for c in chunks]
    if progress is not None:
        progress.start(len(todo), sum(len(r.chunks) for r in all_rows), unchanged_files=report.files_unchanged,
                       kept_documents=report.documents_unchanged)
    if warming is not None:
        warming.join()
    with BatchWriter(engine, report, progress) as writer:
        batch: list[tuple[PendingFile, list[DocumentRow], bool]] = []
        batch_size, last_commit = 0, time.monotonic()
        for piece in plan_batches(todo, min(SLICE_CHUNKS, batch_chunks)):
            rows = [row for _, part, _ in piece for row in part]
            if rows:
                encode_rows(embedder, rows, False)  # the run's reporter, not the encoder, shows progress
            batch.extend(piece)
            batch_size += sum(len(r.chunks) for r in rows)
            if batch_size >= batch_chunks or time.monotonic() - last_commit >= commit_seconds:
                writer.commit(batch)
                batch, batch_size, last_commit = [], 0, time.monotonic()
        if batch:
            writer.commit(batch)
    for source in gone:
        engine.delete_source(source)
    report.files_removed = len(gone)
    report.seconds = time.perf_counter() - started
    return report


def warm_in_background(embedder: Any) -> threading.Thread | None:
    """A thread readying the embedder's document encoder (compiling it, or loading the model),
    so that cost overlaps the loading and chunking of files; None for an embedder without ``warm``."""
    warm = getattr(embedder, "warm", None)
    if warm is None:
        return None

    def run() -> None:
        try:
            warm("document")
        except Exception:  # noqa: BLE001 - the first encode meets the same problem and reports it
            log.debug("warming the document encoder failed", exc_info=True)

    thread = threading.Thread(target=run, name="semsearch-warm-documents", daemon=True)
    thread.start()
    return thread


class BatchWriter:
    """Commits encoded batches in order on one writer thread, while the caller encodes the next.

    At most one batch waits behind the one being written, so encoding never runs more than two
    batches ahead of what is committed (what a kill can lose). A failed commit is raised by the
    next :meth:`commit` or on leaving the ``with`` block. Leaving it on an error (a Ctrl-C while
    encoding) still commits the batches already encoded (at most two: the one being written and
    one waiting), so the work done is kept and a re-run does not encode it again.
    """

    def __init__(self, engine: Engine, report: IndexReport, progress: IndexProgress | None) -> None:
        self._engine, self._report, self._progress = engine, report, progress
        self._queue: queue.Queue[list[tuple[PendingFile, list[DocumentRow], bool]] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="semsearch-writer", daemon=True)

    def __enter__(self) -> BatchWriter:
        self._thread.start()
        return self

    def commit(self, batch: list[tuple[PendingFile, list[DocumentRow], bool]]) -> None:
        """Hand a batch to the writer (waits while another batch is already waiting).

        Raises:
            the error of an earlier commit, if one failed (nothing more is committed then).
        """
        self._raise_failure()
        self._queue.put(list(batch))
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is not None:
                continue  # drain: nothing more is committed after a failed commit
            try:
                commit_batch(self._engine, batch, self._report, self._progress)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        self._queue.put(None)
        self._thread.join()
        if kind is None:
            self._raise_failure()


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
