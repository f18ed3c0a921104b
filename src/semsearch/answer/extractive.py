"""The offline answer: the few sentences of the passages that best answer the question, quoted exactly.

Each passage (as a model would be given it: :func:`.quoting.as_given`) is split into sentences
(Unicode sentence boundaries, by semantic-text-splitter, which chunking already uses); every
sentence is a span of that text, copied as it stands: short fragments ("Dr.") are joined to
the next one within their paragraph by taking the span that covers both, and a sentence longer
than :data:`MAX_SENTENCE_CHARS` is cut only at its own punctuation (";", ":", a dash), else
kept whole. Headings and sentences that read as instructions to a model are never quoted.

The sentences and the question are encoded on the query path (on a machine that prepared the
light query encoder: no model load, no torch); a sentence scores by its similarity to the
question, averaged with that of its whole passage (a sentence is only as trustworthy as the
passage around it); maximal marginal relevance then picks a few that do not repeat each other.
Every sentence keeps its citation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .quoting import as_given, neutralise_marks, reads_as_instruction
from .result import Passage
from .sentences import split_sentences

#: Cosine above which two sentences say the same thing (only one of them is used).
NEAR_COPY = 0.95


@dataclass(frozen=True)
class Extract:
    """A sentence chosen for an extractive answer, with the passage number it cites."""

    n: int
    text: str
    score: float


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

    Each sentence is a span of the passage as the model would be given it (:func:`.quoting.as_given`);
    sentences that read as instructions to a model are never chosen. ``embedder`` is the
    collection's (``encode_queries``); ``passage_relevance`` is each passage's relevance.
    """
    owners: list[int] = []
    sentences: list[str] = []
    for index, passage in enumerate(passages):
        for sentence in split_sentences(as_given(passage.text)):
            if reads_as_instruction(sentence):
                continue
            owners.append(index)
            sentences.append(sentence)
    if not sentences:
        return []
    q = embedder.encode_queries([question])[0]
    vectors = _encode_sentences(embedder, sentences)
    prior = np.asarray([passage_relevance[i] for i in owners], dtype=np.float32)
    chosen = choose_sentences(q, vectors, prior, max_sentences=max_sentences)
    return [Extract(n=passages[owners[i]].n, text=sentences[i], score=score) for i, score in chosen]


def _encode_sentences(embedder: Any, sentences: list[str]) -> np.ndarray:
    # The query path: the light encoder where this machine prepared one (the search just used it),
    # never the document encoder, whose first load is what made a cold `ask` take seconds.
    encode = getattr(embedder, "encode_sentences", None)
    return encode(sentences) if encode is not None else embedder.encode_queries(sentences)


def format_extracts(extracts: Sequence[Extract]) -> str:
    """The extractive answer's text: each sentence followed by its citation.

    Bracketed numbers of the documents' own (footnote marks, in any spelling) are in parentheses
    (:func:`.quoting.neutralise_marks`, already so in the passages given), so the only ``[n]`` in
    the answer are its citations.
    """
    return " ".join(f"{neutralise_marks(e.text)} [{e.n}]" for e in extracts)
