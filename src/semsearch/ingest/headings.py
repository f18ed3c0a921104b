"""Where a text's headings are, so chunking keeps each heading with the text it heads.

A heading is a Markdown heading (``# Title``, or a line underlined with ``===``/``---``), or a
short line standing alone that does not read as a sentence: a title prepended to a record
("Title\\ntext", as the JSONL/CSV loaders and HTML's ``<title>`` do), an HTML ``<h2>`` turned
into its own paragraph, a plain-text essay's title and date lines. Consecutive heading lines
(a title, then a date or a subtitle) make one run. Only a run followed by more text counts: a
heading heads what comes after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

#: A line longer than this (characters or words) is text, not a heading.
MAX_HEADING_CHARS = 120
MAX_HEADING_WORDS = 16

_ATX = re.compile(r"[ ]{0,3}#{1,6}[ \t]+\S")
_UNDERLINE = re.compile(r"[ ]{0,3}(=+|-{2,})[ \t]*")
_FENCE = re.compile(r"[ ]{0,3}(```|~~~)")
_LIST_ITEM = re.compile(r"([-*+•]|\d{1,3}[.)])\s")
# A line ending like a sentence or a clause is text, whatever its length.
_TEXT_END = tuple(".!?;:,…。！？；：，")
_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_INSIDE = re.compile(r"[.!?。！？]\s+\S")  # "One sentence. And the start of another": text


@dataclass(frozen=True)
class Section:
    """A span of a text: ``start``..``end``, headed by ``start``..``heading_end`` (empty when it has no heading)."""

    start: int
    end: int
    heading_end: int

    @property
    def headed(self) -> bool:
        return self.heading_end > self.start


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # without the newline
    text: str


def _lines(text: str) -> Iterator[_Line]:
    start = 0
    for line in text.split("\n"):
        yield _Line(start, start + len(line), line)
        start += len(line) + 1


def _short_and_bare(line: str) -> bool:
    stripped = line.strip()
    return (
        0 < len(stripped) <= MAX_HEADING_CHARS
        and len(stripped.split()) <= MAX_HEADING_WORDS
        and not stripped.endswith(_TEXT_END)
        and not _SENTENCE_INSIDE.search(stripped)
        and not _LIST_ITEM.match(stripped)
        and _LETTER.search(stripped) is not None
    )


def _heading_lines(lines: list[_Line]) -> list[bool]:
    """For each line, whether it is (part of) a heading."""
    marks = [False] * len(lines)
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line.text):
            in_fence = not in_fence
            continue
        if in_fence or not line.text.strip():
            continue
        before_blank = i == 0 or not lines[i - 1].text.strip()
        after = lines[i + 1].text if i + 1 < len(lines) else ""
        if _ATX.match(line.text):
            marks[i] = True
        elif before_blank and _UNDERLINE.fullmatch(after) and _short_and_bare(line.text):
            marks[i] = marks[i + 1] = True  # a setext heading and its underline
        elif marks[i]:
            continue  # an underline already marked
        elif before_blank and (not after.strip() or i == 0) and _short_and_bare(line.text):
            marks[i] = True  # a short line alone: a title, an HTML heading, a date under a title
        elif i > 0 and marks[i - 1] and _short_and_bare(line.text):
            marks[i] = True  # a subtitle or date right under a heading
    return marks


def sections(text: str) -> list[Section]:
    """The text cut before each heading run that has text after it; one section when there is none.

    Sections cover the text in order, without gaps; a section's heading is the run it starts with.
    """
    lines = list(_lines(text))
    marks = _heading_lines(lines)
    runs: list[tuple[int, int]] = []  # (start, end) offsets of heading runs followed by text
    i = 0
    while i < len(lines):
        if not marks[i]:
            i += 1
            continue
        first = last = i
        j = i + 1
        while j < len(lines) and (marks[j] or not lines[j].text.strip()):
            if marks[j]:
                last = j
            j += 1
        if j < len(lines):  # text follows the run
            runs.append((lines[first].start, lines[last].end))
        i = j
    if not runs:
        return [Section(0, len(text), 0)]
    out: list[Section] = []
    if text[: runs[0][0]].strip():
        out.append(Section(0, runs[0][0], 0))
    for n, (start, end) in enumerate(runs):
        stop = runs[n + 1][0] if n + 1 < len(runs) else len(text)
        out.append(Section(start if out else 0, stop, end))  # leading blank lines join the first section
    return out
