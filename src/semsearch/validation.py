"""Checking what callers give a collection, the same way for every backend.

Each check raises :class:`~semsearch.errors.InvalidInputError` (or a subclass) with a message
that names the offending item and the fix; nothing here touches storage.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np

from .errors import DimensionMismatchError, InvalidInputError
from .types import DocumentRow


def document_rows(documents: Any, ids: Any, metadatas: Any, sources: Any) -> list[DocumentRow]:
    """Checked rows (no chunks yet) for add/upsert, shared by every backend.

    Raises:
        InvalidInputError: mismatched lengths, a non-text or empty document, bad ids or metadata.
    """
    docs = _as_list(documents, "documents")
    n = len(docs)
    id_list = _check_ids(ids, n)
    metas = _check_metadatas(metadatas, n)
    srcs = list(sources) if sources is not None else [None] * n
    if len(srcs) != n:
        raise InvalidInputError(f"got {n} documents but {len(srcs)} sources; give one source per document")
    for i, text in enumerate(docs):
        if not isinstance(text, str):
            raise InvalidInputError(f"document {i} (id {id_list[i]!r}) is a {type(text).__name__}, not text")
        if not text.strip():
            raise InvalidInputError(
                f"document {i} (id {id_list[i]!r}) is empty or whitespace only; give it text or leave it out"
            )
    return [DocumentRow(id_list[i], docs[i], metas[i], srcs[i]) for i in range(n)]


def _as_list(values: Any, name: str) -> list[Any]:
    if isinstance(values, str):
        return [values]
    if values is None:
        raise InvalidInputError(f"{name} is None; pass a string or a list of strings")
    return list(values)


def _check_ids(ids: Any, n: int) -> list[str]:
    if ids is None:
        return [uuid.uuid4().hex for _ in range(n)]
    id_list = [ids] if isinstance(ids, str) else list(ids)
    if len(id_list) != n:
        raise InvalidInputError(f"got {n} documents but {len(id_list)} ids; give one id per document")
    for i, doc_id in enumerate(id_list):
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidInputError(f"id {i} is {doc_id!r}; ids must be non-empty strings")
    if len(set(id_list)) != n:
        seen: set[str] = set()
        dup = next(x for x in id_list if x in seen or seen.add(x))  # type: ignore[func-returns-value]
        raise InvalidInputError(f"id {dup!r} is given twice; ids must be unique")
    return id_list


def _check_metadatas(metadatas: Any, n: int) -> list[dict[str, Any]]:
    if metadatas is None:
        return [{} for _ in range(n)]
    metas = [metadatas] if isinstance(metadatas, dict) else list(metadatas)
    if len(metas) != n:
        raise InvalidInputError(f"got {n} documents but {len(metas)} metadatas; give one per document (or None)")
    return [validate_metadata(m, f"metadata of document {i}") for i, m in enumerate(metas)]


def validate_metadata(metadata: Any, where: str) -> dict[str, Any]:
    """Check metadata is a JSON object of scalars (or lists of scalars); returns it."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"{where}: metadata must be a dict, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"{where}: metadata keys must be strings, got {key!r}")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{where}: metadata[{key!r}] is not JSON-serialisable ({exc}); use str, int, float, bool, None or lists"
            ) from None
    return metadata


def check_embeddings(embeddings: Any, n: int, dimension: int, model: str) -> np.ndarray:
    """Precomputed document embeddings as normalised float32 rows, one per document.

    Raises:
        DimensionMismatchError: another dimension than the collection's.
        InvalidInputError: the wrong number of rows, NaN/infinite values or an all-zero vector.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim == 1 and n == 1:
        vectors = vectors[None, :]
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise InvalidInputError(f"got {n} documents but embeddings of shape {vectors.shape}; give one row per document")
    if vectors.shape[1] != dimension:
        raise DimensionMismatchError(
            f"embeddings have dimension {vectors.shape[1]} but the collection holds dimension {dimension} "
            f"({model}); encode with that model or use another collection"
        )
    if not np.all(np.isfinite(vectors)):
        raise InvalidInputError("embeddings contain NaN or infinite values; check how they were computed")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InvalidInputError("an embedding is all zeros; it has no direction to search by")
    return vectors / norms


def check_query_vectors(query: np.ndarray, dimension: int) -> np.ndarray:
    """Query embeddings (one or a batch) as normalised float32 rows.

    Raises:
        DimensionMismatchError: another dimension than the collection's.
        InvalidInputError: NaN or infinite values.
    """
    vectors = np.atleast_2d(np.asarray(query, dtype=np.float32))
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise DimensionMismatchError(
            f"query embedding has dimension {vectors.shape[-1]} but the collection holds dimension {dimension}"
        )
    if not np.all(np.isfinite(vectors)):
        raise InvalidInputError("query embedding contains NaN or infinite values; check how it was computed")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def check_texts(query: Any) -> list[str]:
    """Query texts as a list (a string is one query).

    Raises:
        InvalidInputError: no queries, or an empty or non-text one.
    """
    texts = [query] if isinstance(query, str) else list(query)
    if not texts:
        raise InvalidInputError("no queries given; pass a string or a list of strings")
    for i, q in enumerate(texts):
        if not isinstance(q, str) or not q.strip():
            raise InvalidInputError(f"query {i} is empty; give some text to search for")
    return texts


def check_k(k: Any) -> int:
    """``k`` as an int of at least 1 (InvalidInputError otherwise)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a whole number of at least 1, got {k!r}")
    return int(k)
