"""Copy a collection between backends (local folder <-> Milvus) without encoding anything again.

Documents travel with their chunks' offsets and stored embeddings, their metadata and
sources, in batches; indexed-file hashes travel too, so ``index_files`` on the copy skips
unchanged files. At the end the document and chunk counts of both sides are compared.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError, MigrationError, SemsearchError
from .facade import Collection


@dataclass
class MigrationReport:
    """What :func:`migrate` copied."""

    documents: int
    chunks: int
    sources: int
    seconds: float


def migrate(src: Collection, dst: Collection, *, batch: int = 1000,
            progress: Callable[[int], None] | None = None) -> MigrationReport:
    """Copy every document of ``src`` into ``dst`` (replacing documents with the same ids).

    Both are opened collections on any backend; ``dst`` may be new or already hold documents.
    Nothing is encoded: ``dst`` must use the same model and dimension.

    Raises:
        InvalidInputError: the two collections use different models or dimensions.
        MigrationError: after copying, ``dst`` holds fewer documents or chunks than ``src``.
    """
    started = time.perf_counter()
    if src.manifest["model"] != dst.manifest["model"] or src.dimension != dst.dimension:
        raise InvalidInputError(
            f"the source was built with {src.manifest['model']!r} (dimension {src.manifest['dimension']}) and the "
            f"target with {dst.manifest['model']!r} (dimension {dst.manifest['dimension']}); create the target with "
            "the source's model"
        )
    docs = chunks = 0
    for rows in src.engine.export(batch):
        dst.engine.write(rows, replace=True)
        docs += len(rows)
        n = sum(len(r.chunks) for r in rows)
        chunks += n
        if progress:
            progress(n)
    hashes = src.engine.files()
    if hashes:
        dst.engine.set_files(hashes)
    src_docs, dst_docs = src.count(), dst.count()
    src_chunks, dst_chunks = src.engine.chunk_count(), dst.engine.chunk_count()
    if dst_docs < src_docs or dst_chunks < src_chunks or docs != src_docs:
        raise MigrationError(
            f"copied {docs} documents but the source holds {src_docs} documents / {src_chunks} chunks and the target "
            f"{dst_docs} / {dst_chunks}; run migrate again (it replaces by id, so it is safe to repeat)"
        )
    return MigrationReport(docs, chunks, len(hashes), time.perf_counter() - started)


def migrate_between(src: str, dst: str, *, src_uri: str | None = None, dst_uri: str | None = None,
                    src_token: str | None = None, dst_token: str | None = None, index: str | None = None,
                    batch: int = 1000) -> tuple[MigrationReport, str]:
    """Open the source (a folder, or a Milvus collection name with ``src_uri``) and the target (made
    with the source's model, chunking and index spec, or ``index``), copy, and save the target's
    index; returns the report and where the target is.

    Raises:
        NotACollectionError: no source collection.
        InvalidInputError, MigrationError: see :func:`migrate`.
    """
    source = Collection(Path(src) if src_uri is None else src, backend="milvus" if src_uri else "local",
                        uri=src_uri, token=src_token, create=False)
    with source:
        m = source.manifest
        spec = index or target_spec(m["index"], int(m["dimension"]), milvus=dst_uri is not None)
        target = Collection(Path(dst) if dst_uri is None else dst, m["model"], backend="milvus" if dst_uri else "local",
                            uri=dst_uri, token=dst_token, index=spec, chunk_size=m["chunk_size"],
                            chunk_overlap=m["chunk_overlap"])
        with target:
            report = migrate(source, target, batch=batch)
            target.flush()
    return report, str(target.path)


def target_spec(spec: str, dimension: int, *, milvus: bool) -> str:
    """The source's index spec if the target backend can build it, else Flat (with a warning)."""
    try:
        if milvus:
            from ..backends.milvus import milvus_index

            milvus_index(spec)
        else:
            from ..index import make_index

            make_index(spec, dimension)
        return spec
    except (SemsearchError, ValueError, RuntimeError):
        where = "Milvus" if milvus else "the local backend"
        warnings.warn(f"index {spec!r} is not available on {where}; the copy uses Flat (choose with --index)",
                      stacklevel=2)
        return "Flat"


__all__ = ["MigrationError", "MigrationReport", "migrate", "migrate_between", "target_spec"]
