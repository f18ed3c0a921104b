"""Hard negatives: passages the current model ranks high for a query but that do not answer it.

Mining is sentence-transformers' own ``util.mine_hard_negatives`` (exact cosine over the
candidate corpus with the base model, its query/document prompts applied). False negatives,
passages that do answer the query but are not labelled, are the known risk (users report
models getting worse from them): a candidate is kept only when its score is at least
``relative_margin`` of the positive's score below it (NV-Retriever's "TopK-PercPos", 0.05),
and ``range_min`` can skip the top ranks entirely, as RAGatouille does.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiningSettings:
    """How many negatives per pair and which candidates count (see the module docstring)."""

    negatives: int = 1
    range_min: int = 0
    range_max: int = 30
    relative_margin: float | None = 0.05
    batch_size: int = 64


def mine(
    rows: list[list[str]], corpus: Sequence[str], model: Any, settings: MiningSettings
) -> tuple[list[list[str]], dict[str, int]]:
    """Give every (query, positive) row ``settings.negatives`` mined negatives.

    Rows that already carry an explicit negative keep it and are not mined. A row for which
    no candidate passes the margin gets random passages from the corpus instead (a random
    passage is what an in-batch negative is anyway), so no training pair is dropped.

    Returns (rows of equal length: query, positive, negative_1..n; counts for the model card).
    """
    counts = {"mined": 0, "explicit": sum(len(r) > 2 for r in rows), "random_fill": 0}
    if settings.negatives <= 0:
        return pad_negatives(rows, corpus, counts)
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    todo = [r for r in rows if len(r) == 2]
    found: dict[tuple[str, str], list[str]] = {}
    if todo:
        prompts = getattr(model, "prompts", None) or {}
        pool = list(dict.fromkeys(corpus))
        k = settings.negatives
        mined = mine_hard_negatives(
            Dataset.from_dict({"query": [r[0] for r in todo], "positive": [r[1] for r in todo]}),
            model,
            corpus=pool,
            range_min=settings.range_min,
            range_max=max(settings.range_max, settings.range_min + k),
            relative_margin=settings.relative_margin,
            num_negatives=k,
            sampling_strategy="top",
            output_format="n-tuple",
            query_prompt_name="query" if "query" in prompts else None,
            corpus_prompt_name="document" if "document" in prompts else None,
            batch_size=settings.batch_size,
            use_faiss=len(pool) > 100_000,
            verbose=False,
        )
        negative_columns = [c for c in mined.column_names if c not in ("query", "positive")]
        for item in mined:
            found[(item["query"], item["positive"])] = [item[c] for c in negative_columns]
    out = []
    for row in rows:
        if len(row) > 2:
            out.append(row)
        elif (row[0], row[1]) in found:
            counts["mined"] += 1
            out.append([row[0], row[1], *found[(row[0], row[1])]])
        else:
            out.append(row)
    return pad_negatives(out, corpus, counts, settings.negatives)


def pad_negatives(
    rows: list[list[str]], corpus: Sequence[str], counts: dict[str, int], width: int = 0, seed: int = 0
) -> tuple[list[list[str]], dict[str, int]]:
    """Bring every row to the same number of negatives with random corpus passages.

    The loss needs one shape per batch; a random passage other than the row's positive is a
    plain in-batch-style negative. With fewer than two passages to draw from, negatives are
    dropped instead (every row becomes a pair).
    """
    width = max([width, *(len(r) - 2 for r in rows)])
    pool = list(dict.fromkeys(corpus))
    if width == 0:
        return rows, counts
    if len(pool) < 2:
        log.warning("too few passages to fill negatives; training on pairs only")
        return [r[:2] for r in rows], counts
    rng = random.Random(seed)
    out = []
    for row in rows:
        row = list(row)
        while len(row) < width + 2:
            pick = rng.choice(pool)
            if pick != row[1]:
                row.append(pick)
                counts["random_fill"] += 1
        out.append(row[: width + 2])
    return out, counts
