"""Retrieval quality of a model on judged data, with the project's own metrics.

Dense retrieval as a collection does it (queries with the model's query prompt, passages with
its document prompt, normalised, exact inner product), then :func:`semsearch.evaluation.evaluate`
(trec_eval definitions). The same numbers serve before/after reports and checkpoint choice.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..evaluation import DEFAULT_METRICS, evaluate_per_query
from .data import EvalSet

PRIMARY_METRIC = "ndcg@10"
RUN_DEPTH = 100


def rank(query_vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str], query_ids: Sequence[str],
         depth: int = RUN_DEPTH) -> dict[str, dict[str, float]]:
    """An exact top-``depth`` run ``{query id: {doc id: score}}`` from normalised vectors."""
    scores = query_vectors @ doc_vectors.T
    depth = min(depth, scores.shape[1])
    top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth] if depth < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (scores.shape[0], 1)
    )
    return {qid: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, qid in enumerate(query_ids)}


def encode(model: Any, texts: list[str], role: str, batch_size: int = 64) -> np.ndarray:
    """Normalised float32 embeddings of ``texts`` as a query (``role="query"``) or document."""
    fn = model.encode_query if role == "query" else model.encode_document
    vectors = fn(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                 show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def evaluate_model(model: Any, data: EvalSet, metrics: Sequence[str] = DEFAULT_METRICS,
                   batch_size: int = 64) -> dict[str, float]:
    """Mean metrics of dense retrieval with ``model`` over the judged queries of ``data``."""
    return mean_scores(score_queries(model, data, metrics, batch_size), metrics)


def score_queries(model: Any, data: EvalSet, metrics: Sequence[str] = DEFAULT_METRICS,
                  batch_size: int = 64) -> dict[str, dict[str, float]]:
    """Metrics of dense retrieval with ``model`` per judged query of ``data``: {query id: {metric: value}}."""
    qids, dids = list(data.queries), list(data.corpus)
    q = encode(model, [data.queries[i] for i in qids], "query", batch_size)
    d = encode(model, [data.corpus[i] for i in dids], "document", batch_size)
    return evaluate_per_query(rank(q, d, dids, qids), data.qrels, metrics)


def mean_scores(per_query: dict[str, dict[str, float]], metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """The mean of each metric over the queries (0.0 for none), as :func:`semsearch.evaluation.evaluate`."""
    if not per_query:
        return {m: 0.0 for m in metrics}
    return {m: float(np.mean([values[m] for values in per_query.values()])) for m in metrics}


def heldout_evaluator(data: EvalSet, name: str = "heldout", batch_size: int = 64) -> Any:
    """A sentence-transformers evaluator reporting ``{name}_ndcg@10`` etc. during training.

    Its primary metric (``{name}_ndcg@10``) is what the trainer keeps the best checkpoint by.
    """
    # The module moved in sentence-transformers 6; imported by name, so one name serves both versions.
    evaluation: Any  # a module, typed Any so that its class can be subclassed
    try:
        evaluation = importlib.import_module("sentence_transformers.sentence_transformer.evaluation")
    except ImportError:  # sentence-transformers < 6
        evaluation = importlib.import_module("sentence_transformers.evaluation")

    class HeldOutEvaluator(evaluation.SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.name = name
            self.primary_metric = f"{name}_{PRIMARY_METRIC}"
            self.greater_is_better = True

        def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1,
                     steps: int = -1) -> dict[str, float]:
            values = evaluate_model(model, data, batch_size=batch_size)
            return {f"{name}_{k}": v for k, v in values.items()}

    return HeldOutEvaluator()
