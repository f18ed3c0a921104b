"""What only the Milvus backend has: filter translation, index specs, retries, migration.

Filters are checked against :func:`semsearch.filters.matches` (the reference evaluator) on
random metadata stored in Milvus Lite; migration is a local -> Milvus -> local round trip.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch import Collection, InvalidInputError
from semsearch.filters import matches, parse_where, parse_where_document

pytest.importorskip("pymilvus", reason="the Milvus backend needs pymilvus (pip install semsearch[milvus])")

from semsearch import MilvusCollection  # noqa: E402
from semsearch.backends.milvus import (  # noqa: E402
    MilvusError,
    collection_name,
    milvus_index,
    with_retries,
)
from semsearch.backends.milvus.filters import compile_filter  # noqa: E402

KEYS = ["a", "b", "tags", 'we"ird key']
STRINGS = ["x", "y", "1", "it's", 'say "hi"', "50%_off", "back\\slash", "line\nbreak", "ünï"]
scalars = st.one_of(
    st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0, 1e6]), st.booleans(), st.sampled_from(STRINGS)
)


def _condition():
    numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0]))
    return st.one_of(
        scalars,
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$ne"]), scalars),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(scalars, min_size=1, max_size=3)),
    )


leaves = st.builds(lambda k, c: {k: c}, st.sampled_from(KEYS), _condition())
wheres = st.recursive(
    leaves,
    lambda inner: st.builds(lambda op, parts: {op: parts}, st.sampled_from(["$and", "$or"]),
                            st.lists(inner, min_size=1, max_size=3)),
    max_leaves=5,
)


@pytest.fixture(scope="module")
def random_docs():
    import random

    rng = random.Random(7)
    docs = []
    for i in range(80):
        meta = _random_meta(rng)
        docs.append((f"d{i}", f"text {i} " + rng.choice(STRINGS), meta))
    return docs


def _random_meta(rng):
    def scalar():
        kind = rng.randrange(4)
        if kind == 0:
            return rng.randint(-3, 3)
        if kind == 1:
            return rng.choice([0.5, -1.5, 2.0, 1e6])
        if kind == 2:
            return rng.random() < 0.5
        return rng.choice(STRINGS)

    meta = {}
    for key in rng.sample(KEYS, rng.randint(0, 3)):
        r = rng.random()
        meta[key] = None if r < 0.1 else [scalar() for _ in range(rng.randint(0, 3))] if r < 0.4 else scalar()
    return meta


@pytest.fixture(scope="module")
def milvus_docs(milvus_uri, random_docs, minilm_path):
    col = MilvusCollection("filters_prop", uri=milvus_uri)
    rng = np.random.default_rng(0)
    ids, texts, metas = zip(*random_docs)
    col.add(list(texts), ids=list(ids), metadatas=list(metas), embeddings=rng.normal(size=(len(ids), 384)))
    yield col
    col.drop()
    col.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=wheres)
def test_where_in_milvus_matches_the_reference(milvus_docs, random_docs, where):
    node = parse_where(where)
    expected = [i for i, text, meta in random_docs if matches(node, meta, text)]
    assert [d.id for d in milvus_docs.get(where=where)] == expected
    hits = milvus_docs.search(np.ones(384, dtype=np.float32), k=len(random_docs), where=where)
    assert sorted(h.id for h in hits) == sorted(expected)


def test_reading_many_rows_pages_through_all_of_them(milvus_docs, random_docs, monkeypatch):
    monkeypatch.setattr(milvus_docs.engine, "query_batch", 7)  # 80 documents: a dozen pages
    assert [d.id for d in milvus_docs.get()] == [i for i, _, _ in random_docs]
    expected = [i for i, text, meta in random_docs if matches(parse_where({"a": {"$ne": 1}}), meta, text)]
    assert [d.id for d in milvus_docs.get(where={"a": {"$ne": 1}})] == expected


@pytest.mark.parametrize("needle", ["text 1", "50%_off", "%", "_", 'say "hi"', "line\nbreak", "back\\slash", "absent"])
def test_where_document_in_milvus_matches_the_reference(milvus_docs, random_docs, needle):
    for op in ("$contains", "$not_contains"):
        node = parse_where_document({op: needle})
        expected = [i for i, text, meta in random_docs if matches(node, meta, text)]
        assert [d.id for d in milvus_docs.get(where_document={op: needle})] == expected


def test_filter_expressions_contain_no_user_text():
    expr = compile_filter(parse_where({'k"; drop': {"$in": ['") or true or ("', 3, True]}, "n": {"$lt": 2.5}}))
    assert "drop" not in expr and "or true" not in expr
    assert 'facets["lo_6e"] < 2.5' in expr and "json_contains" in expr


def test_numbers_beyond_int64_are_a_clear_error():
    with pytest.raises(InvalidInputError, match="64-bit"):
        compile_filter(parse_where({"n": 2**70}))


@pytest.mark.parametrize(
    ("spec", "index_type", "params"),
    [
        ("Flat", "FLAT", {}),
        ("auto", "AUTOINDEX", {}),
        ("HNSW32", "HNSW", {"M": 32, "efConstruction": 200}),
        ("IVF1024,Flat", "IVF_FLAT", {"nlist": 1024}),
        ("IVF256,SQ8", "IVF_SQ8", {"nlist": 256}),
        ("SQ8", "IVF_SQ8", {"nlist": 128}),
        ("IVF1024,PQ48", "IVF_PQ", {"nlist": 1024, "m": 48, "nbits": 8}),
    ],
)
def test_index_specs_translate(spec, index_type, params):
    idx = milvus_index(spec)
    assert (idx.index_type, idx.params) == (index_type, params)


@pytest.mark.parametrize("spec", ["PQ16", "LSH", "IVF100,PQ8+16", "OPQ16,IVF64,PQ16", "HNSW"])
def test_untranslatable_index_specs_are_clear_errors(spec):
    with pytest.raises(InvalidInputError, match="no Milvus equivalent"):
        milvus_index(spec)


def test_collection_names_come_from_paths():
    assert collection_name("./data/my-index") == "my_index"
    with pytest.raises(InvalidInputError, match="cannot name a Milvus collection"):
        collection_name("9lives")


def test_transient_errors_are_retried_with_backoff_and_permanent_ones_are_not():
    from pymilvus.exceptions import MilvusException

    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise MilvusException(code=8, message="rate limit exceeded")
        return "done"

    assert with_retries(flaky, "write", sleep=waits.append) == "done"
    assert waits == [0.2, 0.4]

    def broken():
        raise MilvusException(code=1100, message="field vector: dimension mismatch")

    with pytest.raises(MilvusError, match="Milvus failed to write.*dimension mismatch"):
        with_retries(broken, "write", sleep=waits.append)
    assert waits == [0.2, 0.4]

    def busy():
        raise MilvusException(code=8, message="rate limit exceeded")

    with pytest.raises(MilvusError, match="rate limit"):
        with_retries(busy, "write", attempts=3, sleep=waits.append)
    assert waits == [0.2, 0.4, 0.2, 0.4]


@pytest.mark.parametrize("spec", ["HNSW16", "IVF8,Flat"])
def test_approximate_indexes_that_milvus_lite_builds(milvus_uri, minilm_path, spec):
    col = MilvusCollection(f"idx_{spec.replace(',', '_')}", uri=milvus_uri, index=spec)
    try:
        rng = np.random.default_rng(1)
        vectors = rng.normal(size=(400, 384)).astype(np.float32)
        col.add([f"v{i}" for i in range(400)], ids=[f"v{i}" for i in range(400)], embeddings=vectors)
        col.flush()  # seals the segment so Milvus Lite builds the index
        found = [col.search(vectors[i], k=1)[0].id for i in range(0, 400, 40)]
        assert found == [f"v{i}" for i in range(0, 400, 40)]
        assert col.info()["milvus_index"]["type"] == milvus_index(spec).index_type
        # reindex --index works on Milvus too: rebuilt from the stored vectors, nothing encoded
        col.close()
        col = Collection(f"idx_{spec.replace(',', '_')}", backend="milvus", uri=milvus_uri, index="Flat")
        assert col.manifest["index"] == "Flat" and col.info()["milvus_index"]["type"] == "FLAT"
        assert [col.search(vectors[i], k=1)[0].id for i in range(0, 400, 40)] == found
    finally:
        col.drop()
        col.close()


def test_migrate_local_to_milvus_and_back_is_lossless(tmp_path, milvus_uri, minilm_path):
    from semsearch.collection.migrate import migrate

    src = Collection(tmp_path / "src", chunk_size=32, chunk_overlap=4)
    long_text = " ".join(f"Sentence {i} about rivers, bridges and the towns along them." for i in range(10))
    src.add(["Budget hotel by the beach.", long_text, "Interest rates rose again."], ids=["a", "b", "c"],
            metadatas=[{"topic": "travel", "tags": ["sea"]}, {"n": 2}, None], sources=["x.txt", None, "y.txt"])
    src.engine.set_files({"/data/x.txt": "hash-x"})
    mid = MilvusCollection("migrated", uri=milvus_uri)
    back = Collection(tmp_path / "back")
    try:
        first = migrate(src, mid, batch=2)
        assert (first.documents, first.sources) == (3, 1) and first.chunks > 3
        second = migrate(mid, back, batch=2)
        assert (second.documents, second.chunks) == (first.documents, first.chunks)
        for col in (mid, back):
            assert [d.to_dict() for d in col.get()] == [d.to_dict() for d in src.get()]
        assert back.engine.files() == {"/data/x.txt": "hash-x"}
        original = [r for rows in src.engine.export(1000) for r in rows]
        copied = [r for rows in back.engine.export(1000) for r in rows]
        for o, c in zip(original, copied):
            assert [(x.position, x.start, x.end) for x in o.chunks] == [(x.position, x.start, x.end) for x in c.chunks]
            assert np.array_equal(np.stack([x.embedding for x in o.chunks]), np.stack([x.embedding for x in c.chunks]))
        q = "a cheap place to stay near the sea"
        assert [h.id for h in back.search(q, k=3, mode="dense")] == [h.id for h in src.search(q, k=3, mode="dense")]
        assert [h.id for h in mid.search(q, k=3, mode="dense")] == [h.id for h in src.search(q, k=3, mode="dense")]
    finally:
        mid.drop()
        for col in (src, mid, back):
            col.close()


def test_cli_migrate_then_search_and_delete_on_milvus(tmp_path, milvus_uri, tiny_model_dir):
    import json

    from typer.testing import CliRunner

    from semsearch.cli import app

    path = tmp_path / "col"
    with Collection(path, model=str(tiny_model_dir)) as col:
        rng = np.random.default_rng(0)
        col.add(["red apple pie", "green apple tart", "blue car engine"], ids=["a", "b", "c"],
                metadatas=[{"n": 1}, {"n": 2}, {"n": 3}], embeddings=rng.normal(size=(3, col.dimension)))
    runner = CliRunner()
    r = runner.invoke(app, ["migrate", str(path), "cli_copy", "--dst-uri", milvus_uri, "--index", "HNSW16"])
    assert r.exit_code == 0 and "copied 3 document(s)" in r.output and "counts verified" in r.output, r.output
    common = ["-c", "cli_copy", "--backend", "milvus", "--uri", milvus_uri]
    r = runner.invoke(app, ["search", "apple", *common, "--mode", "lexical", "--where", '{"n": {"$gte": 2}}', "--json"])
    assert r.exit_code == 0, r.output
    assert [h["id"] for h in json.loads(r.stdout)[0]["hits"]] == ["b"]
    r = runner.invoke(app, ["info", *common, "--json"])
    assert json.loads(r.stdout)["milvus_index"]["type"] == "HNSW" and json.loads(r.stdout)["documents"] == 3
    r = runner.invoke(app, ["delete", "a", *common])
    assert r.exit_code == 0 and "deleted 1" in r.output
    r = runner.invoke(app, ["migrate", "cli_copy", str(tmp_path / "back"), "--src-uri", milvus_uri])
    assert r.exit_code == 0 and "copied 2 document(s)" in r.output, r.output
    r = runner.invoke(app, ["search", "x", *common[:2], "--backend", "nope"])
    assert r.exit_code != 0 and "backend 'nope'" in r.output
    with MilvusCollection("cli_copy", uri=milvus_uri) as col:
        col.drop()


def test_http_api_serves_a_milvus_collection(milvus_uri, minilm_path):
    """The server takes an open Milvus collection like a local one: same endpoints, same answers."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch import Collection
    from semsearch.server.app import create_app

    col = Collection("served", backend="milvus", uri=milvus_uri)
    try:
        col.add(
            ["Budget-friendly lodging by the coast, five minutes from the sand.", "The central bank raised rates."],
            ids=["hotel-1", "news-1"], metadatas=[{"kind": "travel"}, {"kind": "news"}],
        )
        with TestClient(create_app([col], warm_up=False)) as client:
            assert [c["name"] for c in client.get("/collections").json()["collections"]] == ["served"]
            r = client.post("/search", json={"query": "affordable accommodation near the beach", "k": 2})
            assert r.status_code == 200, r.text
            assert r.json()["results"][0]["hits"][0]["id"] == "hotel-1"
            r = client.post("/search", json={"query": "interest rates", "k": 2, "where": {"kind": "travel"}})
            assert [h["id"] for h in r.json()["results"][0]["hits"]] == ["hotel-1"]
    finally:
        col.drop()
        col.close()


