"""One behavioural suite, run against every backend: what a user relies on, whatever stores it.

The ``open_collection`` fixture is parametrized over ``local`` (SQLite + FAISS in a folder)
and ``milvus`` (Milvus Lite, started in this process on 127.0.0.1 by the ``milvus_uri``
fixture and stopped at the end of the session). The test bodies never look at the backend.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from semsearch import (
    Collection,
    CollectionBusyError,
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    InvalidInputError,
    ModelMismatchError,
    NotACollectionError,
    SemsearchError,
)
from test_collection import SENTENCES  # the same seven topics as the local tests

IDS = [f"s{i}" for i in range(len(SENTENCES))]
METAS = [
    {"topic": "travel", "year": 2021, "tags": ["sea", "cheap"]},
    {"topic": "finance", "year": 2024},
    {"topic": "food", "year": 2019, "tags": ["baking"]},
    {"topic": "sport", "year": 2024, "tags": ["football"]},
    {"topic": "tech", "year": 2023},
    {"topic": "science", "year": "2020"},
    {"topic": "culture", "draft": True},
]

_names = itertools.count()


@pytest.fixture(scope="module", params=["local", "milvus"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def opener(backend, request, tmp_path_factory, minilm_path):
    """``make(name, **kwargs)`` opens (creating) a collection on this module's backend; all removed at the end."""
    opened = []
    folder = tmp_path_factory.mktemp("collections")
    where = {"backend": "milvus", "uri": request.getfixturevalue("milvus_uri")} if backend == "milvus" else {}

    def make(name, **kwargs):
        # The same constructor for both: Collection(..., backend="milvus", uri=...) returns the Milvus one.
        col = Collection(folder / name, **where, **kwargs)
        opened.append(col)
        return col

    yield make
    for col in opened:
        col.close()
    if backend == "milvus":
        from pymilvus import MilvusClient

        client = MilvusClient(where["uri"])
        for name in client.list_collections():
            client.drop_collection(name)
        client.close()


@pytest.fixture()
def open_collection(opener):
    """``open_collection(**kwargs)``: this test's own collection (same name on every call in the test)."""
    name = f"t{next(_names)}"
    return lambda **kwargs: opener(name, **kwargs)


def _fill(col):
    col.add(SENTENCES, ids=IDS, metadatas=METAS, sources=[f"notes/{i}.txt" for i in IDS])
    return col


@pytest.fixture()
def filled(open_collection):
    """A collection of SENTENCES that the test may change."""
    return _fill(open_collection())


@pytest.fixture(scope="module")
def shared(opener):
    """A collection of SENTENCES that tests only read."""
    return _fill(opener("shared"))


def test_meaning_beats_keywords(shared):
    hits = shared.search("affordable accommodation near the beach", k=3, mode="dense")
    assert hits[0].id == "s0" and hits[0].text == SENTENCES[0]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score > hits[1].score + 0.1
    assert shared.search("affordable accommodation near the beach", k=3)[0].id == "s0"  # default (hybrid) too


def test_batch_search_matches_single(shared):
    queries = ["baking a cake", "football match", "monetary policy"]
    batch = shared.search(queries, k=2, mode="dense")
    assert [hits[0].id for hits in batch] == ["s2", "s3", "s1"]
    for q, hits in zip(queries, batch):
        single = shared.search(q, k=2, mode="dense")
        assert [h.id for h in hits] == [h.id for h in single]
        assert np.allclose([h.score for h in hits], [h.score for h in single], atol=1e-5)


def test_hits_carry_metadata_source_and_offsets(shared):
    hit = shared.search("interest rates and central banks", k=1)[0]
    assert (hit.id, hit.metadata, hit.source) == ("s1", METAS[1], "notes/s1.txt")
    assert (hit.chunk, hit.start, hit.end) == (0, 0, len(SENTENCES[1]))


