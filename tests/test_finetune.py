"""semsearch finetune: training end to end on a tiny model, resume, the model folder, bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("datasets", reason="fine-tuning needs datasets and accelerate (pip install semsearch[finetune])")
pytest.importorskip("accelerate", reason="fine-tuning needs datasets and accelerate (pip install semsearch[finetune])")

from semsearch import Collection
from semsearch.errors import InvalidInputError, MissingPathError, OptionRequiredError
from semsearch.finetune import CARD_JSON, finetune, read_card

WORDS = ["apple", "river", "mountain", "guitar", "planet", "engine", "garden", "castle", "winter", "forest", "ocean",
         "violin", "rocket", "candle", "bridge", "desert", "island", "pepper", "tiger", "copper", "marble", "silver",
         "falcon", "meadow", "harbor", "lantern", "piano", "glacier", "canyon", "orchard"]
# Small and fast: 64 pairs, batches of 16, so an epoch is 4 steps and a run takes seconds.
FAST = {"batch_size": 16, "mini_batch_size": 8, "learning_rate": 1e-3, "heldout": 0.15, "seed": 3}


def write_pairs(path: Path, n: int = 72, seed: int = 1) -> Path:
    rng = random.Random(seed)
    seen = set()
    with open(path, "w", encoding="utf-8") as f:
        while len(seen) < n:
            a, b = rng.sample(WORDS, 2)
            if (a, b) in seen:
                continue
            seen.add((a, b))
            f.write(json.dumps({"query": f"{a} {b}", "positive": f"This text is about the {a} and the {b}, nothing "
                                                                 "else."}) + "\n")
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny model gains nothing from threads; on a busy shared machine they cost 10x in waiting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def pairs(tmp_path) -> Path:
    return write_pairs(tmp_path / "pairs.jsonl")


def test_training_runs_end_to_end_the_loss_falls_and_held_out_ndcg_rises(tmp_path, pairs, tiny_model_dir):
    result = finetune(pairs, tmp_path / "model", base_model=str(tiny_model_dir), epochs=3, **FAST)

    first, last = [loss for _, loss in result.losses[:3]], [loss for _, loss in result.losses[-3:]]
    assert sum(last) / len(last) < sum(first) / len(first)
    assert result.after["heldout"]["ndcg@10"] > result.before["heldout"]["ndcg@10"]
    assert result.improved
    assert result.steps == 12 and result.resumed_from_step == 0
    # The best checkpoint by held-out nDCG@10 is the one written, whenever it came.
    by_step = dict(result.card["training"]["heldout_ndcg@10_by_step"])
    assert len(by_step) == 6 and result.best_step in by_step
    assert result.after["heldout"]["ndcg@10"] == pytest.approx(max(by_step.values()), abs=1e-4)
    card = read_card(result.model_dir)
    assert card["base_model"] == str(tiny_model_dir.resolve())
    assert card["evaluation"]["heldout"]["before"] == result.before["heldout"]
    assert card["evaluation"]["heldout"]["after"] == result.after["heldout"]
    assert card["data"]["kind"] == "pairs" and card["data"]["train_queries"] + card["data"]["heldout_queries"] == 72
    assert card["settings"]["loss"] == "cached-mnrl" and card["settings"]["batch_sampler"] == "NO_DUPLICATES"
    assert card["data"]["negatives"]["mined"] + card["data"]["negatives"]["random_fill"] > 0
    readme = (result.model_dir / "README.md").read_text(encoding="utf-8")
    assert str(tiny_model_dir.resolve()) in readme and "ndcg@10" in readme
    # Nothing of the run is left beside the model.
    assert not (tmp_path / "model.partial").exists()


def test_the_model_folder_loads_in_a_collection_and_searches(tmp_path, pairs, tiny_model_dir):
    out = finetune(pairs, tmp_path / "model", base_model=str(tiny_model_dir), epochs=1, **FAST).model_dir

    docs = [f"This text is about the {a} and the {b}, nothing else." for a, b in zip(WORDS[:10], WORDS[10:20])]
    with Collection(tmp_path / "col", model=str(out), engine="torch") as col:
        col.add(docs, ids=[f"d{i}" for i in range(10)])
        assert col.manifest["model"] == str(out) and col.dimension == 32
        hits = col.search(f"{WORDS[3]} {WORDS[13]}", k=3, mode="dense")
        assert len(hits) == 3 and all(h.id.startswith("d") for h in hits)
    with Collection(tmp_path / "col", engine="torch") as col:  # reopened: the recorded model folder loads again
        assert col.search(f"{WORDS[3]} {WORDS[13]}", k=1)[0].id == "d3"


class StopAtFirstCheckpoint:
    """Stands in for a kill: raises right after the trainer saved its first checkpoint."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                outer.step = state.global_step
                raise KeyboardInterrupt

        self.step = None
        self.callback = Callback()


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, pairs, tiny_model_dir):
    out = tmp_path / "model"
    stop = StopAtFirstCheckpoint()
    with pytest.raises(KeyboardInterrupt):
        finetune(pairs, out, base_model=str(tiny_model_dir), epochs=2, callbacks=[stop.callback], **FAST)
    assert stop.step == 2
    assert not out.exists()
    partial = tmp_path / "model.partial"
    assert (partial / "checkpoints" / "checkpoint-2").is_dir()
    prepared = (partial / "data.json").read_bytes()

    # Other settings do not silently reuse (or wipe) the unfinished run.
    with pytest.raises(InvalidInputError, match="restart"):
        finetune(pairs, out, base_model=str(tiny_model_dir), epochs=3, **FAST)
    assert (partial / "data.json").read_bytes() == prepared

    result = finetune(pairs, out, base_model=str(tiny_model_dir), epochs=2, **FAST)
    assert result.resumed_from_step == 2 and result.steps == 8
    assert result.card["evaluation"]["heldout"]["before"] == result.before["heldout"]
    assert (out / CARD_JSON).is_file() and not partial.exists()


