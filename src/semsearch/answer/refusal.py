""""No good match": when the retrieved passages cannot answer, ask says so and asks no model.

The gate reads one number per hit, its relevance, and compares it with a threshold. By
default the relevance is ``Hit.score``, the calibrated relevance of the search pipeline, and
the threshold is its "no good match" line (:mod:`semsearch.retrieval.calibration`). The dense
cosine with a cut measured for all-MiniLM-L6-v2 (``bench/ask_threshold.py``, see
bench/RESULTS.md) stays available: ``ask(..., relevance=dense_relevance(question, embedder),
min_relevance=DENSE_COSINE_THRESHOLD)``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .result import NO_ANSWER

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


#: The refusal in the languages whose script says which language a question is in.
NO_ANSWER_IN = {
    "ja": "文書はこの質問に答えていません。",
    "zh": "文档没有回答这个问题。",
    "ko": "문서에 이 질문에 대한 답이 없습니다.",
    "el": "Τα έγγραφα δεν απαντούν σε αυτή την ερώτηση.",
    "en": NO_ANSWER,
}


def refusal_for(question: str) -> str:
    """The refusal in the question's language where its script tells the language (Japanese kana, Korean
    Hangul, Chinese Han characters without kana, Greek), else in English (:data:`NO_ANSWER`).

    Languages written in the Latin or Cyrillic alphabets are not told apart from the few words of a
    question without a language-identification model: they get the English sentence, and
    ``answered: false`` is the signal to rely on in any language.
    """
    scripts: dict[str, int] = {}
    for char in question:
        if char.isalpha():
            name = unicodedata.name(char, "").split(" ")[0]
            scripts[name] = scripts.get(name, 0) + 1
    letters = sum(scripts.values())
    if not letters:
        return NO_ANSWER
    if scripts.get("HIRAGANA", 0) + scripts.get("KATAKANA", 0) > 0:
        return NO_ANSWER_IN["ja"]
    if scripts.get("HANGUL", 0) * 2 > letters:
        return NO_ANSWER_IN["ko"]
    if scripts.get("CJK", 0) * 2 > letters:
        return NO_ANSWER_IN["zh"]
    if scripts.get("GREEK", 0) * 2 > letters:
        return NO_ANSWER_IN["el"]
    return NO_ANSWER
