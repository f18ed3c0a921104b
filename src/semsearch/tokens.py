"""The plain tokenizer, now in :mod:`semsearch.embedding.tokens` (this name stays importable)."""

from __future__ import annotations

from .embedding.tokens import PlainTokenizer

__all__ = ["PlainTokenizer"]
