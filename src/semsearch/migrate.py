"""Copy a collection between backends (local folder <-> Milvus) without encoding anything again.

Documents travel with their chunks' offsets and stored embeddings, their metadata and
sources, in batches; indexed-file hashes travel too, so ``index_files`` on the copy skips
unchanged files. At the end the document and chunk counts of both sides are compared.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidInputError, SemsearchError
from .store import ChunkRow, DocumentRow


class MigrationError(SemsearchError):
    """The copy finished but the target does not hold what the source does."""


@dataclass
class MigrationReport:
    """What :func:`migrate` copied."""

    documents: int
    chunks: int
    sources: int
    seconds: float


def export_rows(col: Any, batch: int = 1000) -> Iterator[list[DocumentRow]]:
    """Every document of ``col`` with its chunks and embeddings, in batches, in insertion order."""
    if _is_milvus(col):
        yield from col.export_rows(batch)
        return
    store, dim = col.store, col.dimension
    with store.read() as con:
        last = 0
        while True:
            docs = con.execute(
                "SELECT rowid, id, text, metadata, source FROM documents WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, batch)
            ).fetchall()
            if not docs:
                return
            rows = {r[0]: DocumentRow(r[1], r[2], json.loads(r[3]) if r[3] else {}, r[4]) for r in docs}
            marks = ",".join("?" * len(rows))
            for doc, position, start, end, blob in con.execute(
                f"SELECT doc, position, start, end, embedding FROM chunks WHERE doc IN ({marks}) ORDER BY doc, position",
                list(rows),
            ):
                rows[doc].chunks.append(ChunkRow(position, start, end, np.frombuffer(blob, dtype=np.float32, count=dim).copy()))
            yield list(rows.values())
            last = docs[-1][0]


def _is_milvus(col: Any) -> bool:
    return getattr(col, "backend", "local") == "milvus"


def _chunk_count(col: Any) -> int:
    if _is_milvus(col):
        return col.chunk_count()
    with col.store.read():
        return col.store.chunk_count()


def _write(col: Any, rows: list[DocumentRow]) -> None:
    if _is_milvus(col):
        col.write_rows(rows, replace=True)
        return
    ids = [r.id for r in rows]
    with col._writing():
        with col.store.write() as con:
            col.store.delete_documents(con, ids)
            col.store.insert_documents(con, rows)


def _copy_sources(src: Any, dst: Any) -> int:
    hashes = src.source_hashes() if _is_milvus(src) else src.store.source_hashes()
    if not hashes:
        return 0
    if _is_milvus(dst):
        dst.record_sources(hashes)
    else:
        with dst._writing():
            with dst.store.write() as con:
                for path, digest in hashes.items():
                    dst.store.record_source(con, path, digest)
    return len(hashes)


def migrate(src: Any, dst: Any, *, batch: int = 1000, progress: Callable[[int], None] | None = None) -> MigrationReport:
    """Copy every document of ``src`` into ``dst`` (replacing documents with the same ids).

    Both are opened collections (:class:`semsearch.Collection` or
    :class:`semsearch.backends.milvus.MilvusCollection`); ``dst`` may be new or already hold
    documents. Nothing is encoded: ``dst`` must use the same model and dimension.

    Raises:
        InvalidInputError: the two collections use different models or dimensions.
        MigrationError: after copying, ``dst`` holds fewer documents or chunks than ``src``.
    """
    import time

    started = time.perf_counter()
    if src.manifest["model"] != dst.manifest["model"] or int(src.manifest["dimension"]) != int(dst.manifest["dimension"]):
        raise InvalidInputError(
            f"the source was built with {src.manifest['model']!r} (dimension {src.manifest['dimension']}) and the target with "
            f"{dst.manifest['model']!r} (dimension {dst.manifest['dimension']}); create the target with the source's model"
        )
    docs = chunks = 0
    for rows in export_rows(src, batch):
        _write(dst, rows)
        docs += len(rows)
        n = sum(len(r.chunks) for r in rows)
        chunks += n
        if progress:
            progress(n)
    sources = _copy_sources(src, dst)
    src_docs, dst_docs = src.count(), dst.count()
    src_chunks, dst_chunks = _chunk_count(src), _chunk_count(dst)
    if dst_docs < src_docs or dst_chunks < src_chunks or docs != src_docs:
        raise MigrationError(
            f"copied {docs} documents but the source holds {src_docs} documents / {src_chunks} chunks and the target "
            f"{dst_docs} / {dst_chunks}; run migrate again (it replaces by id, so it is safe to repeat)"
        )
    return MigrationReport(docs, chunks, sources, time.perf_counter() - started)
