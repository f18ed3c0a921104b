"""The ranking stages of a search: fusion -> relevance -> rerank -> threshold/MMR -> ranking.

Data in, data out: each query's candidates and what was read about them arrive as a
:class:`~semsearch.types.Retrieved` (one engine call made them, :meth:`semsearch.engine.Engine.retrieve`);
the stages (:mod:`.fusion`, :mod:`.calibration`, :mod:`.rerank`, :mod:`.mmr`) never touch a
collection or an engine. :func:`plan_for` says what a search must retrieve for its options.

Every candidate's ``score`` becomes its calibrated relevance in [0, 1] (the same meaning for
every query and collection, :mod:`.calibration`), kept non-increasing along the fused order;
the fused score stays in ``scores["hybrid"]``, the raw ones in ``scores["dense"]`` (cosine)
and ``scores["lexical"]`` (BM25). After reranking, the score is the cross-encoder's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..lexical import tokenize
from ..types import Candidate, RetrievalPlan, Retrieved, TermStatistics
from . import calibration
from .fusion import dense_weight, matched_share, rrf
from .options import SearchOptions
from .ranked import Ranked

#: Reranks the head of each query's ranking: (query texts, heads, chunk id -> passage text) -> rankings.
Reranker = Callable[[list[str], list[list["Ranked"]], dict[int, str]], list[list["Ranked"]]]


def plan_for(texts: Sequence[str] | None, vectors: np.ndarray | None, opts: SearchOptions) -> RetrievalPlan:
    """What the engine must return for these queries and options, in one call."""
    # Fusion and MMR need a pool of candidates per retriever; a single retriever needs only k
    # (or what the reranker reads).
    wide = opts.mode == "hybrid" or opts.mmr is not None
    pool = max(opts.candidates if wide else opts.k, opts.k, rerank_depth(opts) if opts.rerank else 0)
    dense = pool if opts.mode != "lexical" else 0
    lexical = pool if opts.mode != "dense" else 0
    # Dense evidence needs every candidate's cosine: those only BM25 found are scored from their
    # stored vectors (not in lexical mode, whose weight is 0); MMR compares every candidate's.
    vectors_of = "all" if opts.mmr is not None else "lexical" if opts.mode == "hybrid" else "none"
    return RetrievalPlan(texts=texts, vectors=vectors, where=opts.filter, dense=dense, lexical=lexical,
                         statistics=opts.mode != "dense", vectors_of=vectors_of, chunks=bool(opts.rerank))


def rank(
    retrieved: Sequence[Retrieved], texts: Sequence[str] | None, vectors: np.ndarray | None, opts: SearchOptions, *,
    tokenizer: Callable[[], object], bounds: tuple[float, float], reranker: Callable[[], Reranker] | None = None,
) -> list[list[Ranked]]:
    """Run every stage for a batch of queries; one ranking per query.

    ``retrieved`` is what :func:`plan_for`'s plan returned; ``tokenizer`` gives the embedding
    model's tokenizer (adaptive fusion reads how much of a query it knows; asked for only then);
    ``bounds`` are the model's cosine bounds (:func:`calibration.cosine_bounds`); ``reranker``
    gives the cross-encoder stage when ``opts.rerank`` is set.
    """
    ranked = []
    for i, got in enumerate(retrieved):
        text = texts[i] if texts is not None else None
        stats = got.statistics if opts.mode != "dense" else None
        if opts.mode != "hybrid":
            weight = 1.0 if opts.mode == "dense" else 0.0
        elif opts.fusion == "weighted":
            weight = opts.alpha
        else:  # adaptive; RRF fuses by rank but its relevance needs the evidence's weights too
            weight = dense_weight(text or "", tokenizer(), lexical_match(text or "", stats),
                                  lexical_found=stats is not None and bool(stats.hit_terms))
        query_ranked = fuse(got.dense, got.lexical, opts, weight)
        ranked.append(calibrate(text, None if vectors is None else vectors[i], query_ranked, weight, stats, bounds,
                                got, by_evidence=not (opts.mode == "hybrid" and opts.fusion == "rrf")))
    if opts.rerank:
        assert texts is not None and reranker is not None
        depth = rerank_depth(opts)
        heads = [rs[:depth] for rs in ranked]
        passages = {cid: c.text for got in retrieved for cid, c in got.chunks.items()}
        # Only reranked candidates go on: the rest were never scored on the cross-encoder's scale.
        ranked = reranker()(list(texts), heads, passages)
    results = []
    for got, query_ranked in zip(retrieved, ranked):
        if opts.threshold is not None:
            query_ranked = [r for r in query_ranked if r.score >= opts.threshold]
        if opts.mmr is not None:
            from .mmr import mmr_order

            query_ranked = mmr_order(query_ranked, got.vectors, opts.mmr, opts.k)
        results.append(query_ranked[: opts.k])
    return results


def rerank_depth(opts: SearchOptions) -> int:
    """How many candidates per query the cross-encoder reads: ``rerank_top``, and never fewer than k."""
    return max(opts.rerank_top, opts.k)


def fuse(dense: Sequence[Candidate], lexical: Sequence[Candidate], opts: SearchOptions, weight: float) -> list[Ranked]:
    """The candidates of both lists (or the one the mode uses), each document once, with each
    retriever's score and rank; in RRF's order for ``fusion="rrf"`` (the others are ordered by
    their evidence, :func:`calibrate`).

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
    if opts.mode == "hybrid":
        for r in by_doc.values():
            r.scores["dense_weight"] = weight
    if opts.mode != "hybrid" or opts.fusion != "rrf":
        return list(by_doc.values())
    for doc, score in rrf(dense, lexical, opts.rrf_k).items():
        by_doc[doc].score = score
        by_doc[doc].scores["hybrid"] = score
    # Ties (common in RRF) are broken by the better rank in either list, then by id.
    return sorted(by_doc.values(), key=lambda r: (-r.score, best_rank(r), r.doc_id))


