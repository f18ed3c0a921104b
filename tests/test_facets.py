"""The in-memory facet index of `where` filters against the reference evaluator (filters.matches):
built, caught up from changes, compacted, and through a collection; and what a filtered search
no longer does (scan metadata JSON, read embedding blobs from SQLite)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.backends.local import facets
from semsearch.filters import combine, matches, parse_where, parse_where_document

KEYS = ["a", "b", "c.d", "tags"]
BIG = 2**60
# Beyond the hypothesis test of the SQL: numbers float64 cannot hold (2**60 + 1), floats at 2**53,
# NaN and infinity, empty strings.
scalars = st.one_of(
    st.integers(-3, 3), st.sampled_from([0.5, 2.0, -1.5, 2.0**53, float("nan"), float("inf")]),
    st.sampled_from([BIG, BIG + 1, -BIG, 2**53 + 1]), st.sampled_from(["x", "y", "é", ""]), st.booleans(),
)
unmatchable = st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "a"]), scalars, max_size=2),
                        st.lists(scalars, max_size=2).map(lambda v: [v]))
metadata_st = st.dictionaries(
    st.sampled_from(KEYS), st.one_of(scalars, st.lists(st.one_of(scalars, unmatchable), max_size=3), unmatchable),
    max_size=4,
)
filter_scalars = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.0, -1.5, 2.0**53]),
                           st.sampled_from([BIG, BIG + 1, 2**53 + 1]), st.sampled_from(["x", "y", "é", ""]),
                           st.booleans())
numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0**53, BIG + 1, 2**53 + 1]))


def _leaf() -> st.SearchStrategy:
    key = st.sampled_from(KEYS)
    return st.one_of(
        st.builds(lambda k, v: {k: v}, key, filter_scalars),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$eq", "$ne"]), filter_scalars),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$in", "$nin"]),
                  st.lists(filter_scalars, min_size=1, max_size=3)),
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
document_st = st.none() | st.builds(lambda op, t: {op: t}, st.sampled_from(["$contains", "$not_contains"]),
                                    st.sampled_from(["ab", "B", "é"]))
texts = st.text(alphabet="abAB é", max_size=6)


def _chunks_of(i: int) -> list[int]:
    """Document i (rowid 2i + 1, gaps as deletes leave them) has 1-3 chunks with ascending ids."""
    return [10 * i + j for j in range(i % 3 + 1)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(st.tuples(metadata_st, texts), min_size=1, max_size=14), where=where_st, where_doc=document_st,
       split=st.integers(0, 14), removed_first=st.sets(st.integers(0, 13)), removed_later=st.sets(st.integers(0, 13)))
def test_facets_built_and_caught_up_match_the_reference(docs, where, where_doc, split, removed_first, removed_later):
    node = combine(parse_where(where), parse_where_document(where_doc))
    rows = [(2 * i + 1, json.dumps(m)) for i, (m, _) in enumerate(docs)]
    split = min(split, len(docs))

    def chunk_rows(indexes):
        return [(c, 2 * i + 1, rows[i][1]) for i in indexes for c in _chunks_of(i)]

    def removed(indexes):
        return np.array([c for i in indexes if i < len(docs) for c in _chunks_of(i)], dtype=np.int64)

    first = chunk_rows(range(split))
    snap = facets.build(1, rows[:split], np.array([(c, d) for c, d, _ in first], dtype=np.int64).reshape(-1, 2))
    gone = set()
    for step, (added, dropped) in enumerate([(chunk_rows(range(split, len(docs))), removed_first),
                                             ([], removed_later)]):
        gone_now = removed(dropped)
        # As the store's change log reduces them: a chunk added and removed in one window is simply gone.
        snap = snap.with_changes(2 + step, [a for a in added if a[0] not in set(gone_now.tolist())], gone_now)
        gone |= {i for i in dropped if i < len(docs)}
        live = [i for i in range(len(docs)) if i not in gone]

        def text_matches(sub, live=live):  # what SQL answers for where_document subtrees
            return np.array([2 * i + 1 for i in live if matches(sub, {}, docs[i][1])], dtype=np.int64)

        expected = [c for i in live if matches(node, docs[i][0], docs[i][1]) for c in _chunks_of(i)]
        got = snap.allowed(node, text_matches)
        assert got.tolist() == expected
        assert snap.live == sum(len(_chunks_of(i)) for i in live)


def test_out_of_order_changes_ask_for_a_rebuild():
    snap = facets.build(5, [(3, '{"a": 1}')], np.array([[7, 3]], dtype=np.int64))
    assert snap.with_changes(6, [(6, 4, "{}")], np.empty(0, np.int64)) is None  # chunk id not after 7
    assert snap.with_changes(6, [(8, 3, "{}")], np.empty(0, np.int64)) is None  # a chunk for an old document
    assert facets.build(1, [(1, '{"a": [1, 2, 3]}')], np.array([[1, 1]]), max_entries=2) is None


# -- through a collection --------------------------------------------------------------------


@pytest.fixture()
def col(tmp_path, tiny_model_dir):
    from semsearch import Collection

    c = Collection(tmp_path / "c", model=str(tiny_model_dir), chunk_size=16, chunk_overlap=0)
    yield c
    c.close()


def _add(col, rng, start, n, **extra):
    metas = [{"g": int(rng.integers(0, 5)), "tags": [str(rng.choice(list("xyz")))] * int(rng.integers(0, 3)),
              "big": BIG + int(rng.integers(0, 3)), **extra} for _ in range(n)]
    # Long texts make several chunks per document.
    texts = [" ".join(f"w{int(w)}" for w in rng.integers(0, 50, size=int(rng.integers(3, 40)))) for _ in range(n)]
    ids = [f"d{i}" for i in range(start, start + n)]
    col.upsert(texts, ids=ids, metadatas=metas)
    return dict(zip(ids, zip(metas, texts)))


def _expected(col, docs, node):
    chunk_ids = col.engine.chunk_ids_of([d for d, (m, t) in docs.items() if matches(node, m, t)])
    return sorted(c for cs in chunk_ids.values() for c in cs)


FILTERS = [{"g": 2}, {"g": {"$gte": 3}, "tags": "x"}, {"tags": {"$nin": ["y"]}}, {"big": BIG + 1},
           {"$or": [{"g": {"$in": [0, 4]}}, {"tags": "z"}]}, {"big": {"$gt": BIG}}]


def test_facets_follow_adds_upserts_deletes_and_flushes(col):
    rng = np.random.default_rng(3)
    docs = _add(col, rng, 0, 80)
    assert col.engine.facets.current(build=True) is not None
    for step in range(4):
        docs.update(_add(col, rng, 40 * step, 60))  # replaces 20 documents, adds 40
        gone = [f"d{i}" for i in rng.choice(40 * step + 60, 10, replace=False)]
        col.delete(gone)
        for d in gone:
            docs.pop(d, None)
        if step == 2:
            col.flush()  # forgets the change log up to here: the snapshot is rebuilt
        for where in FILTERS:
            node = parse_where(where)
            scope = col.engine.scope(node)
            assert scope.allow.tolist() == _expected(col, docs, node), where
            assert col.engine.facets.current().seq == col.engine.store.head()
        node = combine(parse_where({"g": {"$ne": 1}}), parse_where_document({"$contains": "w7 "}))
        assert col.engine.scope(node).allow.tolist() == _expected(col, docs, node)


def _statements(col):
    seen: list[str] = []
    col.engine.store.con.set_trace_callback(seen.append)
    return seen


def test_a_warm_filtered_search_scans_no_metadata_json_and_reads_no_embedding(col):
    rng = np.random.default_rng(4)
    docs = _add(col, rng, 0, 200)
    col.engine.warm_up()  # what `semsearch serve` does before it answers
    query = np.ones(col.dimension, dtype=np.float32)
    seen = _statements(col)
    for where in FILTERS:
        hits = col.search(query, k=5, mode="dense", where=where)
        assert hits and all(matches(parse_where(where), docs[h.id][0]) for h in hits)
    col.engine.store.con.set_trace_callback(None)
    # (the manifest's embeddings_id is read to notice a re-encoding by another process: one row, no blob)
    blobs = [s for s in seen if "embedding" in s and "FROM manifest" not in s]
    assert not [s for s in seen if "json_each(d.metadata" in s] and not blobs


def test_a_process_that_filters_often_moves_filters_into_memory(col):
    rng = np.random.default_rng(5)
    _add(col, rng, 0, 300)
    query = np.ones(col.dimension, dtype=np.float32)
    seen = _statements(col)
    col.search(query, k=5, mode="dense", where={"g": 1})
    # a one-shot search never pays the build: it reads the metadata index on disk, not every document's JSON
    assert any("FROM facets" in s for s in seen) and not any("json_each(d.metadata" in s for s in seen)
    for _ in range(300):
        seen.clear()
        col.search(query, k=5, mode="dense", where={"g": 1})
        if not any("FROM facets" in s for s in seen):
            break
    col.engine.store.con.set_trace_callback(None)
    assert not any("FROM facets" in s for s in seen), "filters never moved into memory"
