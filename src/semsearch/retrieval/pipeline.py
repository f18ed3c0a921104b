"""The search pipeline: candidates (dense, lexical) -> fusion -> relevance -> rerank ->
threshold/MMR -> ranking.

Written once for every backend: the engine supplies candidates and the few reads the stages
need (term statistics, passages, vectors); the stages themselves (:mod:`.fusion`,
:mod:`.calibration`, :mod:`.rerank`, :mod:`.mmr`) take data and return data.

Every candidate's ``score`` becomes its calibrated relevance in [0, 1] (the same meaning for
every query and collection, :mod:`.calibration`), kept non-increasing along the fused order;
the fused score stays in ``scores["hybrid"]``, the raw ones in ``scores["dense"]`` (cosine)
and ``scores["lexical"]`` (BM25). After reranking, the score is the cross-encoder's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..engine import Engine
from ..lexical import tokenize
from ..types import Candidate, TermStatistics
from . import calibration
from .fusion import dense_weight, matched_share, rrf, weighted
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
    assert engine.manifest is not None
    bounds = calibration.cosine_bounds(engine.manifest["model"])
    ranked = []
    for i in range(n_queries):
        text = texts[i] if texts is not None else None
        stats = term_statistics(engine, text, lexical[i]) if opts.mode != "dense" else None
        if opts.mode != "hybrid":
            weight = 1.0 if opts.mode == "dense" else 0.0
        elif opts.fusion == "weighted":
            weight = opts.alpha
        else:  # adaptive; RRF fuses by rank but its relevance needs the evidence's weights too
            weight = dense_weight(dense[i], lexical[i], text or "", tokenizer(),
                                  lexical_match(text or "", lexical[i], stats))
        query_ranked = fuse(dense[i], lexical[i], opts, weight)
        calibrate(engine, text, None if vectors is None else vectors[i], query_ranked, weight, stats, bounds)
        ranked.append(query_ranked)
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


def fuse(dense: Sequence[Candidate], lexical: Sequence[Candidate], opts: SearchOptions, weight: float) -> list[Ranked]:
    """One ranking from the two candidate lists (or the one the mode uses), best first.

    ``weight`` is the query's dense weight (adaptive fusion's, 1 for dense, 0 for lexical).
    """
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
    else:
        fused = weighted(dense, lexical, weight)
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


def term_statistics(engine: Engine, text: str | None, lexical: Sequence[Candidate]) -> TermStatistics | None:
    """The query terms' document frequencies and the terms of BM25's best hit (None without a lexical hit)."""
    if not lexical or not text:
        return None
    return engine.term_statistics(tokenize(text), lexical[0].chunk_id)


def lexical_match(text: str, lexical: Sequence[Candidate], stats: TermStatistics | None) -> float:
    """The idf-weighted share of the query's terms that BM25's best hit contains (0 if none)."""
    if not lexical or stats is None:
        return 0.0
    return matched_share(tokenize(text), stats.hit_terms, stats.frequencies, stats.total)


def calibrate(engine: Engine, text: str | None, vector: np.ndarray | None, ranked: list[Ranked], weight: float,
              stats: TermStatistics | None, bounds: tuple[float, float]) -> None:
    """Set each candidate's score to its calibrated relevance (``scores["relevance"]``), in place.

    Dense evidence needs every candidate's cosine: the dense retriever gave it for its own
    candidates; those only BM25 found are scored from their stored vectors. Lexical evidence
    is BM25 over the query's reference score; an engine that cannot tell term frequencies
    (Milvus) gives the unweighted share of the query's terms each candidate's chunk holds.
    """
    if not ranked:
        return
    cosine = np.array([r.scores.get("dense", math.nan) for r in ranked], dtype=np.float64)
    missing = [i for i, c in enumerate(cosine) if math.isnan(c)]
    if vector is not None and missing and weight > 0:
        ids, vecs = engine.vectors(np.array([ranked[i].chunk_id for i in missing], dtype=np.int64))
        found = dict(zip(ids.tolist(), (vecs @ vector).tolist()))
        for i in missing:
            cosine[i] = found.get(ranked[i].chunk_id, math.nan)
    bm25 = np.array([r.scores.get("lexical", math.nan) for r in ranked], dtype=np.float64)
    reference = 0.0
    terms = list(dict.fromkeys(tokenize(text))) if text else []
    if stats is not None and weight < 1:
        if stats.total > 0:
            reference = calibration.bm25_reference([stats.frequencies.get(t, 0) for t in terms], stats.total)
        else:
            chunks = engine.chunks([r.chunk_id for r in ranked])
            bm25 = np.array([_term_share(terms, chunks[r.chunk_id].text) if r.chunk_id in chunks else math.nan
                             for r in ranked], dtype=np.float64)
            reference = 1.0
    relevance = calibration.relevance(cosine, bm25, weight, reference, bounds=bounds)
    for r, value in zip(ranked, relevance.tolist()):
        r.score = value
        r.scores["relevance"] = value


def _term_share(terms: Sequence[str], text: str) -> float:
    held = set(tokenize(text))
    return sum(t in held for t in terms) / len(terms) if terms else 0.0
