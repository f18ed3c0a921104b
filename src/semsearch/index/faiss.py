"""FAISS vector indexes, named by FAISS ``index_factory`` strings ("Flat", ...)."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from ..errors import InvalidInputError
from .base import VectorIndex

SUPPORTED_SPECS = ("Flat",)


class FaissIndex(VectorIndex):
    """An ``IndexIDMap2`` around a FAISS index built from a factory string, inner-product metric."""

    def __init__(self, spec: str, dim: int, index: faiss.Index | None = None) -> None:
        if spec not in SUPPORTED_SPECS:
            raise InvalidInputError(
                f"index spec {spec!r} is not supported yet; use one of {', '.join(SUPPORTED_SPECS)}"
            )
        self.spec = spec
        self.dim = dim
        # IDMap2 keeps the id map two-way, so remove_ids works and ids are ours, not positions.
        self._index = index if index is not None else faiss.index_factory(dim, f"IDMap2,{spec}", faiss.METRIC_INNER_PRODUCT)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidInputError(f"vectors have shape {vectors.shape}; the index holds dimension {self.dim}")
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))))

    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        params = None
        if allow is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allow, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, spec: str, dim: int) -> FaissIndex:
        index = faiss.read_index(str(path))
        if index.d != dim:
            raise InvalidInputError(f"{path} holds dimension {index.d}, expected {dim}")
        return cls(spec, dim, index)
