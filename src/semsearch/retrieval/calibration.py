"""Calibrated relevance: one score in [0, 1] with the same meaning for every query and collection.

Today's hybrid score is min-max normalised per query, so every query's best hit scores about
1.0, however poor it is. This module scores each candidate by *absolute* evidence instead:

- dense evidence: the candidate's cosine mapped linearly from the model's "unrelated" level
  (``cosine_floor``: at or below it, 0) to its "clearly about the query" level
  (``cosine_full``: at or above it, 1). Both are fixed per model (:data:`MODEL_COSINE_BOUNDS`).
- lexical evidence: the candidate's BM25 score divided by what a document of average length
  holding each distinct query term once would score (the sum of the terms' idf), clipped to 1:
  1 means the document holds all of the query's information as BM25 weighs it, 0.3 that it
  holds only common words of it. Query terms the collection never saw count in the divisor
  (the query asks for something no document has).
- a candidate's evidence = ``dense_weight * dense + (1 - dense_weight) * lexical``, with the
  query's adaptive dense weight of :func:`semsearch.retrieval.fusion.dense_weight` (1 in dense
  mode, 0 in lexical mode): a convex combination with fixed bounds, as Bruch, Gai and Ingber
  recommend ("An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023), so a weak
  best match scores low whatever the query.
- relevance = that evidence made non-increasing along the ranking (:func:`ordered_relevance`).
  The ranking stays today's fused order: ordering by the evidence itself was measured and
  cost msmarco-5k 0.007-0.016 nDCG@10 at every cosine bound tried, while keeping the order costs
  nothing and separates answerable from unanswerable queries as well.

bench/RESULTS.md ("Calibrated relevance") has the study behind the constants and the threshold.

Everything here is data in, data out: numbers per candidate and per query, no collection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..options import NO_MATCH_THRESHOLD

#: FTS5's BM25 parameters (semsearch's in-memory BM25 reproduces them).
K1 = 1.2
#: (cosine_floor, cosine_full) per embedding model: cosine at which dense evidence starts above 0
#: and reaches 1. Chosen in the calibration study on judged and unanswerable queries, where the
#: separation barely moves for floors 0.0-0.3 and fulls 0.6-0.8 (bench/RESULTS.md).
MODEL_COSINE_BOUNDS: dict[str, tuple[float, float]] = {
    "sentence-transformers/all-MiniLM-L6-v2": (0.2, 0.7),
}
#: For a model without measured bounds: cosine's own range above "orthogonal" (the ranking is
#: the same; what a given score means, and so the default threshold, is untested there).
GENERIC_COSINE_BOUNDS = (0.0, 1.0)


def cosine_bounds(model: str) -> tuple[float, float]:
    """The (floor, full) cosine bounds of a model (generic (0, 1) when not fitted)."""
    return MODEL_COSINE_BOUNDS.get(model, GENERIC_COSINE_BOUNDS)


def bm25_idf(document_frequency: int, total: int) -> float:
    """FTS5's idf: ``ln((N - n + 0.5) / (n + 0.5))``, at least 1e-6."""
    idf = math.log((total - document_frequency + 0.5) / (document_frequency + 0.5))
    return idf if idf > 0.0 else 1e-6


def lucene_idf(document_frequency: int, total: int) -> float:
    """Lucene's (and Milvus' BM25 function's) idf: ``ln(1 + (N - n + 0.5) / (n + 0.5))``."""
    return math.log(1.0 + (total - document_frequency + 0.5) / (document_frequency + 0.5))


def bm25_reference(
    document_frequencies: Sequence[int], total: int, idf: Callable[[int, int], float] = bm25_idf
) -> float:
    """What a document of average length holding each distinct query term once scores in BM25:
    the sum of the terms' idf (``tf (k1 + 1) / (tf + k1) = 1`` at ``tf = 1``, average length).

    ``document_frequencies`` has one entry per *distinct* query term (0 for a term no chunk
    holds); ``total`` is the number of chunks. ``idf`` is the BM25 implementation's own:
    :func:`bm25_idf` for FTS5 and the in-memory BM25, :func:`lucene_idf` for Milvus. Returns
    0.0 for a query without terms.
    """
    return float(sum(idf(int(n), int(total)) for n in document_frequencies))


def bm25_ceiling(document_frequencies: Sequence[int], total: int, k1: float = K1) -> float:
    """The highest BM25 score the query could reach: ``sum idf * (k1 + 1)`` (tf -> infinity)."""
    return bm25_reference(document_frequencies, total) * (k1 + 1.0)


def dense_evidence(cosine: np.ndarray | Sequence[float], floor: float, full: float, *,
                   clip: bool = True) -> np.ndarray:
    """Cosines mapped linearly to [0, 1]: ``floor`` and below -> 0, ``full`` and above -> 1
    (beyond them only with ``clip=False``); NaN (a cosine the caller does not have) -> 0."""
    c = np.nan_to_num(np.asarray(cosine, dtype=np.float64), nan=floor)
    out = (c - floor) / (full - floor)
    return np.clip(out, 0.0, 1.0) if clip else out


