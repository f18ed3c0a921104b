"""The one place the corpus functions read (and write back to) a collection.

Everything else in :mod:`semsearch.corpus` works on plain data. The engine seam will provide
these reads; until then they use what each backend has today:

- :func:`read_corpus` needs every document (id, text, metadata, insertion order) with its
  chunks' stored vectors, filtered by ``where``: the engine's "export of all rows" (today
  :func:`semsearch.migrate.export_rows`, on both backends) plus the filter.
- :func:`read_document_vectors` needs the stored vectors of one document's chunks: the
  engine's "chunk ids of documents" and "stored vectors of chunks".
- :func:`write_metadata` needs to change documents' metadata without touching their text or
  vectors; no backend has that yet, so it upserts the documents with their stored vectors
  (one-chunk documents) or their text (longer ones: re-chunked identically and served from the
  embedding cache, so nothing is encoded again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import UnknownDocumentError
from .vectors import CorpusVectors


def _is_milvus(col: Any) -> bool:
    return getattr(col, "backend", "local") == "milvus"


def read_corpus(col: Any, where: dict[str, Any] | str | None = None, *, batch: int = 2000) -> CorpusVectors:
    """Every document of ``col`` matching ``where``, with its chunk vectors, oldest first.

    Raises:
        InvalidInputError: a malformed filter.
    """
    from ..filters import matches, parse_where
    from ..migrate import export_rows

    node = parse_where(where)
    ids: list[str] = []
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    sources: list[str | None] = []
    parts: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for rows in export_rows(col, batch):
        for row in rows:
            if node is not None and not matches(node, row.metadata, row.text):
                continue
            if not row.chunks:
                continue
            owner.append(np.full(len(row.chunks), len(ids), dtype=np.int64))
            parts.append(np.stack([c.embedding for c in row.chunks]).astype(np.float32, copy=False))
            ids.append(row.id)
            texts.append(row.text)
            metadatas.append(row.metadata)
            sources.append(row.source)
    dim = int(col.dimension)
    vectors = np.concatenate(parts) if parts else np.empty((0, dim), dtype=np.float32)
    corpus = CorpusVectors(ids, texts, vectors, np.concatenate(owner) if owner else np.empty(0, np.int64), metadatas)
    corpus.sources = sources  # type: ignore[attr-defined]  # for write_metadata
    return corpus


def read_document_vectors(col: Any, doc_id: str) -> np.ndarray:
    """The stored vectors of one document's chunks, in chunk order (chunks x dimension).

    Raises:
        UnknownDocumentError: no document has this id.
    """
    dim = int(col.dimension)
    if _is_milvus(col):
        pks = col._chunk_pks_of([doc_id])
        _, vectors = col.store.embeddings(np.asarray(pks, dtype=np.int64), dim)
    else:
        with col.store.read() as con:
            blobs = con.execute(
                "SELECT c.embedding FROM chunks c JOIN documents d ON d.rowid = c.doc WHERE d.id = ? ORDER BY c.position",
                (doc_id,),
            ).fetchall()
        vectors = np.stack([np.frombuffer(b[0], dtype=np.float32, count=dim) for b in blobs]) if blobs else np.empty((0, dim))
    if len(vectors) == 0:
        raise UnknownDocumentError(f"no document with id {doc_id!r} in this collection; check the id (semsearch search shows ids)")
    return np.asarray(vectors, dtype=np.float32)


def write_metadata(col: Any, corpus: CorpusVectors, updates: Mapping[str, dict[str, Any]]) -> int:
    """Merge ``updates`` (id -> metadata keys to set) into those documents' metadata; returns how many changed.

    ``corpus`` is what :func:`read_corpus` returned for them. Local collections are updated in
    place, in one transaction under the write lock (crash-safe; text, vectors and insertion
    order unchanged). Milvus has no metadata-only update: documents are upserted with their
    stored vectors (one-chunk documents) or their text (re-chunked identically and served from
    the embedding cache), which makes them the newest documents.

    Raises:
        UnknownDocumentError: an id that is not in ``corpus``.
        InvalidInputError: metadata values that are not JSON.
    """
    from ..store import validate_metadata

    position = {doc_id: i for i, doc_id in enumerate(corpus.ids)}
    todo: list[int] = []
    for doc_id, values in updates.items():
        i = position.get(doc_id)
        if i is None:
            raise UnknownDocumentError(f"no document with id {doc_id!r} among those read")
        validate_metadata(values, f"metadata for {doc_id!r}")
        if any(corpus.metadatas[i].get(k) != v or k not in corpus.metadatas[i] for k, v in values.items()):
            todo.append(i)
    merged = {i: {**corpus.metadatas[i], **updates[corpus.ids[i]]} for i in todo}
    if not todo:
        return 0
    if _is_milvus(col):
        _upsert_metadata(col, corpus, todo, merged)
    else:
        import json

        with col._writing(), col.store.write() as con:
            con.executemany(
                "UPDATE documents SET metadata = ? WHERE id = ?",
                [(json.dumps(merged[i], ensure_ascii=False), corpus.ids[i]) for i in todo],
            )
    for i in todo:
        corpus.metadatas[i] = merged[i]
    return len(todo)


def _upsert_metadata(col: Any, corpus: CorpusVectors, todo: list[int], merged: dict[int, dict[str, Any]]) -> None:
    sources = getattr(corpus, "sources", [None] * len(corpus.ids))
    counts = np.bincount(corpus.chunk_owner, minlength=len(corpus.ids))
    first_chunk = np.full(len(corpus.ids), -1, dtype=np.int64)
    first_chunk[corpus.chunk_owner[::-1]] = np.arange(len(corpus.chunk_owner))[::-1]
    for with_vectors in (True, False):
        group = [i for i in todo if (counts[i] == 1) == with_vectors]
        for start in range(0, len(group), 1000):
            part = group[start : start + 1000]
            kwargs: dict[str, Any] = {"metadatas": [merged[i] for i in part], "sources": [sources[i] for i in part]}
            if with_vectors:
                kwargs["embeddings"] = corpus.chunk_vectors[first_chunk[part]]
            col.upsert([corpus.texts[i] for i in part], ids=[corpus.ids[i] for i in part], **kwargs)
