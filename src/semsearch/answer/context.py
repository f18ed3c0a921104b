"""Context assembly: the best passages first, within a token budget, numbered for citation.

Pure functions over plain data (hits, document texts, chunk spans, a token counter), so they
are tested without a collection. A search returns each document once with its best chunk; a
passage starts as that chunk and grows by its document's neighbouring chunks (the chunks the
collection stored, read by position: real text, nothing invented) while the budget allows,
every passage one chunk on each side per round, best first. Other chunks of a hit's document
that match the question nearly as well as its best one (``extra``) become passages too.
Pieces of one document that touch are merged, and a passage whose text another passage
already holds is dropped: duplicates are judged on what the model would read.
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
#: A document's chunks as (start, end) character offsets, in position order.
Spans = Sequence[tuple[int, int]]

#: Tokens the number/source line of each passage costs in the prompt (a safe over-estimate).
HEADER_TOKENS = 16
_WORDS = re.compile(r"\w+", re.UNICODE)
#: How far a passage may reach back or on to start and end at a sentence boundary (characters).
SENTENCE_REACH = 400
# Where a sentence ends: its closing punctuation and the space after it, or a line break.
_SENTENCE_BREAK = re.compile(r"[.!?。！？][\"'”’)\]]*(?:\s+|$)|\n")
_SENTENCE_END = re.compile(r"[.!?。！？][\"'”’)\]]*$|\n$")


@dataclass
class _Piece:
    hit: Hit
    start: int
    end: int
    text: str
    tokens: int
    first: int = -1  # the range of chunk positions it covers (-1: not known)
    last: int = -1


def assemble_context(
    hits: Sequence[Hit],
    *,
    budget_tokens: int,
    count_tokens: TokenCounter,
    documents: Mapping[str, str] | None = None,
    spans: Mapping[str, Spans] | None = None,
    extra: Sequence[tuple[Hit, int]] = (),
    neighbours: bool = True,
) -> list[Passage]:
    """Number the hits' passages, best first, so that all of them fit in ``budget_tokens``.

    Args:
        hits: search hits, best first.
        budget_tokens: tokens the passages may take in the prompt (headers included).
        count_tokens: token counts of a list of texts.
        documents: the full text of each hit's document, by id.
        spans: each document's chunk spans (position order); with ``documents``, passages
            grow by whole neighbouring chunks.
        extra: more chunks worth reading, as (hit of their document, chunk position), best
            first; taken after the hits while the budget allows.
        neighbours: grow passages by neighbouring chunks while budget remains.

    Returns:
        Passages numbered 1..m, each a contiguous span of its document. A piece whose text is
        already held by a passage taken is dropped; one too long for what is left of the budget
        is skipped, except the best one, which is cut to fit.
    """
    if budget_tokens < HEADER_TOKENS + 8:
        return []
    documents = documents or {}
    spans = spans or {}
    seeds = [_seed(h, documents.get(h.id), spans.get(h.id)) for h in hits]
    seeds += [_chunk_seed(h, position, documents, spans) for h, position in extra]
    pieces: list[_Piece] = []
    left = budget_tokens
    counts = count_tokens([s.text for s in seeds]) if seeds else []
    for seed, tokens in zip(seeds, counts):
        seed.tokens = tokens
        holders = [p for p in pieces if _held(seed, [p])]
        if holders and _same_document_text(seed, holders, documents):
            continue
        if tokens + HEADER_TOKENS > left:
            if pieces:
                continue  # a later, shorter passage may still fit
            seed.text = _cut_to_fit(seed.text, left - HEADER_TOKENS, count_tokens)
            if not seed.text:
                break
            seed.tokens = count_tokens([seed.text])[0]
            seed.end = seed.start + len(seed.text)
            seed.last = seed.first if seed.first >= 0 else -1
        pieces.append(seed)
        left -= seed.tokens + HEADER_TOKENS
    if neighbours:
        _grow(pieces, documents, spans, left, count_tokens)
    pieces = _merge_touching(pieces, documents, count_tokens)
    kept: list[_Piece] = []
    for piece in pieces:
        if not _held(piece, kept):
            kept.append(piece)
    return [
        Passage(n=i, id=p.hit.id, text=p.text, source=p.hit.source, start=p.start, end=p.end, tokens=p.tokens,
                hit=p.hit)
        for i, p in enumerate(kept, 1)
    ]


def _seed(hit: Hit, document: str | None, spans: Spans | None) -> _Piece:
    start, end = _span(hit, document)
    if document is None:
        return _Piece(hit, start, end, hit.text, 0)
    position = _position(spans, start, end)
    start, end = _whole_sentences(document, start, end)
    return _Piece(hit, start, end, document[start:end], 0, position, position)


def _chunk_seed(hit: Hit, position: int, documents: Mapping[str, str], spans: Mapping[str, Spans]) -> _Piece:
    start, end = _whole_sentences(documents[hit.id], *spans[hit.id][position])
    return _Piece(hit, start, end, documents[hit.id][start:end], 0, position, position)


def _whole_sentences(document: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to the sentences it cuts (a chunk's overlap may start or end mid-sentence), by at
    most :data:`SENTENCE_REACH` characters on each side."""
    if start > 0 and not _SENTENCE_BREAK.search(document[max(0, start - 2):start]):
        before = document[max(0, start - SENTENCE_REACH):start]
        breaks = list(_SENTENCE_BREAK.finditer(before))
        if breaks:
            start = start - len(before) + breaks[-1].end()
    if end < len(document) and not _SENTENCE_END.search(document[max(start, end - 2):end]):
        after = _SENTENCE_BREAK.search(document, end, min(len(document), end + SENTENCE_REACH))
        if after:
            end = after.start() + len(after.group(0).rstrip())
    return start, end