def test_a_dense_search_reads_its_hits_in_the_same_round_trip_and_never_serves_them_stale(milvus_uri, minilm_path):
    """The search returns the hits' fields itself (one round trip fewer than search + get); the
    remembered rows are forgotten at this engine's next write, so an update is seen at once."""
    col = Collection("one_trip", backend="milvus", uri=milvus_uri)
    try:
        rng = np.random.default_rng(7)
        vectors = rng.normal(size=(20, 384)).astype(np.float32)
        col.add([f"document {i}" for i in range(20)], ids=[f"d{i}" for i in range(20)],
                metadatas=[{"n": i} for i in range(20)], embeddings=vectors)
        gets: list[object] = []
        real_get = col.engine.client.get
        col.engine.client.get = lambda *a, **k: gets.append(a) or real_get(*a, **k)
        hits = col.search(vectors[3], k=5, mode="dense")
        assert hits[0].id == "d3" and hits[0].text == "document 3" and hits[0].metadata == {"n": 3}
        assert not gets, "the hits were read with a second round trip"
        pk = col.engine.chunk_ids_of(["d3"])["d3"][0]
        col.engine.update_metadata({"d3": {"n": 300}})  # (what `topics --assign` does)
        assert col.engine.chunks([pk])[pk].metadata == {"n": 300}  # not the row the search remembered
        assert col.search(vectors[3], k=1, mode="dense")[0].metadata == {"n": 300}
    finally:
        col.drop()
        col.close()


def test_oversized_fields_are_clear_errors_before_anything_is_written(milvus_uri, minilm_path):
    """pymilvus' own per-row string check is switched off (it loops over characters and checks
    nothing); semsearch's check_rows names each real limit, and nothing is written."""
    import pymilvus.client.entity_helper as entity_helper

    col = Collection("limits", backend="milvus", uri=milvus_uri)
    try:
        assert entity_helper.CHECK_STR_ARRAY is False
        vec = np.eye(1, 384, dtype=np.float32)
        cases = [
            (dict(documents=["x" * 70_000], ids=["big"]), "bytes; Milvus stores at most 65535"),
            (dict(documents=["short"], ids=["i" * 5000]), "longer than 4096 bytes; use a shorter id"),
            (dict(documents=["short"], ids=["src"], sources=["s" * 5000]), "source of 'src'"),
        ]
        for kwargs, message in cases:
            with pytest.raises(InvalidInputError, match=re.escape(message)):
                col.add(embeddings=vec, **kwargs)
        assert col.count() == 0
        col.add(["fine"], ids=["ok"], embeddings=vec, sources=["a/b.txt"])
        assert [d.source for d in col.get(["ok"])] == ["a/b.txt"]
    finally:
        col.drop()
        col.close()
