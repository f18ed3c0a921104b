"""The offline answer: the few sentences of the passages that best answer the question.

Each passage is split into sentences (Unicode sentence boundaries, by semantic-text-splitter,
which chunking already uses); the sentences and the question are encoded by the collection's
own model; a sentence scores by its similarity to the question, averaged with that of its
whole passage (a sentence is only as trustworthy as the passage around it); maximal marginal
relevance then picks a few that do not repeat each other. Every sentence keeps its citation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .result import Passage

#: Fragments shorter than this ("Dr.", "Yes.") are joined to the next sentence.
MIN_SENTENCE_CHARS = 25
MAX_SENTENCE_CHARS = 400
#: Cosine above which two sentences say the same thing (only one of them is used).
NEAR_COPY = 0.95
_FOOTNOTE = re.compile(r"\[(\d{1,4})\]")


@dataclass(frozen=True)
class Extract:
    """A sentence chosen for an extractive answer, with the passage number it cites."""

    n: int
    text: str
    score: float


@lru_cache(maxsize=4)
def _splitter(max_chars: int) -> Any:
    from semantic_text_splitter import TextSplitter

    # Desired size 1: every chunk closes at the first sentence boundary; longer sentences are
    # cut at max_chars on the next level down (clauses, words).
    return TextSplitter((1, max_chars))


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """The sentences of ``text`` (very short fragments joined to their neighbour)."""
    pieces = [p.strip() for p in _splitter(max_chars).chunks(text) if p.strip()]
    sentences: list[str] = []
    carry = ""
    for piece in pieces:
        piece = f"{carry} {piece}".strip() if carry else piece
        if len(piece) < MIN_SENTENCE_CHARS:
            carry = piece
            continue
        carry = ""
        sentences.append(piece)
    if carry:
        if sentences and len(sentences[-1]) + len(carry) < max_chars:
            sentences[-1] = f"{sentences[-1]} {carry}"
        else:
            sentences.append(carry)
    return sentences


def choose_sentences(
    question_vector: np.ndarray,
    sentence_vectors: np.ndarray,
    passage_scores: np.ndarray,
    *,
    max_sentences: int = 3,
    diversity: float = 0.7,
    floor: float = 0.8,
) -> list[tuple[int, float]]:
    """Indexes of the sentences to answer with, and their scores, best first.

    A sentence's relevance is the mean of its cosine with the question and its passage's
    score (``passage_scores``, one per sentence). Sentences under ``floor`` times the best
    relevance are not worth adding; among the others, MMR with lambda ``diversity`` picks up
    to ``max_sentences``.
    """
    if len(sentence_vectors) == 0:
        return []
    relevance = 0.5 * (sentence_vectors @ question_vector) + 0.5 * passage_scores
    # Only sentences nearly as relevant as the best compete; MMR then spreads the picks among them.
    eligible = relevance >= floor * float(relevance.max())
    picked: list[int] = []
    redundancy = np.zeros(len(relevance))
    while len(picked) < max_sentences:
        marginal = relevance if not picked else diversity * relevance - (1 - diversity) * redundancy
        value = np.where(eligible, marginal, -np.inf)
        pick = int(np.argmax(value))
        if not np.isfinite(value[pick]):
            break
        picked.append(pick)
        similar = sentence_vectors @ sentence_vectors[pick]
        eligible &= similar < NEAR_COPY  # a near copy of a picked sentence adds nothing
        eligible[pick] = False
        redundancy = np.maximum(redundancy, similar)
    return [(i, float(relevance[i])) for i in picked]


def extract_answer(
    question: str,
    passages: Sequence[Passage],
    embedder: Any,
    passage_relevance: Sequence[float],
    *,
    max_sentences: int = 3,
) -> list[Extract]:
    """The sentences of ``passages`` that best answer ``question``, each with its passage number.

    ``embedder`` is the collection's (``encode_queries`` / ``encode_documents``);
    ``passage_relevance`` is each passage's similarity to the question.
    """
    owners: list[int] = []
    sentences: list[str] = []
    for index, passage in enumerate(passages):
        for sentence in split_sentences(passage.text):
            owners.append(index)
            sentences.append(sentence)
    if not sentences:
        return []
    q = embedder.encode_queries([question])[0]
    vectors = embedder.encode_documents(sentences)
    prior = np.asarray([passage_relevance[i] for i in owners], dtype=np.float32)
    chosen = choose_sentences(q, vectors, prior, max_sentences=max_sentences)
    return [Extract(n=passages[owners[i]].n, text=sentences[i], score=score) for i, score in chosen]


def format_extracts(extracts: Sequence[Extract]) -> str:
    """The extractive answer's text: each sentence followed by its citation.

    Bracketed numbers already in a sentence (footnote marks) become parentheses, so the
    only ``[n]`` in the answer are its citations.
    """
    return " ".join(_FOOTNOTE.sub(r"(\1)", e.text) + f" [{e.n}]" for e in extracts)
