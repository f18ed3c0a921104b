"""Retrieval evaluation: BEIR datasets and trec_eval metrics (nDCG, MRR, Recall, MAP, P at k).

A *run* is ``{query_id: {doc_id: score}}`` (higher score = better), *qrels* are
``{query_id: {doc_id: grade}}`` with integer grades (0 or less = judged not relevant).

Every metric follows trec_eval's definition so numbers are comparable with published ones
and with pytrec_eval:

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

Which queries count (as ``trec_eval -c`` over the judged queries):

- a query whose judgements hold no relevant document (every grade <= 0) is skipped: every
  metric is undefined for it (its ideal DCG and its number of relevant documents are 0).
  pytrec_eval reports 0 for such a query instead; we leave it out of the per-query results
  and of the mean, as BEIR, ir_measures and trec_eval's own averaging of judged queries do.
- a judged query with no results in the run (absent, or an empty dict) scores 0 everywhere.
- run queries that have no judgements are ignored.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError, MissingPathError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100")
METRIC_NAMES: tuple[str, ...] = ("ndcg", "mrr", "recall", "map", "precision")
_ALIASES = {"p": "precision", "ndcg_cut": "ndcg", "map_cut": "map", "recip_rank": "mrr"}
_METRIC_RE = re.compile(r"^\s*([a-z_]+)\s*@\s*(\d+)\s*$")


# ---------------------------------------------------------------------------------------------
# BEIR datasets


@dataclass
class BeirDataset:
    """A BEIR dataset: its corpus, queries and relevance judgements of one split.

    ``corpus`` maps doc id to ``{"title": str, "text": str}`` in file order; ``queries`` maps
    query id to its text; ``qrels`` maps query id to ``{doc id: grade}``.
    """

    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    folder: Path | None = None
    split: str | None = None
    qrels_file: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def judged_queries(self) -> dict[str, str]:
        """The queries that have at least one relevant (grade > 0) judgement, in file order."""
        return {qid: text for qid, text in self.queries.items() if any(g > 0 for g in self.qrels.get(qid, {}).values())}


def load_beir(folder: str | Path, split: str | None = None) -> BeirDataset:
    """Read a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Without ``split``, ``qrels/test.tsv`` is used when present, else the only ``.tsv`` in
    ``qrels/``. Qrels lines are ``query-id TAB corpus-id TAB score`` (a 4-column TREC line
    ``qid iter docid score`` is accepted too); a header line is accepted but not required.

    Returns:
        A BeirDataset; corpus records hold ``title`` ("" when absent) and ``text``.

    Raises:
        MissingPathError: the folder, a file or the asked split does not exist (the message
            says which files a BEIR folder holds).
        InvalidInputError: a malformed line (the message names the file and line), several
            qrels files and no ``split`` to choose among them, or a duplicate id.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MissingPathError(
            f"{root}: no such folder; a BEIR dataset folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv"
        )
    qrels_file = _qrels_path(root, split)
    corpus = _read_corpus(_required(root / "corpus.jsonl", "the documents, one JSON object per line"))
    queries = _read_queries(_required(root / "queries.jsonl", "the queries, one JSON object per line"))
    qrels = read_qrels(qrels_file)
    return BeirDataset(corpus, queries, qrels, folder=root, split=qrels_file.stem, qrels_file=qrels_file)


def _required(path: Path, what: str) -> Path:
    if not path.is_file():
        raise MissingPathError(f"{path}: not found; a BEIR folder needs {path.name} ({what})")
    return path


def _qrels_path(root: Path, split: str | None) -> Path:
    qdir = root / "qrels"
    if not qdir.is_dir():
        raise MissingPathError(f"{qdir}: not found; a BEIR folder needs a qrels/ folder with <split>.tsv files")
    available = sorted(p.stem for p in qdir.glob("*.tsv"))
    if split is not None:
        path = qdir / f"{split}.tsv"
        if not path.is_file():
            raise MissingPathError(
                f"{path}: no qrels for split {split!r}; available: {', '.join(available) or 'none'}"
            )
        return path
    if (qdir / "test.tsv").is_file():
        return qdir / "test.tsv"
    if len(available) == 1:
        return qdir / f"{available[0]}.tsv"
    if not available:
        raise MissingPathError(f"{qdir}: no .tsv file; a BEIR folder needs qrels/test.tsv (query-id, corpus-id, score)")
    raise InvalidInputError(
        f"{qdir}: several qrels files ({', '.join(available)}) and no test.tsv; choose a split"
    )