def test_get_count_delete_upsert(filled):
    assert filled.count() == len(SENTENCES)
    assert [d.id for d in filled.get(["s3", "missing", "s0"])] == ["s3", "s0"]
    assert filled.get("s0")[0].metadata == METAS[0]
    assert filled.delete(["s1", "nope"]) == 1
    assert filled.count() == len(SENTENCES) - 1
    assert all(h.id != "s1" for h in filled.search("interest rates", k=10))
    filled.upsert(["A volcano erupted and lava reached the village."], ids=["s0"], metadatas=[{"topic": "geo"}])
    assert filled.count() == len(SENTENCES) - 1
    assert filled.get("s0")[0].metadata == {"topic": "geo"}
    hits = filled.search("volcanic eruption", k=3)
    assert hits[0].id == "s0" and [h.id for h in hits].count("s0") == 1
    assert filled.delete(where={"year": 2024}) == 1  # s1 went already; s3 is left
    assert filled.delete(["s3"], where={"topic": "sport"}) == 0
    assert filled.count() == len(SENTENCES) - 2


def test_where_filters_search_and_get(shared):
    hits = shared.search("something to read", k=10, where={"year": {"$gte": 2023}})
    assert {h.id for h in hits} == {"s1", "s3", "s4"}  # "2020" is text: never compared with numbers
    assert {h.id for h in shared.search("sea", k=10, where={"tags": "sea"})} == {"s0"}  # any element of a list
    ne = {h.id for h in shared.search("anything", k=10, where={"topic": {"$ne": "food"}})}
    assert ne == set(IDS) - {"s2"}
    either = {"$or": [{"draft": True}, {"topic": {"$in": ["food", "tech"]}}]}
    assert [d.id for d in shared.get(where=either)] == ["s2", "s4", "s6"]
    assert shared.search("anything", k=5, where={"topic": "nothing-has-this"}) == []


def test_where_document_contains(shared):
    assert [d.id for d in shared.get(where_document={"$contains": "sugar"})] == ["s2", "s5"]
    hits = shared.search("cooking", k=10, where_document={"$not_contains": "sugar"})
    assert "s2" not in {h.id for h in hits} and len(hits) == len(SENTENCES) - 2
    assert shared.get(where_document={"$contains": "100%_off"}) == []  # wildcard characters are literal


def test_lexical_and_hybrid_modes_find_exact_words(shared):
    lexical = shared.search("manuscripts", k=3, mode="lexical")
    assert lexical[0].id == "s6" and "lexical" in lexical[0].scores
    hybrid = shared.search("photosynthesis", k=3, mode="hybrid")
    assert hybrid[0].id == "s5" and "hybrid" in hybrid[0].scores
    assert shared.search("zzzunknownword", k=3, mode="lexical") == []


def test_precomputed_embeddings_and_vector_queries(open_collection):
    col = open_collection()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 384)).astype(np.float32)
    col.add([f"doc {i}" for i in range(20)], ids=[f"d{i}" for i in range(20)], embeddings=vectors)
    hits = col.search(vectors[7], k=3)
    assert hits[0].id == "d7" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    batch = col.search(vectors[[3, 11]], k=1)
    assert [b[0].id for b in batch] == ["d3", "d11"]
    with pytest.raises(DimensionMismatchError, match="dimension 5"):
        col.add(["x"], ids=["bad"], embeddings=np.ones((1, 5)))


def test_long_documents_are_chunked_and_found_once(open_collection):
    col = open_collection(chunk_size=32, chunk_overlap=4)
    filler = " ".join(f"Paragraph {i} talks about gardening, soil and seasonal planting." for i in range(12))
    text = filler + " The last part explains how to repair a punctured bicycle tyre with a patch kit."
    col.add([text, "A short note on baking bread."], ids=["long", "short"])
    hits = col.search("fixing a flat bike tire", k=2, mode="dense")
    assert hits[0].id == "long" and [h.id for h in hits].count("long") == 1
    assert hits[0].chunk > 0 and "bicycle" in hits[0].text and text[hits[0].start : hits[0].end] == hits[0].text
    assert col.get("long")[0].text == text