def test_restart_discards_an_unfinished_run(tmp_path, pairs, tiny_model_dir):
    stop = StopAtFirstCheckpoint()
    with pytest.raises(KeyboardInterrupt):
        finetune(pairs, tmp_path / "model", base_model=str(tiny_model_dir), epochs=2, callbacks=[stop.callback], **FAST)
    result = finetune(pairs, tmp_path / "model", base_model=str(tiny_model_dir), epochs=1, restart=True, **FAST)
    assert result.resumed_from_step == 0 and result.steps == 4


def test_label_free_training_from_a_collection(tmp_path, tiny_model_dir):
    rng = random.Random(0)
    docs, metadatas = [], []
    for i in range(40):
        a, b, c = rng.sample(WORDS, 3)
        docs.append(f"The {a} stands near the {b} today. Nobody has seen a {c} here before. "
                    f"People who visit the {a} often talk about the {c} and the {b} for hours.")
        metadatas.append({"title": f"The {a} and the {c}"} if i % 2 else {})
    with Collection(tmp_path / "col", model=str(tiny_model_dir), engine="torch") as col:
        col.add(docs, ids=[f"d{i}" for i in range(40)], metadatas=metadatas)
    result = finetune(tmp_path / "col", tmp_path / "model", epochs=1, **FAST)  # base model: the collection's
    data = result.card["data"]
    assert data["kind"] == "label-free"
    assert data["pseudo_queries"]["title"] == 20 and data["pseudo_queries"]["inverse_cloze"] == 40
    assert result.base_model == str(tiny_model_dir.resolve())
    assert set(result.after) == {"heldout"} and result.steps >= 1


