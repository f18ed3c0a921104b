"""POST /similar, /duplicates and /topics: the same answers as the Python functions, as JSON."""

from __future__ import annotations

import numpy as np

from semsearch.corpus import similar

from .conftest import API_KEY, CORPUS, error_of


def test_similar_matches_python_and_leaves_the_document_out(client, served):
    for path in ("/similar", "/collections/docs/similar"):
        r = client.post(path, json={"id": "hotel-1", "k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["collection"] == "docs" and body["id"] == "hotel-1"
        assert [h["id"] for h in body["hits"]] == [h.id for h in similar(served, "hotel-1", k=3)]
        assert "hotel-1" not in [h["id"] for h in body["hits"]]
        assert set(body["hits"][0]) >= {"id", "score", "text", "metadata", "source", "scores"}


def test_similar_filters_and_refuses_unknown_ids_and_large_k(client):
    r = client.post("/similar", json={"id": "hotel-1", "k": 5, "where": {"topic": "code"}})
    assert sorted(h["id"] for h in r.json()["hits"]) == ["python-1", "xss-1"]
    r = client.post("/similar", json={"id": "nope"})
    assert r.status_code == 422 and "no document with id 'nope'" in error_of(r)["message"]
    r = client.post("/similar", json={"id": "hotel-1", "k": 10_000})
    assert r.status_code == 422 and "at most" in error_of(r)["message"]
    r = client.post("/similar", json={"id": "hotel-1", "top_k": 3})
    assert r.status_code == 422 and "top_k" in error_of(r)["message"]


def test_duplicates_groups_with_keep_and_delete(client, served, corpus_vectors):
    served.add(["Budget friendly lodging by the coast - five minutes from the sand!"], ids=["hotel-1-copy"],
               embeddings=corpus_vectors[:1])
    r = client.post("/duplicates", json={"keep": "newest"})
    assert r.status_code == 200, r.text
    (group,) = r.json()["groups"]
    assert group["ids"] == ["hotel-1", "hotel-1-copy"] and group["size"] == 2
    assert (group["keep"], group["delete"]) == ("hotel-1-copy", ["hotel-1"])
    assert group["pairs"][0]["a"] == "hotel-1" and group["pairs"][0]["score"] >= 0.999
    assert group["pairs"][0]["text"] == 1.0 and group["min_text"] == 1.0  # case and punctuation ignored
    assert r.json()["text_threshold"] == 0.6
    semantic = client.post("/duplicates", json={"semantic": True}).json()
    assert semantic["text_threshold"] is None and semantic["groups"][0]["ids"] == group["ids"]
    assert client.post("/duplicates", json={"text_threshold": -0.1}).status_code == 422
    assert client.post("/duplicates", json={"where": {"topic": "food"}}).json()["groups"] == []
    r = client.post("/duplicates", json={"threshold": 1.5})
    assert r.status_code == 422


def test_topics_cover_every_document_and_bound_the_ids(client):
    r = client.post("/topics", json={"n": 2})
    assert r.status_code == 200, r.text
    topics = r.json()["topics"]
    assert len(topics) == 2 and sum(t["size"] for t in topics) == len(CORPUS)
    assert sorted(i for t in topics for i in t["ids"]) == sorted(i for i, _, _ in CORPUS)
    assert all(set(t) == {"id", "label", "words", "size", "ids"} for t in topics)
    r = client.post("/topics", json={"n": 2, "max_ids": 1})
    assert all(len(t["ids"]) == 1 for t in r.json()["topics"])
    r = client.post("/topics", json={"n": 99})
    assert r.status_code == 422 and "number of topics" in error_of(r)["message"]


def test_topics_list_the_documents_in_no_topic_as_topic_minus_one(client, served, corpus_vectors):
    # A document unlike every other (a negative cosine with each) belongs to no topic.
    loner = -corpus_vectors.mean(axis=0)
    loner /= np.linalg.norm(loner)
    assert (corpus_vectors @ loner).max() < -0.05
    served.add(["unlike anything else"], ids=["loner"], embeddings=loner[None])
    topics = client.post("/topics", json={"n": 2}).json()["topics"]
    assert topics[-1] == {"id": -1, "label": "outliers", "words": [], "size": 1, "ids": ["loner"]}
    assert sum(t["size"] for t in topics) == len(CORPUS) + 1
    kept = client.post("/topics", json={"n": 2, "outliers": False}).json()["topics"]
    assert [t["id"] for t in kept] == [0, 1]


def test_they_are_reads_under_public_reads(make_client):
    client = make_client(api_key=API_KEY, public_reads=True)
    assert client.post("/similar", json={"id": "hotel-1", "k": 1}).status_code == 200
    assert client.post("/topics", json={"n": 1}).status_code == 200
    locked = make_client(api_key=API_KEY)
    assert locked.post("/duplicates", json={}).status_code == 401
