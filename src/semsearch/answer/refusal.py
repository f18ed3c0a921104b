""""No good match": when the retrieved passages cannot answer, ask says so and asks no model.

The gate reads one number per hit, its relevance, and compares it with a threshold. By
default the relevance is ``Hit.score``, the calibrated relevance of the search pipeline, and
the threshold is its "no good match" line (:mod:`semsearch.retrieval.calibration`). The dense
cosine with a cut measured for all-MiniLM-L6-v2 (``bench/ask_threshold.py``, see
bench/RESULTS.md) stays available: ``ask(..., relevance=dense_relevance(question, embedder),
min_relevance=DENSE_COSINE_THRESHOLD)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..types import Hit


#: Cosine (all-MiniLM-L6-v2, question vs. a hit's best chunk) under which a hit is no good match.
#: Measured by bench/ask_threshold.py: refuses 2.8% of answerable English questions (0% of the
#: CJK set, 3% of the German/French/Spanish one) and 81% of unanswerable ones.
DENSE_COSINE_THRESHOLD = 0.35

Relevance = Callable[[Sequence["Hit"]], list[float]]


def calibrated_score(hits: Sequence[Hit]) -> list[float]:
    """Each hit's ``score`` (for when it is a calibrated relevance, issue 12)."""
    return [float(h.score) for h in hits]


def dense_relevance(question: str, embedder: Any) -> Relevance:
    """Relevance = the hit's dense cosine (``hit.scores["dense"]``), computed when a hit lacks it.

    Hits found by BM25 alone (lexical mode, or only the lexical side of hybrid) have no dense
    score; their text is encoded with the collection's model and compared with the question.
    """

    def relevance(hits: Sequence[Hit]) -> list[float]:
        scores: list[float | None] = [h.scores.get("dense") for h in hits]
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            q = embedder.encode_queries([question])[0]
            vectors = embedder.encode_documents([hits[i].text for i in missing])
            for i, value in zip(missing, vectors @ q):
                scores[i] = float(value)
        return [float(s) for s in scores]  # type: ignore[arg-type]

    return relevance


def good_matches(hits: Sequence[Hit], relevances: Sequence[float], threshold: float) -> list[Hit]:
    """The hits whose relevance reaches ``threshold``, in their order; none means: refuse.

    The one decision ``ask`` makes before any model is called. ``relevances`` holds one
    number per hit (see :func:`dense_relevance`, :func:`calibrated_score`).
    """
    keep = np.asarray(relevances, dtype=np.float64) >= threshold
    return [h for h, ok in zip(hits, keep) if ok]
