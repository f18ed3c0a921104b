"""Retrieval evaluation: BEIR datasets, trec_eval metrics, answerable/unanswerable separation,
the ``semsearch eval`` runner and its HTML report.

The names users import live here: ``from semsearch.evaluation import load_beir, evaluate,
read_qrels, run_from_hits``. The runner and the report (which need a collection, and
matplotlib) are imported from their modules when used.
"""

from __future__ import annotations

from .beir import BeirDataset, load_beir, read_qrels
from .metrics import (
    DEFAULT_METRICS,
    METRIC_NAMES,
    Metric,
    Qrels,
    Run,
    evaluate,
    evaluate_per_query,
    parse_metric,
    run_from_hits,
    trec_ranking,
)
from .separation import Separation, ThresholdVerdicts, read_questions, roc_auc, separation, threshold_verdicts

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_NAMES",
    "BeirDataset",
    "Metric",
    "Qrels",
    "Run",
    "Separation",
    "ThresholdVerdicts",
    "evaluate",
    "evaluate_per_query",
    "load_beir",
    "parse_metric",
    "read_qrels",
    "read_questions",
    "roc_auc",
    "run_from_hits",
    "separation",
    "threshold_verdicts",
    "trec_ranking",
]
