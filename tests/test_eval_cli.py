"""`semsearch eval`: BEIR folder in, metrics table / JSON / HTML report out, collection reused."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from semsearch.cli import app

DOCS = {
    "d1": ("Lodging", "Budget-friendly lodging by the coast, a short walk from the sand."),
    "d2": ("", "The central bank raised interest rates by a quarter point."),
    "d3": ("", "Preheat the oven and whisk the eggs with sugar for the sponge cake."),
    "d4": ("", "Part XK-4471: stainless steel hex bolt, 8 mm."),
    "d5": ("", "Part XK-4417: brass wood screw, 4 mm."),
    "d6": ("", "ต้มยำกุ้งเป็นอาหารไทยที่มีรสเปรี้ยวและเผ็ด"),
}
QUERIES = {
    "q1": "cheap hotel near the beach",
    "q2": "XK-4471",
    "q3": "ต้มยำกุ้ง",
    "q4": "monetary policy",
    "q5": "unjudged",
}
QRELS = [("q1", "d1", 2), ("q2", "d4", 1), ("q2", "d5", 0), ("q3", "d6", 1), ("q4", "d2", 1), ("q4", "d3", 0)]
# Judged in the qrels but absent from queries.jsonl (qrels shared across splits, a trimmed queries
# file): they were never searched, so they must not count as zeros in the mean.
UNSEARCHED = [("q8", "d3", 1), ("q9", "d2", 2), ("q10", "d1", 1)]


@pytest.fixture()
def beir_dir(tmp_path):
    folder = tmp_path / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        f.writelines(
            json.dumps({"_id": i, "title": title, "text": text}, ensure_ascii=False) + "\n"
            for i, (title, text) in DOCS.items()
        )
    with open(folder / "queries.jsonl", "w") as f:
        f.writelines(json.dumps({"_id": i, "text": text}, ensure_ascii=False) + "\n" for i, text in QUERIES.items())
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS + UNSEARCHED)
    )
    return folder


def test_eval_compares_methods_reuses_the_collection_and_writes_a_report(beir_dir, tmp_path, minilm_path):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    from semsearch import Collection

    runner = CliRunner()
    col_dir, report = tmp_path / "evalcol", tmp_path / "out.html"
    args = ["eval", str(beir_dir), "-c", str(col_dir), "--compare", "dense,lexical,hybrid", "--json"]
    r = runner.invoke(app, [*args, "--report", str(report)])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["queries"] == 4 and set(payload["results"]) == {"dense", "lexical", "hybrid"}
    assert set(payload["results"]["hybrid"]) == {"ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"}
    assert "indexed 6 documents" in r.stderr
    page = report.read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "hybrid" in page

    # The same numbers from pytrec_eval over the same searches.
    qrels = {}
    for q, d, s in QRELS + UNSEARCHED:
        qrels.setdefault(q, {})[d] = s
    with Collection(col_dir) as col:
        qids = ["q1", "q2", "q3", "q4"]
        hits = col.search([QUERIES[q] for q in qids], k=100, mode="lexical")
    run = {q: {h.id: float(len(hs) - i) for i, h in enumerate(hs)} for q, hs in zip(qids, hits)}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100"}).evaluate(run)
    assert set(ref) == set(qids)  # pytrec_eval (trec_eval without -c) averages over the searched queries

    def mean(key):
        return sum(ref[q][key] for q in qids) / len(qids)

    got = payload["results"]["lexical"]
    assert got["ndcg@10"] == pytest.approx(mean("ndcg_cut_10"), abs=1e-9)
    assert got["recall@100"] == pytest.approx(mean("recall_100"), abs=1e-9)
    assert got["map@100"] == pytest.approx(mean("map_cut_100"), abs=1e-9)
    assert "note: 3 of the 7 queries judged in qrels/test.tsv have no text" in r.stderr
    assert payload["note"].startswith("3 of the 7") and payload["errors"] == {}
    assert set(payload["seconds"]) == {"dense", "lexical", "hybrid"}

    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "reusing 6 documents" in r.stderr
    assert json.loads(r.stdout)["results"] == payload["results"]


def test_eval_bad_inputs_are_one_line_errors(beir_dir, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["eval", str(beir_dir), "--compare", "dense,magic"])
    assert r.exit_code != 0 and "unknown method 'magic'" in r.output
    r = runner.invoke(app, ["eval", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "error" in r.output


def test_eval_reports_what_succeeded_when_a_method_fails(beir_dir, tmp_path, minilm_path):
    # The cross-encoder cannot load (no such model offline): dense and lexical still report, the
    # report is written with them and the failure, and the exit code is 0 (something succeeded).
    runner = CliRunner()
    report = tmp_path / "out.html"
    args = ["eval", str(beir_dir), "-c", str(tmp_path / "col"), "--compare", "dense,rerank,lexical",
            "--rerank", str(tmp_path / "no-such-cross-encoder"), "--report", str(report)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert set(payload["results"]) == {"dense", "lexical"}
    assert "cannot load the cross-encoder" in payload["errors"]["rerank"]
    assert "method rerank failed" in r.stderr
    page = report.read_text()
    assert "Methods that failed" in page and "cannot load the cross-encoder" in page
    assert "data:image/png;base64," in page and "<th>dense</th>" in page

    r = runner.invoke(app, args)  # the table names the failed method too
    assert r.exit_code == 0 and "failed" in r.stdout and "lexical" in r.stdout

    r = runner.invoke(app, ["eval", str(beir_dir), "-c", str(tmp_path / "col"), "--compare", "rerank",
                            "--rerank", str(tmp_path / "no-such-cross-encoder"), "--json"])
    assert r.exit_code == 1 and "every method failed" in r.stderr
    assert json.loads(r.stdout)["errors"].keys() == {"rerank"}


def test_eval_unanswerable_separation(beir_dir, tmp_path, minilm_path):
    questions = tmp_path / "unanswerable.jsonl"
    questions.write_text("".join(json.dumps({"text": t}) + "\n" for t in (
        "zebra migration patterns in the serengeti", "who painted the sistine chapel ceiling",
        "how many moons does neptune have")))
    report = tmp_path / "sep.html"
    r = CliRunner().invoke(app, ["eval", str(beir_dir), "-c", str(tmp_path / "col"), "--compare", "dense,hybrid",
                                 "--unanswerable", str(questions), "--json", "--report", str(report)])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["unanswerable_queries"] == 3
    for method in ("dense", "hybrid"):
        sep = payload["separation"][method]
        assert 0.0 <= sep["auc"] <= 1.0 and sep["answerable_queries"] == 4 and sep["unanswerable_queries"] == 3
        assert set(sep["default_threshold"]) == {"threshold", "called", "precision", "recall", "answerable_kept"}
    # Dense cosine: the three off-topic questions score below every judged query here.
    assert payload["separation"]["dense"]["auc"] == 1.0
    page = report.read_text()
    assert "Answerable vs unanswerable" in page and page.count("data:image/png;base64,") == 2
