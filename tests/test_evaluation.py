"""Tests of semsearch.evaluation: trec_eval metrics (checked against pytrec_eval) and load_beir."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.errors import InvalidInputError, MissingPathError
from semsearch.evaluation import (
    evaluate,
    evaluate_per_query,
    load_beir,
    parse_metric,
    read_qrels,
    run_from_hits,
    trec_ranking,
)

# ../shared/data relative to the repository root; present on dev machines and CI, never copied here.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MSMARCO = SHARED_DATA / "msmarco-5k"

CUTOFFS = (1, 3, 5, 10)


# ---------------------------------------------------------------------------------------------
# Hand-checked values


def test_ties_broken_by_descending_doc_id():
    # Equal scores: trec_eval orders by doc id descending (strcmp), so "d9" > "d10" > "d1".
    assert trec_ranking({"d1": 1.0, "d10": 1.0, "d9": 1.0, "a": 2.0}) == ["a", "d9", "d10", "d1"]
    assert trec_ranking({"d1": 1.0, "d10": 1.0, "d9": 1.0, "a": 2.0}, k=2) == ["a", "d9"]


def test_hand_computed_metrics():
    qrels = {"q": {"a": 0, "b": 2, "c": 1}}
    run = {"q": {"a": 1.0, "b": 1.0, "c": 0.5, "d": 1.0}}  # ranking: d, b, a, c
    per = evaluate_per_query(run, qrels, ["ndcg@2", "mrr@10", "mrr@1", "recall@2", "map@10", "p@2"])["q"]
    ideal2 = 2 + 1 / math.log2(3)
    assert per["ndcg@2"] == pytest.approx((2 / math.log2(3)) / ideal2)
    assert per["mrr@10"] == 0.5
    assert per["mrr@1"] == 0.0
    assert per["recall@2"] == 0.5
    assert per["map@10"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert per["p@2"] == 0.5


def test_only_searched_judged_queries_count():
    # trec_eval without -c: q3 is judged but was not searched (absent from the run), so it is left
    # out of the mean instead of counting 0; q2 was searched and has nothing relevant: 0, as trec_eval.
    qrels = {"q1": {"a": 1}, "q2": {"a": 0, "b": 0}, "q3": {"x": 2}}
    run = {"q1": {"a": 1.0}, "q2": {"a": 1.0}, "q5": {"a": 3.0}}  # q5 is not judged: ignored
    per = evaluate_per_query(run, qrels, ["ndcg@10"])
    assert per == {"q1": {"ndcg@10": 1.0}, "q2": {"ndcg@10": 0.0}}
    assert evaluate(run, qrels, ["ndcg@10"]) == {"ndcg@10": 0.5}
    # A query searched with no result is in the run with an empty dict: it counts, as 0.
    assert evaluate({"q1": {"a": 1.0}, "q3": {}}, qrels, ["ndcg@10"]) == {"ndcg@10": 0.5}
    assert evaluate({}, {}, ["ndcg@10", "mrr@10"]) == {"ndcg@10": 0.0, "mrr@10": 0.0}


def test_metric_names():
    assert str(parse_metric("NDCG@10")) == "ndcg@10"
    assert str(parse_metric("P@5")) == "precision@5"
    for bad in ("ndcg", "foo@10", "ndcg@0", "recall@-1"):
        with pytest.raises(InvalidInputError):
            parse_metric(bad)


def test_run_from_hits():
    class Hit:
        def __init__(self, id: str, score: float) -> None:
            self.id, self.score = id, score

    assert run_from_hits(["q1", "q2"], [[("a", 0.5), ("b", 0.25)], []]) == {"q1": {"a": 0.5, "b": 0.25}, "q2": {}}
    # hits are evaluated in the order search returned them, ties in their scores included
    tied = [Hit("z", 1.0), Hit("a", 1.0), Hit("m", 0.4)]
    run = run_from_hits(["q"], [tied])
    assert trec_ranking(run["q"]) == ["z", "a", "m"]
    with pytest.raises(InvalidInputError):
        run_from_hits(["q1"], [])


def test_nan_score_rejected():
    with pytest.raises(InvalidInputError, match="NaN"):
        evaluate({"q": {"a": float("nan")}}, {"q": {"a": 1}})


# ---------------------------------------------------------------------------------------------
# Against pytrec_eval (trec_eval's C code) on random runs with graded labels and many ties

doc_ids = st.sampled_from([f"d{i}" for i in range(14)] + ["a", "B", "b", "z9", "é"])
grades = st.sampled_from([-1, 0, 0, 1, 1, 2, 3])
# Few distinct score values, so ties are frequent; some arbitrary floats too.
scores = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.0]), st.floats(-5, 5, allow_nan=False, width=32))
query_ids = st.sampled_from([f"q{i}" for i in range(6)])
qrels_strategy = st.dictionaries(query_ids, st.dictionaries(doc_ids, grades, min_size=1, max_size=10), max_size=6)
run_strategy = st.dictionaries(query_ids, st.dictionaries(doc_ids, scores, max_size=15), max_size=6)


def _reference(run, qrels):
    """Per-query metrics from pytrec_eval (trec_eval's C code) over the same run and qrels."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    cut = ",".join(map(str, CUTOFFS))
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {f"ndcg_cut.{cut}", f"recall.{cut}", f"map_cut.{cut}", f"P.{cut}"}
    )
    full = evaluator.evaluate({q: dict(r) for q, r in run.items()})
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    expected: dict[str, dict[str, float]] = {}
    for q, row in full.items():
        values = {}
        for k in CUTOFFS:
            values[f"ndcg@{k}"] = row[f"ndcg_cut_{k}"]
            values[f"recall@{k}"] = row[f"recall_{k}"]
            values[f"map@{k}"] = row[f"map_cut_{k}"]
            values[f"precision@{k}"] = row[f"P_{k}"]
            # recip_rank has no cutoff: give pytrec_eval the run cut at k (trec order, written
            # independently here: score descending, then doc id descending).
            top = dict(sorted(run[q].items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:k])
            values[f"mrr@{k}"] = rr.evaluate({q: top})[q]["recip_rank"]
        expected[q] = values
    return expected


