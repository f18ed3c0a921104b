"""semsearch similar / duplicates / topics end to end: --json shapes, --delete, --assign, --plot."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from semsearch import Collection
from semsearch.cli import app
from semsearch.corpus import similar

from .test_explore import COPIES, GROUPS, fill
from .test_near_duplicates import PASSAGE, SISTERS

runner = CliRunner()


@pytest.fixture()
def folder(tmp_path, minilm_path):
    path = tmp_path / "col"
    with Collection(path, engine="torch") as col:
        fill(col)
    return path


def invoke(folder, *args):
    result = runner.invoke(app, [*args, "--collection", str(folder)])
    result.text = " ".join(result.output.split())
    return result


def test_similar_json_is_hits_as_search_prints_them(folder):
    r = invoke(folder, "similar", "astronomy-2", "-k", "3", "--json")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    with Collection(folder) as col:
        assert hits == [h.to_dict() for h in similar(col, "astronomy-2", k=3)]
    assert hits[0]["id"] == "astronomy-2-word" and "astronomy-2" not in [h["id"] for h in hits]
    r = invoke(folder, "similar", "astronomy-2", "-k", "2", "--where", '{"group": "football"}', "--json")
    assert {h["metadata"]["group"] for h in json.loads(r.stdout)} == {"football"}


def test_similar_to_an_unknown_id_fails_clearly(folder):
    r = invoke(folder, "similar", "nope")
    assert r.exit_code == 1 and "no document with id 'nope'" in r.text


def test_duplicates_json_and_plain_output(folder):
    r = invoke(folder, "duplicates", "--json", "--keep", "newest")
    assert r.exit_code == 0, r.output
    groups = json.loads(r.stdout)
    assert sorted(tuple(g["ids"]) for g in groups) == sorted((o, c) for c, (o, _) in COPIES.items())
    for g in groups:
        assert g["keep"] == g["ids"][1] and g["delete"] == [g["ids"][0]] and g["size"] == 2
        assert g["pairs"][0]["score"] >= 0.95
    r = invoke(folder, "duplicates")
    assert r.exit_code == 0
    assert sorted(r.stdout.split()) == sorted(COPIES)  # keep first: the copies are printed, one id a line
    r = invoke(folder, "duplicates", "--keep", "shortest")
    assert r.exit_code == 1 and "keep must be one of first, longest, newest" in r.text


def test_duplicates_delete_asks_unless_yes(folder):
    r = invoke(folder, "duplicates", "--delete")
    assert r.exit_code == 1 and "--yes" in r.text
    with Collection(folder) as col:
        assert col.count() == len(GROUPS) * 6 + len(COPIES)
    r = invoke(folder, "duplicates", "--delete", "--yes")
    assert r.exit_code == 0 and "deleted 3 document(s)" in r.text
    with Collection(folder) as col:
        assert col.get(list(COPIES)) == [] and col.count() == len(GROUPS) * 6
    assert json.loads(invoke(folder, "duplicates", "--json").stdout) == []


def test_duplicates_must_read_alike_unless_semantic_and_delete_keeps_sister_documents(tmp_path, minilm_path):
    # Three seasons of one club from one template (cosine 0.93-0.96 with MiniLM: different entities) and a
    # passage with an edited copy. Groups never chain and, by default, need a textual match too.
    path = tmp_path / "sisters"
    with Collection(path, engine="torch") as col:
        col.add([*SISTERS, PASSAGE, PASSAGE.replace("wetter", "rainier")],
                ids=["season-2012", "season-2013", "season-2014", "rain", "rain-copy"])
    r = invoke(path, "duplicates", "--threshold", "0.9", "--json")
    assert r.exit_code == 0, r.output
    (group,) = json.loads(r.stdout)
    assert group["ids"] == ["rain", "rain-copy"] and group["delete"] == ["rain-copy"]
    (pair,) = group["pairs"]
    assert pair["score"] >= 0.95 and pair["text"] >= 0.8 and group["min_text"] == pair["text"]
    r = invoke(path, "duplicates", "--threshold", "0.9", "--semantic", "--json")
    groups = json.loads(r.stdout)
    assert sorted(g["ids"] for g in groups) == [["rain", "rain-copy"], ["season-2012", "season-2013", "season-2014"]]
    seasons = next(g for g in groups if g["size"] == 3)
    assert len(seasons["pairs"]) == 3 and all(p["score"] >= 0.9 and p["text"] < 0.5 for p in seasons["pairs"])
    r = invoke(path, "duplicates", "--threshold", "0.9")
    assert r.stdout.split() == ["rain-copy"] and "text >= 0.6" in r.text
    r = invoke(path, "duplicates", "--threshold", "0.9", "--delete", "--yes")
    assert r.exit_code == 0 and "deleted 1 document(s)" in r.text
    with Collection(path) as col:
        assert col.count() == 4 and col.get(["rain-copy"]) == []


def test_topics_show_the_documents_in_no_topic_as_topic_minus_one(tmp_path, minilm_path):
    from .test_topic_model import axis_groups

    pytest.importorskip("matplotlib")
    vectors, truth = axis_groups([40, 30, 25, 20], dim=384)  # four subjects and one document like none of them
    ids = [f"g{t}-{i}" if t >= 0 else "loner" for i, t in enumerate(truth)]
    path = tmp_path / "axes"
    with Collection(path, engine="torch") as col:
        col.add([f"subject {t} document {i}" for i, t in enumerate(truth)], ids=ids, embeddings=vectors)
    r = invoke(path, "topics", "--json", "--assign", "--plot", str(tmp_path / "map.png"))
    assert r.exit_code == 0, r.output
    topics = json.loads(r.stdout)
    assert [t["id"] for t in topics] == [0, 1, 2, 3, -1]
    assert topics[-1] == {"id": -1, "label": "outliers", "words": [], "size": 1, "ids": ["loner"]}
    with Collection(path) as col:
        assert col.get(["loner"])[0].metadata == {"topic": -1, "topic_label": "outliers"}
    r = invoke(path, "topics")
    assert r.exit_code == 0 and "4 topics and 1 document(s) in none (topic -1)" in r.text and "loner" in r.text
    r = invoke(path, "topics", "--no-outliers", "--json")
    assert -1 not in [t["id"] for t in json.loads(r.stdout)]


def test_topics_json_plot_and_assign(folder, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "map.png"
    r = invoke(folder, "topics", "--n", "3", "--where", '{"copy": false}', "--json", "--plot", str(png), "--assign")
    assert r.exit_code == 0, r.output
    topics = json.loads(r.stdout)
    assert [set(t) for t in topics] == [{"id", "label", "words", "size", "ids"}] * 3
    assert sum(t["size"] for t in topics) == len(GROUPS) * 6
    assert png.read_bytes()[:4] == b"\x89PNG"
    r = invoke(folder, "search", "anything", "-k", "30", "--where", json.dumps({"topic": topics[1]["id"]}), "--json")
    assert sorted(h["id"] for h in json.loads(r.stdout)[0]["hits"]) == sorted(topics[1]["ids"])
    r = invoke(folder, "topics", "--n", "3")
    assert r.exit_code == 0 and "3 topics" in r.text
