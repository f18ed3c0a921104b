"""Answers with citations from a collection's documents: extractive offline, or by a language model.

>>> from semsearch.answer import ask                                    # doctest: +SKIP
>>> answer = ask(col, "when did Apollo 11 land?")                       # doctest: +SKIP
>>> answer.text, answer.citations, answer.answered                      # doctest: +SKIP
"""

from __future__ import annotations

from .chat import API_KEY_ENV, ChatClient, ChatSettings
from .citations import CitationFilter, check_citations
from .context import assemble_context
from .pipeline import DEFAULT_CONTEXT_TOKENS, ask, stream_ask, warm_up
from .prompt import Fence, build_messages, defuse
from .refusal import DENSE_COSINE_THRESHOLD, calibrated_score, dense_relevance, good_matches
from .result import NO_ANSWER, UNGROUNDED, Answer, AnswerEvent, Citation, Done, Passage, Retrieved, Token

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_CONTEXT_TOKENS",
    "DENSE_COSINE_THRESHOLD",
    "NO_ANSWER",
    "UNGROUNDED",
    "Answer",
    "AnswerEvent",
    "ChatClient",
    "ChatSettings",
    "Citation",
    "CitationFilter",
    "Done",
    "Fence",
    "Passage",
    "Retrieved",
    "Token",
    "ask",
    "assemble_context",
    "build_messages",
    "calibrated_score",
    "check_citations",
    "defuse",
    "dense_relevance",
    "good_matches",
    "stream_ask",
    "warm_up",
]