BAD_CALLS = [
    (lambda c: c.add(["  "], ids=["e"]), "empty or whitespace"),
    (lambda c: c.add(["a", "b"], ids=["x"]), "2 documents but 1 ids"),
    (lambda c: c.add(["a"], ids=["x"], metadatas=[{"k": object()}]), "not JSON-serialisable"),
    (lambda c: c.add(["a"], ids=["s1"]), "already exist.*upsert"),
    (lambda c: c.search("q", k=0), "k must be"),
    (lambda c: c.search("", k=1), "query 0 is empty"),
    (lambda c: c.search("q", k=1, where={"year": {"$gt": "2020"}}), "numbers only"),
    (lambda c: c.search("q", k=1, mode="fuzzy"), "mode must be one of .*'fuzzy'"),
    (lambda c: c.search(np.ones(7, dtype=np.float32), k=1), "dimension 7"),
    (lambda c: c.delete(), "needs ids or a where"),
    (lambda c: c.upsert(["a"], ids=None), "upsert needs ids"),
]


def test_bad_input_is_a_clear_error_that_changes_nothing(shared):
    for call, message in BAD_CALLS:
        with pytest.raises(InvalidInputError, match=message):
            call(shared)
    assert shared.count() == len(SENTENCES) and shared.get("x") == [] and shared.get("e") == []


def test_reopen_keeps_data_and_checks_the_model(open_collection):
    col = open_collection()
    col.add(SENTENCES[:2], ids=IDS[:2])
    col.close()
    again = open_collection(create=False)
    assert again.count() == 2 and again.search("beach hotel", k=1, mode="dense")[0].id == "s0"
    with pytest.raises(ModelMismatchError, match="was built with model"):
        open_collection(model="sentence-transformers/all-mpnet-base-v2")


def test_index_files_skips_unchanged_and_replaces_changed(open_collection, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Whales and dolphins are marine mammals that breathe air.")
    (folder / "b.md").write_text("# Trains\n\nHigh-speed rail links the two capitals in three hours.")
    col = open_collection()
    first = col.index_files([folder])
    assert (first.files_added, first.documents) == (2, 2)
    assert col.search("sea creatures", k=1, mode="dense")[0].source.endswith("a.txt")
    assert col.index_files([folder]).files_unchanged == 2
    (folder / "a.txt").write_text("Volcanoes erupt molten rock called lava.")
    (folder / "b.md").unlink()
    second = col.index_files([folder])
    assert (second.files_replaced, second.files_unchanged, second.files_removed) == (1, 0, 1)
    assert col.count() == 1
    assert "Volcanoes" in col.search("eruption", k=1)[0].text


def test_threshold_and_mmr(shared):
    hits = shared.search("affordable accommodation near the beach", k=5, mode="dense", threshold=0.3)
    assert [h.id for h in hits] == ["s0"]
    diverse = shared.search("sugar", k=3, mode="dense", mmr=0.3)
    assert len(diverse) == 3 and len({h.id for h in diverse}) == 3 and "mmr" in diverse[0].scores


def test_the_backend_is_chosen_by_name_and_mixups_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="backend 'sqlite' is not one of local, milvus"):
        Collection(tmp_path / "x", backend="sqlite")
    with pytest.raises(InvalidInputError, match="uri and token are for backend='milvus'"):
        Collection(tmp_path / "x", uri="./milvus.db")
    with pytest.raises(InvalidInputError, match="are for backend='milvus'"):
        Collection(tmp_path / "x", shards=2)
    assert not (tmp_path / "x").exists()


# -- the same fault, the same error class and HTTP status, on every backend ---------------------
def _raises_exactly(error_class, call):
    with pytest.raises(SemsearchError) as info:
        call()
    assert type(info.value) is error_class, (
        f"{type(info.value).__name__} raised where {error_class.__name__} is the contract")
    return info.value


