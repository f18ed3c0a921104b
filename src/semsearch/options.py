"""Every option a user can give a search, an answer or an exploration: defined once, for every door.

Python (``Collection.search``/``ask``/``similar``/``duplicates``/``topics``), the CLI, the HTTP
API and the MCP tools offer these options. Each :class:`Option` holds the name, the default, the
one description every door shows, the bounds and the choices; :meth:`Option.check` is the one
check, so an out-of-range value gets the same error (and message) through every door, and is
never clamped. A door's own caps (a server's ``max_k``, MCP's 20 hits) are refused with
:func:`over_limit`'s message, the same everywhere too. tests/conformance/test_options.py checks that each
door offers the options it should, with these defaults, descriptions and bounds.

Only the standard library is imported here: the CLI builds its help from this module.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError

DOORS = ("python", "cli", "http", "mcp")
MODES = ("dense", "lexical", "hybrid")
FUSIONS = ("adaptive", "rrf", "weighted")
SIMILAR_QUERIES = ("mean", "chunks")
KEEP_POLICIES = ("first", "longest", "newest")
#: Below this relevance a best hit does not answer the query ("no good match"); the one cut every
#: door refuses an answer at (bench/RESULTS.md, "Calibrated relevance").
NO_MATCH_THRESHOLD = 0.5


@dataclass(frozen=True)
class Option:
    """One option: what it is, its default, and the values it takes.

    ``kind`` is "int", "float", "bool", "str", "choice" or "filter" (a ``where`` filter, checked
    by :mod:`semsearch.filters`). ``minimum``/``maximum`` bound numbers (``above`` makes the
    minimum exclusive); ``nullable`` lets None mean "not set". ``also`` names the values a
    number option takes besides numbers (threshold's "auto"). ``doors`` are where it is offered.
    """

    name: str
    default: Any
    help: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    also: tuple[str, ...] = ()
    doors: tuple[str, ...] = DOORS

    def check(self, value: Any) -> Any:
        """``value`` if this option takes it.

        Raises:
            InvalidInputError: naming the option, what it takes and what was given.
        """
        if value is None and (self.nullable or self.default is None):
            return None
        if isinstance(value, str) and value in self.also:
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise InvalidInputError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise InvalidInputError(f"{self.name} must be true or false, got {value!r}")
            return value
        if self.kind == "str":
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(f"{self.name} must be {self.takes()}, got {value!r}")
            return value
        if self.kind in ("int", "float"):
            return self._number(value)
        return value  # filters are parsed and checked by semsearch.filters

    def _number(self, value: Any) -> Any:
        if isinstance(value, bool):
            ok = False
        elif self.kind == "int":
            ok = isinstance(value, numbers.Integral)
        else:
            ok = isinstance(value, numbers.Real) and math.isfinite(value)
        if ok and self.minimum is not None:
            ok = value > self.minimum if self.above else value >= self.minimum
        if ok and self.maximum is not None:
            ok = value <= self.maximum
        if not ok:
            raise InvalidInputError(f"{self.name} must be {self.takes()}, got {value!r}")
        return int(value) if self.kind == "int" else float(value)

    def takes(self) -> str:
        """What the option takes, in words (for messages)."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "str":
            return "a non-empty string"
        if self.kind == "bool":
            return "true or false"
        noun = "a whole number" if self.kind == "int" else "a number"
        low = None if self.minimum is None else _num(self.minimum)
        high = None if self.maximum is None else _num(self.maximum)
        if low is not None and high is not None:
            bound = f" above {low} and at most {high}" if self.above else f" from {low} to {high}"
        elif low is not None:
            bound = f" above {low}" if self.above else f" of at least {low}"
        else:
            bound = ""
        return noun + bound + "".join(f' or "{a}"' for a in self.also)

    def schema(self) -> dict[str, Any]:
        """JSON-schema bounds of the option (for HTTP models and MCP tools): documented there,
        checked by :meth:`check` so every door gives the same message."""
        out: dict[str, Any] = {}
        if self.choices:
            out["enum"] = list(self.choices)
        if self.minimum is not None:
            out["exclusiveMinimum" if self.above else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def over_limit(name: str, value: int, maximum: int, what: str) -> InvalidInputError:
    """The error of a value over a door's own cap (e.g. a server's ``max_k``), the same on every door."""
    return InvalidInputError(f"{name} is {value}; {what} at most {maximum}")


def _options(*options: Option) -> dict[str, Option]:
    return {o.name: o for o in options}


K = Option("k", 10, "How many results per query.", "int", minimum=1)
WHERE = Option("where", None, 'Metadata filter, ChromaDB style: {"topic": "ml"}, {"year": {"$gte": 2020}}, '
               '{"$or": [...]}.', "filter")
WHERE_DOCUMENT = Option("where_document", None, 'Document-text filter: {"$contains": "FAISS"}, {"$not_contains": ...}, '
                        "combined with $and / $or.", "filter")
MODE = Option("mode", None, "hybrid (meaning and words, fused; the default for text), dense (meaning) or lexical "
              "(BM25 words).", "choice", choices=MODES)

#: The options of a search (``Collection.search``, ``semsearch search``, ``POST /search``, MCP ``search``).
SEARCH = _options(
    K, WHERE, WHERE_DOCUMENT, MODE,
    Option("fusion", "adaptive", "How hybrid mode fuses the two rankings: adaptive (weighs each retriever per query), "
           "rrf (reciprocal rank fusion) or weighted (dense weight alpha).", "choice", choices=FUSIONS,
           doors=("python", "cli", "http")),
    Option("alpha", 0.7, "The dense weight of fusion=weighted, from 0 to 1.", "float", minimum=0, maximum=1,
           doors=("python", "cli", "http")),
    Option("rrf_k", 60.0, "k of reciprocal rank fusion (fusion=rrf).", "float", minimum=0,
           doors=("python", "cli", "http")),
    Option("candidates", 100, "How many documents each retriever contributes to fusion and reranking.", "int",
           minimum=1, doors=("python", "cli", "http")),
    Option("rerank", None, "Rerank with this CrossEncoder (a name or folder; on a server, true or one the server "
           "offers).", "str", doors=("python", "cli", "http")),
    Option("rerank_top", 50, "How many candidates the cross-encoder reads.", "int", minimum=1,
           doors=("python", "cli", "http")),
    Option("threshold", None, 'Leave out hits whose relevance (0..1) is below this; "auto": the calibrated '
           "no-good-match line.", "float", also=("auto",), doors=("python", "cli", "http")),
    Option("mmr", None, "Diversify: maximal marginal relevance lambda from 0 (diverse) to 1 (relevance only).",
           "float", minimum=0, maximum=1, doors=("python", "cli", "http")),
)

#: The options of an answer (``Collection.ask``, ``semsearch ask``, ``POST /ask``, MCP ``ask``).
ASK = _options(
    Option("k", 5, "Passages to retrieve (best first, within the context budget).", "int", minimum=1),
    WHERE, WHERE_DOCUMENT, MODE,
    Option("rerank", None, "Rerank the passages with this CrossEncoder (on a server, true or one it offers).", "str",
           doors=("python", "cli", "http")),
    Option("context_tokens", 1200, "Tokens of passages the prompt carries.", "int", minimum=64),
    Option("min_relevance", NO_MATCH_THRESHOLD, "Passages less relevant than this (0..1) are left out; with none "
           "left, no answer. Default: the calibrated no-good-match line.", "float", minimum=0, maximum=1),
    Option("max_sentences", 3, "Sentences in an extractive (offline) answer.", "int", minimum=1),
)

#: More like this (``Collection.similar``, ``semsearch similar``, ``POST /similar``).
SIMILAR = _options(
    Option("k", 10, "How many similar documents.", "int", minimum=1),
    WHERE,
    Option("query", "mean", "mean: compare documents as wholes (their mean vectors); chunks: by their best chunk "
           "pair.", "choice", choices=SIMILAR_QUERIES),
)

#: Near-duplicates (``Collection.duplicates``, ``semsearch duplicates``, ``POST /duplicates``).
DUPLICATES = _options(
    Option("threshold", 0.95, "Cosine similarity at or above which two documents are near-duplicates.", "float",
           minimum=0, maximum=1, above=True),
    WHERE,
    Option("exact", None, "Compare exactly, or through an IVF index (default: exact up to 20,000 documents).", "bool",
           nullable=True),
    Option("text_threshold", 0.6, "Word-triple Jaccard similarity two near-duplicates must also have (their text "
           "reads alike, not only their meaning); null or --semantic: the cosine alone.", "float", minimum=0,
           maximum=1, nullable=True),
    Option("keep", "first", "Which member of each group to keep: first (oldest), longest or newest.", "choice",
           choices=KEEP_POLICIES, doors=("cli", "http")),
)

#: Topics (``Collection.topics``, ``semsearch topics``, ``POST /topics``).
TOPICS = _options(
    Option("n", None, "Number of topics (default: chosen from the data).", "int", minimum=1, nullable=True),
    WHERE,
    Option("outliers", True, "Put documents that belong to no topic in an outlier topic (id -1) instead of the "
           "nearest one.", "bool"),
)

#: Reading stored documents in pages (MCP ``get_documents``: an agent's context is bounded).
READ = _options(
    Option("offset", 0, "Character offset to read each document's text from (page through long documents).", "int",
           minimum=0, doors=("mcp",)),
    Option("max_chars", 4000, "At most this many characters of each document.", "int", minimum=1, maximum=20_000,
           doors=("mcp",)),
)

__all__ = ["ASK", "DUPLICATES", "FUSIONS", "KEEP_POLICIES", "MODES", "NO_MATCH_THRESHOLD", "READ", "SEARCH", "SIMILAR",
           "TOPICS", "Option", "over_limit"]
