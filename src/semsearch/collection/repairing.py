"""Checking a collection and repairing a damaged store: ``Collection.verify`` and
``Collection.repair`` (``semsearch verify [--repair]``), the same on every backend.

A repair:

1. The engine copies every readable row into a fresh store, swaps it in and keeps the damaged
   file aside (local: :mod:`semsearch.backends.local.repair`); derived structures are rebuilt.
2. Documents whose text survived but some of whose vectors did not are chunked and encoded
   again from that text (the embedding cache makes unchanged chunks free).
3. Lost documents whose file is known and still there are read from it again and written
   back (only those: a file holding other documents is not re-indexed whole). When every
   document of an unchanged file is back, its hash is recorded again, so ``index`` skips it;
   otherwise the next ``index`` of it reads it again.
4. What could not be brought back is listed by id (and file).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import SemsearchError
from ..types import DocumentRow, LostDocument, RepairReport

if TYPE_CHECKING:
    from ..engine import Engine
    from ..types import Document


class RepairTarget(Protocol):
    """What a repair needs of a collection: its engine, and reading and rewriting documents."""

    @property
    def engine(self) -> Engine: ...

    def count(self) -> int: ...

    def get(self, ids: str | Sequence[str] | None = None) -> list[Document]: ...

    def upsert(self, documents: str | Sequence[str], ids: str | Sequence[str], metadatas: Any = None,
               embeddings: Any = None, sources: Sequence[str | None] | None = None) -> list[str]: ...


class Repairing:
    """The part of :class:`semsearch.Collection` that checks and repairs its store (a mixin)."""

    @property
    def engine(self) -> Engine:
        raise NotImplementedError  # the facade's

    def verify(self) -> dict[str, Any]:
        """Check the store's integrity and that derived structures match it, repairing what can be
        rebuilt; returns ``consistent``, the ``problems`` found and what was ``repaired``. A damaged
        store stays marked so (every open warns, writes are refused) until :meth:`repair`."""
        return self.engine.verify()

    def repair(self, options: Any = None, *, force: bool = False) -> RepairReport:
        """Repair a damaged store: every readable row copied into a fresh store swapped in
        atomically (the damaged file kept aside as ``collection.sqlite3.damaged-<time>``),
        documents that lost vectors encoded again from their text, lost documents indexed again
        from their files when those are still there (``options``: the
        :class:`semsearch.ingest.LoadOptions` they were indexed with), the vector index rebuilt.
        Returns what was kept, brought back and lost. A sound store is left alone unless ``force``.

        Raises:
            CollectionBusyError: another process is writing.
            InvalidInputError: on Milvus, which repairs its own storage.
        """
        return repair_collection(self, options, force=force)  # type: ignore[arg-type]


def repair_collection(col: RepairTarget, options: Any = None, *, force: bool = False) -> RepairReport:
    """Repair ``col``'s damaged store (see the module docstring); ``options`` (an
    :class:`semsearch.ingest.LoadOptions`) reads lost documents' files as ``index`` did.

    Raises:
        InvalidInputError: a backend whose storage repairs itself (Milvus).
        CollectionBusyError: another process is writing.
        NotACollectionError: the store is too damaged to say how the collection was built.
    """
    salvage = col.engine.repair(force=force)
    report = RepairReport(repaired=salvage.repaired, problems=salvage.problems, damaged_copy=salvage.damaged_copy,
                          notes=list(salvage.notes))
    if not salvage.repaired:
        report.documents = col.count()
        return report
    if salvage.to_encode:
        stored = col.get(salvage.to_encode)
        col.upsert([d.text for d in stored], ids=[d.id for d in stored], metadatas=[d.metadata for d in stored],
                   sources=[d.source for d in stored])
        report.encoded_again = [d.id for d in stored]
    still_lost = _restore_from_files(col, salvage.lost, salvage.source_hashes, options, report)
    report.lost = sorted(d.id for d in still_lost if d.id is not None)
    report.lost_without_id = sum(1 for d in still_lost if d.id is None)
    report.lost_sources = {d.id: d.source for d in still_lost if d.id is not None}
    report.documents = col.count()
    return report


def _restore_from_files(col: RepairTarget, lost: list[LostDocument], hashes: dict[str, str], options: Any,
                        report: RepairReport) -> list[LostDocument]:
    """Write back the lost documents their files still hold; returns those still lost.

    Each file that lost documents is recorded again: with its hash when all its documents are
    back and it did not change (``index`` skips it), else as partly indexed, so the next
    ``index`` of it writes only what is missing or changed.
    """
    from ..ingest import loaders
    from ..ingest.pipeline import PARTIAL, file_rows

    by_file: dict[str, list[LostDocument]] = {}
    for doc in lost:
        if doc.source is not None:
            by_file.setdefault(doc.source, []).append(doc)
    restored: set[str] = set()
    for source, docs in sorted(by_file.items()):
        whole = False
        if Path(source).is_file():
            try:
                rows = file_rows(Path(source), options or loaders.LoadOptions())
            except SemsearchError as exc:
                report.notes.append(f"{source}: not read again ({exc})")
                rows = []
            wanted = {d.id for d in docs}
            back = [r for r in rows if r.id in wanted]
            _write_back(col, back)
            restored.update(r.id for r in back)
            if rows and len(back) < len(wanted):
                report.notes.append(f"{source}: {len(wanted) - len(back)} lost document(s) are not in it under the "
                                    "same id; if it was indexed with options (--id-field, --text-field...), repair "
                                    "or index it again with them")
            ids = sorted({r.id for r in rows})
            whole = bool(rows) and hashes.get(source) == loaders.file_hash(source) and len(col.get(ids)) == len(ids)
        if source in hashes:
            col.engine.set_files({source: hashes[source] if whole else PARTIAL + hashes[source]})
    report.restored_from_files = sorted(restored)
    return [d for d in lost if d.id not in restored]


def _write_back(col: RepairTarget, rows: list[DocumentRow]) -> None:
    if rows:
        col.upsert([r.text for r in rows], ids=[r.id for r in rows], metadatas=[r.metadata for r in rows],
                   sources=[r.source for r in rows])
