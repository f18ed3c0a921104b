"""What every engine's ``retrieve`` shares: which candidates a plan asks vectors or chunks of."""

from __future__ import annotations

from ..types import Retrieved


def candidate_chunks(retrieved: Retrieved, which: str) -> list[int]:
    """The chunk ids of one query's candidates: ``"all"`` (dense first, then those only BM25
    found), ``"lexical"`` (those only BM25 found) or ``"none"``."""
    if which == "none":
        return []
    dense = [c.chunk_id for c in retrieved.dense]
    seen = {c.doc_id for c in retrieved.dense}
    lexical_only = [c.chunk_id for c in retrieved.lexical if c.doc_id not in seen]
    return lexical_only if which == "lexical" else dense + lexical_only


def vectors_wanted(retrieved: list[Retrieved], which: str) -> list[int]:
    """Every chunk id whose stored vector ``which`` asks for, over all queries, once each."""
    return sorted({c for r in retrieved for c in candidate_chunks(r, which)})
