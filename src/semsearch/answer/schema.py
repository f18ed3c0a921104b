"""The answer's JSON schema, for the doors that declare one (HTTP ``/ask``, the MCP ``ask`` tool).

It mirrors :meth:`semsearch.answer.Answer.to_dict` field for field: the doors fill it from
that one dict, so ``semsearch ask --json``, HTTP and MCP return the same answer. Needs pydantic
(a dependency of both the server and the MCP extras).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CitedPassage(BaseModel):
    """A passage an answer cites, as the model was given it, and where it stands in its document."""

    n: int = Field(description="The number the answer cites it by, as [n]; hits[n-1] is its hit.")
    id: str = Field(description="The document it comes from.")
    source: str | None = Field(None, description="The document's source (file path or label).")
    start: int = Field(description="Where the passage starts in the document's text (character offset).")
    end: int = Field(description="Where it ends (exclusive): the passage is text[start:end] of the document.")
    text: str = Field(description="The passage exactly as the model was given it: the document's text, its own "
                                  "bracketed numbers in parentheses and instruction-like sentences marked ⚠«...».")


class AnswerData(BaseModel):
    """What every door returns for a question (``Answer.to_dict()``)."""

    question: str
    answer: str = Field(description="The answer's text; every [n] in it is a citation of passage n.")
    answered: bool = Field(description="False when the documents do not answer the question (no model was "
                                       "asked) or the model said they do not.")
    grounded: bool = Field(description="True when the answer cites at least one of its sources. A model's "
                                       "answer that cites none is returned, flagged: grounded false and a warning.")
    warning: str | None = Field(description="Set when the answer should not be trusted as it is (it cites nothing).")
    model: str | None = Field(description="The model that answered; extractive:<embedding model> offline; "
                                          "null for a refusal.")
    citations: list[CitedPassage]
    removed_citations: list[int] = Field(description="Numbers the model cited that were not sources (removed).")
    hits: list[dict[str, Any]] = Field(description="The numbered passages' search hits ([n] is hits[n-1]).")