def lexical_evidence(bm25: np.ndarray | Sequence[float], reference: float, *, clip: bool = True) -> np.ndarray:
    """BM25 scores over ``reference`` (:func:`bm25_reference`), clipped to [0, 1] unless
    ``clip=False``; NaN -> 0 (a candidate BM25 did not return)."""
    s = np.nan_to_num(np.asarray(bm25, dtype=np.float64), nan=0.0)
    if reference <= 1e-9:  # a query without terms (each real term adds at least 1e-6)
        return np.zeros_like(s)
    return np.clip(s / reference, 0.0, 1.0) if clip else s / reference


def absolute_relevance(
    cosine: np.ndarray | Sequence[float],
    bm25: np.ndarray | Sequence[float],
    dense_weight: float,
    reference: float,
    *,
    bounds: tuple[float, float] = MODEL_COSINE_BOUNDS["sentence-transformers/all-MiniLM-L6-v2"],
) -> np.ndarray:
    """Each candidate's own evidence in [0, 1]: ``w * dense + (1 - w) * lexical`` (any order).

    Args:
        cosine: each candidate's dense cosine (its best chunk's), best exact for every candidate
            (BM25-only ones included); NaN where unknown counts as no dense evidence.
        bm25: each candidate's BM25 score; NaN where BM25 did not return it.
        dense_weight: the query's adaptive dense weight in [0, 1] (1 in dense mode, 0 lexical).
        reference: :func:`bm25_reference` of the query's distinct terms.
        bounds: the model's (cosine_floor, cosine_full), :func:`cosine_bounds`.
    """
    return _convex(cosine, bm25, dense_weight, reference, bounds, clip=True)


def combined_evidence(
    cosine: np.ndarray | Sequence[float],
    bm25: np.ndarray | Sequence[float],
    dense_weight: float,
    reference: float,
    *,
    bounds: tuple[float, float] = MODEL_COSINE_BOUNDS["sentence-transformers/all-MiniLM-L6-v2"],
) -> np.ndarray:
    """The evidence of :func:`absolute_relevance` before it is clipped to [0, 1]: what hybrid (and
    every single-retriever) ranking orders by. A convex combination of the cosine and BM25 with
    fixed bounds (the model's cosine bounds, the query's BM25 reference), Bruch, Gai and Ingber's
    "theoretical min-max" fusion: it depends on the query and the document only, never on which
    other documents were retrieved. Monotone in the cosine (dense mode) and in BM25 (lexical
    mode), so single-retriever rankings keep their retriever's order. NaN counts as no evidence."""
    return _convex(cosine, bm25, dense_weight, reference, bounds, clip=False)


def _convex(cosine: np.ndarray | Sequence[float], bm25: np.ndarray | Sequence[float], dense_weight: float,
            reference: float, bounds: tuple[float, float], *, clip: bool) -> np.ndarray:
    w = min(1.0, max(0.0, float(dense_weight)))
    return (w * dense_evidence(cosine, *bounds, clip=clip)
            + (1.0 - w) * lexical_evidence(bm25, reference, clip=clip))


def ordered_relevance(evidence: np.ndarray | Sequence[float]) -> np.ndarray:
    """The non-increasing sequence closest (least squares) to ``evidence`` given in rank order.

    Where the ranking agrees with the evidence (it usually does) each value is kept; where a
    hit ranks above one with more evidence, the run that disagrees gets its mean. So scores
    never rise down the ranking, a threshold always keeps a prefix of it, and no score strays
    further from its own evidence than the ranking forces. (Isotonic regression by pool
    adjacent violators, equal to ``scipy.optimize.isotonic_regression(..., increasing=False)``.)
    """
    values = np.asarray(evidence, dtype=np.float64).ravel()
    means: list[float] = []
    counts: list[int] = []
    for v in values.tolist():
        mean, count = v, 1
        while means and means[-1] < mean:  # a violation: pool it with the block above
            above, n = means.pop(), counts.pop()
            mean, count = (above * n + mean * count) / (n + count), n + count
        means.append(mean)
        counts.append(count)
    return np.repeat(np.array(means, dtype=np.float64), counts)


def relevance(
    cosine: np.ndarray | Sequence[float],
    bm25: np.ndarray | Sequence[float],
    dense_weight: float,
    reference: float,
    *,
    bounds: tuple[float, float] = MODEL_COSINE_BOUNDS["sentence-transformers/all-MiniLM-L6-v2"],
) -> np.ndarray:
    """The calibrated relevance in [0, 1] of one query's candidates, given in ranking order.

    :func:`absolute_relevance` made non-increasing along the given order by
    :func:`ordered_relevance`: the ranking (today's fused order) is kept, and the score of the
    best hit is about the best evidence the query found. Arguments as :func:`absolute_relevance`.
    """
    return ordered_relevance(absolute_relevance(cosine, bm25, dense_weight, reference, bounds=bounds))


def no_good_match(top_relevance: float | None, threshold: float = NO_MATCH_THRESHOLD) -> bool:
    """Whether a query's best hit (None: no hit at all) is too weak to answer it."""
    return top_relevance is None or top_relevance < threshold
