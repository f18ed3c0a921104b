"""Queries for a FAISS index that projects vectors onto principal components first ("PCA128,...").

FAISS's ``PCAMatrix`` centres before projecting: a vector x becomes P(x - m). An inner product
of two such vectors is (q - m)ᵀPᵀP(x - m), whose ranking over documents x is that of
(q - m)ᵀPᵀPx: it favours documents pointing away from the mean, which is not what cosine
ranks. Searching with q + m instead gives qᵀPᵀP(x - m) = qᵀPᵀPx - (a constant per query), the
ranking of the cosine between the projected (uncentred) vectors, as PCA is meant to keep it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faiss
import numpy as np


def pca_mean(index: faiss.Index) -> np.ndarray | None:
    """The mean a PCA-first index subtracts before projecting (float32, the input dimension), or None."""
    outer = faiss.downcast_index(index)
    if isinstance(outer, faiss.IndexIDMap):
        outer = faiss.downcast_index(outer.index)
    if not isinstance(outer, faiss.IndexPreTransform) or outer.chain.size() == 0:
        return None
    first = faiss.downcast_VectorTransform(outer.chain.at(0))
    if not isinstance(first, faiss.PCAMatrix) or not first.is_trained:
        return None
    mean = faiss.vector_to_array(first.mean).astype(np.float32)
    return mean if len(mean) else None


class QueryShift:
    """Callable: queries as an index's current FAISS index must see them (unchanged unless it is PCA-first)."""

    def __init__(self, current: Callable[[], Any]) -> None:
        self._current = current  # the owner's FAISS index now: training and loading replace it
        self._of: faiss.Index | None = None
        self._mean: np.ndarray | None = None

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        index = self._current()
        if self._of is not index:
            self._mean, self._of = pca_mean(index), index
        return queries if self._mean is None else np.ascontiguousarray(queries + self._mean, dtype=np.float32)
