"""BM25 arrays (bm25.py, lexical_arrays.py): the same scores as SQLite FTS5, kept current with every
write, built only when worth it, and never over its memory bound."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.backends.local import bm25, lexical_arrays
from semsearch.backends.local.facet_index import compile_filter
from semsearch.backends.local.fts import search as fts_search
from semsearch.lexical import match_expression, tokenize

WORDS = [f"w{i}" for i in range(300)] + ["the", "of", "cafe", "東京", "straße"]


def zipf_text(rng: np.random.Generator, n_words: int) -> str:
    """Words drawn with Zipf-like frequencies, so some terms are in most chunks and some in one."""
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    return " ".join(rng.choice(WORDS, size=n_words, p=p / p.sum()))


def add_docs(col, rng, first: int, n: int, **meta) -> None:
    texts = [zipf_text(rng, int(rng.integers(0, 40))) or "w1" for _ in range(n)]
    col.add(texts, ids=[f"d{i}" for i in range(first, first + n)],
            metadatas=[dict(meta, n=i) for i in range(first, first + n)],
            embeddings=rng.normal(size=(n, col.dimension)))


def assert_same_as_fts5(col, queries, allow=None, limit=30) -> int:
    """Memory and FTS5 agree on every query: same scores, same chunks above the cut's ties."""
    snap = col.engine.bm25.current(build=True)
    assert snap is not None and snap.seq == col.engine.store.head()
    compared = 0
    for q in queries:
        mem = snap.search(tokenize(q), limit, allow)
        fts = fts_search(col.engine.store, match_expression(q), limit, allow) if tokenize(q) else []
        assert len(mem) == len(fts), q
        assert np.allclose([s for _, s in mem], [s for _, s in fts], rtol=1e-12, atol=1e-12), q
        if mem:  # ids agree except among chunks tied with the last score kept
            cut = mem[-1][1]
            assert {c for c, s in mem if s > cut + 1e-9} == {c for c, s in fts if s > cut + 1e-9}, q
            compared += len(mem)
    return compared


@pytest.fixture()
def col(tmp_path, tiny_model_dir):
    from semsearch import Collection

    c = Collection(tmp_path / "c", model=str(tiny_model_dir), chunk_size=16, chunk_overlap=0)
    yield c
    c.close()


def queries(rng, n=25) -> list[str]:
    return ([zipf_text(rng, int(rng.integers(1, 6))) for _ in range(n)]
            + ["the of", "w299 nothing-here", "東京 cafe", "zzz"])


def test_scores_equal_fts5_through_adds_deletes_upserts_and_merges(col):
    rng = np.random.default_rng(0)
    add_docs(col, rng, 0, 200)
    qs = queries(rng)
    assert assert_same_as_fts5(col, qs) > 200
    for step in range(6):  # each write is caught up from the change log: segments, then a merge
        add_docs(col, rng, 1000 + 100 * step, 40)
        col.delete([f"d{i}" for i in range(step * 20, step * 20 + 15)])
        col.upsert(["w1 w2 the straße"] * 3, ids=[f"d{199 - step}", "d150", f"new{step}"],
                   embeddings=rng.normal(size=(3, col.dimension)))
        assert_same_as_fts5(col, qs)
    snap = col.engine.bm25.current()
    assert snap.count == col.engine.store.chunk_count()
    assert len(snap.alive) < snap.count / 0.75 + 1  # dead rows are compacted away


def test_many_small_writes_keep_few_segments(col):
    """Size-tiered merging: a writer adding a few chunks at a time leaves O(log n) segments."""
    rng = np.random.default_rng(7)
    add_docs(col, rng, 0, 50)
    col.engine.bm25.current(build=True)
    sizes = []
    for step in range(60):
        add_docs(col, rng, 100 + 2 * step, 2)
        snap = col.engine.bm25.current()
        sizes.append(len(snap.segments))
        lens = [len(s.rows) for s in snap.segments]
        assert all(2 * b < a for a, b in zip(lens, lens[1:])), lens  # each less than half the one before
    assert max(sizes) <= 8, sizes
    assert_same_as_fts5(col, queries(rng))


def test_filtered_scores_equal_fts5(col):
    from semsearch.filters import parse_where

    rng = np.random.default_rng(1)
    add_docs(col, rng, 0, 150, group="a")
    add_docs(col, rng, 150, 150, group="b")
    node = parse_where({"group": "b"})
    allow = col.engine.facet_index.chunk_ids(compile_filter(node))
    assert assert_same_as_fts5(col, queries(rng), allow=allow) > 100
    hits = col.search("w3 w4", k=20, mode="lexical", where={"group": "b"})
    assert hits and all(h.metadata["group"] == "b" for h in hits)


def test_search_uses_memory_once_fts5_has_spent_the_build_time(col):
    rng = np.random.default_rng(2)
    add_docs(col, rng, 0, 300)
    expected = col.search("w5 w7 the", k=10, mode="lexical")
    assert col.engine.bm25._snapshot is None  # a one-shot search never pays the build
    for _ in range(200):
        col.search("w5 w7 the", k=10, mode="hybrid")
        if col.engine.bm25._snapshot is not None:
            break
    assert col.engine.bm25._snapshot is not None, "never built although FTS5 spent more than the build estimate"
    assert col.engine.bm25._fts_seconds >= col.engine.bm25._build_seconds
    again = col.search("w5 w7 the", k=10, mode="lexical")
    def ranked(hits):  # ties may come in another order
        return sorted((-round(h.score, 9), h.id, h.start) for h in hits)

    assert ranked(again) == ranked(expected)


