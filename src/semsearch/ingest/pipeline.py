"""The steps of ``index_files`` that need no collection: discover and load files, check them,
skip what is stored already, and plan the commits (the collection's writer,
:mod:`semsearch.collection.writing`, encodes and writes). The guarantees of the whole:

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..types import DocumentRow, IndexReport
from ..validation import validate_metadata
from . import loaders

#: Prefix of the hash recorded for a file whose documents are not all committed yet.
PARTIAL = "partial:"
#: A batch is committed once this many seconds of work are uncommitted (or it holds
#: ``batch_chunks`` chunks): a kill loses at most about this much, and progress in a log or a
#: pipe advances at least this often.
COMMIT_SECONDS = 10.0
#: Chunks encoded per model call between two looks at the commit clock: large enough to keep
#: length-sorted batches well filled, small enough to take a few seconds on a CPU.
SLICE_CHUNKS = 512


@dataclass
class PendingFile:
    """A new or changed file, loaded and checked: its documents as they will be stored."""

    key: str
    digest: str
    rows: list[DocumentRow]  # what is still to encode and write
    ids: frozenset[str]  # every document id of this version of the file
    known: bool  # the collection holds (or held part of) a version of it
    resumed: bool  # the last run stopped part-way through this very version




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


def check_unique_ids(pending: Sequence[PendingFile], sources_of: Callable[[list[str]], dict[str, str | None]]) -> None:
    """Ids must be unique within the run and not belong to a document of another source
    (``sources_of(ids)`` gives the source of those ids the collection holds).

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
    for doc_id, source in sources_of(list(owner)).items():
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


def skip_stored(pending: Sequence[PendingFile], stored_of: Callable[[list[str]], list[Any]],
                report: IndexReport) -> list[PendingFile]:
    """The pending files without the documents already stored exactly as they are
    (``stored_of(ids)`` gives the stored documents of those ids).

    Such documents were committed by an interrupted run (or did not change in a changed
    file): they need neither encoding nor writing. Counted in ``report.documents_unchanged``.
    """
    out = []
    for f in pending:
        if f.known:
            stored = {d.id: d for d in stored_of([r.id for r in f.rows])}
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
