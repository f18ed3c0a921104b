"""What an ``index_files`` run will write: the new and changed files, loaded, checked and chunked.

Shared by every backend, so a file is read, identified and split the same way wherever it is
stored. Nothing here writes: a malformed file raises before any backend commits anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..store import ChunkRow, DocumentRow, validate_metadata
from . import loaders

# (source key, content hash, the file's documents)
PendingFile = tuple[str, str, list[DocumentRow]]


def load_changed_files(
    paths: Iterable[Path],
    options: loaders.LoadOptions,
    known: dict[str, str],
    report: Any,
    check: Callable[[list[DocumentRow]], None] | None = None,
) -> tuple[list[Path], list[PendingFile]]:
    """(every file found, the files to write): unchanged files (same hash as ``known``) are
    counted in ``report.files_unchanged``; unreadable, binary and empty ones are skipped with a
    warning in ``report.warnings``; ``check`` may reject a file's rows (raising)."""
    files = loaders.discover(list(paths), options)
    pending: list[PendingFile] = []
    for file in files:
        key = str(file)
        digest = loaders.file_hash(file)
        if known.get(key) == digest:
            report.files_unchanged += 1
            continue
        try:
            records = loaders.load_file(file, options)
        except (loaders.UnreadableFileError, loaders.EmptyDocumentError) as exc:
            report.warnings.append(str(exc))
            continue
        rows = []
        for r in records:
            doc_id = r.id if r.id is not None else (key if r.position == 0 and len(records) == 1 else f"{key}#{r.position}")
            rows.append(DocumentRow(doc_id, r.text, validate_metadata(r.metadata, key), key))
        if not rows:
            report.warnings.append(f"{key}: no documents in this file; skipped")
            continue
        if check is not None:
            check(rows)
        pending.append((key, digest, rows))
    return files, pending


def chunk_pending(chunker: Any, pending: Sequence[PendingFile]) -> None:
    """Split every pending document into chunks (positions and offsets; encoded later)."""
    all_rows = [row for _, _, rows in pending for row in rows]
    pieces = chunker.split_many([r.text for r in all_rows])
    for row, chunks in zip(all_rows, pieces):
        row.chunks = [ChunkRow(c.position, c.start, c.end, None) for c in chunks]  # type: ignore[arg-type]
