"""Label-free training pairs made from a collection's own text.

Two kinds of pseudo-query, both taken from the documents themselves, so no generator model
(T5, an LLM) and no network are needed and a 2-core CPU makes them in seconds:

- **title -> body**: a document with a title (Markdown ``# heading``, HTML ``<title>``, a
  ``title`` field) gives (title, first passage of its body). Titles are short, written by a
  person to say what the text is about: the closest thing to a query a corpus holds.
- **inverse cloze (ICT)**: one sentence of a passage is the query, the passage without that
  sentence is the positive (Lee et al. 2019). The model must find the context a sentence
  belongs to from meaning, not shared words; in 10% of pairs the sentence stays in the
  passage so exact matches still count (as in the original recipe).

sentence-transformers' domain-adaptation benchmark puts ICT at +1.3 nDCG@10 over zero-shot on
average (GPL, with a T5 query generator and a cross-encoder, gets +6 but needs a GPU-day).
It can also make a strong model worse: measure before and after, which the fine-tuning run
does on held-out pseudo-queries (and on a judged set given with ``evaluate_on``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .data import QueryGroup

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before
# whitespace and an upper-case letter or digit; good enough for picking one sentence out.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")
MIN_QUERY_WORDS = 4
MAX_QUERY_WORDS = 40
MIN_CONTEXT_WORDS = 8
KEEP_SENTENCE_RATE = 0.1


@dataclass
class SourceDocument:
    """A document to make pseudo-queries from: its text and title (None when it has none)."""

    text: str
    title: str | None = None


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, whitespace-normalised, in order."""
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


def body_without_title(text: str, title: str) -> str:
    """The text with a leading title line (plain or Markdown ``# title``) removed."""
    lines = text.lstrip().split("\n", 1)
    first = lines[0].strip().lstrip("#").strip()
    if first == title.strip() and len(lines) > 1:
        return lines[1].strip()
    return text.strip()


def inverse_cloze(passage: str, rng: random.Random) -> tuple[str, str, str] | None:
    """(sentence, passage used for training, passage used for judging), or None when too short.

    The judged passage always lacks the sentence, so held-out scores measure meaning, not an
    exact substring match.
    """
    sentences = split_sentences(passage)
    if len(sentences) < 2:
        return None
    candidates = [i for i, s in enumerate(sentences) if MIN_QUERY_WORDS <= len(s.split()) <= MAX_QUERY_WORDS]
    if not candidates:
        return None
    i = rng.choice(candidates)
    rest = " ".join(sentences[:i] + sentences[i + 1:])
    if len(rest.split()) < MIN_CONTEXT_WORDS:
        return None
    trained = " ".join(sentences) if rng.random() < KEEP_SENTENCE_RATE else rest
    return sentences[i], trained, rest


def pseudo_query_groups(
    documents: Sequence[SourceDocument],
    split_passages: Callable[[list[str]], list[list[str]]],
    *,
    seed: int,
    max_pairs: int | None = None,
) -> tuple[list[QueryGroup], list[str], dict[str, int]]:
    """Pseudo-query groups from documents, the passages they came from, and counts per method.

    ``split_passages`` cuts each document body into passages the model reads whole (the
    collection's chunker at the model's length). Every passage yields at most one ICT pair;
    every titled document yields one title pair. A query text seen twice is kept once.
    Returns (groups, all passages, {"title": n, "inverse_cloze": n, "skipped_passages": n}).
    """
    rng = random.Random(seed)
    bodies = [body_without_title(d.text, d.title) if d.title else d.text.strip() for d in documents]
    passages_per_doc = split_passages(bodies)
    groups: dict[str, QueryGroup] = {}
    counts = {"title": 0, "inverse_cloze": 0, "skipped_passages": 0}
    all_passages: list[str] = []
    for number, (doc, passages) in enumerate(zip(documents, passages_per_doc)):
        all_passages.extend(passages)
        source = f"d{number}"
        if doc.title and passages and len(doc.title.split()) >= 2 and doc.title not in groups:
            groups[doc.title] = QueryGroup(doc.title, {passages[0]: 1}, source=source)
            counts["title"] += 1
        for passage in passages:
            made = inverse_cloze(passage, rng)
            if made is None or made[0] in groups:
                counts["skipped_passages"] += 1
                continue
            query, trained, judged = made
            groups[query] = QueryGroup(query, {trained: 1}, positive_for_eval={judged: 1}, source=source)
            counts["inverse_cloze"] += 1
    result = list(groups.values())
    if max_pairs is not None and len(result) > max_pairs:
        result = rng.sample(result, max_pairs)
    return result, all_passages, counts
