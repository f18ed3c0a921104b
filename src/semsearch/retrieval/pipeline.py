"""The search pipeline: candidates (dense, lexical) -> fusion -> rerank -> threshold/MMR -> ranking.

Written once for every backend: the engine supplies candidates and the few reads the stages
need (term statistics, passages, vectors); the stages themselves (:mod:`.fusion`,
:mod:`.rerank`, :mod:`.mmr`) take data and return data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..engine import Engine
from ..lexical import tokenize
from ..types import Candidate
from .fusion import adaptive, matched_share, rrf, weighted
from .options import SearchOptions


@dataclass
class Ranked:
    """A document on its way through the stages: its chosen chunk and every stage's scores."""

    doc_id: str
    chunk_id: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)


def rank(
    engine: Engine, texts: list[str] | None, vectors: np.ndarray | None, opts: SearchOptions,
    tokenizer: Callable[[], object], device: str | None = None,
) -> list[list[Ranked]]:
    """Run every stage for a batch of queries (texts and/or their vectors); one ranking per query.

    ``tokenizer`` gives the embedding model's tokenizer (adaptive fusion reads how much of a
    query it knows; asked for only then); ``device`` is where a cross-encoder runs.
    """
    n_queries = len(texts) if texts is not None else len(vectors)  # type: ignore[arg-type]
    scope = engine.scope(opts.filter)
    if scope.empty:
        return [[] for _ in range(n_queries)]
    # Fusion and MMR need a pool of candidates per retriever; a single retriever needs only k
    # (or what the reranker reads).
    wide = opts.mode == "hybrid" or opts.mmr is not None
    pool = max(opts.candidates if wide else opts.k, opts.k, rerank_depth(opts) if opts.rerank else 0)
    none: list[list[Candidate]] = [[] for _ in range(n_queries)]
    dense = engine.dense_candidates(vectors, pool, scope) if opts.mode != "lexical" else none  # type: ignore[arg-type]
    lexical = engine.lexical_candidates(texts, pool, scope) if opts.mode != "dense" else none  # type: ignore[arg-type]
    ranked = [
        fuse(engine, texts[i] if texts is not None else None, dense[i], lexical[i], opts, tokenizer)
        for i in range(n_queries)
    ]
    if opts.rerank:
        from .rerank import load_cross_encoder, rerank_heads

        assert texts is not None
        depth = rerank_depth(opts)
        heads = [rs[:depth] for rs in ranked]
        chunks = engine.chunks(sorted({r.chunk_id for rs in heads for r in rs}))
        passages = {cid: c.text for cid, c in chunks.items()}
        # Only reranked candidates go on: the rest were never scored on the cross-encoder's scale.
        ranked = rerank_heads(load_cross_encoder(opts.rerank, device), texts, heads, passages)
    results = []
    for query_ranked in ranked:
        if opts.threshold is not None:
            query_ranked = [r for r in query_ranked if r.score >= opts.threshold]
        if opts.mmr is not None:
            from .mmr import mmr_order

            ids, vecs = engine.vectors(np.array([r.chunk_id for r in query_ranked], dtype=np.int64))
            query_ranked = mmr_order(query_ranked, dict(zip(ids.tolist(), vecs)), opts.mmr, opts.k)
        results.append(query_ranked[: opts.k])
    return results


def rerank_depth(opts: SearchOptions) -> int:
    """How many candidates per query the cross-encoder reads: ``rerank_top``, and never fewer than k."""
    return max(opts.rerank_top, opts.k)


def fuse(
    engine: Engine, text: str | None, dense: Sequence[Candidate], lexical: Sequence[Candidate], opts: SearchOptions,
    tokenizer: Callable[[], object],
) -> list[Ranked]:
    """One ranking from the two candidate lists (or the one the mode uses), best first."""
    by_doc: dict[str, Ranked] = {}
    for name, cands in (("dense", dense), ("lexical", lexical)):
        for rank_, c in enumerate(cands, 1):
            r = by_doc.get(c.doc_id)
            if r is None:  # the dense retriever's chunk is kept when both found the document
                r = by_doc[c.doc_id] = Ranked(c.doc_id, c.chunk_id, c.score)
            r.scores[name] = c.score
            r.scores[f"{name}_rank"] = float(rank_)
    if opts.mode != "hybrid":
        return list(by_doc.values())
    if opts.fusion == "rrf":
        fused = rrf(dense, lexical, opts.rrf_k)
    elif opts.fusion == "weighted":
        fused = weighted(dense, lexical, opts.alpha)
    else:
        fused, weight = adaptive(dense, lexical, text or "", tokenizer(), lexical_match(engine, text or "", lexical))
        for r in by_doc.values():
            r.scores["dense_weight"] = weight
    for doc, score in fused.items():
        by_doc[doc].score = score
        by_doc[doc].scores["hybrid"] = score

    # Ties (common in RRF) are broken by the better rank in either list, then by id.
    def order(r: Ranked) -> tuple[float, float, str]:
        best = min(r.scores.get("dense_rank", math.inf), r.scores.get("lexical_rank", math.inf))
        return (-r.score, best, r.doc_id)

    return sorted(by_doc.values(), key=order)


def lexical_match(engine: Engine, text: str, lexical: Sequence[Candidate]) -> float:
    """The idf-weighted share of the query's terms that BM25's best hit contains (0 if none)."""
    if not lexical:
        return 0.0
    terms = tokenize(text)
    stats = engine.term_statistics(terms, lexical[0].chunk_id)
    return matched_share(terms, stats.hit_terms, stats.frequencies, stats.total)
