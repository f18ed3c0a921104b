"""The vector index interface: a derived, rebuildable cache of the store's embeddings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class VectorIndex(ABC):
    """Inner-product search over int64-keyed vectors.

    Scores are similarities: higher is better. ``search`` pads missing results with id -1
    (FAISS's convention); callers drop them before anything reaches a user.
    """

    spec: str
    dim: int

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add float32 vectors of shape (n, dim) under int64 ids that are not in the index."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k per query as (scores, ids), each of shape (n_queries, k).

        ``allow`` restricts results to those ids (pre-filtering, so k results come back
        whenever k allowed vectors exist).
        """

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (temp file, fsync, rename)."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, spec: str, dim: int) -> VectorIndex:
        """Read an index written by :meth:`save`."""

    def describe(self) -> dict[str, object]:
        """What `semsearch info` shows about the index."""
        return {"spec": self.spec, "vectors": len(self)}
