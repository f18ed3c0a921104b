"""The interval of a gain measured on the same judged queries (paired bootstrap over queries)."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.evaluation.uncertainty import paired_gain


def scores(values: list[float]) -> dict[str, float]:
    return {f"q{i}": v for i, v in enumerate(values)}


def test_the_interval_brackets_the_mean_gain_and_is_reproducible():
    rng = np.random.default_rng(0)
    before = rng.uniform(0.2, 0.8, 40)
    after = before + rng.normal(0.02, 0.1, 40)
    gain = paired_gain(scores(list(before)), scores(list(after)))
    assert gain.queries == 40 and gain.gain == pytest.approx(float(np.mean(after - before)))
    assert gain.low < gain.gain < gain.high
    # About 2 standard errors of the mean difference on each side (the bootstrap's spread).
    se = float(np.std(after - before, ddof=1) / np.sqrt(40))
    assert gain.high - gain.low == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert paired_gain(scores(list(before)), scores(list(after))) == gain


def test_the_verdict_follows_the_interval_not_the_sign_of_the_gain():
    tie = paired_gain(scores([0.9355, 1.0, 0.87]), scores([0.9355, 1.0, 0.87]))
    assert (tie.gain, tie.low, tie.high, tie.verdict) == (0.0, 0.0, 0.0, "no clear difference")
    noisy = paired_gain(scores([0.5, 0.5, 0.5, 0.5, 0.5]), scores([0.9, 0.1, 0.8, 0.3, 0.6]))
    assert noisy.gain > 0 and noisy.low < 0 < noisy.high and noisy.verdict == "no clear difference"
    assert paired_gain(scores([0.1] * 8), scores([0.3, 0.4] * 4)).verdict == "better"
    assert paired_gain(scores([0.3, 0.4] * 4), scores([0.1] * 8)).verdict == "worse"


def test_only_queries_scored_on_both_sides_count_and_one_query_has_no_interval():
    gain = paired_gain({"a": 0.5, "b": 0.2}, {"a": 0.7, "c": 0.9})
    assert (gain.queries, gain.low, gain.high) == (1, None, None) and gain.gain == pytest.approx(0.2)
    assert "no interval" in gain.describe() and gain.to_dict()["verdict"] == "no clear difference"
