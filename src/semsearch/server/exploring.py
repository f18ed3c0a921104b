"""HTTP endpoints that describe a collection's contents: ``POST /similar``, ``/duplicates``, ``/topics``.

All three are reads (no API key needed with ``public_reads``); none changes the collection
(writing topics back as metadata stays a CLI/Python action: ``semsearch topics --assign``).
Bodies forbid unknown fields like every request of the API; bad input answers 422.

- ``/similar`` ``{"id", "k"?, "where"?}`` -> ``{"collection", "id", "hits": [hit], "took_ms"}``:
  hits as ``/search`` gives them.
- ``/duplicates`` ``{"threshold"?, "text_threshold"?, "semantic"?, "where"?, "exact"?, "keep"?}``
  -> ``{"collection", "threshold", "text_threshold", "groups": [{"ids", "size", "min_score",
  "max_score", "min_text", "pairs": [{"a", "b", "score", "text"}], "keep", "delete"}], "took_ms"}``.
- ``/topics`` ``{"n"?, "where"?, "max_ids"?, "outliers"?}`` -> ``{"collection", "topics": [{"id",
  "label", "words", "size", "ids"}], "took_ms"}``: ``ids`` most central first, at most ``max_ids``
  each (``size`` counts them all); the outlier topic (id -1, label "outliers") last, if any.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..options import DUPLICATES, SIMILAR, TOPICS, over_limit
from . import models as m


class SimilarRequest(m.Request):
    id: m.DocumentId = Field(..., description="Id of the stored document to find more like (itself is left out).")
    k: int = m.option_field(SIMILAR["k"])
    where: m.Metadata | None = m.option_field(SIMILAR["where"])
    query: str = m.option_field(SIMILAR["query"])


class SimilarResponse(BaseModel):
    collection: str
    id: str
    hits: list[m.HitOut] = Field(description="The most similar documents, best first.")
    took_ms: float


class DuplicatesRequest(m.Request):
    threshold: float = m.option_field(DUPLICATES["threshold"])
    text_threshold: float | None = m.option_field(DUPLICATES["text_threshold"])
    semantic: bool = Field(False, description="Group by the cosine alone, without the textual test (text_threshold "
                                              "null does the same).")
    where: m.Metadata | None = m.option_field(DUPLICATES["where"])
    exact: bool | None = m.option_field(DUPLICATES["exact"])
    keep: str = m.option_field(DUPLICATES["keep"])


class PairOut(BaseModel):
    a: str
    b: str
    score: float = Field(description="The pair's cosine.")
    text: float | None = Field(description="The pair's textual similarity (Jaccard of word triples).")


class GroupOut(BaseModel):
    ids: list[str] = Field(description="Members, oldest first.")
    size: int
    min_score: float
    max_score: float
    min_text: float | None = Field(description="The lowest textual similarity between two members.")
    pairs: list[PairOut] = Field(description="Every pair of members (each passed the tests), highest cosine first.")
    keep: str = Field(description="The member to keep under the request's `keep` policy.")
    delete: list[str] = Field(description="The other members.")


class DuplicatesResponse(BaseModel):
    collection: str
    threshold: float
    text_threshold: float | None = Field(description="The textual test applied (null: the cosine alone).")
    groups: list[GroupOut] = Field(description="Groups of near-duplicates, largest first.")
    took_ms: float


class TopicsRequest(m.Request):
    n: int | None = m.option_field(TOPICS["n"])
    where: m.Metadata | None = m.option_field(TOPICS["where"])
    max_ids: int = Field(100, ge=0, description="At most this many document ids per topic, most central first.")
    outliers: bool = m.option_field(TOPICS["outliers"])


class TopicOut(BaseModel):
    id: int = Field(description="The topic's number (0 the largest), or -1 for the documents in no topic.")
    label: str = Field(description="The topic's first few distinctive words.")
    words: list[str] = Field(description="Its most distinctive words (class-based TF-IDF), best first.")
    size: int = Field(description="How many documents it holds.")
    ids: list[str] = Field(description="Its documents, most central first (at most max_ids).")


class TopicsResponse(BaseModel):
    collection: str
    topics: list[TopicOut] = Field(description="Topics, largest first, then the outlier topic (-1) if any.")
    took_ms: float


def explore_routes(router: APIRouter, state: Any, resolve: Callable[..., tuple[str, Any]], suffix: str) -> None:
    """Add the three endpoints to a collection router (``suffix`` keeps operation ids unique)."""
    target_dep = Depends(resolve)

    def similar_documents(body: SimilarRequest, target: tuple[str, Any] = target_dep) -> SimilarResponse:
        """More like this: the documents nearest in meaning to a stored one, from its stored vectors."""
        name, col = target
        if body.k > state.limits.max_k:
            raise over_limit("k", body.k, state.limits.max_k, "this server returns")
        started = time.perf_counter()
        hits = col.similar(body.id, k=body.k, where=body.where, query=body.query)
        return SimilarResponse(collection=name, id=body.id, hits=[m.HitOut(**h.to_dict()) for h in hits],
                               took_ms=_since(started))

    def duplicate_groups(body: DuplicatesRequest, target: tuple[str, Any] = target_dep) -> DuplicatesResponse:
        """Groups of near-duplicate documents, each with its pairwise scores and which members to delete."""
        name, col = target
        started = time.perf_counter()
        DUPLICATES["keep"].check(body.keep)
        text_threshold = None if body.semantic else body.text_threshold
        groups = col.duplicates(threshold=body.threshold, where=body.where, exact=body.exact,
                                text_threshold=text_threshold)
        return DuplicatesResponse(collection=name, threshold=body.threshold, text_threshold=text_threshold,
                                  groups=[GroupOut(**g.to_dict(body.keep)) for g in groups], took_ms=_since(started))

    def topic_list(body: TopicsRequest, target: tuple[str, Any] = target_dep) -> TopicsResponse:
        """Topics of the collection labelled by their most distinctive words, then the documents in none (-1)."""
        name, col = target
        started = time.perf_counter()
        found = col.topics(n=body.n, where=body.where, outliers=body.outliers)
        out = [TopicOut(id=t.id, label=t.label, words=t.words, size=t.size, ids=t.ids[: body.max_ids]) for t in found]
        return TopicsResponse(collection=name, topics=out, took_ms=_since(started))

    for path, endpoint, model in (
        ("/similar", similar_documents, SimilarResponse),
        ("/duplicates", duplicate_groups, DuplicatesResponse),
        ("/topics", topic_list, TopicsResponse),
    ):
        op = f"{endpoint.__name__}{suffix}"
        router.add_api_route(path, endpoint, methods=["POST"], response_model=model, name=op, operation_id=op)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
