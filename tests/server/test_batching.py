"""Concurrent searches answered in shared batches get the answers they get alone (to float rounding)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from same_answers import differences

from .conftest import live_server

#: Scores of a query encoded in a batch agree with it encoded alone to this (1e-7 measured in torch fp32).
BATCH_TOLERANCE = 1e-5

TOPICS = [
    ("harbour", "Container ships unload at the harbour cranes before dawn."),
    ("rail", "Mountain railways climb through alpine tunnels and over stone viaducts."),
    ("tea", "Tea plantations cover the misty hills; pickers work the terraces by hand."),
    ("bread", "Sourdough bread needs a lively starter, a long rise and a very hot oven."),
    ("python", "Parse command line arguments in Python with argparse and subcommands."),
    ("moon", "Apollo 11 landed on the Moon in 1969 and two astronauts walked on it."),
    ("garden", "Water tomato plants deeply twice a week during hot summer days."),
    ("chess", "A chess opening trades a pawn for faster development of the pieces."),
]
# Templated queries with one-token subjects share a token count (so their encodes are shared),
# the others have varied lengths; duplicates ask the same thing twice in one batch.
SUBJECTS = ["ships", "tunnels", "tea", "bread", "python", "moon", "tomatoes", "chess", "cranes", "ovens"]
QUERIES = ([f"tell me about {s} please" for s in SUBJECTS]
           + ["harbour", "how do astronauts walk on the moon", "baking", "what grows on misty hills in asia",
              "argparse subcommands example", "railway", "a pawn sacrifice", "watering vegetables in summer heat",
              "tell me about ships please", "harbour"])


def corpus() -> tuple[list[str], list[str], list[dict]]:
    """Documents long enough to be several chunks (chunk_size 24), with metadata for filters."""
    texts, ids, metas = [], [], []
    for n, (topic, sentence) in enumerate(TOPICS):
        for part in range(3):
            texts.append(f"{sentence} Part {part} of the {topic} notes. " + " ".join(t for _, t in TOPICS[n + 1:n + 3]))
            ids.append(f"{topic}-{part}")
            metas.append({"topic": topic, "part": part})
    return texts, ids, metas


def requests_to_make() -> list[tuple[list[str], dict]]:
    """(queries, options) of many requests: single and multi-query, every mode, filters, k, MMR, threshold."""
    option_sets = [
        {"k": 5}, {"k": 3, "mode": "dense"}, {"k": 4, "mode": "lexical"}, {"k": 5, "where": {"part": {"$gte": 1}}},
        {"k": 6, "fusion": "rrf"}, {"k": 5, "mmr": 0.5}, {"k": 10, "threshold": 0.2, "mode": "dense"},
        {"k": 2, "where_document": {"$contains": "the"}}, {"k": 5, "candidates": 7},
    ]
    out = []
    for i, q in enumerate(QUERIES):
        out.append(([q], option_sets[i % len(option_sets)]))
        out.append(([q], {"k": 5}))
    out += [(QUERIES[0:3], {"k": 4}), (QUERIES[10:14], {"k": 3, "mode": "dense"}), (QUERIES[5:7], {"k": 5})]
    return out


def as_dicts(hits) -> list[dict]:
    return [h.to_dict() for h in hits]


def same(got, expected, what: str) -> None:
    """The same hits: scores to BATCH_TOLERANCE, ties in either order (same_answers.py). A query
    encoded in a batch of several same-length queries is not always bit for bit the query alone
    (torch fp32 blocks a batch of 4 otherwise than a batch of 1)."""
    assert differences(expected, got, tolerance=BATCH_TOLERANCE) == [], f"{what} differs"


@pytest.fixture(params=["minilm", "prompted"])
def chunked(request, tmp_path, minilm_path):
    """A collection of multi-chunk documents, with the real MiniLM or a tiny model with a query prompt."""
    from semsearch import Collection

    model = None if request.param == "minilm" else str(request.getfixturevalue("tiny_model_dir"))
    col = Collection(tmp_path / "col", model=model, chunk_size=24, chunk_overlap=0)
    texts, ids, metas = corpus()
    col.add(texts, ids=ids, metadatas=metas)
    assert col.info()["chunks"] > col.count()
    yield col
    col.close()


def alone(col, requests) -> list[list[list[tuple]]]:
    """Each request searched by itself, one after the other, with no query cache."""
    from semsearch.embedding.caches import QueryCache

    col.embedder.query_cache = QueryCache(0)  # a cached vector might come from another request's batch
    out = []
    for queries, options in requests:
        options = dict(options)
        k = options.pop("k")
        out.append([as_dicts(hits) for hits in col.search(queries, k=k, **options)])
    return out


def test_concurrent_batches_answer_exactly_as_alone(chunked):
    from semsearch.collection import SearchOptions
    from semsearch.server.batching import SearchBatcher, SearchJob

    requests = requests_to_make() * 3
    expected = alone(chunked, requests)
    batcher = SearchBatcher(max_queries=16, window=0.02)  # a window, so batches form on any machine
    start = threading.Barrier(16)

    def ask(i: int) -> list[list[tuple]]:
        queries, options = requests[i]
        options = dict(options)
        opts = SearchOptions.checked(k=options.pop("k"), has_text=True, **options)
        if i < 16:
            start.wait()
        return [as_dicts(hits) for hits in batcher.search(SearchJob(chunked, list(queries), opts), timeout=600)]

    try:
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(ask, range(len(requests))))
    finally:
        batcher.close()
    for i, (g, e) in enumerate(zip(got, expected)):
        same(g, e, f"request {i} {requests[i]} against its answer alone")
    assert max(batcher.batch_sizes) > 1, "no batch held more than one request"
    assert chunked.searcher.encoded_queries > chunked.searcher.model_calls, "no model call encoded several queries"


def test_a_single_query_is_not_changed_by_an_earlier_batch_of_several(chunked):
    """A request with several queries is encoded padded together; a later single query still gets its own vector."""
    from semsearch.collection import SearchOptions
    from semsearch.server.batching import SearchBatcher, SearchJob

    short, long = "baking", "how do astronauts walk on the moon after landing in a spacecraft"
    expected = alone(chunked, [([short], {"k": 5})])[0]
    batcher = SearchBatcher()
    opts = SearchOptions.checked(k=5, has_text=True, mode="dense")
    try:
        batcher.search(SearchJob(chunked, [short, long], opts))
        got = batcher.search(SearchJob(chunked, [short], SearchOptions.checked(k=5, has_text=True)))
    finally:
        batcher.close()
    same([as_dicts(h) for h in got], expected, "the single query after a batch")


def test_errors_reach_only_their_own_request(chunked):
    from semsearch.collection import SearchOptions
    from semsearch.server.batching import SearchBatcher, SearchJob

    batcher = SearchBatcher(window=0.05)
    opts = SearchOptions.checked(k=3, has_text=True)

    def broken(hits):
        raise ValueError("cannot serialise")

    try:
        bad = batcher.submit(SearchJob(chunked, ["harbour"], opts, finish=broken))
        good = batcher.submit(SearchJob(chunked, ["railway"], opts))
        with pytest.raises(ValueError, match="cannot serialise"):
            bad.result(600)
        same([as_dicts(h) for h in good.result(600)], alone(chunked, [(["railway"], {"k": 3})])[0], "the good request")
    finally:
        batcher.close()


def test_http_answers_under_many_concurrent_clients_equal_sequential_ones(tmp_path, minilm_path):
    """32 threads hit /search at once; each response equals Collection.search of that request alone."""
    from semsearch import Collection
    from semsearch.embedding.caches import QueryCache
    from semsearch.server import create_app

    col = Collection(tmp_path / "col", chunk_size=24, chunk_overlap=0)
    texts, ids, metas = corpus()
    col.add(texts, ids=ids, metadatas=metas)
    requests = requests_to_make() * 2
    col.embedder.query_cache = QueryCache(0)  # each expected answer computed alone
    expected = []
    for queries, options in requests:
        options = dict(options)
        expected.append([[h.to_dict() for h in hits] for hits in col.search(queries, k=options.pop("k"), **options)])
    app = create_app({"docs": col}, warm_up=False)
    state = app.state.semsearch
    state.batcher.window = 0.02
    go = threading.Barrier(32)

    def ask(i: int) -> list:
        queries, options = requests[i]
        if i < 32:
            go.wait()
        with httpx.Client(base_url=url, timeout=600) as http:
            r = http.post("/search", json={"queries": queries, **options})
        assert r.status_code == 200, r.text
        return [result["hits"] for result in r.json()["results"]]

    with live_server(app) as url, ThreadPoolExecutor(32) as pool:
        got = list(pool.map(ask, range(len(requests))))
    for i, (g, e) in enumerate(zip(got, expected)):
        same(g, e, f"request {i} {requests[i]} against Collection.search alone")
    assert max(state.batcher.batch_sizes) > 1
    col.close()


def test_the_collecting_window_is_bounded_by_time_and_by_queries():
    """A lone request waits at most the window; a full batch does not wait for it; a late one waits its turn."""
    import time

    from semsearch.server.batching import SearchBatcher, SearchJob

    def job(n: int = 1) -> SearchJob:
        # Only texts matter to the collecting step.
        return SearchJob(collection=None, texts=["q"] * n, options=None)  # type: ignore[arg-type]

    batcher = SearchBatcher(window=0.3, max_queries=4)
    lone = job()
    started = time.monotonic()
    jobs, stop = batcher._collect(lone)
    waited = time.monotonic() - started
    assert jobs == [lone] and not stop
    assert 0.3 <= waited < 0.3 + 2.0, waited  # the window, then it goes (slack for a shared machine)

    waiting = [job() for _ in range(6)]
    for j in waiting:
        batcher._jobs.put(j)
    first = job()
    started = time.monotonic()
    jobs, _ = batcher._collect(first)
    assert jobs == [first, *waiting[:3]]  # 4 queries: full, so it did not wait out the window
    assert time.monotonic() - started < 0.3
    jobs, _ = batcher._collect(batcher._jobs.get_nowait())  # as the encoding loop does
    assert jobs == [waiting[3], waiting[4], waiting[5]]  # the rest in the next pass

    late = job()
    threading.Timer(0.6, batcher._jobs.put, args=(late,)).start()
    first = job()
    jobs, _ = batcher._collect(first)
    assert jobs == [first]  # arrived after the window closed
    assert batcher._jobs.get(timeout=5) is late

    no_wait = SearchBatcher()  # window 0 (the default): take what is waiting, never wait
    started = time.monotonic()
    assert no_wait._collect(lone) == ([lone], False)
    assert time.monotonic() - started < 0.3
