"""The embedding caches, now in :mod:`semsearch.embedding.caches` (this name stays importable)."""

from __future__ import annotations

from .embedding.caches import CACHE_FILE, DiskEmbeddingCache, QueryCache, text_key

__all__ = ["CACHE_FILE", "DiskEmbeddingCache", "QueryCache", "text_key"]
