"""Candidates from Milvus: dense (its vector index) and lexical (its BM25 function), one hit per
document (its best chunk), fetching deeper when chunks of a few documents crowd out others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np

from ...filters import Contains
from ...types import Candidate, StoredChunk
from .client import MAX_TOPK, with_retries
from .filters import string_literal

# What a chunk row holds besides its key and vector; a dense search returns them with its hits.
CHUNK_FIELDS = ["doc_id", "text", "metadata", "source", "position", "chunk_start", "chunk_end"]
REMEMBER_SECONDS = 1.0


def stored_chunk(pk: int, row: dict[str, Any]) -> StoredChunk:
    return StoredChunk(int(pk), row["doc_id"], row["text"], row["metadata"] or {}, row["source"] or None,
                       int(row["position"]), int(row["chunk_start"]), int(row["chunk_end"]))


class RecentChunks:
    """The chunks this thread's last dense search returned, with their fields, so that reading the
    hits of that search costs no second round trip. Kept for REMEMBER_SECONDS (one search's
    stages read them several times) and forgotten at any write through this engine."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._generation = 0

    def forget(self) -> None:
        self._generation += 1

    def remember(self, rows: dict[int, StoredChunk]) -> None:
        self._local.value = (time.monotonic(), self._generation, rows)

    def take(self, chunk_ids: Sequence[int]) -> tuple[dict[int, StoredChunk], list[int]]:
        """(the remembered chunks among ``chunk_ids``, the ids still to read)."""
        empty: dict[int, StoredChunk] = {}
        at, generation, rows = getattr(self._local, "value", (0.0, -1, empty))
        if generation != self._generation or time.monotonic() - at > REMEMBER_SECONDS:
            rows = empty
        return {i: rows[i] for i in chunk_ids if i in rows}, [i for i in chunk_ids if i not in rows]


def documents_containing(query_all: Callable[[str, str, list[str]], Iterator[dict[str, Any]]], docs_name: str,
                         cond: Contains) -> set[str]:
    """Ids of the documents whose text contains ``cond.text`` (case-sensitive)."""
    # ``like`` narrows the candidates (its % and _ are wildcards in Milvus Lite, so it can
    # only over-match); the exact substring test is done here on the returned text.
    if "\n" in cond.text or "\r" in cond.text:
        pattern = ""  # cannot be written in a like pattern; scan every document instead
    else:
        pattern = f"text like {string_literal('%' + cond.text + '%')}"
    return {r["doc_id"] for r in query_all(docs_name, pattern, ["doc_id", "text"]) if cond.text in r["text"]}


def _output_fields(rows: dict[int, StoredChunk] | None, stored: dict[int, np.ndarray] | None) -> list[str]:
    return (CHUNK_FIELDS if rows is not None else ["doc_id"]) + (["vector"] if stored is not None else [])


def _keep(hits: Iterable[dict[str, Any]], rows: dict[int, StoredChunk] | None,
          stored: dict[int, np.ndarray] | None) -> None:
    """Put each hit's chunk fields in ``rows`` and its stored vector in ``stored`` (those not None)."""
    for h in hits:
        key = hit_key(h)
        if rows is not None:
            rows[key] = stored_chunk(key, h["entity"])
        if stored is not None:
            stored[key] = np.asarray(h["entity"]["vector"], dtype=np.float32)


def dense_search(client: Any, name: str, vectors: np.ndarray, n: int, expr: str, search_params: dict[str, Any],
                 consistency: str, rows: dict[int, StoredChunk] | None = None,
                 stored: dict[int, np.ndarray] | None = None) -> list[list[Candidate]]:
    """The n best documents per query vector by inner product (= cosine: vectors are normalised);
    with ``rows``, every chunk returned is put there with its fields; with ``stored``, its stored
    vector (the search returns them: no second round trip)."""
    fetch = min(MAX_TOPK, max(n, 10))
    pending = list(range(len(vectors)))
    out: list[list[Candidate]] = [[] for _ in range(len(vectors))]
    params = {"metric_type": "IP", "params": search_params}
    while pending:
        # partial pins this round's queries and depth (a lambda would read the loop's variables when called)
        res = with_retries(partial(
            client.search, name, data=[vectors[i].tolist() for i in pending], anns_field="vector", limit=fetch,
            filter=expr, search_params=params, output_fields=_output_fields(rows, stored),
            consistency_level=consistency), "search")
        again = []
        for qi, hits in zip(pending, res):
            _keep(hits, rows, stored)
            found = best_per_document(hits, n)
            out[qi] = found
            if len(found) < n and len(hits) >= fetch and fetch < MAX_TOPK:
                again.append(qi)  # chunks of a few documents crowded the others out
        pending = again
        fetch = min(MAX_TOPK, fetch * 4)
    return out


def bm25_search(client: Any, name: str, text: str, n: int, expr: str, consistency: str,
                rows: dict[int, StoredChunk] | None = None,
                stored: dict[int, np.ndarray] | None = None) -> list[Candidate]:
    """The n best documents for a query by Milvus' BM25 (scores positive, higher is better); with
    ``rows``, every chunk returned is put there with its fields; with ``stored``, its stored vector."""
    fetch = min(MAX_TOPK, n * 2)
    while True:
        res = with_retries(partial(
            client.search, name, data=[text], anns_field="sparse", limit=fetch, filter=expr,
            search_params={"metric_type": "BM25"}, output_fields=_output_fields(rows, stored),
            consistency_level=consistency), "search BM25")
        hits = list(res[0])
        _keep(hits, rows, stored)
        # Milvus Lite reports BM25 as a negated distance; a cluster as the (positive) score.
        if any(h["distance"] < 0 for h in hits):
            hits = [dict(h, distance=-h["distance"]) for h in hits]
        found = best_per_document(hits, n)
        if len(found) >= n or len(hits) < fetch or fetch >= MAX_TOPK:
            return found
        fetch = min(MAX_TOPK, fetch * 4)


def hit_key(hit: dict[str, Any]) -> int:
    """A search hit's chunk key (``id`` from a cluster, ``pk`` from some Milvus Lite versions)."""
    return int(hit["id"] if "id" in hit else hit["pk"])


def best_per_document(hits: Iterable[dict[str, Any]], n: int) -> list[Candidate]:
    seen: set[str] = set()
    found: list[Candidate] = []
    for h in hits:
        doc = h["entity"]["doc_id"]
        if doc in seen:
            continue
        seen.add(doc)
        found.append(Candidate(doc, hit_key(h), float(h["distance"])))
        if len(found) == n:
            break
    return found
