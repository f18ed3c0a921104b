"""Sentences of a text as spans: ``text[start:end]`` is each sentence, exactly as the text has it.

Unicode sentence boundaries (semantic-text-splitter, which chunking already uses), paragraph by
paragraph; the pieces of one long sentence are joined back by span, never by re-spacing words.
"""

from __future__ import annotations

import re

#: Fragments shorter than this ("Dr.", "Yes.") are joined to the next sentence of their paragraph.
MIN_SENTENCE_CHARS = 25
#: Sentences longer than this are cut at their own clause punctuation, when they have some.
MAX_SENTENCE_CHARS = 400
_CLAUSE_END = re.compile(r"(?<=[;:—–])\s+|\s+(?=[—–]\s)")
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


