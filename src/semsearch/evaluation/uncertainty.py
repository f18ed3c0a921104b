"""How sure a difference between two systems on the same judged queries is: a paired bootstrap.

A gain in mean nDCG@10 measured on a handful of queries says little: one query more or less
can flip it. The paired bootstrap (Efron and Tibshirani; the usual test in IR evaluation, e.g.
Sakai, "Evaluating evaluation metrics based on the bootstrap", SIGIR 2006) resamples the
queries with replacement, keeping each query's pair of scores together, and reads the interval
of the mean gain from the resampled means (percentile method; scipy.stats.bootstrap does the
resampling). An interval that holds 0 means the data cannot tell the two systems apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Resamples of the queries (a seeded generator: the same scores give the same interval).
RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedGain:
    """The mean gain of ``after`` over ``before`` on ``metric`` over ``queries`` queries judged by
    both, with its ``confidence`` interval [``low``, ``high``] (None for fewer than 2 queries)."""

    metric: str
    queries: int
    gain: float
    low: float | None
    high: float | None
    confidence: float = 0.95
    resamples: int = RESAMPLES
    method: str = "paired bootstrap over queries (percentile)"

    @property
    def verdict(self) -> str:
        """"better" or "worse" when the whole interval is on one side of 0, else "no clear difference"."""
        if self.low is not None and self.low > 0:
            return "better"
        if self.high is not None and self.high < 0:
            return "worse"
        return "no clear difference"

    def describe(self) -> str:
        """E.g. "+0.0312 (95% interval -0.0105 to +0.0740, 12 queries)"."""
        if self.low is None or self.high is None:
            return f"{self.gain:+.4f} (no interval from {self.queries} query)"
        return (f"{self.gain:+.4f} ({self.confidence:.0%} interval {self.low:+.4f} to {self.high:+.4f}, "
                f"{self.queries} queries)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def paired_gain(before: Mapping[str, float], after: Mapping[str, float], *, metric: str = "ndcg@10",
                confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> PairedGain:
    """The gain of ``after`` over ``before`` ({query id: metric value}, the queries both hold)
    with its paired-bootstrap interval; the same seed gives the same interval."""
    from scipy.stats import bootstrap

    queries = [q for q in before if q in after]
    diffs = np.array([float(after[q]) - float(before[q]) for q in queries], dtype=np.float64)
    gain = float(diffs.mean()) if diffs.size else 0.0
    if diffs.size < 2:
        return PairedGain(metric, len(queries), gain, None, None, confidence, resamples)
    rng = np.random.default_rng(seed)
    # scipy >= 1.15 names the generator ``rng``; older versions ``random_state``.
    seeded = {"rng": rng} if "rng" in inspect.signature(bootstrap).parameters else {"random_state": rng}
    interval = bootstrap((diffs,), np.mean, n_resamples=resamples, confidence_level=confidence, method="percentile",
                         vectorized=True, batch=max(1, 20_000_000 // (8 * diffs.size)), **seeded).confidence_interval
    return PairedGain(metric, len(queries), gain, float(interval.low), float(interval.high), confidence, resamples)


__all__ = ["RESAMPLES", "PairedGain", "paired_gain"]
