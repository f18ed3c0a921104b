"""The light query path: the same vectors and rankings as the full path, without torch, and
what a machine prepared is never used for a model, library or CPU it was not prepared for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection
from semsearch.embedding import Embedder, calibration, light, prepared
from semsearch.embedding import models as emb
from semsearch.embedding.openvino_engine import openvino_available

# What auto picks (the light path) is tested here: unforced even when the suite runs under
# $SEMSEARCH_ENGINE/$SEMSEARCH_PRECISION.
pytestmark = [pytest.mark.skipif(not openvino_available(), reason="the light path runs the OpenVINO model"),
              pytest.mark.usefixtures("auto_choice")]

SRC = str(Path(__file__).resolve().parents[1] / "src")
PASSAGES = [
    "Budget-friendly lodging by the coast, five minutes from the sand.",
    "The central bank raised interest rates by a quarter point to curb inflation.",
    "Whisk the eggs with sugar, then fold in the flour for a light sponge cake.",
    "The striker scored twice in the final and the crowd sang until midnight.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar in green leaves.",
    "To boil an egg, lower it into simmering water for seven minutes, then cool it in ice water.",
    "A VPN encrypts traffic between your laptop and the company network.",
    "The museum's new wing shows impressionist paintings from private collections.",
    "Reset the router by holding the small button on the back for ten seconds.",
    "Der Zug nach München fährt um acht Uhr von Gleis drei ab.",
    "東京は日本の首都で、世界最大の都市圏の一つです。",
    "Compound interest means you earn interest on the interest already paid.",
]
QUERIES = [
    "affordable accommodation near the beach",
    "how long to boil an egg",
    "monetary policy and inflation",
    "football match result",
    "how do plants make food",
    "secure remote access to the office network",
    "Zugverbindung nach München",
    "日本の首都",
    "how do I restart my wifi box",
    "x",
]


def _forget_process_state(monkeypatch) -> None:
    """What a new process starts with: nothing chosen, no OpenVINO model or light encoder loaded."""
    monkeypatch.setattr(calibration, "_auto_precision", {})
    monkeypatch.setattr(emb, "_ov_models", {})
    monkeypatch.setattr(light, "_encoders", {})


@pytest.fixture()
def machine(tmp_path, monkeypatch) -> Path:
    """A machine that has prepared nothing yet (its own cache folder)."""
    folder = tmp_path / "machine-cache"
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(folder))
    _forget_process_state(monkeypatch)
    return folder


def test_light_and_full_paths_give_the_same_vectors_and_rankings(minilm_path, tmp_path, machine, monkeypatch):
    with Collection(tmp_path / "col") as col:
        col.add(PASSAGES, ids=[f"p{i}" for i in range(len(PASSAGES))])  # the first run: prepares the model
        assert col.embedder.engine == "openvino"
        precision = col.embedder.precision
        full = col.embedder.encode_queries(QUERIES)
        full_hits = col.search(full, k=5)
        many = [f"{q} {i}" for i, q in enumerate(QUERIES * 5)]  # several pieces, as the full path's workers take
        full_many = col.embedder.encode_queries(many)
        # A later process: the model is not loaded, queries come from what the first run prepared.
        _forget_process_state(monkeypatch)
        later = Embedder(expect_dimension=384)
        assert later.precision == precision
        assert later._light_encoder(precision) is not None and later._model is None
        got = later.encode_queries(QUERIES)
        assert later._model is None  # the model was never loaded
        assert np.abs(got - full).max() <= light.TOLERANCE
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
        light_hits = col.search(got, k=5)
        assert [[h.id for h in hits] for hits in light_hits] == [[h.id for h in hits] for hits in full_hits]
        assert np.abs(later.encode_queries(many) - full_many).max() <= light.TOLERANCE
        # What the light path answers without the model is what the model says.
        assert (later.dimension, later.max_seq_length, later.prompts) == (
            emb.dimension_of(col.embedder.model), col.embedder.model.max_seq_length, col.embedder.model.prompts
        )
        for text in ("photosynthesis", "Budget-friendly lodging", "пирожки", "x86_64 2024"):
            assert later.plain_tokenizer.tokenize(text) == col.embedder.tokenizer.tokenize(text)
        assert later.plain_tokenizer.unk_token == "[UNK]"
        assert later._model is None


def _prepare(model_dir: Path) -> Embedder:
    e = Embedder(str(model_dir), device="cpu", precision="fp32", query_cache=0)
    e.encode_queries(["first run on this machine"])
    return e


def test_a_changed_model_never_uses_what_was_prepared_for_the_old_one(tiny_model_dir, tmp_path, machine, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    first = _prepare(model)
    assert first.engine == "openvino"
    key = prepared.machine_key(first.name, str(model), "cpu")
    assert prepared.PreparedModel(key).recipe() is not None  # prepared: a later process takes the light path
    _forget_process_state(monkeypatch)
    assert Embedder(str(model), device="cpu", precision="fp32")._light_encoder("fp32") is not None

    # The same folder now holds a model with another query prompt (the weights are the same).
    config = model / "config_sentence_transformers.json"
    settings = json.loads(config.read_text())
    settings["prompts"]["query"] = "search_query: "
    config.write_text(json.dumps(settings))
    assert prepared.machine_key(first.name, str(model), "cpu") != key
    monkeypatch.setattr(emb, "_models", {})  # a new process would load the changed folder
    _forget_process_state(monkeypatch)
    changed = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    assert changed._light_encoder("fp32") is None  # nothing prepared for the new files yet
    got = changed.encode_queries(["budget lodging"])
    from sentence_transformers import SentenceTransformer

    truth = SentenceTransformer(str(model), device="cpu").encode_query(["budget lodging"], normalize_embeddings=True)
    assert changed.prompts["query"] == "search_query: "
    assert np.abs(got - truth).max() < 1e-4  # the new prompt, not the stale recipe's
    # ... and this run prepared the new files: the next process takes the light path with the new prompt.
    _forget_process_state(monkeypatch)
    again = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    assert again._light_encoder("fp32") is not None
    assert np.abs(again.encode_queries(["budget lodging"]) - got).max() <= light.TOLERANCE


def test_a_write_keeps_the_light_encoder_a_process_already_built(tiny_model_dir, tmp_path, machine, monkeypatch):
    """A server that answered queries before its first write keeps its light query encoder: the
    write encodes its documents on the light path too, without loading the model. Where the full
    encoder is loaded (a machine's first run), no light encoder is built beside it."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    _prepare(model)
    _forget_process_state(monkeypatch)
    server = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    before = server.encode_queries(QUERIES)
    built = server._light_encoder("fp32")
    assert built is not None and server._model is None
    server.encode_documents(["a document written by the server's writer"])
    assert server._model is None  # the documents took the light path too
    assert server._light_encoder("fp32") is built
    assert np.abs(server.encode_queries(QUERIES) - before).max() <= light.TOLERANCE

    monkeypatch.setattr(light, "_encoders", {})  # the full encoder loaded and no light one built
    assert server._openvino("fp32") is not None
    assert server._light_encoder("fp32") is None and server._light_encoder("fp32", "document") is None
    assert light._encoders == {}  # none is built beside it
    assert np.abs(server.encode_queries(QUERIES) - before).max() <= light.TOLERANCE


def test_an_indexing_process_on_a_prepared_machine_never_loads_the_model(
        tiny_model_dir, tmp_path, machine, monkeypatch):
    """The first run on a machine loads the model and records the light recipe, measured for
    queries and documents; a later indexing process encodes documents without the model, the
    same vectors within the tolerance."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    texts = [f"{p} ({i})" for i, p in enumerate(PASSAGES * 4)]  # several pieces, as the full path's workers take
    indexer = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    full = indexer.encode_documents(texts)
    assert indexer.engine == "openvino" and indexer._model is not None
    assert set(light.measured(indexer._prepared().recipe(), "document")) == {"fp32"}

    _forget_process_state(monkeypatch)
    later = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    got = later.encode_documents(texts)
    assert later._model is None  # documents came from what the first run prepared
    assert light.largest_distance(got, full) <= light.TOLERANCE
    assert [k[-1] for k, v in light._encoders.items() if v is not None] == ["document"]  # no query encoder compiled


def test_the_key_changes_with_library_versions_cpu_and_device(tiny_model_dir, monkeypatch):
    name = str(tiny_model_dir)
    key = prepared.machine_key(name, name, "cpu")
    assert key == prepared.machine_key(name, name, "cpu")
    assert key != prepared.machine_key(name, name, "cuda")
    monkeypatch.setattr(prepared, "library_versions", lambda: ("openvino=9999.0",))
    assert prepared.machine_key(name, name, "cpu") != key
    monkeypatch.undo()
    monkeypatch.setattr(prepared, "cpu_identity", lambda: "another cpu")
    assert prepared.machine_key(name, name, "cpu") != key
    assert prepared.machine_key("BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", "cpu") is None  # hub name


def test_a_missing_or_damaged_preparation_falls_back_to_the_full_path(tiny_model_dir, tmp_path, machine, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    first = _prepare(model)
    reference = first.encode_queries(["budget lodging", "a second query"])
    recipe = prepared.PreparedModel(prepared.machine_key(first.name, str(model), "cpu")).recipe()
    assert recipe is not None

    Path(recipe["ir"]).rename(Path(recipe["ir"]).with_suffix(".moved"))  # the converted model is gone
    _forget_process_state(monkeypatch)
    e = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    assert e._light_encoder("fp32") is None
    np.testing.assert_allclose(e.encode_queries(["budget lodging", "a second query"]), reference, atol=1e-5)

    for record in (machine / "prepared").glob("*/*.json"):
        record.write_text("{not json")
    _forget_process_state(monkeypatch)
    e = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    np.testing.assert_allclose(e.encode_queries(["budget lodging", "a second query"]), reference, atol=1e-5)


def test_a_model_the_light_path_cannot_reproduce_keeps_the_full_path(tiny_model_dir, tmp_path, machine):
    from sentence_transformers import SentenceTransformer

    from conftest import st_modules

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.append(st_modules().Dense(32, 16))  # a projection after pooling: not reproduced
    folder = tmp_path / "dense-model"
    model.save(str(folder))
    e = _prepare(folder)
    assert e.engine == "openvino"
    assert prepared.PreparedModel(prepared.machine_key(e.name, str(folder), "cpu")).recipe() is None
    assert e.encode_queries(["still encodes"]).shape == (1, 16)


HEAVY = ("torch", "sentence_transformers", "transformers")
PROBE = """
import json, sys
from semsearch.cli import app
code = None
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))}), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


