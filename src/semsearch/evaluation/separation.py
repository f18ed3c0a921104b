"""How well a top-1 score tells answerable queries from questions the corpus does not answer.

``semsearch eval DATASET --unanswerable FILE`` searches the dataset's judged queries (the
corpus answers them) and the questions of FILE (it does not), takes each query's top-1 score
and reports, per method:

- the ROC AUC: the probability that a random answerable query's top-1 score is above a random
  unanswerable one's (ties count a half), i.e. the Mann-Whitney U statistic over the product
  of the two sample sizes. 1.0 = one threshold separates them perfectly, 0.5 = chance.
- the verdicts of a "no good match" threshold (a query is called unanswerable when its top-1
  score is below it): precision (share of the called queries that are unanswerable), recall
  (share of the unanswerable queries called) and the share of answerable queries kept.

A query that found nothing has top-1 score ``-inf`` here: the lowest possible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, MissingPathError
from .beir import read_jsonl_objects


def roc_auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """ROC AUC of scores where ``positive`` should score higher than ``negative``.

    Exact (no binning): the share of (positive, negative) pairs ordered correctly, ties
    counted a half, so it equals ``sklearn.metrics.roc_auc_score`` on the same scores.
    ``-inf`` is allowed (a query with no hit).

    Raises:
        InvalidInputError: either side is empty or holds a NaN.
    """
    pos = np.asarray(positive, dtype=np.float64).ravel()
    neg = np.asarray(negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise InvalidInputError("ROC AUC needs at least one score on each side (answerable and unanswerable)")
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise InvalidInputError("ROC AUC got a NaN score; every score must be a number")
    neg_sorted = np.sort(neg)
    below = np.searchsorted(neg_sorted, pos, side="left")  # negatives strictly below each positive
    tied = np.searchsorted(neg_sorted, pos, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (pos.size * neg.size))


@dataclass
class ThresholdVerdicts:
    """What a "no good match" threshold says on the two query sets (None where undefined)."""

    threshold: float
    called: int  # queries whose top-1 score is below the threshold
    precision: float | None  # called and unanswerable / called
    recall: float | None  # called and unanswerable / unanswerable
    answerable_kept: float | None  # answerable at or above the threshold / answerable

    def to_dict(self) -> dict[str, float | int | None]:
        return {"threshold": self.threshold, "called": self.called, "precision": self.precision,
                "recall": self.recall, "answerable_kept": self.answerable_kept}


def threshold_verdicts(
    answerable: Sequence[float], unanswerable: Sequence[float], threshold: float
) -> ThresholdVerdicts:
    """Precision and recall of calling "no good match" when the top-1 score is below ``threshold``."""
    ans = np.asarray(answerable, dtype=np.float64)
    una = np.asarray(unanswerable, dtype=np.float64)
    true_calls = int((una < threshold).sum())
    false_calls = int((ans < threshold).sum())
    called = true_calls + false_calls
    return ThresholdVerdicts(
        threshold=float(threshold),
        called=called,
        precision=true_calls / called if called else None,
        recall=true_calls / una.size if una.size else None,
        answerable_kept=(ans.size - false_calls) / ans.size if ans.size else None,
    )


@dataclass
class Separation:
    """One method's top-1 scores on answerable and unanswerable queries, and what they tell."""

    answerable: list[float]
    unanswerable: list[float]
    auc: float
    verdicts: ThresholdVerdicts

    def to_dict(self) -> dict[str, object]:
        return {"auc": self.auc, "answerable_queries": len(self.answerable),
                "unanswerable_queries": len(self.unanswerable), "default_threshold": self.verdicts.to_dict()}


def separation(answerable: Sequence[float], unanswerable: Sequence[float], threshold: float) -> Separation:
    """ROC AUC and threshold verdicts of two lists of top-1 scores (see the module docstring)."""
    return Separation(list(map(float, answerable)), list(map(float, unanswerable)),
                      roc_auc(answerable, unanswerable), threshold_verdicts(answerable, unanswerable, threshold))


def top1_scores(results: Sequence[Sequence[object]]) -> list[float]:
    """Each query's best ``Hit.score`` (``-inf`` when it found nothing)."""
    return [float(hits[0].score) if hits else -math.inf for hits in results]  # type: ignore[attr-defined]


def read_questions(path: str | Path) -> list[str]:
    """Questions from a file: JSONL (``{"text": ...}`` per line, as BEIR queries.jsonl; ``"query"``
    works too) or plain text, one question per line (``id<TAB>question`` lines are accepted).

    Raises:
        MissingPathError: the file does not exist.
        InvalidInputError: a malformed JSONL line (named by file and line), or no question at all.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingPathError(
            f"{path}: not found; give a file of questions the corpus does not answer (JSONL or one per line)"
        )
    questions: list[str] = []
    if path.suffix.lower() in (".jsonl", ".json"):
        for number, obj in read_jsonl_objects(path):
            text = obj.get("text", obj.get("query"))
            if not isinstance(text, str) or not text.strip():
                raise InvalidInputError(
                    f'{path}:{number}: no "text" field with a question; lines are {{"text": "..."}}'
                )
            questions.append(text.strip())
    else:
        try:
            lines = path.read_text(encoding="utf-8-sig").split("\n")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-encode it as UTF-8"
            ) from exc
        for line in lines:
            text = line.rsplit("\t", 1)[-1].strip()
            if text:
                questions.append(text)
    if not questions:
        raise InvalidInputError(f"{path}: holds no question")
    return questions