def test_another_process_writing_and_trimming_the_log_is_caught_by_a_rebuild(col, tiny_model_dir):
    from semsearch import Collection

    rng = np.random.default_rng(3)
    add_docs(col, rng, 0, 100)
    before = col.engine.bm25.current(build=True)
    with Collection(col.path, model=str(tiny_model_dir)) as other:
        other.add(["a unique zebra"], ids=["zebra"], embeddings=rng.normal(size=(1, other.dimension)))
        other.delete(["d3"])
        other.flush()  # saves the vector index and trims the change log past `before`
    assert col.engine.store.changes_floor() > before.seq
    assert col.search("zebra", k=1, mode="lexical")[0].id == "zebra"
    assert col.engine.bm25.current() is not before
    assert_same_as_fts5(col, queries(rng))


def test_a_collection_over_the_token_bound_stays_on_fts5(col, monkeypatch):
    monkeypatch.setattr(lexical_arrays, "MAX_TOKENS", 500)
    rng = np.random.default_rng(4)
    add_docs(col, rng, 0, 100)
    assert col.engine.bm25.current(build=True) is None
    assert not col.engine.bm25.worth_building()
    assert col.search("w2", k=3, mode="lexical")  # FTS5 answers


def test_writes_past_the_token_bound_hand_bm25_back_to_fts5(col, monkeypatch):
    rng = np.random.default_rng(8)
    add_docs(col, rng, 0, 30)
    snap = col.engine.bm25.current(build=True)
    assert snap is not None
    monkeypatch.setattr(lexical_arrays, "MAX_TOKENS", snap.postings + 10)
    add_docs(col, rng, 100, 30)
    assert col.engine.bm25.current() is None and not col.engine.bm25.worth_building()
    assert col.search("w2", k=3, mode="lexical")  # FTS5 answers


def test_empty_collection_and_empty_chunks(col):
    col.add(["w0"], ids=["first"])  # a collection is created by its first write
    col.delete("first")
    assert col.engine.bm25.current(build=True).search(["w1"], 5) == []
    rng = np.random.default_rng(5)
    col.add(["😀 🙂", "w1 w1 w2"], ids=["emoji", "words"], embeddings=rng.normal(size=(2, col.dimension)))
    snap = col.engine.bm25.current()
    assert snap.count == 2 and snap.total_tokens == 3  # a chunk without tokens still counts in N
    assert_same_as_fts5(col, ["w1", "w2 w1", "nothing"])


def test_server_warm_up_builds_it(col):
    from semsearch.server.state import warm_up as _warm_up

    class State:
        collections = {"c": col}
        warmup_error = None

        class ready:  # noqa: N801
            @staticmethod
            def set() -> None:
                pass

    rng = np.random.default_rng(6)
    add_docs(col, rng, 0, 20)
    _warm_up(State)  # type: ignore[arg-type]
    assert State.warmup_error is None and col.engine.bm25._snapshot is not None


def test_the_first_fts5_query_of_a_process_never_triggers_a_build(col):
    """A one-shot CLI search reads a cold index: however slow, that first query must not make
    the process build BM25 in memory (~25 MB and a second for nothing)."""
    add_docs(col, np.random.default_rng(3), 0, 50)
    memory = col.engine.bm25
    memory.spent(1000.0)  # the first query: far slower than any build
    assert not memory.worth_building()
    memory.spent(1000.0)  # a second one in the same process: now a build pays for itself
    assert memory.worth_building()


@pytest.mark.parametrize("sparse_below", [0, 10**9])
def test_scores_summed_per_row_or_over_every_chunk_are_the_same(col, monkeypatch, sparse_below):
    """Both ways of summing a query's postings (per matching row, or in an array over every chunk)
    give FTS5's scores, summed in the same order."""
    monkeypatch.setattr(bm25, "SPARSE_BELOW", sparse_below)
    rng = np.random.default_rng(9)
    add_docs(col, rng, 0, 200)
    assert assert_same_as_fts5(col, queries(rng)) > 200


def test_a_term_in_half_the_chunks_is_left_out_of_a_large_collection_when_others_find_enough(col, monkeypatch):
    rng = np.random.default_rng(10)
    add_docs(col, rng, 0, 300)
    snap = col.engine.bm25.current(build=True)
    frequent = [t for t, n in snap.term_frequencies(["w0", "w1", "w2"]).items() if 2 * n >= snap.count]
    rare = [t for t, n in snap.term_frequencies([f"w{i}" for i in range(20, 60)]).items() if 5 <= n <= 40]
    assert frequent and len(rare) >= 2
    terms = [frequent[0], *rare[:2]]
    exact = snap.search(terms, 5)
    monkeypatch.setattr(bm25, "LEAVE_OUT_FREQUENT_FROM", 0)
    pruned = snap.search(terms, 5)
    assert len(pruned) == 5
    # the frequent term's idf is floored at 1e-6: it moves a score by at most 2.2e-6
    assert np.allclose([s for _, s in pruned], [s for _, s in exact], rtol=0, atol=2.2e-6)
    assert {c for c, s in pruned if s > pruned[-1][1] + 1e-5} <= {c for c, _ in exact}
    # fewer than `limit` chunks hold the other terms: the frequent one counts again, exactly
    everything = snap.search(terms, 10_000)
    monkeypatch.setattr(bm25, "LEAVE_OUT_FREQUENT_FROM", 10**9)
    assert everything == snap.search(terms, 10_000) and len(everything) > 100
