"""Search options, checked once where they enter (every backend and every door takes the same ones).

What each option is, its default and bounds are :data:`semsearch.options.SEARCH` (the one
definition every door shows); this is the checked form the ranking stages read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from ..filters import Node, combine, parse_where, parse_where_document
from ..options import MODES, NO_MATCH_THRESHOLD, SEARCH


@dataclass
class SearchOptions:
    """Validated search options (see :data:`semsearch.options.SEARCH` for their meaning)."""

    k: int
    mode: str
    filter: Node | None = None
    fusion: str = SEARCH["fusion"].default
    alpha: float = SEARCH["alpha"].default
    rrf_k: float = SEARCH["rrf_k"].default
    candidates: int = SEARCH["candidates"].default
    rerank: str | None = None
    rerank_top: int = SEARCH["rerank_top"].default
    threshold: float | None = None
    mmr: float | None = None

    @classmethod
    def checked(cls, *, k: Any, has_text: bool, **options: Any) -> SearchOptions:
        """Options with every value checked (those not given take their defaults); raises
        InvalidInputError naming the bad one."""
        unknown = set(options) - set(SEARCH)
        if unknown:
            raise InvalidInputError(f"unknown search option(s) {', '.join(sorted(unknown))}; the options are "
                                    f"{', '.join(SEARCH)}")
        values = {name: option.check(options.get(name, option.default)) for name, option in SEARCH.items()
                  if name != "k"}
        node = combine(parse_where(values.pop("where")), parse_where_document(values.pop("where_document")))
        mode = values.pop("mode") or ("hybrid" if has_text else "dense")
        if not has_text and mode != "dense":
            raise InvalidInputError(
                f"mode {mode!r} needs query text; embeddings can only be searched with mode='dense'")
        if values["threshold"] == "auto":
            values["threshold"] = NO_MATCH_THRESHOLD
        return cls(SEARCH["k"].check(k), mode, node, **values)


__all__ = ["MODES", "SearchOptions"]
