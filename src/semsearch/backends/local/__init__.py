"""The local backend: a collection in one folder (SQLite, the truth; a derived FAISS index and BM25)."""

from __future__ import annotations

from .engine import LocalEngine

__all__ = ["LocalEngine"]
