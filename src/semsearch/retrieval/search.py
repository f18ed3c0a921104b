"""The search pipeline: candidates (dense, lexical) -> fusion -> rerank -> threshold/MMR -> hits."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..filters import Node, combine, parse_where, parse_where_document, to_sql
from . import Candidate
from .fusion import FUSIONS, adaptive, matched_share, rrf, weighted
from .lexical import match_expression, tokenize

if TYPE_CHECKING:
    from ..collection import Collection, Hit

MODES = ("dense", "lexical", "hybrid")


@dataclass
class SearchOptions:
    """Validated search options (see :meth:`Collection.search` for their meaning)."""

    k: int
    mode: str
    filter: Node | None = None
    fusion: str = "adaptive"
    alpha: float = 0.7
    rrf_k: float = 60.0
    candidates: int = 100
    rerank: str | None = None
    rerank_top: int = 50
    threshold: float | None = None
    mmr: float | None = None

    @classmethod
    def checked(
        cls, *, k: int, where: Any, where_document: Any, mode: str | None, has_text: bool, fusion: str,
        alpha: float, rrf_k: float, candidates: int, rerank: str | None, rerank_top: int,
        threshold: float | None, mmr: float | None,
    ) -> SearchOptions:
        """Options with every value checked; raises InvalidInputError naming the bad one."""
        node = combine(parse_where(where), parse_where_document(where_document))
        if mode is None:
            mode = "hybrid" if has_text else "dense"
        if mode not in MODES:
            raise InvalidInputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if not has_text and mode != "dense":
            raise InvalidInputError(f"mode {mode!r} needs query text; embeddings can only be searched with mode='dense'")
        if fusion not in FUSIONS:
            raise InvalidInputError(f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}")
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
            raise InvalidInputError(f"alpha is the dense weight, between 0 and 1; got {alpha!r}")
        if not (isinstance(rrf_k, (int, float)) and rrf_k >= 0 and math.isfinite(rrf_k)):
            raise InvalidInputError(f"rrf_k must be a number >= 0 (60 is usual); got {rrf_k!r}")
        for name, value in (("candidates", candidates), ("rerank_top", rerank_top)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a whole number of at least 1, got {value!r}")
        if threshold is not None and not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
            raise InvalidInputError(f"threshold must be a number, got {threshold!r}")
        if mmr is not None and not (isinstance(mmr, (int, float)) and 0.0 <= mmr <= 1.0):
            raise InvalidInputError(f"mmr is a lambda between 0 (diverse) and 1 (relevant only); got {mmr!r}")
        if rerank is not None and (not isinstance(rerank, str) or not rerank.strip()):
            raise InvalidInputError(f"rerank must be a CrossEncoder model name or path, got {rerank!r}")
        return cls(k, mode, node, fusion, float(alpha), float(rrf_k), candidates, rerank, rerank_top,
                   None if threshold is None else float(threshold), None if mmr is None else float(mmr))


@dataclass
class Ranked:
    """A document on its way through the stages: its chosen chunk and every stage's scores."""

    doc_id: str
    chunk_id: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)


def run_search(col: Collection, texts: list[str] | None, vectors: np.ndarray | None, opts: SearchOptions) -> list[list[Hit]]:
    """Run the whole pipeline for a batch of queries; one list of hits per query."""
    n_queries = len(texts) if texts is not None else len(vectors)  # type: ignore[arg-type]
    allow = None
    allow_sql = None
    if opts.filter is not None:
        allow = col.store.filtered_chunk_ids(opts.filter)
        allow_sql = to_sql(opts.filter)
        if len(allow) == 0:
            return [[] for _ in range(n_queries)]
    # Fusion and MMR need a pool of candidates per retriever; a single retriever needs only k
    # (or what the reranker reads).
    wide = opts.mode == "hybrid" or opts.mmr is not None
    pool = max(opts.candidates if wide else opts.k, opts.k, opts.rerank_top if opts.rerank else 0)
    dense = col._dense_candidates(vectors, pool, allow) if opts.mode != "lexical" else [[] for _ in range(n_queries)]
    if opts.mode != "dense":
        assert texts is not None
        lexical = [lexical_candidates(col, t, pool, allow, allow_sql) for t in texts]
    else:
        lexical = [[] for _ in range(n_queries)]
    return rank_candidates(col, texts, dense, lexical, opts)


