"""``index_files``: discover, skip unchanged, load, check, chunk, encode and commit in batches.

Written once for every backend (it talks to the engine interface). The guarantees:

- Every file is loaded and checked before anything is written, so a malformed file (a bad
  JSONL line N) stops the run with the collection as it was.
- Encoding, the expensive part, is committed batch by batch, also inside one large file. A
  file's hash is recorded only when its last document is committed; until then it is marked
  partial (``info`` counts such files) and a search sees the documents committed so far.
- Re-running the same command after an interruption resumes: a document already stored with
  the same text, metadata and source is neither encoded nor written again, and the file is
  completed (documents of its previous version that it no longer has are removed). The end
  state is the one an uninterrupted run gives.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..errors import InvalidInputError
from ..types import ChunkRow, DocumentRow, FileState, IndexReport
from ..validation import validate_metadata
from . import loaders
from .progress import IndexProgress

#: Prefix of the hash recorded for a file whose documents are not all committed yet.
PARTIAL = "partial:"


@dataclass
class PendingFile:
    """A new or changed file, loaded and checked: its documents as they will be stored."""

    key: str
    digest: str
    rows: list[DocumentRow]  # what is still to encode and write
    ids: frozenset[str]  # every document id of this version of the file
    known: bool  # the collection holds (or held part of) a version of it
    resumed: bool  # the last run stopped part-way through this very version




def index_files(
    engine: Engine,
    paths: Iterable[str | os.PathLike[str]],
    options: loaders.LoadOptions | None,
    *,
    split: Callable[[list[str]], list[list[Any]]],
    encode: Callable[[list[DocumentRow]], None],
    prune: bool = True,
    batch_chunks: int = 8192,
    progress: IndexProgress | None = None,
) -> IndexReport:
    """Bring the collection in step with files and folders; see the module docstring.

    ``split`` chunks texts (the collection's chunker); ``encode`` fills in the embedding of
    every chunk of the rows it is given; ``progress`` is told the work once it is known and
    each committed batch (its ``finish`` is left to the caller).
    """
    started = time.perf_counter()
    options = options or loaders.LoadOptions()
    path_list = [Path(p).expanduser() for p in paths]
    report = IndexReport()
    # A damaged store refuses writes; say so before "unchanged, skipped" can hide unreadable documents.
    engine.check_writable()
    known = engine.files()
    files, pending = load_changed_files(path_list, options, known, report, check=engine.check_rows)
    check_unique_ids(engine, pending)
    gone = files_gone(known, files, path_list) if prune else []

    todo = skip_stored(engine, pending, report)
    all_rows = [row for f in todo for row in f.rows]
    for row, chunks in zip(all_rows, split([r.text for r in all_rows])):
        row.chunks = [ChunkRow(c.position, c.start, c.end) for c in chunks]
    if progress is not None:
        progress.start(len(todo), sum(len(r.chunks) for r in all_rows), unchanged_files=report.files_unchanged,
                       kept_documents=report.documents_unchanged)
    for batch in plan_batches(todo, batch_chunks):
        rows = [row for _, part, _ in batch for row in part]
        n_chunks = sum(len(r.chunks) for r in rows)
        if rows:
            encode(rows)
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
    for source in gone:
        engine.delete_source(source)
    report.files_removed = len(gone)
    report.seconds = time.perf_counter() - started
    return report


def load_changed_files(
    paths: Iterable[Path],
    options: loaders.LoadOptions,
    known: dict[str, str],
    report: IndexReport,
    check: Callable[[list[DocumentRow]], None] | None = None,
) -> tuple[list[Path], list[PendingFile]]:
    """(every file found, the new and changed files loaded): unchanged files (same hash as
    ``known``) are counted in ``report.files_unchanged``; unreadable, binary and empty ones
    are skipped with a warning in ``report.warnings``; ``check`` may reject a file's rows."""
    files = loaders.discover(list(paths), options)
    pending: list[PendingFile] = []
    for file in files:
        key = str(file)
        digest = loaders.file_hash(file)
        recorded = known.get(key)
        if recorded == digest:
            report.files_unchanged += 1
            continue
        try:
            rows = file_rows(file, options)
        except (loaders.UnreadableFileError, loaders.EmptyDocumentError) as exc:
            report.warnings.append(str(exc))
            continue
        if not rows:
            report.warnings.append(f"{key}: no documents in this file; skipped")
            continue
        if check is not None:
            check(rows)
        ids = frozenset(r.id for r in rows)
        pending.append(PendingFile(key, digest, rows, ids, recorded is not None, recorded == PARTIAL + digest))
    return files, pending


def file_rows(file: Path, options: loaders.LoadOptions) -> list[DocumentRow]:
    """The documents of one file as ``index`` stores them (source: the file's path as given).

    A record without an id of its own is named by the file: the path for a file of one
    document, ``path#position`` otherwise.

    Raises:
        UnreadableFileError, EmptyDocumentError: see :func:`loaders.load_file`.
        InvalidInputError: a malformed file or metadata that is not JSON.
    """
    key = str(file)
    records = loaders.load_file(file, options)
    rows = []
    for r in records:
        if r.id is not None:
            doc_id = r.id
        else:
            doc_id = key if r.position == 0 and len(records) == 1 else f"{key}#{r.position}"
        rows.append(DocumentRow(doc_id, r.text, validate_metadata(r.metadata, key), key))
    return rows


def check_unique_ids(engine: Engine, pending: Sequence[PendingFile]) -> None:
    """Ids must be unique within the run and not belong to a document of another source.

    Raises:
        InvalidInputError: naming the id and both places it comes from.
    """
    owner: dict[str, str] = {}
    for f in pending:
        for row in f.rows:
            if row.id in owner:
                other = owner[row.id]
                where = "twice in" if other == f.key else f"in both {other} and"
                raise InvalidInputError(f"document id {row.id!r} appears {where} {f.key}; ids must be unique")
            owner[row.id] = f.key
    if not owner:
        return
    replaced = {f.key for f in pending}
    for doc_id, source in engine.sources_of(list(owner)).items():
        if source not in replaced:
            raise InvalidInputError(
                f"document id {doc_id!r} from {owner[doc_id]} already exists, indexed from {source or 'the API'}; "
                "ids must be unique across files (set --id-field, or remove the other document)"
            )


def files_gone(known: dict[str, str], files: Sequence[Path], paths: Sequence[Path]) -> list[str]:
    """Indexed files under the given folders that are no longer there.

    Paths are compared exactly, by the platform's rules (``os.path.normcase``: case-sensitive
    on Linux and macOS' default API, case-insensitive on Windows), so ``notes/`` never
    matches ``Notes/`` or a sibling ``notes2/``, and ``_`` or ``%`` in a name are plain characters.
    """
    seen = {os.path.normcase(str(f)) for f in files}
    prefixes = [os.path.normcase(str(p.resolve())) + os.sep for p in paths if p.is_dir()]
    return [s for s in known
            if os.path.normcase(s) not in seen and any(os.path.normcase(s).startswith(p) for p in prefixes)]


def skip_stored(engine: Engine, pending: Sequence[PendingFile], report: IndexReport) -> list[PendingFile]:
    """The pending files without the documents already stored exactly as they are.

    Such documents were committed by an interrupted run (or did not change in a changed
    file): they need neither encoding nor writing. Counted in ``report.documents_unchanged``.
    """
    out = []
    for f in pending:
        if f.known:
            stored = {d.id: d for d in engine.documents([r.id for r in f.rows], None, None)}
            keep = [r for r in f.rows if not _same(stored.get(r.id), r)]
            report.documents_unchanged += len(f.rows) - len(keep)
            f = PendingFile(f.key, f.digest, keep, f.ids, f.known, f.resumed)
        out.append(f)
    return out


def _same(stored: Any, row: DocumentRow) -> bool:
    return stored is not None and (stored.text, stored.metadata, stored.source) == (row.text, row.metadata, row.source)


def plan_batches(
    files: Sequence[PendingFile], batch_chunks: int
) -> Iterable[list[tuple[PendingFile, list[DocumentRow], bool]]]:
    """Batches of about ``batch_chunks`` chunks as (file, its rows in the batch, whether the
    file ends in it) triples; a large file is split over several batches."""
    batch: list[tuple[PendingFile, list[DocumentRow], bool]] = []
    size = 0
    for f in files:
        i = 0
        while True:
            part: list[DocumentRow] = []
            while i < len(f.rows) and size < batch_chunks:
                part.append(f.rows[i])
                size += max(1, len(f.rows[i].chunks))
                i += 1
            batch.append((f, part, i == len(f.rows)))
            if size >= batch_chunks:
                yield batch
                batch, size = [], 0
            if i == len(f.rows):
                break
    if batch:
        yield batch