FAULTS = [
    # (fault, Python call, exact error class, HTTP request, HTTP status, error type)
    ("duplicate id", lambda c: c.add(["again"], ids=["s1"]), DuplicateIdError,
     ("/add", {"documents": ["again"], "ids": ["s1"]}), 409, "duplicate_id"),
    ("bad filter", lambda c: c.search("q", where={"year": {"$near": 3}}), FilterError,
     ("/search", {"query": "q", "where": {"year": {"$near": 3}}}), 422, "invalid_input"),
    ("filter on text with a number", lambda c: c.get(where={"year": {"$gt": "2020"}}), FilterError,
     ("/get", {"where": {"year": {"$gt": "2020"}}}), 422, "invalid_input"),
    ("wrong dimension", lambda c: c.add(["x"], ids=["new"], embeddings=np.ones((1, 5))), DimensionMismatchError,
     ("/add", {"documents": ["x"], "ids": ["new"], "embeddings": [[1.0] * 5]}), 422, "invalid_input"),
    ("empty text", lambda c: c.add(["  "], ids=["e"]), InvalidInputError,
     ("/add", {"documents": ["  "], "ids": ["e"]}), 422, "invalid_input"),
    ("delete without ids or filter", lambda c: c.delete(), InvalidInputError,
     ("/delete", {}), 422, "validation_error"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_is_the_same_error_class_and_http_status(filled, fault):
    _, call, error_class, (path, body), status, kind = fault
    _raises_exactly(error_class, lambda: call(filled))
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch.server import create_app

    with TestClient(create_app({"docs": filled}, warm_up=False)) as client:
        r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == kind
    assert filled.count() == len(SENTENCES) and filled.get(["new", "e"]) == []  # nothing changed


def test_unknown_ids_are_left_out_not_errors(filled):
    assert filled.get(["nope", "s2", "nada"])[0].id == "s2" and len(filled.get(["nope"])) == 0
    assert filled.delete(["nope"]) == 0 and filled.count() == len(SENTENCES)
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch.server import create_app

    with TestClient(create_app({"docs": filled}, warm_up=False)) as client:
        assert client.post("/get", json={"ids": ["nope"]}).json()["documents"] == []
        assert client.post("/delete", json={"ids": ["nope"]}).json()["deleted"] == 0


def test_other_model_and_missing_collection_are_exact_errors(open_collection, opener):
    col = open_collection()
    col.add(SENTENCES[:1], ids=IDS[:1])
    _raises_exactly(ModelMismatchError, lambda: open_collection(model="sentence-transformers/all-mpnet-base-v2"))
    _raises_exactly(NotACollectionError, lambda: opener("never_created", create=False))


def test_a_locked_collection_is_busy_on_the_local_backend(backend, open_collection):
    """Milvus serialises writes itself (no lock to hold); locally a second writer waits, then gives up."""
    if backend != "local":
        pytest.skip("Milvus has no collection write lock: writes from several clients interleave by design")
    col = open_collection(lock_timeout=0.2)
    col.add(SENTENCES[:1], ids=IDS[:1])
    holder = Collection(col.path, lock_timeout=0.2)
    holder.engine.lock.acquire()
    try:
        _raises_exactly(CollectionBusyError, lambda: col.add(["blocked"], ids=["b"]))
        pytest.importorskip("fastapi")
        from fastapi.testclient import TestClient

        from semsearch.server import create_app

        with TestClient(create_app({"docs": col}, warm_up=False)) as client:
            r = client.post("/add", json={"documents": ["blocked"], "ids": ["b"]})
        assert r.status_code == 503 and r.json()["error"]["type"] == "collection_busy"
    finally:
        holder.engine.lock.release()
        holder.close()
    assert col.get("b") == []


def test_reindexing_a_folder_never_prunes_its_neighbours(open_collection, tmp_path):
    """Issue 18, defect 1: pruning matched "files under this folder" with SQL LIKE (case-blind, with
    _ and % as wildcards), so re-indexing case/notes removed case/Notes/x.txt."""
    root = tmp_path / "case"
    names = ["Notes", "notes", "a_b", "a%b", "axb", "docs", "docs2"]
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "x.txt").write_text(f"A note kept in the folder called {name}, about tides and harbours.")
    col = open_collection()
    assert col.index_files([root / n for n in names]).files_added == len(names)
    for name in ["notes", "a_b", "a%b", "docs"]:
        report = col.index_files([root / name])
        assert (report.files_removed, report.files_unchanged) == (0, 1), name
    assert sorted(d.source for d in col.get()) == sorted(str((root / n / "x.txt").resolve()) for n in names)
    (root / "notes" / "x.txt").unlink()  # pruning still works where it should
    assert col.index_files([root / "notes"]).files_removed == 1
    assert len(col.get()) == len(names) - 1 and col.get(str((root / "Notes" / "x.txt").resolve()))


def test_an_interrupted_file_resumes_without_encoding_again(open_collection, tmp_path, monkeypatch):
    """A large file is committed in batches: after a crash part-way, the same call finishes the job,
    encoding only what was not committed, and ends as an uninterrupted run would."""
    import json

    data = tmp_path / "big.jsonl"
    lines = [{"id": f"r{i}", "text": f"Record {i}: a note about {w} and the weather in spring.", "n": i}
             for i, w in enumerate(["tides", "bridges", "bread", "rivers", "owls", "maps"] * 5)]
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    col = open_collection()
    encoded: list[int] = []
    real = col.embedder.encode_documents

    def crash_after_two_batches(texts, **kw):
        if len(encoded) == 2:
            raise KeyboardInterrupt("killed")
        encoded.append(len(texts))
        return real(texts, **kw)

    monkeypatch.setattr(col.embedder, "encode_documents", crash_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        col.index_files([data], batch_chunks=8)
    assert col.count() == 16 and col.info()["partial_files"] == 1  # two committed batches are searchable
    encoded.clear()
    monkeypatch.setattr(col.embedder, "encode_documents",
                        lambda texts, **kw: (encoded.append(len(texts)), real(texts, **kw))[1])
    report = col.index_files([data], batch_chunks=8)
    assert sum(encoded) == 30 - 16 and report.documents_unchanged == 16 and report.files_resumed == 1
    assert col.count() == 30 and col.info()["partial_files"] == 0
    assert col.index_files([data]).files_unchanged == 1
    assert sorted(d.id for d in col.get()) == sorted(x["id"] for x in lines)
    assert col.get("r7")[0].metadata == {"n": 7}


def test_similar_duplicates_and_topics_through_the_facade(filled):
    hits = filled.similar("s2", k=3)
    assert len(hits) == 3 and "s2" not in [h.id for h in hits] and all(0 <= h.score <= 1 for h in hits)
    assert [h.id for h in filled.similar("s2", k=3, where={"topic": "science"})] == ["s5"]
    filled.add([SENTENCES[1].upper()], ids=["s1-copy"])  # a near-duplicate (case only)
    groups = filled.duplicates(threshold=0.9)
    assert [sorted(g.ids) for g in groups] == [["s1", "s1-copy"]]
    topics = filled.topics(n=2, assign="topic_id")
    assert sorted(i for t in topics for i in t.ids) == sorted(IDS + ["s1-copy"])
    first = topics[0]
    assert {d.id for d in filled.get(where={"topic_id": first.id})} == set(first.ids)
    with pytest.raises(SemsearchError) as info:
        filled.similar("missing")
    assert type(info.value).__name__ == "UnknownDocumentError"


def test_similar_duplicates_and_topics_of_a_filter_matching_nothing_are_empty(filled):
    assert filled.duplicates(where={"topic": "nothing-has-this"}) == []
    assert filled.topics(where={"topic": "nothing-has-this"}) == []
    assert filled.similar("s0", where={"topic": "nothing-has-this"}) == []