def test_an_extra_judged_dataset_is_scored_before_and_after(tmp_path, pairs, tiny_model_dir):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": f"All about the {w}."}) + "\n" for i, w in enumerate(WORDS[:8])))
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": w}) + "\n" for i, w in enumerate(WORDS[:8])))
    (beir / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(8)))
    result = finetune(pairs, tmp_path / "model", base_model=str(tiny_model_dir), epochs=1, evaluate_on=[beir], **FAST)
    assert set(result.before) == set(result.after) == {"heldout", "beir"}
    assert result.card["evaluation"]["beir"]["queries"] == 8 and result.card["evaluation"]["beir"]["corpus"] == 8


def test_triplets_from_a_csv_file_and_a_beir_folder_train(tmp_path, tiny_model_dir):
    rng = random.Random(2)
    rows = ["query,positive,negative"]
    for _ in range(30):
        a, b, c = rng.sample(WORDS, 3)
        rows.append(f"{a} {b},about the {a} and the {b},about the {c} alone")
    (tmp_path / "triplets.csv").write_text("\n".join(rows) + "\n")
    result = finetune(tmp_path / "triplets.csv", tmp_path / "m1", base_model=str(tiny_model_dir), negatives=0, **FAST)
    assert result.card["data"]["negatives"]["explicit"] > 0

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": a, "text": f"the {a} and the {b}"}) + "\n"
        for i, (a, b) in enumerate(zip(WORDS, reversed(WORDS)))))
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"{a} {b}"}) + "\n"
                                                for i, (a, b) in enumerate(zip(WORDS, reversed(WORDS)))))
    (beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(WORDS))))
    result = finetune(beir, tmp_path / "m2", base_model=str(tiny_model_dir), **FAST)
    assert result.card["data"]["kind"] == "beir" and result.card["data"]["queries"] == len(WORDS)


def test_matryoshka_training_is_recorded_for_truncation(tmp_path, pairs, tiny_model_dir):
    result = finetune(pairs, tmp_path / "model", base_model=str(tiny_model_dir), epochs=1, matryoshka=[32, 16, 8],
                      loss="mnrl", **FAST)
    card = read_card(result.model_dir)
    assert card["matryoshka_dimensions"] == [32, 16, 8] and card["dimension"] == 32
    assert card["settings"]["loss"] == "mnrl"
    with pytest.raises(InvalidInputError, match="exceed the model's dimension 32"):
        finetune(pairs, tmp_path / "other", base_model=str(tiny_model_dir), matryoshka=[64, 32], **FAST)
    assert not (tmp_path / "other.partial").exists()


# -- bad input: clear errors, raised before a model loads or a folder appears -----------------


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("pairs.csv", "question_text,answer_text\nq,a\n", InvalidInputError,
         "no query column .*needs columns query and positive"),
        ("pairs.jsonl", '{"query": "q", "doc": "d"}\n', InvalidInputError, "no positive column"),
        ("pairs.jsonl", "", InvalidInputError, "no rows"),
        ("pairs.csv", "", InvalidInputError, "no rows"),
        ("pairs.jsonl", '{"query": "q", "positive": "p"}\n{"query": "q2", "positive": ""}\n', InvalidInputError,
         r"pairs.jsonl:2: empty positive"),
        ("pairs.jsonl", '{"query": "q", "positive": "p"}\nnot json\n', InvalidInputError,
         r"pairs.jsonl:2: not valid JSON"),
        ("pairs.txt", "query\tpositive\n", InvalidInputError, "unknown file type"),
        ("pairs.jsonl", '{"query": "q", "positive": "p"}\n{"query": "r", "positive": "s"}\n', InvalidInputError,
         "only 2 distinct queries"),
    ],
)
def test_bad_training_files_give_clear_errors(tmp_path, name, content, error, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(error, match=match):
        finetune(path, tmp_path / "model", base_model="/nonexistent/model/never/loaded")
    assert not (tmp_path / "model").exists() and not (tmp_path / "model.partial").exists()


def test_a_beir_folder_without_qrels_says_what_is_missing(tmp_path):
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "text": "t"}\n')
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "q"}\n')
    with pytest.raises(MissingPathError, match="qrels.*label-free"):
        finetune(beir, tmp_path / "model", base_model="/nonexistent/model")