ALL_METRICS = [f"{m}@{k}" for m in ("ndcg", "mrr", "recall", "map", "precision") for k in CUTOFFS]


def _assert_matches_pytrec_eval(run, qrels):
    expected = _reference(run, qrels)
    got = evaluate_per_query(run, qrels, ALL_METRICS)
    assert set(got) == set(expected) == set(run) & set(qrels)
    for q in expected:
        for name in ALL_METRICS:
            assert got[q][name] == pytest.approx(expected[q][name], abs=1e-12), (q, name)
    means = evaluate(run, qrels, ALL_METRICS)
    for name in ALL_METRICS:
        want = sum(v[name] for v in expected.values()) / len(expected) if expected else 0.0
        assert means[name] == pytest.approx(want, abs=1e-12)


# Judged and searched query sets overlap any way: qrels judging queries never searched, searched
# queries never judged, queries judged only 0 (not relevant), graded and binary grades.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run=run_strategy, qrels=qrels_strategy)
def test_matches_pytrec_eval(run, qrels):
    _assert_matches_pytrec_eval(run, qrels)


@pytest.mark.parametrize(
    "case",
    ["qrels_superset", "queries_superset", "binary", "zero_grade_only", "graded_with_negative"],
)
def test_matches_pytrec_eval_on_named_edge_cases(case):
    import random

    rng = random.Random(case)
    docs = [f"d{i}" for i in range(60)]
    if case == "qrels_superset":  # the dataset: 700 queries judged, 50 searched
        qrels = {f"q{i}": {d: rng.choice([0, 1, 2]) for d in rng.sample(docs, 5)} for i in range(700)}
        run = {f"q{i}": {d: rng.random() for d in rng.sample(docs, 20)} for i in range(50)}
    elif case == "queries_superset":
        qrels = {f"q{i}": {d: rng.choice([0, 1]) for d in rng.sample(docs, 5)} for i in range(10)}
        run = {f"q{i}": {d: rng.random() for d in rng.sample(docs, 20)} for i in range(40)}
    elif case == "binary":
        qrels = {f"q{i}": {d: 1 for d in rng.sample(docs, 3)} for i in range(20)}
        run = {f"q{i}": {d: rng.random() for d in rng.sample(docs, 30)} for i in range(20)}
    elif case == "zero_grade_only":
        qrels = {f"q{i}": {d: 0 for d in rng.sample(docs, 4)} for i in range(5)}
        qrels.update({f"p{i}": {d: 1 for d in rng.sample(docs, 2)} for i in range(5)})
        run = {q: {d: rng.random() for d in rng.sample(docs, 15)} for q in qrels}
    else:
        qrels = {f"q{i}": {d: rng.choice([-1, 0, 1, 2, 3]) for d in rng.sample(docs, 8)} for i in range(20)}
        run = {f"q{i}": {d: round(rng.random(), 1) for d in rng.sample(docs, 25)} for i in range(20)}
    _assert_matches_pytrec_eval(run, qrels)
    if case == "qrels_superset":
        # The mean is over the 50 searched queries, not the 700 judged (which -c would count as zeros).
        assert len(evaluate_per_query(run, qrels, ["ndcg@10"])) == 50


