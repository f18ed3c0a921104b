"""Candidates from Milvus: dense (its vector index) and lexical (its BM25 function), one hit per
document (its best chunk), fetching deeper when chunks of a few documents crowd out others."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import numpy as np

from ...types import Candidate
from .client import MAX_TOPK, with_retries


def dense_search(client: Any, name: str, vectors: np.ndarray, n: int, expr: str, search_params: dict[str, Any],
                 consistency: str) -> list[list[Candidate]]:
    """The n best documents per query vector by inner product (= cosine: vectors are normalised)."""
    fetch = min(MAX_TOPK, max(n, 10))
    pending = list(range(len(vectors)))
    out: list[list[Candidate]] = [[] for _ in range(len(vectors))]
    params = {"metric_type": "IP", "params": search_params}
    while pending:
        # partial pins this round's queries and depth (a lambda would read the loop's variables when called)
        res = with_retries(partial(
            client.search, name, data=[vectors[i].tolist() for i in pending], anns_field="vector", limit=fetch,
            filter=expr, search_params=params, output_fields=["doc_id"], consistency_level=consistency), "search")
        again = []
        for qi, hits in zip(pending, res):
            found = best_per_document(hits, n)
            out[qi] = found
            if len(found) < n and len(hits) >= fetch and fetch < MAX_TOPK:
                again.append(qi)  # chunks of a few documents crowded the others out
        pending = again
        fetch = min(MAX_TOPK, fetch * 4)
    return out


def bm25_search(client: Any, name: str, text: str, n: int, expr: str, consistency: str) -> list[Candidate]:
    """The n best documents for a query by Milvus' BM25 (scores positive, higher is better)."""
    fetch = min(MAX_TOPK, n * 2)
    while True:
        res = with_retries(partial(
            client.search, name, data=[text], anns_field="sparse", limit=fetch, filter=expr,
            search_params={"metric_type": "BM25"}, output_fields=["doc_id"], consistency_level=consistency),
            "search BM25")
        hits = list(res[0])
        # Milvus Lite reports BM25 as a negated distance; a cluster as the (positive) score.
        if any(h["distance"] < 0 for h in hits):
            hits = [dict(h, distance=-h["distance"]) for h in hits]
        found = best_per_document(hits, n)
        if len(found) >= n or len(hits) < fetch or fetch >= MAX_TOPK:
            return found
        fetch = min(MAX_TOPK, fetch * 4)


def best_per_document(hits: Iterable[dict[str, Any]], n: int) -> list[Candidate]:
    seen: set[str] = set()
    found: list[Candidate] = []
    for h in hits:
        doc = h["entity"]["doc_id"]
        if doc in seen:
            continue
        seen.add(doc)
        found.append(Candidate(doc, int(h["id"] if "id" in h else h["pk"]), float(h["distance"])))
        if len(found) == n:
            break
    return found
