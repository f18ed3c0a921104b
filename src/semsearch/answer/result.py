"""What ``ask`` returns and streams: numbered passages, citations, the answer, its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import Hit


#: What an answer says when the documents do not answer the question (also the model's cue).
NO_ANSWER = "The documents do not answer this question."
#: The note every door gives with a model's answer that cites none of its sources.
UNGROUNDED = "the answer cites none of its sources, so nothing in it was checked against them"
#: The note for an answer the model stopped for length.
CUT_SHORT = ("the model stopped for length: the answer is cut short (raise --max-tokens, or the server's context "
             "size, or lower --context-tokens)")


@dataclass
class Passage:
    """One numbered piece of the context: text of one document, cited as ``[n]``.

    ``start``/``end`` are character offsets into the document's text (neighbouring text may
    have been merged around the hit's best chunk); ``hit`` is the search hit it came from.
    """

    n: int
    id: str
    text: str
    source: str | None
    start: int
    end: int
    tokens: int
    hit: Hit

    @property
    def given(self) -> str:
        """The text as the model is given it: the document's own bracketed numbers in parentheses,
        instruction-like sentences marked (:func:`semsearch.answer.quoting.as_given`)."""
        from .quoting import as_given

        return as_given(self.text)

    def to_dict(self) -> dict[str, Any]:
        """``n``, the document ``id`` and ``source``, the span ``start``/``end`` (character offsets into
        the document's text) and ``text``, the passage as the model was given it."""
        return {"n": self.n, "id": self.id, "source": self.source, "start": self.start, "end": self.end,
                "text": self.given}


@dataclass(frozen=True)
class Citation:
    """A source an answer cites: its number in the context and the document it points to."""

    n: int
    id: str

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "id": self.id}


@dataclass
class Answer:
    """An answer to a question about a collection, with the sources it cites.

    Attributes:
        text: the answer (for a refusal, :data:`NO_ANSWER`).
        answered: False when the documents do not answer the question (no hit passed the
            relevance threshold, so no model was asked; or the model said so).
        citations: the valid citations, in the order the answer first makes them; each ``n``
            is the number of a passage, and ``hits[n - 1]`` is the hit it came from.
        hits: the hits whose passages were given to the model (numbered 1, 2, ...); for a
            refusal, the hits the search found (none good enough).
        model: the language model that answered, ``extractive:<embedding model>`` for the
            offline answer, None for a refusal (no model was asked).
        grounded: True when the answer makes at least one valid citation. A model's answer that
            cites nothing is still returned (its text may have streamed already), flagged by
            ``grounded`` False and :attr:`warning`, in every door alike.
        removed_citations: numbers the model cited that were not among the sources (removed
            from ``text``).
        passages: the numbered context, as the model saw it.
        timings: milliseconds for ``search``, ``first_token`` and ``total``.
        cut_short: the model stopped for length (``max_tokens``, or a context window the prompt
            nearly filled), so the answer may be incomplete; flagged by :attr:`warning`.
    """

    question: str
    text: str
    answered: bool
    citations: list[Citation]
    hits: list[Hit]
    model: str | None
    grounded: bool = False
    removed_citations: list[int] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cut_short: bool = False

    @property
    def warning(self) -> str | None:
        """Why the answer should not be taken as it is: :data:`UNGROUNDED` (it cites none of its
        sources), :data:`CUT_SHORT` (the model stopped for length), both, or None."""
        notes = [UNGROUNDED] if self.answered and not self.grounded else []
        if self.cut_short:
            notes.append(CUT_SHORT)
        return "; ".join(notes) or None

    def to_dict(self) -> dict[str, Any]:
        """The answer as every door returns it (``semsearch ask --json``, HTTP ``/ask``, MCP ``ask``).

        ``question``, ``answer`` (the text), ``answered``, ``grounded``, ``warning``, ``model``;
        ``citations``: for each source the answer cites, its number ``n``, the document ``id``
        and ``source``, the span ``start``/``end`` in the document's text and ``text``, the
        passage exactly as the model was given it (so every quote can be checked against it);
        ``removed_citations``; ``hits``: the hits of the numbered passages (``[n]`` is ``hits[n-1]``).
        """
        by_n = {p.n: p for p in self.passages}
        return {
            "question": self.question,
            "answer": self.text,
            "answered": self.answered,
            "grounded": self.grounded,
            "warning": self.warning,
            "model": self.model,
            "citations": [by_n[c.n].to_dict() if c.n in by_n else c.to_dict() for c in self.citations],
            "removed_citations": list(self.removed_citations),
            "hits": [h.to_dict() for h in self.hits],
        }


@dataclass
class Retrieved:
    """First event of a streamed answer: the numbered passages (before any text)."""

    hits: list[Hit]
    passages: list[Passage]


@dataclass
class Token:
    """A piece of the answer's text, as it arrives (citations already checked)."""

    text: str


@dataclass
class Done:
    """Last event of a streamed answer: the complete :class:`Answer`."""

    answer: Answer


AnswerEvent = Retrieved | Token | Done