def test_matches_pytrec_eval_on_a_large_run():
    # Deep runs (k=100) with float32-like scores, as the benchmark produces them.
    import random

    rng = random.Random(7)
    qrels = {f"q{i}": {f"d{rng.randrange(400)}": rng.choice([0, 1, 2, 3]) for _ in range(30)} for i in range(40)}
    run = {
        f"q{i}": {f"d{j}": round(rng.random(), 2) for j in rng.sample(range(400), rng.randrange(0, 150))}
        for i in range(45)
    }
    pytrec_eval = pytest.importorskip("pytrec_eval")
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100"}).evaluate(run)
    got = evaluate_per_query(run, qrels, ["ndcg@10", "recall@100", "map@100"])
    assert set(got) == set(ref)
    for q, row in ref.items():
        assert got[q]["ndcg@10"] == pytest.approx(row["ndcg_cut_10"], abs=1e-12)
        assert got[q]["recall@100"] == pytest.approx(row["recall_100"], abs=1e-12)
        assert got[q]["map@100"] == pytest.approx(row["map_cut_100"], abs=1e-12)


# ---------------------------------------------------------------------------------------------
# load_beir


def _write_beir(folder: Path, qrels_text: str, name: str = "test.tsv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": "d1", "title": "T", "text": "one"}, {"_id": "d2", "text": "two", "metadata": {}}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus) + "\n")
    queries = [{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "second?"}]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / name).write_text(qrels_text)
    return folder


@pytest.mark.parametrize("header", ["", "query-id\tcorpus-id\tscore\n"])
def test_load_beir_with_and_without_header(tmp_path, header):
    folder = _write_beir(tmp_path / "ds", header + "q1\td1\t2\nq1\td2\t0\n\nq2\td2\t1\n")
    ds = load_beir(folder)
    assert ds.corpus == {"d1": {"title": "T", "text": "one"}, "d2": {"title": "", "text": "two"}}
    assert ds.queries == {"q1": "first?", "q2": "second?"}
    assert ds.qrels == {"q1": {"d1": 2, "d2": 0}, "q2": {"d2": 1}}
    assert ds.split == "test"


