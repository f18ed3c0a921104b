"""Vector indexes: the interface and the factory that builds one from a spec string."""

from __future__ import annotations

from .base import VectorIndex
from .faiss import FaissIndex

DEFAULT_SPEC = "Flat"


def make_index(spec: str, dim: int) -> VectorIndex:
    """An empty index for ``spec`` (a FAISS index_factory string such as "Flat")."""
    return FaissIndex(spec, dim)


def load_index(path, spec: str, dim: int) -> VectorIndex:
    """Read an index saved by :meth:`VectorIndex.save`."""
    return FaissIndex.load(path, spec, dim)


__all__ = ["DEFAULT_SPEC", "FaissIndex", "VectorIndex", "load_index", "make_index"]
