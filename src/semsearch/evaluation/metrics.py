"""trec_eval metrics of a run against qrels: nDCG, MRR, Recall, MAP and P at a cutoff k.

A *run* is ``{query_id: {doc_id: score}}`` (higher score = better), *qrels* are
``{query_id: {doc_id: grade}}`` with integer grades (0 or less = judged not relevant).

Every metric follows trec_eval's definition, so numbers equal pytrec_eval's and published ones:

- ranking: documents are sorted by descending score, ties broken by descending doc id
  (trec_eval's ``strcmp`` order, which is Python's ``str`` order for UTF-8 ids); the input
  ranks or order of the run are ignored, as trec_eval ignores them.
- ``ndcg@k`` (trec_eval ``ndcg_cut.k``): gain = grade (negative grades count 0), discount
  ``log2(rank + 1)``, ideal ranking built from *all* judged relevant documents.
- ``mrr@k``: 1 / rank of the first document with grade > 0 within the top k, else 0
  (trec_eval ``recip_rank`` on the run cut at k).
- ``recall@k`` (``recall.k``): relevant documents in the top k / all relevant documents.
- ``map@k`` (``map_cut.k``): sum of precision at the rank of every relevant document within
  the top k, divided by the number of relevant documents (not by min(k, relevant)).
- ``precision@k`` / ``p@k`` (``P.k``): relevant documents in the top k / k.

Which queries count: those that were searched and are judged, as trec_eval without ``-c``:

- a query counts when it is a key of the run *and* of the qrels. A query searched with no
  result belongs in the run with an empty dict (:func:`run_from_hits` does that): it scores 0.
- a judged query missing from the run was not searched: it is left out of the mean, never
  counted as 0 (``trec_eval -c`` would count it; that made ``semsearch eval`` report 0.05 where
  trec_eval reports 0.71 on a dataset whose qrels judge 702 queries and whose queries file holds 50).
- a searched query whose judgements hold no relevant document scores 0 everywhere, as in
  trec_eval (``semsearch eval`` does not search such queries; see ``BeirDataset.judged_queries``).
- run queries that have no judgements are ignored.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100")
METRIC_NAMES: tuple[str, ...] = ("ndcg", "mrr", "recall", "map", "precision")
_ALIASES = {"p": "precision", "ndcg_cut": "ndcg", "map_cut": "map", "recip_rank": "mrr"}
_METRIC_RE = re.compile(r"^\s*([a-z_]+)\s*@\s*(\d+)\s*$")


@dataclass(frozen=True)
class Metric:
    """A parsed metric name such as ``ndcg@10``: ``name`` in METRIC_NAMES and cutoff ``k``."""

    name: str
    k: int

    def __str__(self) -> str:
        return f"{self.name}@{self.k}"


def parse_metric(spec: str) -> Metric:
    """Parse ``"ndcg@10"``, ``"MRR@10"``, ``"p@5"``...

    Raises:
        InvalidInputError: an unknown metric or a cutoff below 1.
    """
    m = _METRIC_RE.match(spec.lower())
    name = m and _ALIASES.get(m.group(1), m.group(1))
    if not m or name not in METRIC_NAMES:
        raise InvalidInputError(
            f"unknown metric {spec!r}; use one of {', '.join(n + '@k' for n in METRIC_NAMES)} (e.g. ndcg@10)"
        )
    k = int(m.group(2))
    if k < 1:
        raise InvalidInputError(f"metric {spec!r}: the cutoff must be at least 1")
    return Metric(name, k)


def trec_ranking(scores: Mapping[str, float], k: int | None = None) -> list[str]:
    """Doc ids in trec_eval order (score descending, then doc id descending), cut at ``k``."""
    items = ((float(s), d) for d, s in scores.items())
    top = heapq.nlargest(k, items) if k is not None else sorted(items, reverse=True)
    return [d for _, d in top]


def evaluate_per_query(
    run: Run, qrels: Qrels, metrics: Iterable[str] = DEFAULT_METRICS
) -> dict[str, dict[str, float]]:
    """Metric values per searched, judged query: ``{query id: {metric name: value}}``.

    Metric names are returned as given. Only queries that are keys of both ``run`` and
    ``qrels`` appear (see the module docstring), in the qrels' order.

    Raises:
        InvalidInputError: an unknown metric name, or a NaN score in the run.
    """
    names = list(dict.fromkeys(metrics))
    parsed = [parse_metric(n) for n in names]
    if not parsed:
        return {}
    depth = max(m.k for m in parsed)
    # 1 / log2(rank + 1) for ranks 1..depth, shared by every query.
    discounts = 1.0 / np.log2(np.arange(2, depth + 2, dtype=np.float64))
    out: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        if qid not in run:
            continue
        grades_all = np.fromiter((g for g in judged.values()), dtype=np.float64, count=len(judged))
        positive = np.sort(grades_all[grades_all > 0])[::-1]
        num_rel = positive.size
        scores = run[qid] or {}
        if any(math.isnan(float(s)) for s in scores.values()):
            raise InvalidInputError(f"run for query {qid!r} holds a NaN score; every score must be a number")
        if num_rel == 0:  # trec_eval: every measure is 0 for a query with nothing relevant
            out[qid] = {name: 0.0 for name in names}
            continue
        ranked = trec_ranking(scores, depth)
        grades = np.fromiter((judged.get(d, 0) for d in ranked), dtype=np.float64, count=len(ranked))
        gains = np.maximum(grades, 0.0)  # trec_eval gives negative grades no (not negative) gain
        relevant = grades > 0
        hits_at = np.cumsum(relevant)  # relevant documents within the top r, r = 1..len(ranked)
        values: dict[str, float] = {}
        for name, m in zip(names, parsed):
            n = min(m.k, len(ranked))
            if m.name == "ndcg":
                dcg = float(np.dot(gains[:n], discounts[:n]))
                ideal = positive[: m.k]
                idcg = float(np.dot(ideal, discounts[: ideal.size]))
                values[name] = dcg / idcg
            elif m.name == "mrr":
                first = np.flatnonzero(relevant[:n])
                values[name] = 1.0 / float(first[0] + 1) if first.size else 0.0
            elif m.name == "recall":
                values[name] = float(hits_at[n - 1]) / num_rel if n else 0.0
            elif m.name == "map":
                ranks = np.flatnonzero(relevant[:n]) + 1
                values[name] = float(np.sum(hits_at[ranks - 1] / ranks)) / num_rel
            else:  # precision: trec_eval divides by k even when fewer documents were retrieved
                values[name] = float(hits_at[n - 1]) / m.k if n else 0.0
        out[qid] = values
    return out


def evaluate(run: Run, qrels: Qrels, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean of each metric over the searched, judged queries: ``{metric name: value}``.

    The mean is over the queries in both ``run`` and ``qrels`` (trec_eval without ``-c``; a
    judged query absent from the run is not counted); with no such query every value is 0.0.

    Raises:
        InvalidInputError: an unknown metric name, or a NaN score in the run.
    """
    names = list(dict.fromkeys(metrics))
    per_query = evaluate_per_query(run, qrels, names)
    if not per_query:
        return {name: 0.0 for name in names}
    return {name: float(np.mean([v[name] for v in per_query.values()])) for name in names}


