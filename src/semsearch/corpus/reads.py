"""The one place the corpus functions read (and write back to) a collection, through its engine.

Everything else in :mod:`semsearch.corpus` works on plain data. The reads are the engine's
export of all rows (documents with their chunks' stored vectors, insertion order), its chunk ids
of documents and stored vectors of chunks; the write is its metadata-only update. So nothing is
encoded again and every backend gives the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import UnknownDocumentError
from ..validation import validate_metadata
from .vectors import CorpusVectors, mean_document_vectors


def read_corpus(col: Any, where: dict[str, Any] | str | None = None, *, batch: int = 2000) -> CorpusVectors:
    """Every document of ``col`` matching ``where``, with its chunk vectors, oldest first.

    Raises:
        InvalidInputError: a malformed filter.
    """
    from ..filters import matches, parse_where

    node = parse_where(where)
    ids: list[str] = []
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    sources: list[str | None] = []
    parts: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for rows in col.engine.export(batch):
        for row in rows:
            if (node is not None and not matches(node, row.metadata, row.text)) or not row.chunks:
                continue
            owner.append(np.full(len(row.chunks), len(ids), dtype=np.int64))
            parts.append(np.stack([c.embedding for c in row.chunks]).astype(np.float32, copy=False))
            ids.append(row.id)
            texts.append(row.text)
            metadatas.append(row.metadata)
            sources.append(row.source)
    vectors = np.concatenate(parts) if parts else np.empty((0, col.dimension), dtype=np.float32)
    corpus = CorpusVectors(ids, texts, vectors, np.concatenate(owner) if owner else np.empty(0, np.int64), metadatas)
    corpus.sources = sources  # type: ignore[attr-defined]
    return corpus


def read_document_vectors(col: Any, doc_id: str) -> np.ndarray:
    """The stored vectors of one document's chunks, in chunk order (chunks x dimension).

    Raises:
        UnknownDocumentError: no document has this id.
    """
    chunk_ids = col.engine.chunk_ids_of([doc_id]).get(doc_id)
    if not chunk_ids:
        raise UnknownDocumentError(f"no document with id {doc_id!r} in this collection; check the id (semsearch search "
                                   "shows ids)")
    ids, vectors = col.engine.vectors(np.asarray(chunk_ids, dtype=np.int64))
    row = {int(i): n for n, i in enumerate(ids.tolist())}
    return np.asarray(vectors[[row[c] for c in chunk_ids if c in row]], dtype=np.float32)


def read_mean_vectors(col: Any, doc_ids: list[str]) -> dict[str, np.ndarray]:
    """Each existing document's unit mean vector (the normalised mean of its chunks' stored vectors)."""
    chunk_ids = col.engine.chunk_ids_of(doc_ids)
    owner_of = {c: doc for doc, cids in chunk_ids.items() for c in cids}
    if not owner_of:
        return {}
    ids, vectors = col.engine.vectors(np.fromiter(owner_of, dtype=np.int64, count=len(owner_of)))
    docs = list(chunk_ids)
    position = {doc: i for i, doc in enumerate(docs)}
    owner = np.array([position[owner_of[int(c)]] for c in ids.tolist()], dtype=np.int64)
    means = mean_document_vectors(np.asarray(vectors, dtype=np.float32), owner, len(docs))
    return dict(zip(docs, means))


def write_metadata(col: Any, corpus: CorpusVectors, updates: Mapping[str, dict[str, Any]]) -> int:
    """Merge ``updates`` (id -> metadata keys to set) into those documents' metadata; returns how
    many changed. Text, vectors and insertion order stay as they are (the engine's
    metadata-only update: one transaction locally).

    Raises:
        UnknownDocumentError: an id that is not in ``corpus``.
        InvalidInputError: metadata values that are not JSON.
    """
    position = {doc_id: i for i, doc_id in enumerate(corpus.ids)}
    merged: dict[str, dict[str, Any]] = {}
    for doc_id, values in updates.items():
        i = position.get(doc_id)
        if i is None:
            raise UnknownDocumentError(f"no document with id {doc_id!r} among those read")
        validate_metadata(values, f"metadata for {doc_id!r}")
        if any(k not in corpus.metadatas[i] or corpus.metadatas[i][k] != v for k, v in values.items()):
            merged[doc_id] = {**corpus.metadatas[i], **values}
    if merged:
        col.engine.update_metadata(merged)
        for doc_id, metadata in merged.items():
            corpus.metadatas[position[doc_id]] = metadata
    return len(merged)