def _cli(args: list[str], cache: Path) -> tuple[dict, str]:
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(cache), "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=600,
                            check=False)
    probe = json.loads(result.stderr.strip().splitlines()[-1])
    assert probe["code"] in (0, None), result.stderr
    return probe, result.stdout


def test_searching_an_indexed_collection_never_imports_torch(minilm_path, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"_id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(PASSAGES)))
    col, cache = tmp_path / "col", tmp_path / "machine-cache"
    probe, _ = _cli(["index", str(docs), "-c", str(col), "--no-progress"], cache)
    assert "torch" in probe["heavy"]  # the machine's first run is the full path (and prepares the light one)
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"_id": f"m{i}", "text": t[::-1]}) + "\n" for i, t in enumerate(PASSAGES)))
    probe, _ = _cli(["index", str(more), "-c", str(tmp_path / "other-col"), "--no-progress"], cache)
    assert probe["heavy"] == []  # a later indexing process encodes documents without them
    search = ["search", *QUERIES[:3], "-c", str(col), "--json", "-k", "5"]
    probe, out = _cli(search, cache)
    assert probe["heavy"] == []  # a fresh process: the query path imports none of them
    light_results = json.loads(out)
    # The same search where nothing was prepared (another machine): the full path, same hits.
    probe, out = _cli(search, tmp_path / "empty-cache")
    assert "torch" in probe["heavy"]
    full_results = json.loads(out)
    for got, want in zip(light_results, full_results):
        assert [h["id"] for h in got["hits"]] == [h["id"] for h in want["hits"]]
        assert np.allclose([h["score"] for h in got["hits"]], [h["score"] for h in want["hits"]], atol=1e-5)


