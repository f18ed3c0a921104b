"""`semsearch eval --models`: every method on every model in one table, JSON and report, each model's
collection cached, with the dimension, index size, indexing speed and latency beside the metrics."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from semsearch import InvalidInputError
from semsearch.cli import app
from semsearch.cli.common import out
from semsearch.evaluation.comparison import ModelVariant, parse_models, variant_folder

TOPICS = ["beach hotel", "interest rates", "sponge cake", "hex bolt", "football final", "green leaves"]


@pytest.fixture()
def beir_dir(tmp_path):
    """48 documents on 6 topics, one judged query per topic (8 relevant documents each)."""
    folder = tmp_path / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    docs = {f"d{t}-{i}": f"Note {i} about the {topic}, written for reader {i * 7 % 11}."
            for t, topic in enumerate(TOPICS) for i in range(8)}
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": x}) + "\n" for d, x in docs.items()))
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{t}", "text": f"about the {topic}"}) + "\n" for t, topic in enumerate(TOPICS)))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{t}\td{t}-{i}\t1\n" for t in range(len(TOPICS)) for i in range(8)))
    return folder


def test_eval_models_measures_every_method_on_every_model_and_reuses_their_collections(
    beir_dir, tmp_path, tiny_model_dir, matryoshka_model_dir, monkeypatch
):
    runner = CliRunner()
    root, report = tmp_path / "cols", tmp_path / "models.html"
    models = f"{tiny_model_dir},{matryoshka_model_dir}@16,{tiny_model_dir}@pca8"
    args = ["eval", str(beir_dir), "-c", str(root), "--models", models, "--compare", "dense,lexical", "--json"]
    r = runner.invoke(app, [*args, "--report", str(report)])
    assert r.exit_code == 0, r.output
    runs = json.loads(r.stdout)["models"]
    assert [m["model"] for m in runs] == models.split(",")
    assert [m["dimension"] for m in runs] == [32, 16, 8]
    assert [m["index"] for m in runs] == ["Flat", "Flat", "PCA8,Flat"]
    assert [m["reused"] for m in runs] == [False, False, True]
    # the PCA variant of the first model reuses its vectors (encoded once), with its own index
    assert runs[2]["vectors_from"] == runs[0]["collection"] and runs[1]["vectors_from"] is None
    assert len({m["collection"] for m in runs}) == 3
    assert runs[2]["documents_per_second"] == runs[0]["documents_per_second"] and "(index rebuilt)" in r.stderr
    for m in runs:
        assert m["error"] is None and m["errors"] == {}
        assert set(m["results"]) == {"dense", "lexical"} and set(m["results"]["dense"]) >= {"ndcg@10", "recall@10"}
        assert m["documents"] == 48 and m["documents_per_second"] > 0
        assert set(m["latency_ms"]) == {"dense", "lexical"} and m["latency_ms"]["dense"]["median"] > 0
    # 16 float32 dimensions take half the memory of 32 (plus the id each keeps)
    assert runs[1]["index_bytes"] == pytest.approx(48 * (16 * 4 + 8), rel=0.01)
    assert runs[0]["index_bytes"] == pytest.approx(48 * (32 * 4 + 8), rel=0.01)
    # BM25 does not depend on the model: one corpus, one lexical result whatever the model
    assert runs[0]["results"]["lexical"] == runs[1]["results"]["lexical"] == runs[2]["results"]["lexical"]
    assert len({p.name for p in root.iterdir()}) == 3  # a collection per model

    page = report.read_text()
    for label in models.split(","):
        assert f"{label} / dense" in page
    assert "index MB" in page and "latency ms (p50/p95)" in page

    # the same numbers as a plain eval of that one model
    single = runner.invoke(app, ["eval", str(beir_dir), "-c", str(tmp_path / "one"), "--model", str(tiny_model_dir),
                                 "--compare", "dense", "--json"])
    assert single.exit_code == 0, single.output
    assert json.loads(single.stdout)["results"]["dense"] == runs[0]["results"]["dense"]

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    rerun = json.loads(again.stdout)["models"]
    assert all(m["reused"] for m in rerun) and "reusing 48 documents" in again.stderr
    assert [m["results"] for m in rerun] == [m["results"] for m in runs]
    assert [m["documents_per_second"] for m in rerun] == [m["documents_per_second"] for m in runs]  # from the build

    monkeypatch.setattr(out, "width", 200)
    table = runner.invoke(app, args[:-1])
    text = " ".join(table.stdout.split())
    assert table.exit_code == 0 and "models x methods" in text, table.output
    assert re.search(r"st@16 dense \d\.\d{4}", text) and re.search(r"st@pca8 lexical \d\.\d{4}", text)  # folder names
    assert f"st@16 = {matryoshka_model_dir}@16" in text


def test_a_model_that_cannot_be_used_is_reported_and_the_others_still_run(beir_dir, tmp_path, tiny_model_dir):
    r = CliRunner().invoke(app, ["eval", str(beir_dir), "-c", str(tmp_path / "cols"), "--compare", "dense",
                                 "--models", f"{tiny_model_dir},{tiny_model_dir}@16", "--json"])
    assert r.exit_code == 0, r.output
    ok, refused = json.loads(r.stdout)["models"]
    assert ok["error"] is None and ok["results"]["dense"]["ndcg@10"] >= 0
    assert "not trained for truncated embeddings" in refused["error"] and "PCA16,Flat" in refused["error"]
    assert refused["results"] == {}
    assert "error: model" in " ".join(r.stderr.split())


def test_eval_models_bad_input_is_a_one_line_error(beir_dir, tmp_path, tiny_model_dir):
    runner = CliRunner()
    for models, message in ((f"{tiny_model_dir}@big", "NAME@pcaN"), (",", "no model in --models"),
                            ("default,default", "listed twice")):
        r = runner.invoke(app, ["eval", str(beir_dir), "-c", str(tmp_path / "x"), "--models", models])
        assert r.exit_code != 0 and message in " ".join(r.output.split()), r.output
    r = runner.invoke(app, ["eval", str(beir_dir), "--models", "default", "--model", str(tiny_model_dir)])
    assert r.exit_code != 0 and "leave out --model" in " ".join(r.output.split())
    assert not (tmp_path / "x").exists()


def test_model_variants_and_their_cache_folders(tmp_path):
    default, pca, small = parse_models("default, default@PCA128 ,./tuned@256")
    assert default == ModelVariant("default", None) and pca.index == "PCA128,Flat" and pca.dimensions is None
    assert (small.model, small.dimensions, small.index) == ("./tuned", 256, None)
    folders = {variant_folder(tmp_path, v) for v in (default, pca, small)}
    assert len(folders) == 3 and all(f.parent == tmp_path for f in folders)
    assert variant_folder(tmp_path, small).name.startswith("tuned-")
    with pytest.raises(InvalidInputError, match="positive"):
        parse_models("default@0")


# -- in a pipe ---------------------------------------------------------------------------------


def test_eval_in_a_pipe_reports_progress_on_stderr_and_prints_whole_tables(beir_dir, tmp_path, tiny_model_dir,
                                                                          minilm_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-m", "semsearch.cli", "eval", str(beir_dir), "-c", str(tmp_path / "cols"), "--models",
         f"default,{tiny_model_dir}", "--compare", "dense,hybrid"],
        capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    # Every step is announced on stderr as it starts: nothing is silent for the length of a search.
    for model in ("default", str(tiny_model_dir)):
        assert f"{model}: opening (or indexing 48 documents into) " in done.stderr
        for method in ("dense", "hybrid"):
            assert f"{model}: {method}: searching 6 queries ..." in done.stderr
    # The table is whole: no cell cut to fit 80 columns, and every metric is there.
    assert "…" not in done.stdout
    rows = [line.split() for line in done.stdout.splitlines()]
    assert ["default", "dense"] == next(r[:2] for r in rows if r[:1] == ["default"])
    header = next(r for r in rows if r[:2] == ["model", "method"])
    assert {"ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"} <= set(header)


def test_a_heartbeat_says_which_step_still_runs_until_it_is_done():
    import io
    import threading

    from rich.console import Console

    from semsearch.cli.pipes import Heartbeat

    stream = io.StringIO()
    console = Console(file=stream, width=200)
    beat = Heartbeat(console, every=0.01)
    with beat:
        beat.step("hybrid: searching 1,000 queries")
        seen = threading.Event()
        for _ in range(2000):  # until the background thread has spoken (a wait for an event, not a timing)
            if "still running" in stream.getvalue():
                seen.set()
                break
            threading.Event().wait(0.01)
        beat.done()
    lines = stream.getvalue().splitlines()
    assert seen.is_set() and lines[0] == "hybrid: searching 1,000 queries ..."
    assert all(re.fullmatch(r"hybrid: searching 1,000 queries: still running, \d+s so far", line) for line in lines[1:])
    quiet = io.StringIO()
    with Heartbeat(Console(file=quiet), enabled=False) as off:
        off.step("nothing to say")
        off.tick()
    assert quiet.getvalue() == ""
