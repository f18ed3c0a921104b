"""Citations in an answer: found while the text streams, checked against the given sources.

A citation is a bracket holding source numbers: ``[1]``, ``[1, 3]``, ``[1][2]``, ``[2-3]``,
``[Source 2]``, ``【1】``. Numbers that are not among the passages given to the model are
removed from the text and reported; a bracket left with no valid number disappears. The
streamed text and the final text are the same string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_OPENERS = "[【"
_CLOSERS = {"[": "]", "【": "】"}
#: Longest bracket still read as a possible citation (longer ones are passed through as text).
_MAX_BRACKET = 48
_CITATION = re.compile(
    r"^(?:(?:sources?|passages?|docs?|documents?|ref|refs)\s*)?#?\s*"
    r"(\d{1,4}(?:\s*(?:,|;|-|–|and|&)\s*(?:(?:sources?|passages?)\s*)?#?\s*\d{1,4})*)\s*$",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d{1,4}")


def citation_numbers(inside: str) -> list[int] | None:
    """The source numbers a bracket's inside cites (ranges expanded), or None if it is not a citation."""
    match = _CITATION.match(inside.strip())
    if not match:
        return None
    body = match.group(1)
    numbers: list[int] = []
    parts = re.split(r"\s*(,|;|and|&)\s*", body, flags=re.IGNORECASE)
    for part in parts:
        bounds = [int(x) for x in _NUMBER.findall(part)]
        if len(bounds) == 2 and re.search(r"[-–]", part) and 0 <= bounds[1] - bounds[0] <= 20:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


class CitationFilter:
    """Checks citations in text that arrives in pieces.

    ``feed`` returns the text that is safe to show now; a bracket that may be a citation is
    held back until it closes (at most ~48 characters). ``finish`` returns what is left.
    ``cited`` lists the valid numbers in the order first cited, ``removed`` the invalid ones.
    """

    def __init__(self, valid: Iterable[int]) -> None:
        self.valid = frozenset(valid)
        self.cited: list[int] = []
        self.removed: list[int] = []
        self._held = ""
        self._space = ""  # trailing whitespace, held until we know a removed citation does not follow

    def feed(self, delta: str) -> str:
        text, self._held = self._held + delta, ""
        return self._emit(self._scan(text, final=False))

    def finish(self) -> str:
        """The rest of the text (a bracket left open is shown as it was); the filter is then done."""
        text, self._held = self._held, ""
        return self._emit(self._scan(text, final=True), final=True)

    def _scan(self, text: str, final: bool) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            opener = min((p for p in (text.find(o, i) for o in _OPENERS) if p >= 0), default=-1)
            if opener < 0:
                out.append(text[i:])
                break
            out.append(text[i:opener])
            char = text[opener]
            close = text.find(_CLOSERS[char], opener + 1)
            if close < 0 or close - opener > _MAX_BRACKET:
                if close < 0 and not final and len(text) - opener < _MAX_BRACKET:
                    self._held = text[opener:]  # may become a citation when more text arrives
                    break
                out.append(char)
                i = opener + 1
                continue
            inner = text.rfind(char, opener + 1, close)
            if inner > opener:  # nested, e.g. "[[3]]" or "[see [3]]": the innermost bracket may cite
                out.append(text[opener:inner])
                opener = inner
            doubled = opener > 0 and text[opener - 1] == char and out and out[-1].endswith(char)
            if doubled and close + 1 == len(text) and not final:
                out[-1] = out[-1][:-1]
                self._held = text[opener - 1:]  # "[[3]" may be "[[3]]": wait for the next character
                break
            bracket = text[opener:close + 1]
            if doubled and text[close + 1:close + 2] == _CLOSERS[char] and citation_numbers(bracket[1:-1]) is not None:
                out[-1] = out[-1][:-1]  # "[[3]]" is one citation
                close += 1
            out.append(self._citation(bracket, out))
            i = close + 1
        return "".join(out)

    def _citation(self, bracket: str, out: list[str]) -> str:
        numbers = citation_numbers(bracket[1:-1])
        if numbers is None:
            return bracket
        keep: list[int] = []
        for n in numbers:
            if n in self.valid:
                if n not in keep:
                    keep.append(n)
                if n not in self.cited:
                    self.cited.append(n)
            elif n not in self.removed:
                self.removed.append(n)
        if keep:
            return "[" + ", ".join(str(n) for n in keep) + "]"
        # Nothing valid: drop the bracket and the space before it ("capital [9]." -> "capital.").
        last = next((j for j in range(len(out) - 1, -1, -1) if out[j]), None)
        if last is not None:
            out[last] = out[last].rstrip(" \t")
        else:
            self._space = ""
        return ""

    def _emit(self, text: str, final: bool = False) -> str:
        text = self._space + text
        self._space = ""
        if not final:
            stripped = text.rstrip(" \t")
            self._space, text = text[len(stripped):], stripped
        return text


def check_citations(text: str, valid: Iterable[int]) -> tuple[str, list[int], list[int]]:
    """``text`` with invalid citations removed, the valid numbers cited (in order), the removed ones."""
    checker = CitationFilter(valid)
    clean = checker.feed(text) + checker.finish()
    return clean, checker.cited, checker.removed
