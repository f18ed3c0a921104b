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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .quoting import as_given, neutralise_marks, reads_as_instruction
from .result import Passage

#: Fragments shorter than this ("Dr.", "Yes.") are joined to the next sentence of their paragraph.
MIN_SENTENCE_CHARS = 25
#: Sentences longer than this are cut at their own clause punctuation, when they have some.
MAX_SENTENCE_CHARS = 400
#: Cosine above which two sentences say the same thing (only one of them is used).
NEAR_COPY = 0.95
_CLAUSE_END = re.compile(r"(?<=[;:—–])\s+|\s+(?=[—–]\s)")


@dataclass(frozen=True)
class Extract:
    """A sentence chosen for an extractive answer, with the passage number it cites."""

    n: int
    text: str
    score: float


_ENDS_SENTENCE = re.compile(r"[.!?…。！？][\"'”’)\]]*\s*$")
_PARAGRAPH = re.compile(r"(?:[^\n]|\n(?![ \t]*\n))+")


def _sentence_pieces(text: str) -> list[tuple[int, int]]:
    """Spans of the text's sentences, paragraph by paragraph (Unicode sentence boundaries).

    The splitter keeps whatever fits its maximum whole, so each paragraph is split with a
    maximum just under its own length: it then comes apart at sentence boundaries, and a
    paragraph that is one sentence at word boundaries; pieces that do not end a sentence
    (those words, or a line that wraps) are joined back, by span, with what follows.
    """
    from semantic_text_splitter import TextSplitter

    pieces: list[tuple[int, int]] = []
    for paragraph in _PARAGRAPH.finditer(text):
        block = paragraph.group(0).strip()
        if not block:
            continue
        at = paragraph.start() + paragraph.group(0).index(block)
        joining = False
        for offset, piece in TextSplitter((1, max(1, len(block) - 1))).chunk_indices(block):
            if not piece.strip():
                continue
            span = (at + offset, at + offset + len(piece))
            if joining:
                pieces[-1] = (pieces[-1][0], span[1])
            else:
                pieces.append(span)
            joining = not _ENDS_SENTENCE.search(text[pieces[-1][0]:pieces[-1][1]])
    return pieces


def sentence_spans(text: str, *, keep_headings: bool = False, join: bool = True) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``: ``text[start:end]`` is the sentence, exactly.

    With ``join``, fragments under :data:`MIN_SENTENCE_CHARS` join the next sentence of their
    paragraph (or the previous one) and sentences over :data:`MAX_SENTENCE_CHARS` are cut at
    their own ";", ":" or dashes. Headings are left out unless ``keep_headings``.
    """
    pieces = _sentence_pieces(text)
    if not join:
        return pieces
    if not keep_headings:
        pieces = _without_headings(text, pieces)
    spans: list[tuple[int, int]] = []
    carry: tuple[int, int] | None = None
    for start, end in pieces:
        if carry is not None and "\n" not in text[carry[1]:start]:
            start = carry[0]
        elif carry is not None:
            spans.append(carry)
        carry = None
        if end - start < MIN_SENTENCE_CHARS:
            carry = (start, end)
            continue
        spans.append((start, end))
    if carry is not None:
        if spans and "\n" not in text[spans[-1][1]:carry[0]]:
            spans[-1] = (spans[-1][0], carry[1])
        else:
            spans.append(carry)
    return [cut for span in spans for cut in _clauses(text, *span)]


def _without_headings(text: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pieces with the headings they start with cut off (a title glued to its first sentence by a
    single line break), and those that are only a heading left out."""
    from ..ingest.headings import sections

    headings = [(s.start, s.heading_end) for s in sections(text) if s.headed]
    out = []
    for start, end in pieces:
        for h0, h1 in headings:
            if h0 <= start < h1:
                rest = text[h1:end]
                start = h1 + len(rest) - len(rest.lstrip()) if rest.strip() else end
        if start < end:
            out.append((start, end))
    return out


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A long sentence cut after its own clause punctuation into pieces of at most MAX_SENTENCE_CHARS
    where it can be; else the sentence whole."""
    if end - start <= MAX_SENTENCE_CHARS:
        return [(start, end)]
    cuts = [start + m.start() for m in _CLAUSE_END.finditer(text[start:end])]
    out: list[tuple[int, int]] = []
    piece_start = start
    for i, cut in enumerate(cuts):
        following = cuts[i + 1] if i + 1 < len(cuts) else end
        if following - piece_start > MAX_SENTENCE_CHARS and cut - piece_start >= MIN_SENTENCE_CHARS:
            out.append((piece_start, cut))
            piece_start = cut + len(text[cut:end]) - len(text[cut:end].lstrip())
    out.append((piece_start, end))
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, each exactly as it stands in it (see :func:`sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text)]


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