def test_asking_an_indexed_collection_never_imports_torch(minilm_path, tmp_path):
    # The offline answer scores its sentences with the query path a search uses: a cold `ask` loads no
    # document encoder (it used to: seconds of a cold ask went to loading torch and the model).
    docs = tmp_path / "docs.jsonl"
    # Two sentences a passage: its sentences are texts no one encoded at indexing time (no cache holds them).
    texts = [f"{t} It is one of {len(PASSAGES)} example passages." for t in PASSAGES]
    docs.write_text("".join(json.dumps({"_id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    col, cache = tmp_path / "col", tmp_path / "machine-cache"
    _cli(["index", str(docs), "-c", str(col), "--no-progress"], cache)
    probe, out = _cli(["ask", "how long should I boil an egg?", "-c", str(col), "--json"], cache)
    answer = json.loads(out)
    assert answer["answered"] and answer["citations"][0]["id"] == "p5"
    assert probe["heavy"] == []


def test_importing_semsearch_and_its_cli_loads_no_model_library():
    libraries = HEAVY + ("openvino", "tokenizers")
    code = ("import sys, semsearch, semsearch.cli; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({libraries!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC},
                         timeout=120, check=True).stdout
    assert out.strip() == "[]"


def test_a_recipe_pointing_at_a_missing_model_file_is_prepared_again(tiny_model_dir, tmp_path, machine, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    first = _prepare(model)
    record = prepared.PreparedModel(prepared.machine_key(first.name, str(model), "cpu"))
    recipe = record.recipe()
    record.save_recipe({**recipe, "ir": str(tmp_path / "moved-away" / "model.xml")})  # e.g. a cache folder moved
    _forget_process_state(monkeypatch)
    e = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    assert e._light_encoder("fp32") is None  # cannot compile a missing file: the full path answers
    e.encode_documents(["a full-path run loads the model"])  # and prepares the recipe again
    assert record.recipe()["ir"] == recipe["ir"]
    _forget_process_state(monkeypatch)
    assert Embedder(str(model), device="cpu", precision="fp32")._light_encoder("fp32") is not None


def test_the_runtime_is_imported_without_the_converter_which_other_code_still_finds():
    """The query path imports OpenVINO's runtime alone (its converter pulls telemetry, urllib and
    the email parser: 0.14 s of a cold search); `openvino.convert_model` still works for anyone
    else in the process, loading the converter on first use."""
    code = ("import sys; from semsearch.embedding.ov_import import runtime; ov = runtime(); "
            "before = 'openvino.tools.ovc' in sys.modules or 'convert_model' in vars(ov); "
            "import openvino; f = openvino.convert_model; "
            "print(before, callable(f), f is vars(openvino)['convert_model'], 'openvino.tools.ovc' in sys.modules, "
            "hasattr(openvino, 'no_such_name'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, timeout=120, check=True).stdout
    assert out.split() == ["False", "True", "True", "True", "False"]


def _light_path_off_by(monkeypatch, distance: float) -> None:
    """Make this process's light encoder differ from the full path by about ``distance`` (unit vectors),
    as a model whose light path reproduces it only approximately (issue 27: a fine-tuned model, 0.00062)."""
    pool = light.LightEncoder._pool

    def shifted(self, tokens, mask):
        pooled = pool(self, tokens, mask)
        direction = np.zeros(pooled.shape[1], dtype=np.float32)
        direction[::2] = 1.0  # a fixed direction, never parallel to a pooled vector of this model
        direction /= np.linalg.norm(direction)
        return pooled + np.float32(distance) * np.linalg.norm(pooled, axis=1, keepdims=True) * direction

    monkeypatch.setattr(light.LightEncoder, "_pool", shifted)


def test_a_model_whose_light_path_is_close_enough_takes_it_and_a_cold_search_never_imports_torch(
        tiny_model_dir, tmp_path, machine, monkeypatch):
    """Issue 27: a fine-tuned model (any model folder but the default) whose light query vectors
    were 0.00062 from the full path's was refused the light path, so every search loaded torch.
    Within the tolerance (chosen from what rankings need) it takes the light path, the decision
    is recorded for the model, and info shows it."""
    model = tmp_path / "fine-tuned"
    shutil.copytree(tiny_model_dir, model)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"_id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(PASSAGES)))
    col = tmp_path / "col"
    with monkeypatch.context() as patched:
        _light_path_off_by(patched, light.TOLERANCE / 3)
        with Collection(col, model=str(model)) as c:  # the machine's first run: measures the light path
            c.index_files([docs])
            path = c.info()["query_path"]
    assert path["path"] == "light" and light.TOLERANCE / 10 < path["distance"] <= light.TOLERANCE
    search = ["search", *QUERIES[:3], "-c", str(col), "--json", "-k", "5"]
    probe, out = _cli(search, machine)
    assert probe["heavy"] == []  # a cold search of the fine-tuned model's collection loads no torch
    probe, full_out = _cli(search, tmp_path / "empty-cache")  # where nothing was prepared: the full path
    assert "torch" in probe["heavy"]
    for got, want in zip(json.loads(out), json.loads(full_out)):
        assert {h["id"] for h in got["hits"]} == {h["id"] for h in want["hits"]}
    _, info = _cli(["info", "-c", str(col), "--json"], machine)
    assert json.loads(info)["query_path"]["path"] == "light"


def test_a_model_whose_light_path_is_too_far_keeps_the_full_path_and_says_why_without_measuring_again(
        tiny_model_dir, tmp_path, machine, monkeypatch):
    model = tmp_path / "far"
    shutil.copytree(tiny_model_dir, model)
    with monkeypatch.context() as patched:
        _light_path_off_by(patched, light.TOLERANCE * 3)
        _prepare(model)
    _forget_process_state(monkeypatch)
    measuring = []
    monkeypatch.setattr(light, "_check_queries", lambda *a: measuring.append(a) or 0.0)
    later = Embedder(str(model), device="cpu", precision="fp32", query_cache=0)
    path = later.query_path()
    assert path["path"] == "full" and path["distance"] > light.TOLERANCE and "differs" in path["reason"]
    assert later._light_encoder("fp32") is None
    later.encode_queries(["the full path answers"])  # loads the model ...
    assert later._model is not None and measuring == []  # ... and does not measure the light path again