def _jsonl_objects(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-encode it as UTF-8") from exc
    # Split on "\n" only: JSON strings may hold U+2028, which str.splitlines breaks on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def _record_id(path: Path, number: int, obj: dict[str, Any]) -> str:
    raw = obj.get("_id", obj.get("id"))
    if raw is None or (isinstance(raw, str) and not raw.strip()) or isinstance(raw, (bool, dict, list)):
        raise InvalidInputError(f"{path}:{number}: no usable \"_id\" field; BEIR lines are {{\"_id\": ..., \"text\": ...}}")
    return str(raw)


def _string_field(path: Path, number: int, obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{path}:{number}: field {name!r} is {type(value).__name__}, not text")
    return value


def _read_corpus(path: Path) -> dict[str, dict[str, str]]:
    corpus: dict[str, dict[str, str]] = {}
    for number, obj in _jsonl_objects(path):
        doc_id = _record_id(path, number, obj)
        if doc_id in corpus:
            raise InvalidInputError(f"{path}:{number}: document id {doc_id!r} appears twice; ids must be unique")
        corpus[doc_id] = {"title": _string_field(path, number, obj, "title"), "text": _string_field(path, number, obj, "text")}
    return corpus


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, obj in _jsonl_objects(path):
        qid = _record_id(path, number, obj)
        if qid in queries:
            raise InvalidInputError(f"{path}:{number}: query id {qid!r} appears twice; ids must be unique")
        queries[qid] = _string_field(path, number, obj, "text")
    return queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read one qrels file (BEIR TSV, header line optional, or 4-column TREC).

    Returns:
        ``{query id: {doc id: grade}}``; a pair listed twice keeps its last grade.

    Raises:
        MissingPathError: the file does not exist.
        InvalidInputError: a line (other than a first-line header) with the wrong number of
            fields or a grade that is not a whole number; the message names file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: not found; qrels files hold query-id, corpus-id, score per line")
    qrels: dict[str, dict[str, int]] = {}
    first = True
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            is_first, first = first, False
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [x.strip() for x in fields]
            if len(fields) == 4:  # TREC: qid iteration docid grade
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise InvalidInputError(
                    f"{path}:{number}: expected 3 tab-separated fields (query-id, corpus-id, score), "
                    f"got {len(fields)}: {line[:80]!r}"
                )
            qid, doc_id, raw = fields
            try:
                grade = int(raw)
            except ValueError:
                # The optional header line ("query-id corpus-id score"): only the first line, and
                # only a word there, so a malformed first judgement such as "q1 d1 1.5" still fails.
                if is_first and not any(c.isdigit() for c in raw):
                    continue
                raise InvalidInputError(
                    f"{path}:{number}: score {raw!r} is not a whole number; qrels grades are integers (0 = not relevant)"
                ) from None
            if not qid or not doc_id:
                raise InvalidInputError(f"{path}:{number}: empty query id or corpus id")
            qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


# ---------------------------------------------------------------------------------------------
# Metrics


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
    """Metric values per judged query: ``{query id: {metric name: value}}``.

    Metric names are returned as given. Only queries with at least one relevant judgement
    appear (see the module docstring); judged queries missing from the run score 0.

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
        grades_all = np.fromiter((g for g in judged.values()), dtype=np.float64, count=len(judged))
        positive = np.sort(grades_all[grades_all > 0])[::-1]
        num_rel = positive.size
        if num_rel == 0:
            continue
        scores = run.get(qid) or {}
        if any(math.isnan(float(s)) for s in scores.values()):
            raise InvalidInputError(f"run for query {qid!r} holds a NaN score; every score must be a number")
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
    """Mean of each metric over the judged queries: ``{metric name: value}``.

    The mean is over queries with at least one relevant judgement (those missing from the
    run count 0); with no such query every value is 0.0.

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

    Hits need ``id`` and ``score`` attributes; ``(id, score)`` pairs work too. A document
    listed twice for one query keeps its best score.

    Raises:
        InvalidInputError: the numbers of query ids and result lists differ.
    """
    if len(query_ids) != len(results):
        raise InvalidInputError(f"got {len(query_ids)} query ids but {len(results)} result lists; give one per query")
    run: dict[str, dict[str, float]] = {}
    for qid, hits in zip(query_ids, results):
        scores: dict[str, float] = {}
        for hit in hits:
            raw_id, raw_score = (hit.id, hit.score) if hasattr(hit, "id") else hit
            doc_id, score = str(raw_id), float(raw_score)
            if doc_id not in scores or score > scores[doc_id]:
                scores[doc_id] = score
        run[str(qid)] = scores
    return run


__all__ = [
    "DEFAULT_METRICS",
    "METRIC_NAMES",
    "BeirDataset",
    "Metric",
    "evaluate",
    "evaluate_per_query",
    "load_beir",
    "parse_metric",
    "read_qrels",
    "run_from_hits",
    "trec_ranking",
]