def run_from_hits(query_ids: Sequence[str], results: Sequence[Sequence[Any]]) -> dict[str, dict[str, float]]:
    """Turn ``Collection.search`` output (one hit list per query) into a run.

    Hits (objects with an ``id``) are scored by their position, ``len(hits) - rank``: what is
    evaluated is the order search returned, which trec_eval would otherwise re-derive from
    scores (the calibrated relevance has equal scores, e.g. 1.0 for every clear match, and
    trec_eval breaks such ties by document id). ``(id, score)`` pairs keep their scores. A
    document listed twice for one query keeps its best score.

    Raises:
        InvalidInputError: the numbers of query ids and result lists differ.
    """
    if len(query_ids) != len(results):
        raise InvalidInputError(f"got {len(query_ids)} query ids but {len(results)} result lists; give one per query")
    run: dict[str, dict[str, float]] = {}
    for qid, hits in zip(query_ids, results):
        scores: dict[str, float] = {}
        for position, hit in enumerate(hits):
            raw_id, raw_score = (hit.id, len(hits) - position) if hasattr(hit, "id") else hit
            doc_id, score = str(raw_id), float(raw_score)
            if doc_id not in scores or score > scores[doc_id]:
                scores[doc_id] = score
        run[str(qid)] = scores
    return run


__all__ = [
    "DEFAULT_METRICS",
    "METRIC_NAMES",
    "Metric",
    "evaluate",
    "evaluate_per_query",
    "parse_metric",
    "run_from_hits",
    "trec_ranking",
]