def test_load_beir_split_choice(tmp_path):
    folder = _write_beir(tmp_path / "ds", "q1\td1\t1\n", name="dev.tsv")
    assert load_beir(folder).split == "dev"  # the only file
    (folder / "qrels" / "train.tsv").write_text("q2\td2\t1\n")
    with pytest.raises(InvalidInputError, match="several qrels files"):
        load_beir(folder)
    assert load_beir(folder, split="train").qrels == {"q2": {"d2": 1}}
    (folder / "qrels" / "test.tsv").write_text("q1\td2\t3\n")
    assert load_beir(folder).qrels == {"q1": {"d2": 3}}  # test.tsv is preferred
    with pytest.raises(MissingPathError, match="available: dev, test, train"):
        load_beir(folder, split="nope")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("q1\td1\t1\nq1\td2\n", 2, "expected 3"),
        ("q1\td1\t1\nq1\td2\thigh\n", 2, "not a whole number"),
        ("q1\td1\t1.5\n", 1, "not a whole number"),
        ("q1\td1\t1\tx\ty\n", 1, "expected 3"),
    ],
)
def test_malformed_qrels_lines(tmp_path, text, line, message):
    path = tmp_path / "q.tsv"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message) as info:
        read_qrels(path)
    assert f"{path}:{line}:" in str(info.value)


def test_trec_format_qrels(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("q1 0 d1 2\nq1 0 d2 0\n")
    assert read_qrels(path) == {"q1": {"d1": 2, "d2": 0}}


def test_malformed_jsonl_and_missing_files(tmp_path):
    folder = _write_beir(tmp_path / "ds", "q1\td1\t1\n")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n{"_id": "q2", "text": \n')
    with pytest.raises(InvalidInputError, match=r"queries\.jsonl:2: not valid JSON"):
        load_beir(folder)
    (folder / "queries.jsonl").write_text('{"text": "no id"}\n')
    with pytest.raises(InvalidInputError, match=r"queries\.jsonl:1: no usable"):
        load_beir(folder)
    (folder / "corpus.jsonl").unlink()
    with pytest.raises(MissingPathError, match=r"corpus\.jsonl: not found"):
        load_beir(folder)
    with pytest.raises(MissingPathError, match="no such folder"):
        load_beir(tmp_path / "absent")
    (tmp_path / "noqrels").mkdir()
    with pytest.raises(MissingPathError, match="qrels"):
        load_beir(tmp_path / "noqrels")


def test_judged_queries_are_those_with_text_and_a_relevant_judgement(tmp_path):
    # qrels judge q1 (relevant), q2 (only "not relevant"), q7 and q8 (no text in queries.jsonl).
    folder = _write_beir(tmp_path / "ds", "q1\td1\t1\nq2\td2\t0\nq7\td1\t1\nq8\td2\t2\n")
    ds = load_beir(folder)
    assert ds.judged_queries() == {"q1": "first?"}
    note = ds.coverage_note()
    assert note is not None and "\n" not in note
    assert "2 of the 4 queries judged in qrels/test.tsv have no text" in note
    assert "1 judged queries have no relevant document" in note and "over the 1 searched" in note
    full = _write_beir(tmp_path / "full", "q1\td1\t1\nq2\td2\t1\n")
    assert load_beir(full).coverage_note() is None


# ---------------------------------------------------------------------------------------------
# The shared msmarco-5k data (skipped where it is absent, e.g. on a user's machine)


@pytest.mark.skipif(not MSMARCO.is_dir(), reason=f"shared evaluation data not found at {MSMARCO}")
def test_load_msmarco_5k():
    ds = load_beir(MSMARCO)
    assert len(ds.corpus) == 5000
    assert len(ds.queries) == 50
    assert sum(len(v) for v in ds.qrels.values()) == 4102
    assert set(ds.judged_queries()) <= set(ds.queries)
    # A perfect run (judged documents ranked by grade) scores 1 on every metric.
    perfect = {q: {d: float(g) for d, g in docs.items()} for q, docs in ds.qrels.items()}
    means = evaluate(perfect, ds.qrels, ["ndcg@10", "mrr@10", "recall@1000", "map@1000"])
    assert means == {"ndcg@10": 1.0, "mrr@10": 1.0, "recall@1000": 1.0, "map@1000": 1.0}
