"""The where-filter language: parsing errors, SQL against the Python reference, filtered search."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.errors import InvalidInputError
from semsearch.filters import (
    And,
    Compare,
    FilterError,
    combine,
    matches,
    parse_where,
    parse_where_document,
    to_sql,
)

# -- parsing -------------------------------------------------------------------------------


def test_shorthand_operators_and_implicit_and():
    assert parse_where({"topic": "ml"}) == Compare("topic", "$eq", "ml")
    node = parse_where({"topic": "ml", "year": {"$gte": 2020, "$lt": 2024}})
    assert node == And((Compare("topic", "$eq", "ml"), Compare("year", "$gte", 2020), Compare("year", "$lt", 2024)))
    assert parse_where('{"tags": {"$in": ["a", "b"]}}') == Compare("tags", "$in", ("a", "b"))
    assert parse_where(None) is None and parse_where({}) is None


@pytest.mark.parametrize(
    ("where", "names"),
    [
        ({"year": {"$gtt": 3}}, ["where.year.$gtt", "unknown operator"]),
        ({"year": {"$gt": "2020"}}, ["where.year.$gt", "numbers only"]),
        ({"year": {"$in": []}}, ["where.year.$in", "non-empty list"]),
        ({"$or": [{"a": 1}, {"b": [1, 2]}]}, ["where.$or[1].b", "string, number or boolean"]),
        ({"$and": {"a": 1}}, ["where.$and", "list"]),
        ({"$contains": "x"}, ["$contains", "where_document"]),
        ("{not json", ["not valid JSON"]),
        ([1, 2], ["must be an object"]),
    ],
)
def test_bad_filters_name_the_offending_part(where, names):
    with pytest.raises(InvalidInputError) as info:
        parse_where(where)
    assert isinstance(info.value, FilterError)
    for name in names:
        assert name in str(info.value)


def test_document_filter_parsing():
    assert parse_where_document({"$contains": "FAISS"}).text == "FAISS"
    with pytest.raises(FilterError, match=r"where_document: unknown operator '\$regex'"):
        parse_where_document({"$regex": "a.*"})
    with pytest.raises(FilterError, match="non-empty string"):
        parse_where_document({"$contains": ""})


def test_values_reach_sql_as_parameters_only():
    sql, params = to_sql(parse_where({"k'); DROP TABLE documents; --": "x' OR 1=1 --"}))
    assert "DROP" not in sql and "OR 1=1" not in sql
    assert "x' OR 1=1 --" in params


# -- SQL against the reference evaluator ---------------------------------------------------

KEYS = ["a", "b", "c.d", "tags"]
scalars = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.0, -1.5]), st.sampled_from(["x", "y", "é"]),
                    st.booleans())
# Values no filter matches (null, objects, nested lists) are stored too: they must match nothing, and $ne.
unmatchable = st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "a"]), scalars, max_size=2),
                        st.lists(scalars, max_size=2).map(lambda v: [v]))
metadata_st = st.dictionaries(
    st.sampled_from(KEYS), st.one_of(scalars, st.lists(st.one_of(scalars, unmatchable), max_size=3), unmatchable),
    max_size=4
)
numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0]))


def _leaf() -> st.SearchStrategy:
    key = st.sampled_from(KEYS)
    return st.one_of(
        st.builds(lambda k, v: {k: v}, key, scalars),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$eq", "$ne"]), scalars),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$in", "$nin"]),
                  st.lists(scalars, min_size=1, max_size=3)),
    )


where_st = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda op, parts: {op: parts}, st.sampled_from(["$and", "$or"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=6,
)
document_st = st.one_of(
    st.builds(lambda op, t: {op: t}, st.sampled_from(["$contains", "$not_contains"]),
              st.sampled_from(["ab", "B", "é", "%", "_"])),
)
texts = st.text(alphabet="abAB é%_", max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(st.tuples(metadata_st, texts), min_size=1, max_size=12), where=where_st,
       where_doc=st.none() | document_st)
def test_sql_matches_the_reference_evaluator(docs, where, where_doc):
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE documents (rowid INTEGER PRIMARY KEY, text TEXT, metadata TEXT)")
    con.executemany("INSERT INTO documents(text, metadata) VALUES (?, ?)", [(t, json.dumps(m)) for m, t in docs])
    node = combine(parse_where(where), parse_where_document(where_doc))
    sql, params = to_sql(node)
    got = {r[0] for r in con.execute(f"SELECT d.rowid FROM documents d WHERE {sql}", params)}
    expected = {i + 1 for i, (m, t) in enumerate(docs) if matches(node, m, t)}
    assert got == expected


def test_reference_semantics():
    m = {"n": 1, "flag": True, "tags": ["ml", "nlp"], "s": "1"}
    assert matches(parse_where({"n": 1}), m) and not matches(parse_where({"n": True}), m)
    assert matches(parse_where({"flag": True}), m) and not matches(parse_where({"flag": 1}), m)
    assert not matches(parse_where({"s": 1}), m)
    assert matches(parse_where({"tags": "ml"}), m) and not matches(parse_where({"tags": {"$ne": "ml"}}), m)
    assert matches(parse_where({"missing": {"$ne": 3}}), m) and not matches(parse_where({"missing": {"$lt": 3}}), m)


# -- filtered search on a collection -------------------------------------------------------


@pytest.fixture()
def random_collection(tmp_path, tiny_model_dir, request):
    from semsearch import Collection

    rng = np.random.default_rng(7)
    col = Collection(tmp_path / "col", model=str(tiny_model_dir), index=getattr(request, "param", None))
    n = 400
    vectors = rng.normal(size=(n, col.dimension)).astype(np.float32)
    metas = [{"group": int(rng.integers(0, 40)), "kind": str(rng.choice(["a", "b"]))} for _ in range(n)]
    texts = [f"document {i} {'rare' if i % 97 == 0 else 'common'}" for i in range(n)]
    col.add(texts, ids=[f"d{i}" for i in range(n)], metadatas=metas, embeddings=vectors)
    yield col, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), metas, texts
    col.close()


@pytest.mark.parametrize("random_collection", ["auto", "IVF4,Flat", "HNSW16"], indirect=True)
@pytest.mark.parametrize(
    "where", [{"group": 3}, {"group": {"$lt": 20}, "kind": "a"}, {"group": {"$in": [1, 2, 39]}}, {"kind": "a"}]
)
def test_filtered_search_is_the_true_top_k_among_matches(random_collection, where):
    col, vectors, metas, texts = random_collection
    node = parse_where(where)
    allowed = [i for i, m in enumerate(metas) if matches(node, m)]
    query = np.random.default_rng(1).normal(size=col.dimension).astype(np.float32)
    query /= np.linalg.norm(query)
    expected = sorted(allowed, key=lambda i: -float(vectors[i] @ query))[:10]
    hits = col.search(query, k=10, where=where)
    assert [h.id for h in hits] == [f"d{i}" for i in expected]
    assert all(matches(node, h.metadata) for h in hits)


def test_get_and_delete_by_filter(random_collection):
    col, _, metas, texts = random_collection
    rare = col.get(where_document={"$contains": "rare"})
    assert [d.id for d in rare] == [f"d{i}" for i in range(len(texts)) if "rare" in texts[i]]
    assert len(col.get(where={"kind": "a"}, limit=3)) == 3
    assert [d.id for d in col.get(["d0", "d1", "d97"], where_document={"$contains": "rare"})] == ["d0", "d97"]
    before = col.count()
    n = col.delete(where={"group": {"$gte": 30}})
    assert n == sum(m["group"] >= 30 for m in metas) and col.count() == before - n
    assert col.get(where={"group": {"$gte": 30}}) == []
    assert all(h.metadata["group"] < 30 for h in col.search(np.ones(col.dimension, dtype=np.float32), k=50))
    with pytest.raises(InvalidInputError, match="needs ids or a where"):
        col.delete()
    with pytest.raises(InvalidInputError, match="where.group.\\$bad"):
        col.delete(where={"group": {"$bad": 1}})
    assert col.count() == before - n


def test_filter_matching_nothing_gives_no_hits(random_collection):
    col, *_ = random_collection
    assert col.search(np.ones(col.dimension, dtype=np.float32), k=5, where={"group": 999}) == []


def test_filters_apply_to_lexical_and_hybrid_candidates(random_collection):
    col, _, metas, texts = random_collection
    rare_a = [f"d{i}" for i in range(len(texts)) if "rare" in texts[i] and metas[i]["kind"] == "a"]
    for mode in ("lexical", "hybrid"):
        hits = col.search("rare", k=50, mode=mode, where={"kind": "a"})
        assert all(h.metadata["kind"] == "a" for h in hits)
        assert {h.id for h in hits if "lexical" in h.scores} == set(rare_a)
