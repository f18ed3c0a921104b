"""Search options, checked once where they enter (every backend takes the same ones)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from ..filters import Node, combine, parse_where, parse_where_document
from .calibration import NO_MATCH_THRESHOLD
from .fusion import FUSIONS

MODES = ("dense", "lexical", "hybrid")


@dataclass
class SearchOptions:
    """Validated search options (see :meth:`semsearch.Collection.search` for their meaning)."""

    k: int
    mode: str
    filter: Node | None = None
    fusion: str = "adaptive"
    alpha: float = 0.7
    rrf_k: float = 60.0
    candidates: int = 100
    rerank: str | None = None
    rerank_top: int = 50
    threshold: float | None = None
    mmr: float | None = None

    @classmethod
    def checked(
        cls, *, k: int, where: Any, where_document: Any, mode: str | None, has_text: bool, fusion: str,
        alpha: float, rrf_k: float, candidates: int, rerank: str | None, rerank_top: int,
        threshold: float | str | None, mmr: float | None,
    ) -> SearchOptions:
        """Options with every value checked; raises InvalidInputError naming the bad one."""
        node = combine(parse_where(where), parse_where_document(where_document))
        if mode is None:
            mode = "hybrid" if has_text else "dense"
        if mode not in MODES:
            raise InvalidInputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if not has_text and mode != "dense":
            raise InvalidInputError(
                f"mode {mode!r} needs query text; embeddings can only be searched with mode='dense'")
        if fusion not in FUSIONS:
            raise InvalidInputError(f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}")
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
            raise InvalidInputError(f"alpha is the dense weight, between 0 and 1; got {alpha!r}")
        if not (isinstance(rrf_k, (int, float)) and rrf_k >= 0 and math.isfinite(rrf_k)):
            raise InvalidInputError(f"rrf_k must be a number >= 0 (60 is usual); got {rrf_k!r}")
        for name, value in (("candidates", candidates), ("rerank_top", rerank_top)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a whole number of at least 1, got {value!r}")
        if threshold == "auto":
            threshold = NO_MATCH_THRESHOLD
        if threshold is not None and not (
            isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and math.isfinite(threshold)
        ):
            raise InvalidInputError('threshold must be a number or "auto" (the calibrated "no good match" line), got '
                                    f'{threshold!r}')
        if mmr is not None and not (isinstance(mmr, (int, float)) and 0.0 <= mmr <= 1.0):
            raise InvalidInputError(f"mmr is a lambda between 0 (diverse) and 1 (relevant only); got {mmr!r}")
        if rerank is not None and (not isinstance(rerank, str) or not rerank.strip()):
            raise InvalidInputError(f"rerank must be a CrossEncoder model name or path, got {rerank!r}")
        return cls(k, mode, node, fusion, float(alpha), float(rrf_k), candidates, rerank, rerank_top,
                   None if threshold is None else float(threshold), None if mmr is None else float(mmr))