def best_rank(r: Ranked) -> float:
    return min(r.scores.get("dense_rank", math.inf), r.scores.get("lexical_rank", math.inf))


def lexical_match(text: str, stats: TermStatistics | None) -> float:
    """The idf-weighted share of the query's terms that BM25's best hit in the collection contains (0 if none)."""
    if stats is None or not stats.hit_terms:
        return 0.0
    return matched_share(tokenize(text), stats.hit_terms, stats.frequencies, stats.total)


def calibrate(text: str | None, vector: np.ndarray | None, ranked: list[Ranked], weight: float,
              stats: TermStatistics | None, bounds: tuple[float, float], got: Retrieved, *,
              by_evidence: bool = True) -> list[Ranked]:
    """The candidates with their calibrated relevance as ``score`` (and ``scores["relevance"]``).

    Each candidate's evidence comes from itself and the query alone (its cosine, its BM25 over
    the query's reference, the query's weight), never from which other documents were found, so
    a document scores and ranks the same with or without a filter it passes. ``by_evidence``
    orders them by it (a convex combination with fixed bounds: the model's cosine bounds and the
    query's BM25 reference), equal relevances by the evidence before clipping to [0, 1]
    (``scores["hybrid"]`` in hybrid mode), then by id. Without it (RRF) the given order is kept
    and the relevance made non-increasing along it.

    Dense evidence needs every candidate's cosine: the dense retriever gave it for its own
    candidates; those only BM25 found are scored from their stored vectors (``got.vectors``).
    Lexical evidence is BM25 over the query's reference score; an engine that cannot tell term
    frequencies (Milvus) gives the unweighted share of the query's terms each candidate's chunk
    (``got.chunks``) holds.
    """
    if not ranked:
        return ranked
    cosine = np.array([r.scores.get("dense", math.nan) for r in ranked], dtype=np.float64)
    if vector is not None and weight > 0:
        for i, c in enumerate(cosine):
            stored = got.vectors.get(ranked[i].chunk_id) if math.isnan(c) else None
            if stored is not None:
                cosine[i] = float(stored @ vector)
    bm25 = np.array([r.scores.get("lexical", math.nan) for r in ranked], dtype=np.float64)
    reference = 0.0
    terms = list(dict.fromkeys(tokenize(text))) if text else []
    if stats is not None and weight < 1:
        if stats.total > 0:
            reference = calibration.bm25_reference([stats.frequencies.get(t, 0) for t in terms], stats.total)
        else:
            bm25 = np.array([_term_share(terms, got.chunks[r.chunk_id].text) if r.chunk_id in got.chunks
                             else math.nan for r in ranked], dtype=np.float64)
            reference = 1.0
    if by_evidence:
        relevance = calibration.absolute_relevance(cosine, bm25, weight, reference, bounds=bounds)
        combined = calibration.combined_evidence(cosine, bm25, weight, reference, bounds=bounds)
        # By the relevance itself (so a threshold keeps a prefix), equal ones (clipped at 0 or 1) by
        # the evidence before clipping, then by id.
        order = sorted(range(len(ranked)), key=lambda i: (-relevance[i], -combined[i], ranked[i].doc_id))
        ranked = [ranked[i] for i in order]
        relevance, combined = relevance[order], combined[order]
        if ranked[0].scores.get("dense_weight") is not None:
            for r, value in zip(ranked, combined.tolist()):
                r.scores["hybrid"] = value
    else:
        relevance = calibration.relevance(cosine, bm25, weight, reference, bounds=bounds)
    for r, value in zip(ranked, relevance.tolist()):
        r.score = value
        r.scores["relevance"] = value
    return ranked


def _term_share(terms: Sequence[str], text: str) -> float:
    held = set(tokenize(text))
    return sum(t in held for t in terms) / len(terms) if terms else 0.0
