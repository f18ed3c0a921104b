"""The Collection API end to end, with the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from semsearch import (
    Collection,
    DimensionMismatchError,
    InvalidInputError,
    ModelMismatchError,
    NotACollectionError,
)

SENTENCES = [
    "Budget-friendly lodging by the coast, a short walk from the sand.",
    "The central bank raised interest rates by a quarter point.",
    "Preheat the oven and whisk the eggs with sugar for the sponge cake.",
    "The striker scored twice in the second half of the final.",
    "Install the package with pip and import it in your script.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "The museum's new wing displays medieval manuscripts.",
]


def test_meaning_beats_keywords(collection):
    collection.add(SENTENCES, ids=[f"s{i}" for i in range(len(SENTENCES))])
    hits = collection.search("affordable accommodation near the beach", k=3)
    assert hits[0].id == "s0"
    assert hits[0].text == SENTENCES[0]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score > hits[1].score + 0.1


def test_batch_search_is_one_call_and_matches_single(collection):
    collection.add(SENTENCES)
    queries = ["baking a cake", "football match", "monetary policy"]
    batch = collection.search(queries, k=2)
    assert len(batch) == 3
    for q, hits in zip(queries, batch):
        single = collection.search(q, k=2)
        assert [h.id for h in hits] == [h.id for h in single]
        assert np.allclose([h.score for h in hits], [h.score for h in single], atol=1e-5)


def test_hits_carry_metadata_and_source(collection):
    collection.add(["a note about whales and dolphins"], ids=["n1"], metadatas=[{"topic": "sea", "year": 2024}],
                   sources=["notes/sea.txt"])
    hit = collection.search("marine mammals", k=1)[0]
    assert (hit.id, hit.metadata, hit.source) == ("n1", {"topic": "sea", "year": 2024}, "notes/sea.txt")
    assert json.loads(json.dumps(hit.to_dict()))["id"] == "n1"


def test_generated_ids_are_unique_strings(collection):
    ids = collection.add(["first text", "second text"])
    assert len(set(ids)) == 2 and all(isinstance(i, str) and i for i in ids)
    assert [d.text for d in collection.get(ids)] == ["first text", "second text"]


def test_get_count_delete_upsert(collection):
    collection.add(["alpha text", "beta text", "gamma text"], ids=["a", "b", "c"], metadatas=[{"n": 1}, None, {"n": 3}])
    assert collection.count() == 3
    assert [d.id for d in collection.get(["c", "missing", "a"])] == ["c", "a"]
    assert collection.get("a")[0].metadata == {"n": 1}
    assert collection.delete(["b", "nope"]) == 1
    assert collection.count() == 2
    assert all(h.id != "b" for h in collection.search("beta", k=5))
    collection.upsert(["a completely different sentence about volcanoes"], ids=["a"], metadatas=[{"n": 9}])
    assert collection.count() == 2
    assert collection.get("a")[0].metadata == {"n": 9}
    assert collection.search("volcanic eruption", k=1)[0].id == "a"


def test_add_existing_id_is_rejected_and_changes_nothing(collection):
    collection.add(["one"], ids=["x"])
    with pytest.raises(InvalidInputError, match="already exist.*upsert"):
        collection.add(["two", "three"], ids=["y", "x"])
    assert collection.count() == 1
    assert collection.get("y") == []


@pytest.mark.parametrize("bad", ["", "   \n\t "])
def test_empty_document_is_rejected(collection, bad):
    collection.add(["kept"], ids=["k"])
    with pytest.raises(InvalidInputError, match="empty or whitespace"):
        collection.add(["fine", bad], ids=["f", "e"])
    assert collection.count() == 1


def test_input_shape_errors(collection):
    with pytest.raises(InvalidInputError, match="2 documents but 1 ids"):
        collection.add(["a", "b"], ids=["1"])
    with pytest.raises(InvalidInputError, match="given twice"):
        collection.add(["a", "b"], ids=["1", "1"])
    with pytest.raises(InvalidInputError, match="metadata"):
        collection.add(["a"], metadatas=[{"bad": object()}])
    assert collection.count() == 0


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_bad_k(collection, k):
    collection.add(["something"])
    with pytest.raises(InvalidInputError, match="k must be"):
        collection.search("query", k=k)


def test_k_larger_than_collection_returns_everything(collection):
    collection.add(["one thing", "another thing"])
    assert len(collection.search("thing", k=50)) == 2


def test_empty_collection_and_empty_query(collection):
    assert collection.search("anything", k=3) == []
    with pytest.raises(InvalidInputError, match="empty"):
        collection.search("  ", k=3)
    with pytest.raises(InvalidInputError, match="no queries"):
        collection.search([], k=3)


def test_precomputed_embeddings(collection):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 384)).astype(np.float32)
    collection.add(["v0", "v1", "v2"], ids=["v0", "v1", "v2"], embeddings=vectors)
    hits = collection.search(vectors[1] * 3.0, k=1)  # any scale: vectors are normalised
    assert hits[0].id == "v1" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(DimensionMismatchError, match=r"dimension 128.*dimension 384"):
        collection.add(["w"], embeddings=rng.normal(size=(1, 128)))
    with pytest.raises(DimensionMismatchError, match="128"):
        collection.search(rng.normal(size=128).astype(np.float32))
    assert collection.count() == 3


def test_long_document_is_chunked_and_found_by_its_middle(tmp_path, minilm_path):
    filler = " ".join(f"Sentence number {i} talks about gardening and tomatoes." for i in range(60))
    needle = "The lighthouse keeper repaired the foghorn during the storm."
    text = filler + " " + needle + " " + filler
    with Collection(tmp_path / "c", chunk_size=64, chunk_overlap=8) as col:
        col.add([text, "a short note on cooking pasta"], ids=["long", "short"])
        assert col.info()["chunks"] > 5
        hits = col.search("foghorn repair in a storm", k=2)
        assert hits[0].id == "long"
        assert needle in hits[0].text
        assert text[hits[0].start : hits[0].end] == hits[0].text
        assert len({h.id for h in hits}) == len(hits)  # one hit per document


def test_overlong_query_is_truncated_with_one_warning(collection):
    collection.add(["short text"])
    long_query = "word " * 600
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collection.search(long_query, k=1)
        collection.search(long_query, k=1)
    relevant = [w for w in caught if "tokens" in str(w.message)]
    assert len(relevant) == 1
    assert "ignored" in str(relevant[0].message)


def test_manifest_records_how_it_was_built(collection):
    m = collection.manifest
    assert m["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert m["dimension"] == 384 and m["normalized"] is True
    assert m["index"] == "auto" and m["chunk_size"] == 254 and m["format_version"] == 3
    assert set(m["prompts"]) >= {"query", "document"}
    info = collection.info()
    assert info["model"] == m["model"] and info["size_bytes"] == 0  # created by its first write
    collection.add(["a first document"])
    assert collection.info()["size_bytes"] > 0 and collection.manifest == m


def test_reopen_with_another_model_is_a_clear_error(tmp_path, minilm_path, tiny_model_dir):
    with Collection(tmp_path / "c") as col:
        col.add(["a document"])
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2.*Open it without a model"):
        Collection(tmp_path / "c", model=str(tiny_model_dir))
    # Same model under another spelling is fine.
    Collection(tmp_path / "c", model="all-MiniLM-L6-v2").close()


def test_folders_that_are_not_collections(tmp_path, minilm_path):
    with pytest.raises(NotACollectionError, match="not a semsearch collection"):
        Collection(tmp_path / "nothing-here", create=False)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(NotACollectionError, match="non-empty folder"):
        Collection(other)
    assert [p.name for p in other.iterdir()] == ["cat.jpg"]
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "collection.sqlite3").write_bytes(b"this is not sqlite at all, just bytes" * 100)
    with pytest.raises(NotACollectionError):
        Collection(fake)


def test_any_model_by_path_with_prompts(tmp_path, tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    with Collection(tmp_path / "c", model=str(tiny_model_dir), precision="fp32") as col:
        assert col.dimension == 32
        assert col.manifest["prompts"] == {"query": "query: ", "document": "passage: "}
        col.add(["some passage"], ids=["p"])
        ref = SentenceTransformer(str(tiny_model_dir), device="cpu")
        q = col.embedder.encode_queries(["hello world"])[0]
        expected = ref.encode("query: hello world", normalize_embeddings=True)
        assert np.allclose(q, expected, atol=1e-5)
        d = col.embedder.encode_documents(["hello world"])[0]
        assert not np.allclose(q, d, atol=1e-3)  # prompts differ, so do the vectors


def test_index_is_rebuilt_when_missing_or_damaged(tmp_path, minilm_path):
    path = tmp_path / "c"
    with Collection(path) as col:
        col.add(SENTENCES, ids=[f"s{i}" for i in range(len(SENTENCES))])
    meta = json.loads((path / "vectors.json").read_text())
    assert meta["count"] == len(SENTENCES)
    (path / meta["file"]).write_bytes(b"garbage")
    with Collection(path) as col:
        assert col.search("cheap hotel by the sea", k=1)[0].id == "s0"
        report = col.verify()  # the damaged file is still on disk: verify names it and saves a good one
        assert not report["consistent"] and "7 bytes" in report["problems"][0]
        assert report["repaired"] and report["store"] == "ok"
        assert col.verify()["consistent"]
    (path / "vectors.json").unlink()
    for f in path.glob("vectors-*"):
        f.unlink()
    with Collection(path) as col:
        assert col.search("cheap hotel by the sea", k=1)[0].id == "s0"


def test_index_catches_up_from_the_change_log(tmp_path, minilm_path):
    path = tmp_path / "c"
    with Collection(path) as col:
        col.add(SENTENCES[:3], ids=["a", "b", "c"])
    saved = json.loads((path / "vectors.json").read_text())["seq"]
    # A second writer changes the store but never saves the index (as if killed).
    col = Collection(path)
    col.add(SENTENCES[3:], ids=["d", "e", "f", "g"])
    col.delete(["a"])
    col.engine.store.close()
    assert json.loads((path / "vectors.json").read_text())["seq"] == saved
    with Collection(path) as col2:
        assert col2.verify() == {"chunks": 6, "vectors": 6, "consistent": True, "problems": [], "repaired": [],
                                 "store": "ok"}
        assert {h.id for h in col2.search("anything", k=10)} == {"b", "c", "d", "e", "f", "g"}


def test_other_collection_object_sees_committed_writes(tmp_path, minilm_path):
    path = tmp_path / "c"
    writer = Collection(path)
    reader = Collection(path)
    writer.add(["first document about rivers"], ids=["r1"])
    assert [h.id for h in reader.search("rivers", k=5)] == ["r1"]
    writer.add(["second document about mountains"], ids=["m1"])
    writer.delete(["r1"])
    assert [h.id for h in reader.search("rivers", k=5)] == ["m1"]
    writer.close()
    reader.close()


def test_model_that_changed_dimension_is_refused(tmp_path, tiny_model_dir):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    with Collection(tmp_path / "c", model=str(model), precision="fp32") as col:
        col.add(["some text"], ids=["a"])
    # The folder the collection was built from now holds a model of another dimension.
    from sentence_transformers import SentenceTransformer

    from conftest import st_modules

    bigger = SentenceTransformer(str(tiny_model_dir), device="cpu")
    bigger.append(st_modules().Dense(32, 48))
    shutil.rmtree(model)
    bigger.save(str(model))
    from semsearch.embedding import models

    for key in [k for k in models._models if k[0] == str(model)]:
        del models._models[key]  # a new process would load the changed folder
    with Collection(tmp_path / "c") as col:
        with pytest.raises(ModelMismatchError, match="dimension 48.*dimension 32"):
            col.search("query", k=1)
        assert col.count() == 1


def test_saved_index_is_loaded_not_rebuilt(tmp_path, minilm_path, monkeypatch):
    path = tmp_path / "c"
    with Collection(path) as col:
        col.add(SENTENCES, ids=[f"s{i}" for i in range(len(SENTENCES))])
    from semsearch.index import build

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the saved index should have been loaded, not rebuilt")

    monkeypatch.setattr(build, "build_from_store", no_rebuild)
    with Collection(path) as col:
        assert col.search("cheap hotel by the sea", k=1)[0].id == "s0"
