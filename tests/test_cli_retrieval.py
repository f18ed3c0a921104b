"""CLI: --where on search and delete, search modes and explanations."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from semsearch.cli import app


def _make(path, tiny_model_dir):
    from semsearch import Collection

    with Collection(path, model=str(tiny_model_dir)) as col:
        rng = np.random.default_rng(0)
        col.add(["red apple pie", "green apple tart", "blue car engine"], ids=["a", "b", "c"],
                metadatas=[{"color": "red", "n": 1}, {"color": "green", "n": 2}, {"color": "blue", "n": 3}],
                embeddings=rng.normal(size=(3, col.dimension)))


def test_search_and_delete_with_where(tmp_path, tiny_model_dir):
    path = tmp_path / "col"
    _make(path, tiny_model_dir)
    runner = CliRunner()
    r = runner.invoke(app, ["search", "apple", "-c", str(path), "--mode", "lexical", "--where", '{"n": {"$gte": 2}}',
                            "--json"])
    assert r.exit_code == 0, r.output
    assert [h["id"] for h in json.loads(r.stdout)[0]["hits"]] == ["b"]
    r = runner.invoke(app, ["search", "apple", "-c", str(path), "--where", '{"n": {"$gtt": 2}}'])
    assert r.exit_code != 0 and "where.n.$gtt" in r.output
    r = runner.invoke(app, ["search", "apple", "-c", str(path), "--where", "{oops"])
    assert r.exit_code != 0 and "not valid JSON" in r.output
    r = runner.invoke(app, ["delete", "-c", str(path), "--where", '{"color": {"$in": ["red", "blue"]}}'])
    assert r.exit_code == 0 and "deleted 2" in r.output
    r = runner.invoke(app, ["search", "apple car", "-c", str(path), "--mode", "lexical", "--json", "--explain"])
    assert [h["id"] for h in json.loads(r.stdout)[0]["hits"]] == ["b"]


def test_no_good_match_is_said_and_threshold_auto_drops_weak_hits(tmp_path, minilm_path):
    from semsearch import Collection

    path = tmp_path / "col"
    with Collection(path) as col:
        col.add(["Preheat the oven and whisk the eggs with sugar for a light sponge cake.",
                 "The central bank raised interest rates by a quarter point."], ids=["cake", "bank"])
    runner = CliRunner()
    r = runner.invoke(app, ["search", "how to bake a sponge cake", "zebra migration in the serengeti", "-c", str(path),
                            "--json"])
    assert r.exit_code == 0, r.output
    answered, unanswered = json.loads(r.stdout)
    assert answered["no_good_match"] is False and answered["hits"][0]["id"] == "cake"
    assert unanswered["no_good_match"] is True and unanswered["hits"]  # the closest hits are still shown
    r = runner.invoke(app, ["search", "zebra migration in the serengeti", "-c", str(path)])
    assert r.exit_code == 0 and "no good match" in " ".join(r.output.split())
    r = runner.invoke(app, ["search", "zebra migration in the serengeti", "-c", str(path), "--threshold", "auto",
                            "--json"])
    assert json.loads(r.stdout)[0] == {"query": "zebra migration in the serengeti", "hits": [], "no_good_match": True}
    r = runner.invoke(app, ["search", "cake", "-c", str(path), "--threshold", "high"])
    # the collection's own message, the one every door gives (issue 24)
    assert r.exit_code != 0 and "threshold must be a number or \"auto\", got 'high'" in " ".join(r.output.split())
