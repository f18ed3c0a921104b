"""What a passage's text becomes before a model (or the offline answer) reads it.

Two things in a document must not pass for something else:

* its own bracketed numbers (footnote marks ``[4]``, ``[ 4 ]``, ``[4, 5]``, ``[2-3]``,
  ``【4】``...) would read as citations of sources 4 and 5 once copied into an answer. Every
  bracket that the citation parser would read as a citation has its brackets turned into
  parentheses, ``(4)``: the same length, so offsets into the passage still hold;
* sentences that read as instructions to a language model ("ignore all previous
  instructions...") are marked ``⚠«...»`` in the passage the model is given (the system prompt
  says what the mark means), and the offline answer never quotes them.

The detection is a short list of patterns (English, plus the most common phrasings in German,
French and Spanish); it marks, it does not remove: the passage stays the document's text.
"""

from __future__ import annotations

import re

from .citations import citation_numbers
from .sentences import sentence_spans

#: The marks around an instruction-like sentence in the text a model is given.
MARK_OPEN, MARK_CLOSE = "⚠«", "»"

_BRACKETS = re.compile(r"\[([^\[\]\n]{0,48})\]|【([^【】\n]{0,48})】")
_TO_PARENTHESES = str.maketrans({"[": "(", "]": ")", "【": "(", "】": ")"})

_VERB = r"(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)"
_OBJECT = (r"(?:instructions?|prompts?|rules|guidelines|directions|directives|constraints|context|"
           r"system message|messages|orders)")
_INSTRUCTION = re.compile(
    "|".join([
        rf"\b{_VERB}\b[^.!?\n]{{0,40}}\b(?:previous|prior|above|earlier|preceding|all|any|your|the|these|those|"
        rf"system)\b[^.!?\n]{{0,20}}\b{_OBJECT}\b",
        r"\b(?:you are|you're|act as|pretend to be|from now on,? you)\b[^.!?\n]{0,30}\b(?:an? )?(?:AI|assistant|"
        r"language model|chatbot|LLM|DAN|GPT|jailbroken|unrestricted)\b",
        r"\b(?:new|updated|real|actual|hidden|secret) (?:system )?instructions?\s*:",
        r"\bsystem prompt\b",
        r"\b(?:answer|reply|respond|say|output|print|write|repeat)\b[^.!?\n]{0,12}\b(?:only|just|exactly)\b"
        r"[^.!?\n]{0,6}[\"'“‘«]",
        r"\b(?:ignoriere|vergiss)\b[^.!?\n]{0,40}\b(?:anweisungen|regeln|instruktionen)\b",
        r"\b(?:ignore[zr]?|oublie[zr]?)\b[^.!?\n]{0,40}\b(?:instructions|consignes|règles)\b",
        r"\b(?:ignora|olvida)\b[^.!?\n]{0,40}\b(?:instrucciones|reglas|indicaciones)\b",
    ]),
    re.IGNORECASE,
)


def neutralise_marks(text: str) -> str:
    """``text`` with every bracket the citation parser would read (``[4]``, ``[ 4 ]``, ``[4, 5]``,
    ``[Source 2]``, ``【4】``) in parentheses instead; same length, so offsets are unchanged."""

    def parenthesise(match: re.Match[str]) -> str:
        inside = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0).translate(_TO_PARENTHESES) if citation_numbers(inside) is not None else match.group(0)

    return _BRACKETS.sub(parenthesise, text)


def reads_as_instruction(sentence: str) -> bool:
    """True when ``sentence`` reads as an instruction to a language model (see the module's patterns)."""
    return _INSTRUCTION.search(sentence) is not None


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text`` that reads as an instruction to a language model."""
    return [(a, b) for a, b in sentence_spans(text, join=False) if reads_as_instruction(text[a:b])]


def as_given(text: str) -> str:
    """The passage text a model is given: footnote marks neutralised, instruction-like sentences marked."""
    text = neutralise_marks(text)
    out: list[str] = []
    last = 0
    for start, end in instruction_spans(text):
        out += [text[last:start], MARK_OPEN, text[start:end], MARK_CLOSE]
        last = end
    out.append(text[last:])
    return "".join(out)
