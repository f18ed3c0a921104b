"""How often one search calls the engine, and on Milvus how many round trips it makes (issue 24).

A search is one ``Engine.retrieve`` call (the plan in, the candidates with what the ranking stages
read out) and at most one ``Engine.chunks`` call for the hits' texts the engine did not return,
whatever the door, mode, filter or batch. Calls an engine method makes to another of its own are
its business and not counted.

On Milvus Lite every engine call is a network round trip; the client's calls are counted:
- ``describe_collection``: the manifest, read to check that no other client re-encoded the
  collection meanwhile (its vectors would not be comparable with the query's): once per search
  that encodes its queries, so not in lexical mode;
- ``search`` on the vector field: once for every query of the call;
- ``search`` on the BM25 function: once per query (Milvus takes one text per BM25 search);
- nothing else: both searches return their chunks' fields, and the BM25 search also the stored
  vectors the ranking needs (the cosine of documents only BM25 found; every candidate's for MMR),
  which used to be one more ``get``.
"""

from __future__ import annotations

import inspect
import threading
from collections import Counter
from typing import Any

import pytest

from semsearch.engine import Engine

from .conftest import DOCS

#: The engine's methods (its properties are not calls into storage).
ENGINE_METHODS = sorted(name for name, _ in inspect.getmembers(Engine, inspect.isfunction) if not name.startswith("_"))
MOON = "when did people first walk on the moon"


class CountingEngine:
    """Counts the calls made into an engine from outside it (the engine's calls to itself are not)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.calls: Counter[str] = Counter()
        self._inside = threading.local()
        for name in ENGINE_METHODS:
            setattr(engine, name, self._counted(name, getattr(engine, name)))

    def _counted(self, name: str, method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            outermost = not getattr(self._inside, "depth", 0)
            if outermost:
                self.calls[name] += 1
            self._inside.depth = getattr(self._inside, "depth", 0) + 1
            try:
                return method(*args, **kwargs)
            finally:
                self._inside.depth -= 1

        return call

    def restore(self) -> None:
        for name in ENGINE_METHODS:
            delattr(self.engine, name)

    def take(self) -> Counter[str]:
        calls, self.calls = self.calls, Counter()
        return calls


SEARCHES = [
    pytest.param(MOON, {}, id="hybrid"),
    pytest.param(MOON, {"mode": "dense"}, id="dense"),
    pytest.param(MOON, {"mode": "lexical"}, id="lexical"),
    pytest.param(MOON, {"where": {"topic": "space"}, "where_document": {"$contains": "Moon"}}, id="filtered"),
    pytest.param(MOON, {"mmr": 0.5, "candidates": 3}, id="mmr"),
    pytest.param(MOON, {"fusion": "rrf", "candidates": 3}, id="rrf"),
    pytest.param(MOON, {"threshold": "auto"}, id="threshold"),
    pytest.param([MOON, "kettle receipt", "tomato plants"], {}, id="batch-of-3"),
]


@pytest.fixture(scope="module")
def counted(corpus_path):
    from semsearch import Collection

    col = Collection(corpus_path, create=False)
    col.search("warm up")  # the first search loads the index; loading is not what is counted
    counter = CountingEngine(col.engine)
    yield col, counter
    counter.restore()
    col.close()


@pytest.mark.parametrize(("query", "options"), SEARCHES)
def test_a_search_is_one_retrieve_and_at_most_one_chunks_read(counted, query, options):
    col, counter = counted
    counter.take()
    hits = col.search(query, k=3, **options)
    calls = counter.take()
    assert hits
    assert calls["retrieve"] == 1 and calls["chunks"] <= 1, calls
    assert set(calls) <= {"retrieve", "chunks"}, calls


def test_an_http_search_is_one_retrieve_too(counted):
    from fastapi.testclient import TestClient

    from semsearch.server import create_app

    col, counter = counted
    with TestClient(create_app({"docs": col}, warm_up=False)) as http:
        counter.take()
        r = http.post("/search", json={"queries": [MOON, "kettle receipt"], "k": 3})
        assert r.status_code == 200 and all(result["hits"] for result in r.json()["results"])
        calls = counter.take()
    assert calls["retrieve"] == 1 and calls["chunks"] <= 1 and set(calls) <= {"retrieve", "chunks"}, calls


class CountingClient:
    """A pymilvus client whose calls are counted by name."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(f"{name}({kwargs.get('anns_field', '')})" if name == "search" else name)
            return attr(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def milvus_counted(milvus_uri, minilm_path):
    from semsearch import Collection

    col = Collection("conformance_calls", backend="milvus", uri=milvus_uri)
    col.add([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadatas=[m for _, _, m in DOCS])
    col.search("warm up")
    real = col.engine.client
    counting = CountingClient(real)
    col.engine.client = counting
    yield col, counting
    col.engine.client = real
    col.drop()


DENSE, BM25 = "search(vector)", "search(sparse)"


@pytest.mark.parametrize(("queries", "options", "round_trips"), [
    # candidates=3: BM25 finds documents the vector search did not return, whose stored vectors
    # the fused ranking needs (they come with the BM25 search).
    pytest.param([MOON], {"candidates": 3}, ["describe_collection", DENSE, BM25], id="hybrid"),
    pytest.param([MOON], {"mode": "dense"}, ["describe_collection", DENSE], id="dense"),
    pytest.param([MOON], {"mode": "lexical"}, [BM25], id="lexical"),
    pytest.param([MOON], {"mmr": 0.5, "candidates": 3}, ["describe_collection", DENSE, BM25], id="mmr"),
    pytest.param([MOON, "kettle receipt", "tomato plants"], {"candidates": 3},
                 ["describe_collection", DENSE, BM25, BM25, BM25], id="batch-of-3"),
])
def test_milvus_round_trips_of_a_search(milvus_counted, queries, options, round_trips):
    col, client = milvus_counted
    counter = CountingEngine(col.engine)
    try:
        client.calls.clear()
        results = col.search(queries, k=3, **options)
        assert all(results)
        assert sorted(client.calls) == sorted(round_trips)
        calls = counter.take()
        assert calls["retrieve"] == 1 and set(calls) <= {"retrieve", "chunks"}, calls
    finally:
        counter.restore()


def test_milvus_hybrid_ranks_with_the_vectors_the_bm25_search_returned(milvus_counted):
    """The vectors that came with the BM25 search are the stored ones: the same hits and scores as
    when they are read separately (the engine's own ``vectors``)."""
    from semsearch.retrieval.options import SearchOptions
    from semsearch.retrieval.pipeline import plan_for

    col, _ = milvus_counted
    engine = col.engine
    opts = SearchOptions.checked(k=3, has_text=True, candidates=3)
    vectors = col.embedder.encode_queries([MOON])
    (got,) = engine.retrieve(plan_for([MOON], vectors, opts))
    lexical_only = [c.chunk_id for c in got.lexical if c.doc_id not in {d.doc_id for d in got.dense}]
    assert lexical_only and set(got.vectors) == set(lexical_only)
    ids, stored = engine.vectors(lexical_only)
    for chunk_id, vector in zip(ids.tolist(), stored):
        assert got.vectors[chunk_id].tolist() == vector.tolist()