def test_other_bad_arguments(tmp_path, pairs):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="taken holds files that semsearch finetune did not write"):
        finetune(pairs, tmp_path / "taken")
    with pytest.raises(MissingPathError, match="no such file or folder"):
        finetune(tmp_path / "nothing.jsonl", tmp_path / "model")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidInputError, match="neither a BEIR dataset .* nor a semsearch collection"):
        finetune(tmp_path / "plain", tmp_path / "model")
    with pytest.raises(InvalidInputError, match="unknown loss"):
        finetune(pairs, tmp_path / "model", loss="triplet")
    with pytest.raises(InvalidInputError, match="held-out fraction"):
        finetune(pairs, tmp_path / "model", heldout=0.9)
    with pytest.raises(InvalidInputError, match="cannot load base model"):
        finetune(pairs, tmp_path / "model", base_model=str(tmp_path / "plain"))
    assert not (tmp_path / "model.partial").exists()


# -- the command line ------------------------------------------------------------------------


def test_cli_finetune_then_index_and_search_with_the_new_model(tmp_path, pairs, tiny_model_dir):
    from typer.testing import CliRunner

    from semsearch.cli import app

    runner = CliRunner()
    out = tmp_path / "model"
    r = runner.invoke(app, ["finetune", str(pairs), "--out", str(out), "--model", str(tiny_model_dir), "--json",
                            "--batch-size", "16", "--mini-batch-size", "8", "--lr", "1e-3", "--heldout", "0.15",
                            "--seed", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["model_dir"] == str(out) and payload["steps"] == 4
    assert set(payload["before"]["heldout"]) == {"ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"}

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"_id": f"d{i}", "text": f"All about the {w}."}) + "\n"
                            for i, w in enumerate(WORDS)))
    col = tmp_path / "col"
    r = runner.invoke(app, ["index", str(docs), "-c", str(col), "--model", str(out), "--engine", "torch",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["search", WORDS[5], "-c", str(col), "--json", "--engine", "torch"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["hits"][0]["id"] == "d5"


def test_cli_bad_input_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from semsearch.cli import app

    (tmp_path / "pairs.csv").write_text("a,b\n1,2\n")
    r = CliRunner().invoke(app, ["finetune", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "m")])
    assert r.exit_code == 1
    assert "error:" in r.output and "no query column" in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_a_killed_cli_run_continues_from_its_checkpoint(tmp_path, pairs, tiny_model_dir):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "model"
    argv = [sys.executable, "-m", "semsearch.cli", "finetune", str(pairs), "--out", str(out), "--model",
            str(tiny_model_dir), "--epochs", "3", "--batch-size", "16", "--mini-batch-size", "8", "--lr", "1e-3",
            "--heldout", "0.15", "--seed", "3", "--json", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp_path / "model.partial" / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 600
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert state.exists() and not out.exists(), "the run finished or failed before it could be killed"

    done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["resumed_from_step"] >= 2 and payload["steps"] == 12
    assert (out / CARD_JSON).is_file()


# -- what --overwrite may replace -----------------------------------------------------------


def test_overwrite_never_deletes_a_folder_finetune_did_not_write(tmp_path, pairs):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "important.txt").write_text("my notes")
    with pytest.raises(InvalidInputError, match=r"mine holds files that semsearch finetune did not write "
                                                r"\(important.txt; no semsearch_finetune.json\).*nothing was touched"):
        finetune(pairs, mine, overwrite=True)
    assert (mine / "important.txt").read_text() == "my notes" and not (tmp_path / "mine.partial").exists()
    # Nor the folder a run keeps its unfinished work in, when something else is there.
    (tmp_path / "model.partial").mkdir()
    (tmp_path / "model.partial" / "draft.txt").write_text("keep")
    with pytest.raises(InvalidInputError, match="model.partial is where finetune keeps an unfinished run"):
        finetune(pairs, tmp_path / "model", restart=True)
    assert (tmp_path / "model.partial" / "draft.txt").read_text() == "keep"


def test_overwrite_replaces_only_a_previous_finetune_model(tmp_path, pairs, tiny_model_dir):
    out = tmp_path / "model"
    (tmp_path / "model.old").mkdir()  # a user's folder beside it, named like a backup
    (tmp_path / "model.old" / "keep.txt").write_text("keep")
    first = finetune(pairs, out, base_model=str(tiny_model_dir), epochs=1, **FAST)
    with pytest.raises(OptionRequiredError, match="already holds a fine-tuned model.*pass overwrite=True"):
        finetune(pairs, out, base_model=str(tiny_model_dir), epochs=1, **FAST)
    second = finetune(pairs, out, base_model=str(tiny_model_dir), epochs=1, overwrite=True, **{**FAST, "seed": 4})
    assert read_card(out)["created"] >= first.card["created"] and read_card(out)["settings"]["seed"] == 4
    assert second.model_dir == out and (tmp_path / "model.old" / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.old", "pairs.jsonl"]


def test_cli_overwrite_errors_name_the_cli_option(tmp_path, pairs):
    from typer.testing import CliRunner

    from semsearch.cli import app

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "important.txt").write_text("my notes")
    r = CliRunner().invoke(app, ["finetune", str(pairs), "--out", str(mine), "--overwrite"])
    assert r.exit_code == 1 and "finetune did not write" in r.output and "overwrite=" not in r.output
    assert (mine / "important.txt").read_text() == "my notes"
    made = tmp_path / "made"  # what a previous finetune leaves: its card
    made.mkdir()
    (made / CARD_JSON).write_text(json.dumps({"card_version": 1, "base_model": "m"}))
    r = CliRunner().invoke(app, ["finetune", str(pairs), "--out", str(made)])
    message = " ".join(r.output.split())
    assert r.exit_code == 1 and "already holds a fine-tuned model" in message
    assert "pass --overwrite to replace it" in message and "overwrite=True" not in message


# -- a verdict on few held-out queries ----------------------------------------------------------


def test_too_few_queries_to_hold_out_five_are_refused(tmp_path):
    path = write_pairs(tmp_path / "six.jsonl", n=6)
    with pytest.raises(InvalidInputError, match=r"only 6 distinct queries; fine-tuning needs at least 7 \(5 are held"):
        finetune(path, tmp_path / "model", base_model="/nonexistent/model/never/loaded")


def test_a_small_held_out_set_warns_and_reports_the_interval_of_the_gain(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from semsearch.cli import app

    pairs = write_pairs(tmp_path / "few.jsonl", n=14)  # 10% held out would be 1 query: 5 are
    out = tmp_path / "model"
    r = CliRunner().invoke(app, ["finetune", str(pairs), "--out", str(out), "--model", str(tiny_model_dir),
                                 "--batch-size", "16", "--mini-batch-size", "8", "--lr", "1e-3", "--heldout", "0.1",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    card = read_card(out)
    heldout = card["evaluation"]["heldout"]
    gain = heldout["ndcg@10_gain"]
    assert heldout["queries"] == gain["queries"] == 5
    assert gain["gain"] == pytest.approx(heldout["after"]["ndcg@10"] - heldout["before"]["ndcg@10"], abs=1e-9)
    assert gain["low"] <= gain["gain"] <= gain["high"] and gain["confidence"] == 0.95
    assert card["verdict"] == gain["verdict"] and gain["method"].startswith("paired bootstrap")
    assert card["warnings"] and "rests on only 5 held-out queries (fewer than 30)" in card["warnings"][0]
    readme = (out / "README.md").read_text()
    assert "95% interval" in readme and "Warning: the verdict rests on only 5 held-out queries" in readme
    output = " ".join(r.output.split())
    assert "95% interval" in output and "warning: the verdict rests on only 5 held-out queries" in output
    assert f"{gain['low']:+.4f} to {gain['high']:+.4f}" in output