def _position(spans: Spans | None, start: int, end: int) -> int:
    if not spans:
        return -1
    return next((i for i, (a, b) in enumerate(spans) if a == start and b == end), -1)


def _fingerprint(text: str) -> tuple[str, frozenset[str]]:
    words = _WORDS.findall(text.lower())
    shingles = frozenset(" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2)))
    return " ".join(words), shingles


def _held(piece: _Piece, taken: Sequence[_Piece]) -> bool:
    """True when a passage taken already holds this piece's text (same document and span, the same
    words, or nine tenths of its word triples): it would add nothing."""
    key, shingles = _fingerprint(piece.text)
    if not key:
        return True
    for other in taken:
        if other.hit.id == piece.hit.id and other.start <= piece.start and piece.end <= other.end:
            return True
        other_key, other_shingles = _fingerprint(other.text)
        if f" {key} " in f" {other_key} ":
            return True
        if shingles and len(shingles & other_shingles) / len(shingles) >= 0.9:
            return True
    return False


def _same_document_text(piece: _Piece, holders: Sequence[_Piece], documents: Mapping[str, str]) -> bool:
    """True when the piece's whole document says what the document of a passage holding it says
    (or a document is not known): its passage could only grow into a copy. Two documents that only
    share a title or a boilerplate chunk are not duplicates."""
    document = documents.get(piece.hit.id)
    if document is None:
        return True
    whole = _Piece(piece.hit, 0, len(document), document, 0)
    for other in holders:
        other_document = documents.get(other.hit.id)
        if other_document is None or other.hit.id == piece.hit.id:
            return True
        if _held(whole, [_Piece(other.hit, 0, len(other_document), other_document, 0)]):
            return True
    return False


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


def _grow(pieces: list[_Piece], documents: Mapping[str, str], spans: Mapping[str, Spans], left: int,
          count_tokens: TokenCounter) -> int:
    """Add neighbouring chunks, one on each side of every passage per round, best first, within budget."""
    grew = True
    while grew:
        grew = False
        for piece in pieces:
            document, chunks = documents.get(piece.hit.id), spans.get(piece.hit.id)
            if document is None or not chunks or piece.first < 0:
                continue
            for side in ("after", "before"):
                position = piece.last + 1 if side == "after" else piece.first - 1
                if not 0 <= position < len(chunks):
                    continue
                start = min(piece.start, chunks[position][0])
                end = max(piece.end, chunks[position][1])
                extra = document[piece.end:end] if side == "after" else document[start:piece.start]
                cost = count_tokens([extra])[0] if extra.strip() else 0
                if cost > left:
                    continue
                left -= cost
                piece.start, piece.end = start, end
                piece.text = document[start:end]
                piece.tokens += cost
                if side == "after":
                    piece.last = position
                else:
                    piece.first = position
                grew = True
    return left


def _merge_touching(pieces: list[_Piece], documents: Mapping[str, str], count_tokens: TokenCounter) -> list[_Piece]:
    """Pieces of one document whose spans overlap or touch (only blank text between them) become one, at the
    better one's place."""
    merged: list[_Piece] = []
    for piece in pieces:
        document = documents.get(piece.hit.id)
        target = None
        if document is not None:
            for other in merged:
                if other.hit.id == piece.hit.id and _touch(document, other, piece):
                    target = other
                    break
        if target is None:
            merged.append(piece)
            continue
        assert document is not None
        target.start, target.end = min(target.start, piece.start), max(target.end, piece.end)
        target.text = document[target.start:target.end]
        target.tokens = count_tokens([target.text])[0]
        if piece.first >= 0 and target.first >= 0:
            target.first, target.last = min(target.first, piece.first), max(target.last, piece.last)
    return merged


def _touch(document: str, a: _Piece, b: _Piece) -> bool:
    first, second = (a, b) if a.start <= b.start else (b, a)
    return second.start <= first.end or not document[first.end:second.start].strip()