def rank_candidates(
    col: Any, texts: list[str] | None, dense: list[list[Candidate]], lexical: list[list[Candidate]], opts: SearchOptions
) -> list[list[Hit]]:
    """The stages after retrieval, shared by every backend: fuse, rerank, threshold, MMR, hits."""
    ranked = [
        _fuse(col, texts[i] if texts is not None else None, dense[i], lexical[i], opts) for i in range(len(dense))
    ]
    if opts.rerank:
        from .rerank import rerank_ranked

        rerank_ranked(col, texts, ranked, opts.rerank, opts.rerank_top)  # type: ignore[arg-type]
    results = []
    for query_ranked in ranked:
        if opts.threshold is not None:
            query_ranked = [r for r in query_ranked if r.score >= opts.threshold]
        if opts.mmr is not None:
            from .mmr import mmr_order

            query_ranked = mmr_order(col, query_ranked, opts.mmr, opts.k)
        results.append(query_ranked[: opts.k])
    return _to_hits(col, results)


def lexical_candidates(
    col: Collection, text: str, n: int, allow: np.ndarray | None, allow_sql: tuple[str, list[Any]] | None
) -> list[Candidate]:
    """The n best documents for a query by BM25 (each through its best chunk).

    Scored in memory when the collection holds its BM25 there (retrieval/bm25.py), else by
    SQLite FTS5; both give the same scores. ``allow`` and ``allow_sql`` are one filter as
    chunk ids and as SQL.
    """
    terms = tokenize(text)
    if not terms:
        return []
    snapshot = col.lexical.current()
    if snapshot is not None:
        def search(limit: int) -> list[tuple[int, float]]:
            return snapshot.search(terms, limit, allow)
    else:
        expression = match_expression(text)

        def search(limit: int) -> list[tuple[int, float]]:
            started = time.perf_counter()
            rows = col.store.lexical_search(expression, limit, allow_sql)  # type: ignore[arg-type]
            col.lexical.spent(time.perf_counter() - started)
            return rows

    limit = n * 2
    while True:
        rows = search(limit)
        docs = col.store.chunk_documents([r[0] for r in rows])
        seen: set[str] = set()
        found: list[Candidate] = []
        for cid, score in rows:
            doc = docs.get(cid)
            if doc is None or doc in seen:
                continue
            seen.add(doc)
            found.append(Candidate(doc, cid, score))
            if len(found) == n:
                return found
        if len(rows) < limit:
            return found
        limit *= 4


def _fuse(col: Collection, text: str | None, dense: list[Candidate], lexical: list[Candidate], opts: SearchOptions) -> list[Ranked]:
    by_doc: dict[str, Ranked] = {}
    for name, cands in (("dense", dense), ("lexical", lexical)):
        for rank, c in enumerate(cands, 1):
            r = by_doc.get(c.doc_id)
            if r is None:  # the dense retriever's chunk is kept when both found the document
                r = by_doc[c.doc_id] = Ranked(c.doc_id, c.chunk_id, c.score)
            r.scores[name] = c.score
            r.scores[f"{name}_rank"] = float(rank)
    if opts.mode != "hybrid":
        return list(by_doc.values())
    if opts.fusion == "rrf":
        fused = rrf(dense, lexical, opts.rrf_k)
    elif opts.fusion == "weighted":
        fused = weighted(dense, lexical, opts.alpha)
    else:
        fused, weight = adaptive(dense, lexical, text or "", col.embedder.plain_tokenizer, _lexical_match(col, text or "", lexical))
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


def _lexical_match(col: Collection, text: str, lexical: list[Candidate]) -> float:
    """The idf-weighted share of the query's terms that BM25's best hit contains (0 if none)."""
    if not lexical:
        return 0.0
    terms = tokenize(text)
    memory = getattr(col, "lexical", None)  # the Milvus backend keeps its statistics in Milvus
    snapshot = memory.current() if memory is not None else None
    if snapshot is not None:
        best = col.store.lexical_tokens(np.array([lexical[0].chunk_id]))
        doc_terms = set(best[0][1].split()) if best else set()
        return matched_share(terms, doc_terms, snapshot.term_frequencies(terms), snapshot.count)
    frequencies, total, doc_terms = col.store.lexical_term_statistics(terms, lexical[0].chunk_id)
    return matched_share(terms, doc_terms, frequencies, total)


def _to_hits(col: Collection, results: list[list[Ranked]]) -> list[list[Hit]]:
    from ..collection import Hit

    chunk_ids = sorted({r.chunk_id for rs in results for r in rs})
    chunks = col.store.chunks(chunk_ids)
    out = []
    for rs in results:
        hits = []
        for r in rs:
            c = chunks.get(r.chunk_id)
            if c is None:  # deleted while we searched
                continue
            hits.append(Hit(c.doc_id, float(r.score), c.text, c.metadata, c.source, c.position, c.start, c.end, dict(r.scores)))
        out.append(hits)
    return out
