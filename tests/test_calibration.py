"""Calibrated relevance (semsearch.retrieval.calibration): exact parts, order, and the threshold
on a small collection searched with the real model."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.retrieval import calibration as cal

values = st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 1.0])), max_size=40)


@settings(max_examples=300, deadline=None)
@given(evidence=values)
def test_ordered_relevance_is_the_isotonic_fit(evidence):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    got = cal.ordered_relevance(evidence)
    assert got.shape == (len(evidence),)
    assert np.all(np.diff(got) <= 1e-12)  # never rises down the ranking
    if evidence:
        want = scipy_optimize.isotonic_regression(evidence, increasing=False).x
        np.testing.assert_allclose(got, want, atol=1e-12)
        assert math.isclose(got.sum(), sum(evidence), abs_tol=1e-9)  # blocks keep their mean


def test_ordered_relevance_keeps_agreeing_scores_and_pools_disagreeing_ones():
    assert cal.ordered_relevance([0.9, 0.7, 0.2]).tolist() == [0.9, 0.7, 0.2]
    np.testing.assert_allclose(cal.ordered_relevance([0.3, 0.9, 0.1]), [0.6, 0.6, 0.1])


def test_bm25_reference_is_what_fts5_scores_a_document_holding_each_term_once():
    # All documents have the same length, so every one is of average length; "alpha beta" holds
    # each query term once. FTS5's bm25() (negated: higher is better) must equal the reference.
    docs = ["alpha beta gamma delta", "alpha gamma delta omega", "gamma delta omega sigma",
            "delta omega sigma tau", "omega sigma tau kappa", "sigma tau kappa lambda"]
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
    con.executemany("INSERT INTO t(body) VALUES (?)", [(d,) for d in docs])
    (fts5,) = con.execute("SELECT -bm25(t) FROM t WHERE t MATCH 'alpha OR beta' AND body = ?", (docs[0],)).fetchone()
    frequencies = [2, 1]  # alpha in 2 documents, beta in 1
    assert cal.bm25_reference(frequencies, len(docs)) == pytest.approx(fts5, rel=1e-9)
    assert cal.bm25_ceiling(frequencies, len(docs)) == pytest.approx(fts5 * (cal.K1 + 1), rel=1e-9)
    # FTS5 floors a negative idf (a term in most documents) at 1e-6; Lucene's (Milvus') never goes below 0.
    assert cal.bm25_idf(5, 6) == 1e-6 and cal.bm25_reference([], 6) == 0.0
    assert cal.bm25_reference([5], 6, idf=cal.lucene_idf) == pytest.approx(math.log(1 + 1.5 / 5.5))


def test_evidence_parts_and_modes():
    np.testing.assert_allclose(cal.dense_evidence([0.1, 0.2, 0.45, 0.7, 0.9, np.nan], 0.2, 0.7), [0, 0, 0.5, 1, 1, 0])
    np.testing.assert_allclose(cal.lexical_evidence([np.nan, 2.0, 8.0], 4.0), [0.0, 0.5, 1.0])
    assert cal.lexical_evidence([3.0], 0.0).tolist() == [0.0]
    assert cal.cosine_bounds("some/other-model") == cal.GENERIC_COSINE_BOUNDS
    cos, bm25 = np.array([0.7, 0.45, 0.2]), np.array([np.nan, 4.0, 8.0])
    # dense mode (weight 1): the dense evidence alone; lexical mode (weight 0): BM25's alone.
    np.testing.assert_allclose(cal.absolute_relevance(cos, bm25, 1.0, 8.0, bounds=(0.2, 0.7)), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(cal.absolute_relevance(cos, bm25, 0.0, 8.0, bounds=(0.2, 0.7)), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(cal.absolute_relevance(cos, bm25, 0.5, 8.0, bounds=(0.2, 0.7)), [0.5, 0.5, 0.5])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.floats(-1, 1), st.one_of(st.just(math.nan), st.floats(0, 40))), min_size=1, max_size=30),
    weight=st.floats(0, 1),
    reference=st.floats(0, 30),
)
def test_relevance_is_bounded_and_never_rises_down_the_ranking(rows, weight, reference):
    cosine, bm25 = zip(*rows)
    r = cal.relevance(cosine, bm25, weight, reference)
    assert np.all((r >= 0) & (r <= 1))
    assert np.all(np.diff(r) <= 1e-12)
    # The best hit scores at least as high as the ranking's own top evidence... and no higher
    # than the best evidence of any candidate.
    evidence = cal.absolute_relevance(cosine, bm25, weight, reference)
    assert evidence[0] - 1e-12 <= r[0] <= evidence.max() + 1e-12


def test_no_good_match():
    assert cal.no_good_match(None) and cal.no_good_match(cal.NO_MATCH_THRESHOLD - 0.01)
    assert not cal.no_good_match(cal.NO_MATCH_THRESHOLD)


# ---------------------------------------------------------------------------------------------
# The default threshold on a small collection, with the real model and the real pipeline's scores

DOCS = {
    "hotel": "Budget-friendly lodging by the coast, a short walk from the sand, with free breakfast.",
    "bank": "The central bank raised interest rates by a quarter point to slow inflation.",
    "cake": "Preheat the oven and whisk the eggs with sugar for a light sponge cake.",
    "bolt": "Part XK-4471: stainless steel hex bolt, 8 mm, sold in packs of 50.",
    "python": "Python is a high-level programming language created by Guido van Rossum.",
    "everest": "Mount Everest is Earth's highest mountain above sea level, in the Himalayas.",
    "flu": "Wash your hands often and get vaccinated every autumn to avoid catching the flu.",
    "train": "The train to Munich is cancelled today because of a strike by the drivers.",
}
ANSWERABLE = {
    "cheap hotel near the beach": "hotel",
    "why did the interest rate go up": "bank",
    "how to bake a sponge cake": "cake",
    "XK-4471": "bolt",
    "who created the python language": "python",
    "highest mountain in the world": "everest",
    "how to avoid getting the flu": "flu",
    "munich train strike": "train",
}
UNANSWERABLE = [
    "zebra migration patterns in the serengeti",
    "who painted the sistine chapel ceiling",
    "how many moons does neptune have",
    "best way to learn the violin as an adult",
    "XK-9918",
    "symptoms of lyme disease in dogs",
]


def _top_relevance(col, query: str) -> tuple[str, float]:
    hits = col.search(query, k=len(DOCS))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)  # monotone with the order
    assert all(0.0 <= h.score <= 1.0 and h.score == h.scores["relevance"] for h in hits)
    return hits[0].id, hits[0].score


def test_default_threshold_separates_answerable_from_unanswerable_queries(collection):
    collection.add(list(DOCS.values()), ids=list(DOCS))
    for query, doc in ANSWERABLE.items():
        top, score = _top_relevance(collection, query)
        assert top == doc, query
        assert score >= cal.NO_MATCH_THRESHOLD, (query, score)
    for query in UNANSWERABLE:
        _, score = _top_relevance(collection, query)
        assert cal.no_good_match(score), (query, score)


def test_every_mode_scores_on_the_same_calibrated_scale(collection):
    collection.add(list(DOCS.values()), ids=list(DOCS))
    # each mode with a query it can answer (BM25 needs the words; "bake" is not in the cake text)
    for mode, query in (("dense", "how to bake a sponge cake"), ("lexical", "whisk eggs with sugar for a sponge cake"),
                        ("hybrid", "how to bake a sponge cake")):
        good = collection.search(query, k=3, mode=mode)
        bad = collection.search("zebra migration patterns in the serengeti", k=3, mode=mode)
        assert good[0].id == "cake" and good[0].score >= cal.NO_MATCH_THRESHOLD, mode
        assert not bad or bad[0].score < cal.NO_MATCH_THRESHOLD, mode
    for fusion in ("rrf", "weighted"):
        hits = collection.search("how to bake a sponge cake", k=3, fusion=fusion)
        assert hits[0].id == "cake" and hits[0].score >= cal.NO_MATCH_THRESHOLD and "hybrid" in hits[0].scores
    # the explanation keeps every stage: raw cosine, BM25, ranks, the fused score and the relevance
    hit = collection.search("how to bake a sponge cake", k=1)[0]
    assert {"dense", "dense_rank", "lexical", "lexical_rank", "hybrid", "dense_weight", "relevance"} <= set(hit.scores)
    # an explicit threshold applies on the calibrated scale
    assert collection.search("zebra migration patterns in the serengeti", k=3, threshold=cal.NO_MATCH_THRESHOLD) == []
