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
QUERIES = {"q1": "cheap hotel near the beach", "q2": "XK-4471", "q3": "ต้มยำกุ้ง", "q4": "monetary policy", "q5": "unjudged"}
QRELS = [("q1", "d1", 2), ("q2", "d4", 1), ("q2", "d5", 0), ("q3", "d6", 1), ("q4", "d2", 1), ("q4", "d3", 0)]


@pytest.fixture()
def beir_dir(tmp_path):
    folder = tmp_path / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for i, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": i, "title": title, "text": text}, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for i, text in QUERIES.items():
            f.write(json.dumps({"_id": i, "text": text}, ensure_ascii=False) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS))
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
    for q, d, s in QRELS:
        qrels.setdefault(q, {})[d] = s
    with Collection(col_dir) as col:
        qids = ["q1", "q2", "q3", "q4"]
        hits = col.search([QUERIES[q] for q in qids], k=100, mode="lexical")
    run = {q: {h.id: float(len(hs) - i) for i, h in enumerate(hs)} or {"none": 0.0} for q, hs in zip(qids, hits)}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100"}).evaluate(run)
    mean = lambda key: sum(ref[q][key] for q in qids) / len(qids)  # noqa: E731
    got = payload["results"]["lexical"]
    assert got["ndcg@10"] == pytest.approx(mean("ndcg_cut_10"), abs=1e-9)
    assert got["recall@100"] == pytest.approx(mean("recall_100"), abs=1e-9)
    assert got["map@100"] == pytest.approx(mean("map_cut_100"), abs=1e-9)

    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "reusing 6 documents" in r.stderr
    assert json.loads(r.stdout)["results"] == payload["results"]


def test_eval_bad_inputs_are_one_line_errors(beir_dir, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["eval", str(beir_dir), "--compare", "dense,magic"])
    assert r.exit_code != 0 and "unknown method 'magic'" in r.output
    r = runner.invoke(app, ["eval", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "error" in r.output
