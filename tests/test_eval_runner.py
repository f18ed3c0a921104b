"""semsearch eval's runner on a stand-in collection: failures are isolated, timings are fair."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from semsearch.errors import InvalidInputError
from semsearch.evaluation import BeirDataset
from semsearch.evaluation.runner import run_methods

LOAD_SECONDS = 1.0  # what the first search of the process pays (model loading, engine calibration)
ENCODE_SECONDS = 0.004  # per query not yet in the query-embedding cache
N_QUERIES = 40


@dataclass
class FakeHit:
    id: str
    score: float


class QueryCache(set):
    def clear(self) -> None:  # the real QueryCache's method
        super().clear()


class FakeEmbedder:
    def __init__(self) -> None:
        self.query_cache = QueryCache()


class FakeCollection:
    """Costs like a real collection's: a one-time load, encoding per uncached query; a reranker
    that cannot be loaded fails the way load_cross_encoder does."""

    def __init__(self) -> None:
        self.embedder = FakeEmbedder()
        self.loaded = False

    def search(self, texts, k, mode="hybrid", rerank=None, **options):
        if not self.loaded:
            time.sleep(LOAD_SECONDS)
            self.loaded = True
        if rerank is not None:
            raise InvalidInputError(f"cannot load the cross-encoder {rerank!r} (OSError: offline)")
        if mode != "lexical":
            missing = [t for t in texts if t not in self.embedder.query_cache]
            time.sleep(ENCODE_SECONDS * len(missing))
            self.embedder.query_cache.update(missing)
        # query i answers document d{i}; unanswerable questions find weaker hits
        return [[FakeHit(f"d{t.split()[-1]}", 0.9 if t.startswith("q") else 0.2)] for t in texts]


def _dataset() -> BeirDataset:
    queries = {f"q{i}": f"question {i}" for i in range(N_QUERIES)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(N_QUERIES)}
    qrels.update({f"extra{i}": {"d0": 1} for i in range(100)})  # judged, never searched
    return BeirDataset(corpus={}, queries=queries, qrels=qrels)


def test_a_failing_method_keeps_the_others():
    results = run_methods(FakeCollection(), _dataset(), ["dense", "rerank", "lexical"], reranker="/no/such/model")
    by = {r.method: r for r in results}
    assert [r.method for r in results] == ["dense", "rerank", "lexical"]
    assert by["rerank"].error is not None and "cannot load the cross-encoder" in by["rerank"].error
    assert by["rerank"].metrics == {} and by["rerank"].seconds is None
    for name in ("dense", "lexical"):
        assert by[name].ok and by[name].metrics["ndcg@10"] == 1.0  # averaged over the 40 searched, not 140 judged


@pytest.mark.parametrize("order", [["dense", "hybrid"], ["hybrid", "dense"]])
def test_methods_are_timed_on_equal_terms(order):
    results = {r.method: r.seconds for r in run_methods(FakeCollection(), _dataset(), order)}
    encode_all = ENCODE_SECONDS * N_QUERIES
    for method, seconds in results.items():
        # Neither the one-time load (charged to the first method before) ...
        assert seconds < LOAD_SECONDS * 0.8, (method, seconds)
        # ... nor a free ride on query vectors the previous method left in the cache.
        assert seconds >= encode_all * 0.9, (method, seconds)


def test_separation_is_measured_per_method():
    results = run_methods(
        FakeCollection(), _dataset(), ["dense", "lexical"], unanswerable=["unrelated 1", "unrelated 2"], threshold=0.5
    )
    for r in results:
        assert r.separation is not None
        assert r.separation.auc == 1.0
        assert r.separation.verdicts.recall == 1.0 and r.separation.verdicts.precision == 1.0
