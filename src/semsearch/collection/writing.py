"""Adding and replacing documents, the same way on every backend: check, chunk, encode, write."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..engine import Engine
from ..errors import DuplicateIdError
from ..types import ChunkRow, DocumentRow
from ..validation import check_embeddings, document_rows


def write_documents(
    engine: Engine, documents: Any, ids: Any, metadatas: Any, embeddings: Any, sources: Any, *, replace: bool,
    split: Callable[[list[str]], list[list[Any]]], encode: Callable[[list[DocumentRow]], None],
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
        for row, chunks in zip(rows, split([r.text for r in rows])):
            row.chunks = [ChunkRow(c.position, c.start, c.end) for c in chunks]
        encode(rows)
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
