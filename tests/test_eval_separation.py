"""ROC AUC and "no good match" threshold verdicts (semsearch.evaluation.separation)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.errors import InvalidInputError, MissingPathError
from semsearch.evaluation import read_questions, roc_auc, separation, threshold_verdicts

# Few distinct values, so ties between the two sides are common.
scores = st.lists(
    st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, -math.inf]), st.floats(-3, 3)), min_size=1, max_size=30
)


def _brute_force_auc(pos, neg):
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@settings(max_examples=300, deadline=None)
@given(pos=scores, neg=scores)
def test_roc_auc_equals_brute_force_pair_count(pos, neg):
    assert roc_auc(pos, neg) == pytest.approx(_brute_force_auc(pos, neg), abs=1e-12)


def test_roc_auc_equals_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    import random

    rng = random.Random(5)
    pos = [round(rng.gauss(0.6, 0.1), 2) for _ in range(200)]
    neg = [round(rng.gauss(0.45, 0.1), 2) for _ in range(150)]
    want = sklearn_metrics.roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg)
    assert roc_auc(pos, neg) == pytest.approx(want, abs=1e-12)


def test_roc_auc_extremes_and_bad_input():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.9]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5
    assert roc_auc([0.2], [-math.inf]) == 1.0  # a query with no hit is the lowest score
    with pytest.raises(InvalidInputError, match="each side"):
        roc_auc([], [0.1])
    with pytest.raises(InvalidInputError, match="NaN"):
        roc_auc([float("nan")], [0.1])


def test_threshold_verdicts_hand_counted():
    # "no good match" is called below 0.5: unanswerable 0.1, 0.3 (right) and answerable 0.4 (wrong).
    v = threshold_verdicts(answerable=[0.9, 0.7, 0.4, 0.5], unanswerable=[0.1, 0.3, 0.6], threshold=0.5)
    assert v.called == 3
    assert v.precision == pytest.approx(2 / 3)
    assert v.recall == pytest.approx(2 / 3)
    assert v.answerable_kept == pytest.approx(3 / 4)  # 0.5 is at the threshold: kept
    nothing = threshold_verdicts([0.9], [0.8], threshold=0.1)
    assert nothing.called == 0 and nothing.precision is None and nothing.recall == 0.0
    s = separation([0.9, 0.8], [0.1], 0.5)
    assert s.auc == 1.0 and json.loads(json.dumps(s.to_dict()))["default_threshold"]["recall"] == 1.0


def test_read_questions_formats_and_errors(tmp_path):
    jsonl = tmp_path / "u.jsonl"
    jsonl.write_text('{"_id": "u1", "text": "zebra migration?"}\n\n{"query": "who won the 1930 world cup"}\n')
    assert read_questions(jsonl) == ["zebra migration?", "who won the 1930 world cup"]
    tsv = tmp_path / "u.tsv"
    tsv.write_text("u1\tzebra migration?\nplain question on its own line\n\n")
    assert read_questions(tsv) == ["zebra migration?", "plain question on its own line"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"id": 3}\n')
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl:2: no \"text\""):
        read_questions(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(InvalidInputError, match="holds no question"):
        read_questions(empty)
    with pytest.raises(MissingPathError, match="not found"):
        read_questions(tmp_path / "absent.jsonl")
