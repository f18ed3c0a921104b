"""Context assembly: the best passages first, within a token budget, numbered for citation.

Pure functions over plain data (hits, document texts, a token counter), so they are tested
without a collection. A search returns each document once with its best chunk; when the
document's text is known, the passage grows by neighbouring text (about one chunk on each
side) while the budget allows, and several pieces of one document that touch are merged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .result import Passage

if TYPE_CHECKING:
    from ..types import Hit

TokenCounter = Callable[[Sequence[str]], list[int]]

#: Tokens the number/source line of each passage costs in the prompt (a safe over-estimate).
HEADER_TOKENS = 16
_WORDS = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


@dataclass
class _Piece:
    hit: Hit
    start: int
    end: int
    text: str
    tokens: int


def assemble_context(
    hits: Sequence[Hit],
    *,
    budget_tokens: int,
    count_tokens: TokenCounter,
    documents: Mapping[str, str] | None = None,
    neighbours: bool = True,
) -> list[Passage]:
    """Number the hits' passages, best first, so that all of them fit in ``budget_tokens``.

    Args:
        hits: search hits, best first.
        budget_tokens: tokens the passages may take in the prompt (headers included).
        count_tokens: token counts of a list of texts.
        documents: the full text of each hit's document, by id; enables neighbour merging.
        neighbours: grow passages by neighbouring text of their document while budget remains.

    Returns:
        Passages numbered 1..m. A hit whose text duplicates (or is contained in) a passage
        already taken is dropped; one too long for what is left of the budget is skipped,
        except the best one, which is cut to fit.
    """
    if budget_tokens < HEADER_TOKENS + 8:
        return []
    documents = documents or {}
    pieces: list[_Piece] = []
    seen: list[tuple[str, frozenset[str]]] = []
    left = budget_tokens
    counts = count_tokens([h.text for h in hits]) if hits else []
    for hit, tokens in zip(hits, counts):
        key, shingles = _fingerprint(hit.text)
        if not key or any(_duplicate(key, shingles, k, s) for k, s in seen):
            continue
        start, end = _span(hit, documents.get(hit.id))
        text = hit.text
        if tokens + HEADER_TOKENS > left:
            if pieces:
                continue  # a later, shorter passage may still fit
            text = _cut_to_fit(text, left - HEADER_TOKENS, count_tokens)
            if not text:
                break
            tokens = count_tokens([text])[0]
            end = start + len(text)
        seen.append((key, shingles))
        pieces.append(_Piece(hit, start, end, text, tokens))
        left -= tokens + HEADER_TOKENS
    if neighbours and documents:
        left = _grow(pieces, documents, left, count_tokens)
    pieces = _merge_touching(pieces, documents, count_tokens)
    return [
        Passage(n=i, id=p.hit.id, text=p.text, source=p.hit.source, start=p.start, end=p.end, tokens=p.tokens,
                hit=p.hit)
        for i, p in enumerate(pieces, 1)
    ]


def _fingerprint(text: str) -> tuple[str, frozenset[str]]:
    words = _WORDS.findall(text.lower())
    shingles = frozenset(" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2)))
    return " ".join(words), shingles


def _duplicate(key: str, shingles: frozenset[str], other_key: str, other: frozenset[str]) -> bool:
    # Same words, one inside the other, or nine tenths of the shorter one's word triples found
    # in the other: it adds nothing.
    if f" {key} " in f" {other_key} " or f" {other_key} " in f" {key} ":
        return True
    smaller = min(len(shingles), len(other))
    return smaller > 0 and len(shingles & other) / smaller >= 0.9


def _span(hit: Hit, document: str | None) -> tuple[int, int]:
    if document is not None and document[hit.start:hit.end] == hit.text:
        return hit.start, hit.end
    if document is not None:
        found = document.find(hit.text)
        if found >= 0:
            return found, found + len(hit.text)
    return 0, len(hit.text)


def _cut_to_fit(text: str, budget: int, count_tokens: TokenCounter) -> str:
    """The longest prefix of ``text`` ending at a word boundary that fits in ``budget`` tokens."""
    if budget <= 0:
        return ""
    cut = text
    for _ in range(8):
        tokens = count_tokens([cut])[0]
        if tokens <= budget:
            return cut
        keep = max(1, int(len(cut) * budget / tokens * 0.95))
        space = cut.rfind(" ", 0, keep)
        cut = cut[: space if space > keep // 2 else keep].rstrip()
    return ""


def _grow(pieces: list[_Piece], documents: Mapping[str, str], left: int, count_tokens: TokenCounter) -> int:
    """Add about one chunk of neighbouring text on each side of each passage, best first, within budget."""
    for piece in pieces:
        document = documents.get(piece.hit.id)
        if document is None or document[piece.start:piece.end] != piece.text:
            continue
        width = max(1, piece.end - piece.start)
        for side in ("before", "after"):
            if side == "before" and piece.start > 0:
                lo = _word_start(document, max(0, piece.start - width), piece.start)
                extra = document[lo:piece.start]
            elif side == "after" and piece.end < len(document):
                hi = _word_end(document, min(len(document), piece.end + width), piece.end)
                extra = document[piece.end:hi]
            else:
                continue
            if not extra.strip():
                continue
            cost = count_tokens([extra])[0]
            if cost > left:
                continue
            left -= cost
            if side == "before":
                piece.start = lo
            else:
                piece.end = hi
            piece.text = document[piece.start:piece.end]
            piece.tokens += cost
    return left


def _word_start(text: str, i: int, limit: int) -> int:
    """Where text added before ``limit`` should start: a sentence start near ``i``, else a word start."""
    reach = i - (limit - i) // 2  # may reach a little further back to start at a sentence
    if reach <= 0:
        return 0
    sentence = _SENTENCE_END.search(text, reach, limit)
    if sentence and sentence.end() < limit:
        return sentence.end()
    space = text.find(" ", i, limit)
    return i if text[i - 1].isspace() else (space + 1 if space >= 0 else limit)


def _word_end(text: str, i: int, limit: int) -> int:
    """Where text added after ``limit`` should end: a sentence end near ``i``, else a word end."""
    reach = i + (i - limit) // 2
    if reach >= len(text):
        return len(text)
    ends = [m.start() for m in _SENTENCE_END.finditer(text, limit + 1, reach)]
    if ends:
        return ends[-1]
    space = text.rfind(" ", limit, i)
    return i if text[i].isspace() else max(space, limit)


def _merge_touching(pieces: list[_Piece], documents: Mapping[str, str], count_tokens: TokenCounter) -> list[_Piece]:
    """Pieces of one document whose spans overlap or touch become one (at the better one's place)."""
    merged: list[_Piece] = []
    for piece in pieces:
        document = documents.get(piece.hit.id)
        target = None
        if document is not None:
            for other in merged:
                if other.hit.id == piece.hit.id and piece.start <= other.end + 1 and other.start <= piece.end + 1:
                    target = other
                    break
        if target is None:
            merged.append(piece)
            continue
        assert document is not None
        target.start, target.end = min(target.start, piece.start), max(target.end, piece.end)
        target.text = document[target.start:target.end]
        target.tokens = count_tokens([target.text])[0]
    return merged

