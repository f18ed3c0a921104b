"""Documents as the corpus functions read them: ids, texts, and one unit vector per chunk.

A document's similarity to another is the cosine of their *mean vectors* (the normalised mean
of each document's chunk vectors): a document with one chunk is its chunk, and two long
documents count as near-duplicates only when they are alike as a whole, not when they share one
paragraph (a licence header, a signature). bench/RESULTS.md (issue 16) measures this choice
against the best chunk pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError


@dataclass
class CorpusVectors:
    """Documents with their chunk vectors.

    ``ids``, ``texts`` and ``metadatas`` are per document, in the order the documents were
    added (oldest first); ``chunk_vectors`` holds one unit float32 vector per chunk and
    ``chunk_owner`` the index (into ``ids``) of the document each chunk belongs to.
    """

    ids: list[str]
    texts: list[str]
    chunk_vectors: np.ndarray
    chunk_owner: np.ndarray
    metadatas: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        vectors = np.ascontiguousarray(self.chunk_vectors, dtype=np.float32)
        # an empty selection (a filter matching nothing) keeps its (0, dimension) shape
        self.chunk_vectors = vectors if vectors.ndim == 2 else vectors.reshape(len(self.chunk_owner), -1)
        self.chunk_owner = np.asarray(self.chunk_owner, dtype=np.int64)
        if len(self.texts) != len(self.ids):
            raise InvalidInputError(f"{len(self.ids)} ids but {len(self.texts)} texts; give one text per document")
        if len(self.chunk_owner) and (self.chunk_owner.min() < 0 or self.chunk_owner.max() >= len(self.ids)):
            raise InvalidInputError("chunk_owner names a document index outside ids")
        if not self.metadatas:
            self.metadatas = [{} for _ in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def document_vectors(self) -> np.ndarray:
        """One unit vector per document: the normalised mean of its chunks' vectors."""
        return mean_document_vectors(self.chunk_vectors, self.chunk_owner, len(self.ids))


def mean_document_vectors(chunk_vectors: np.ndarray, chunk_owner: np.ndarray, n_documents: int) -> np.ndarray:
    """The normalised mean of each document's chunk vectors, shape (n_documents, dim).

    A document without chunks gets a zero vector (similar to nothing).
    """
    from scipy import sparse

    chunk_vectors = np.asarray(chunk_vectors, dtype=np.float32)
    owner = np.asarray(chunk_owner, dtype=np.int64)
    if len(owner) == n_documents and np.array_equal(owner, np.arange(n_documents)):
        sums = chunk_vectors.copy()  # one chunk per document, already in order: the common case
    else:
        membership = sparse.csr_matrix(
            (np.ones(len(owner), dtype=np.float32), (owner, np.arange(len(owner)))), shape=(n_documents, len(owner))
        )
        sums = np.asarray(membership @ chunk_vectors, dtype=np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)


def unit_rows(vectors: np.ndarray, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a contiguous float32 2-D array of unit rows.

    Raises:
        InvalidInputError: not a 2-D array, or NaN / infinite values.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInputError(f"{what} must be a 2-D array (one row per item), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError(f"{what} contain NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
