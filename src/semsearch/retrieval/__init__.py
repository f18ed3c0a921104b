"""Retrieval stages after the vector index: lexical BM25, fusion, reranking, diversity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Candidate:
    """A document found by one retriever, through its best-scoring chunk."""

    doc_id: str
    chunk_id: int
    score: float


__all__ = ["Candidate"]
