"""The JSON API end to end in-process (FastAPI TestClient) with the real model."""

from __future__ import annotations

import json

import pytest

from .conftest import CORPUS, error_of


def post_json(client, path: str, body: dict):
    # json.dumps escapes lone surrogates as \\udXXX, which is what a hostile client can send.
    return client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def top_ids(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return [[h["id"] for h in r["hits"]] for r in response.json()["results"]]


def test_search_finds_by_meaning_on_named_and_default_paths(client):
    for path in ("/collections/docs/search", "/search"):
        r = client.post(path, json={"query": "cheap hotel near the beach", "k": 3})
        assert top_ids(r)[0][0] == "hotel-1"
        body = r.json()
        assert body["collection"] == "docs"
        hit = body["results"][0]["hits"][0]
        assert hit["text"] == CORPUS[0][1]
        assert hit["metadata"] == {"topic": "travel", "year": 2021}
        assert 0 < hit["score"] <= 1
        assert len(body["results"][0]["hits"]) == 3


def test_batch_search_gives_one_result_list_per_query_in_order(client):
    queries = ["moon landing", "baking a dessert", "argparse flags"]
    r = client.post("/search", json={"queries": queries, "k": 2})
    ids = top_ids(r)
    assert [res["query"] for res in r.json()["results"]] == queries
    assert [i[0] for i in ids] == ["space-1", "recipe-1", "python-1"]
    scores = [h["score"] for h in r.json()["results"][0]["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_search_matches_the_python_api(client, served):
    r = client.post("/search", json={"query": "vegetable garden care", "k": 4})
    api = [h["id"] for h in r.json()["results"][0]["hits"]]
    assert api == [h.id for h in served.search("vegetable garden care", k=4)]


def test_add_then_search_get_upsert_delete(client, served):
    r = client.post("/collections/docs/add", json={
        "documents": ["Sourdough bread needs a lively starter and a long, slow rise."],
        "ids": ["bread-1"], "metadatas": [{"topic": "food"}], "sources": ["https://example.org/bread"],
    })
    assert r.status_code == 200, r.text
    assert r.json() == {"collection": "docs", "ids": ["bread-1"], "count": 1}
    assert served.count() == len(CORPUS) + 1
    assert top_ids(client.post("/search", json={"query": "baking bread at home", "k": 1})) == [["bread-1"]]

    got = client.post("/get", json={"ids": ["bread-1", "nope", "hotel-1"]}).json()["documents"]
    assert [d["id"] for d in got] == ["bread-1", "hotel-1"]
    assert got[0]["source"] == "https://example.org/bread"

    r = client.post("/upsert", json={"documents": ["Rye bread is dense and sour."], "ids": ["bread-1"]})
    assert r.status_code == 200, r.text
    assert served.get("bread-1")[0].text == "Rye bread is dense and sour."

    r = client.post("/collections/docs/delete", json={"ids": ["bread-1", "never-existed"]})
    assert r.json() == {"collection": "docs", "deleted": 1}
    assert served.get("bread-1") == []


def test_add_without_ids_returns_generated_ids(client, served):
    r = client.post("/add", json={"documents": ["one new text", "another new text"]})
    ids = r.json()["ids"]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert [d.id for d in served.get(ids)] == ids


def test_add_with_precomputed_embeddings(client, served):
    vector = served.embedder.encode_documents(["a red bicycle with a basket"])[0]
    r = client.post("/add", json={"documents": ["bike"], "ids": ["bike-1"], "embeddings": [vector.tolist()]})
    assert r.status_code == 200, r.text
    assert top_ids(client.post("/search", json={"query": "a red bicycle with a basket", "k": 1})) == [["bike-1"]]


def test_collections_list_and_info_do_not_reveal_server_paths(make_client, served, tmp_path, minilm_path):
    from semsearch import Collection

    other = Collection(tmp_path / "other")
    other.add(["only one document here"], ids=["o1"])
    client = make_client({"docs": served, "other": other})
    body = client.get("/collections").json()
    assert body["default"] == "docs"
    assert [(c["name"], c["documents"], c["default"]) for c in body["collections"]] == [
        ("docs", len(CORPUS), True), ("other", 1, False)]
    info = client.get("/collections/other").json()
    assert info["model"] == "sentence-transformers/all-MiniLM-L6-v2" and info["dimension"] == 384
    assert info["search_options"] == ["where", "where_document", "mode", "fusion", "alpha", "rrf_k", "candidates",
                                      "rerank", "rerank_top", "threshold", "mmr"]
    assert info["modes"] == ["dense", "lexical", "hybrid"]
    assert str(tmp_path) not in client.get("/collections").text
    assert client.get("/info").json()["name"] == "docs"
    assert top_ids(client.post("/collections/other/search", json={"query": "document", "k": 5})) == [["o1"]]
    other.close()


def test_health_and_readiness(make_client):
    client = make_client(warm_up=True)
    assert client.get("/healthz").json() == {"status": "ok"}
    state = client.app.state.semsearch
    assert state.ready.wait(60)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True


def test_readiness_is_503_until_warm_up_is_done(make_client):
    client = make_client()
    client.app.state.semsearch.ready.clear()
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False


# -- errors: JSON, the right status, nothing changed ----------------------------------
def test_unknown_collection_is_404(client):
    for method, path in (("post", "/collections/nope/search"), ("get", "/collections/nope")):
        r = getattr(client, method)(path, **({"json": {"query": "x"}} if method == "post" else {}))
        assert r.status_code == 404
        assert error_of(r)["type"] == "collection_not_found"


def test_unknown_endpoint_is_json_404(client):
    r = client.get("/index-this-server-path")
    assert r.status_code == 404 and error_of(r)["type"] == "not_found"


def test_duplicate_id_on_add_is_409_and_changes_nothing(client, served):
    r = client.post("/add", json={"documents": ["new text", "other"], "ids": ["brand-new", "hotel-1"]})
    assert r.status_code == 409
    assert error_of(r)["type"] == "duplicate_id" and "upsert" in error_of(r)["message"]
    assert served.count() == len(CORPUS) and served.get("brand-new") == []


@pytest.mark.parametrize("body, fragment", [
    ({"query": "x", "k": 0}, "k"),
    ({"query": ""}, "query"),
    ({}, "exactly one of"),
    ({"query": "a", "queries": ["b"]}, "exactly one of"),
    ({"queries": []}, "queries"),
    ({"query": "x", "top_k": 3}, "top_k"),
    ({"query": "x", "mode": "fuzzy"}, "mode"),
    ({"query": "\ud800 lone surrogate"}, "query"),
    ({"query": 42}, "query"),
    ({"query": "x", "threshold": "high"}, "threshold"),
])
def test_bad_search_requests_are_422_naming_the_problem(client, body, fragment):
    r = post_json(client, "/search", body)
    assert r.status_code == 422, r.text
    assert fragment in error_of(r)["message"]


def test_malformed_json_is_400(client):
    r = client.post("/search", content=b'{"query": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 400 and error_of(r)["type"] == "invalid_json"


@pytest.mark.parametrize("body, fragment", [
    ({"documents": []}, "documents"),
    ({"documents": ["   "]}, "empty"),
    ({"documents": ["a", "b"], "ids": ["x"]}, "one per document"),
    ({"documents": ["a", "b"], "ids": ["x", "x"]}, "twice"),
    ({"documents": ["a"], "ids": [""]}, "ids"),
    ({"documents": ["a"], "embeddings": [[0.1, 0.2]]}, "dimension"),
    ({"documents": ["a", "b"], "embeddings": [[0.1] * 384, [0.1] * 383]}, "different lengths"),
    ({"documents": ["a"], "embeddings": [[0.0] * 384]}, "zeros"),
    ({"documents": ["a"], "metadatas": ["not an object"]}, "metadatas"),
    ({"documents": ["a"], "ids": ["\udcff"]}, "ids"),
])
def test_bad_adds_are_422_and_change_nothing(client, served, body, fragment):
    r = post_json(client, "/add", body)
    assert r.status_code == 422, r.text
    assert fragment in error_of(r)["message"]
    assert served.count() == len(CORPUS)


def test_upsert_needs_ids_and_delete_needs_something(client):
    assert client.post("/upsert", json={"documents": ["a"]}).status_code == 422
    r = client.post("/delete", json={})
    assert r.status_code == 422 and "nothing to delete" in error_of(r)["message"]


def test_every_search_option_reaches_the_collection(client):
    base = client.post("/search", json={"query": "cake", "k": 5}).json()["results"][0]["hits"]
    assert base and any(h["metadata"].get("topic") != "food" for h in base)
    filtered = client.post(
        "/search", json={"query": "cake", "k": 5, "where": {"topic": "food"}}
    ).json()["results"][0]["hits"]
    assert filtered and all(h["metadata"]["topic"] == "food" for h in filtered)
    lexical = client.post("/search", json={"query": "cake", "mode": "lexical"}).json()["results"][0]["hits"]
    assert lexical and all(set(h["scores"]) == {"lexical", "lexical_rank", "relevance"} for h in lexical)
    assert client.post("/search", json={"query": "cake", "threshold": 1e9}).json()["results"][0]["hits"] == []
    unanswerable = client.post(
        "/search", json={"query": "zebra migration in the serengeti", "threshold": "auto"}
    ).json()
    assert unanswerable["results"][0] == {
        "query": "zebra migration in the serengeti", "hits": [], "no_good_match": True
    }
    answered = client.post("/search", json={"query": "chocolate cake recipe"}).json()["results"][0]
    assert answered["no_good_match"] is False and answered["hits"][0]["id"] == "recipe-1"
    # rerank needs a cross-encoder the server was started with: refused, and the message says so
    r = client.post("/search", json={"query": "cake", "rerank": True})
    assert (
        r.status_code == 422 and error_of(r)["type"] == "unsupported_option" and "--reranker" in error_of(r)["message"]
    )


def test_search_keywords_only_let_offered_rerankers_through():
    from semsearch.errors import InvalidInputError
    from semsearch.server.search_options import search_keywords

    options = {"where": {"a": 1}, "mode": "hybrid", "rerank": True, "threshold": 0.2, "rerank_off": None}
    kwargs = search_keywords(options, ["cross-encoder/x"], default_reranker="cross-encoder/x")
    assert kwargs == {"where": {"a": 1}, "mode": "hybrid", "rerank": "cross-encoder/x", "threshold": 0.2}
    assert search_keywords({"rerank": False}, [], default_reranker=None) == {}
    with pytest.raises(InvalidInputError, match="not offered"):
        search_keywords({"rerank": "/etc/passwd"}, ["cross-encoder/x"], default_reranker=None)


def test_hits_carry_document_text_verbatim_for_the_page_to_escape(client):
    r = client.post("/search", json={"query": "script alert markup", "k": 1})
    assert r.json()["results"][0]["hits"][0]["text"].startswith("<script>")


def test_openapi_schema_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/search", "/add", "/upsert", "/delete", "/get", "/info", "/collections", "/collections/{name}",
              "/collections/{name}/search", "/healthz", "/readyz"):
        assert p in paths
    assert "post" in paths["/search"] and "get" in paths["/healthz"] and "post" not in paths["/healthz"]
