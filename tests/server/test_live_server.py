"""A real uvicorn server on loopback: the API over TCP, and readers during writes."""

from __future__ import annotations

import threading
from collections import Counter

import httpx

from .conftest import API_KEY, CORPUS, error_of, live_server


def test_real_server_searches_writes_and_enforces_the_key(served):
    from semsearch.server import create_app

    app = create_app({"docs": served}, api_key=API_KEY)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert app.state.semsearch.ready.wait(60)
        assert http.get("/readyz").status_code == 200
        auth = {"Authorization": f"Bearer {API_KEY}"}
        r = http.post("/collections/docs/search", json={"query": "where to stay by the sea", "k": 2}, headers=auth)
        assert r.status_code == 200 and r.json()["results"][0]["hits"][0]["id"] == "hotel-1"
        no_key = http.post("/add", json={"documents": ["x"]})
        assert no_key.status_code == 401 and error_of(no_key)["type"] == "unauthorized"
        r = http.post(
            "/add", json={"documents": ["Kayaking tours along the fjords of Norway."], "ids": ["kayak"]}, headers=auth
        )
        assert r.status_code == 200
        r = http.post("/search", json={"query": "paddling in Norwegian fjords", "k": 1}, headers=auth)
        assert r.json()["results"][0]["hits"][0]["id"] == "kayak"
        big = http.post("/add", content=b"x" * (9 * 1024 * 1024), headers={**auth, "content-type": "application/json"})
        assert big.status_code == 413
        assert http.get("/healthz").status_code == 200  # still serving after refusing the big body


def versioned_text(doc: int, version: int) -> str:
    # Several sentences, so with a small chunk_size each document is several chunks.
    return (f"Document {doc} version {version}. It talks about harbour cranes and container ships. "
            f"Then it turns to mountain railways and alpine tunnels. Finally version {version} of document {doc} "
            f"ends with notes on tea plantations in the hills.")


def test_readers_never_fail_nor_see_half_written_documents_during_writes(tmp_path, minilm_path):
    """Threads search over HTTP while a writer adds and replaces multi-chunk documents."""
    from semsearch import Collection
    from semsearch.server import create_app

    col = Collection(tmp_path / "busy", chunk_size=24, chunk_overlap=0)
    col.add(["A starting document about harbour cranes."], ids=["seed"])
    docs, versions = 4, 3
    texts = {(d, v): versioned_text(d, v) for d in range(docs) for v in range(versions)}
    app = create_app({"busy": col}, warm_up=False)
    errors: list[str] = []
    seen = Counter()
    stop = threading.Event()

    def check_hit(hit: dict) -> None:
        if hit["id"] == "seed":
            return
        d, v = hit["metadata"]["doc"], hit["metadata"]["version"]
        full = texts[(d, v)]
        if hit["id"] != f"doc-{d}" or full[hit["start"]:hit["end"]] != hit["text"]:
            errors.append(f"inconsistent hit {hit}")
        seen[(d, v)] += 1

    def reader(url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while not stop.is_set():
                r = http.post("/search", json={"queries": ["container ships", "alpine tunnels"], "k": 10})
                if r.status_code != 200:
                    errors.append(f"search answered {r.status_code}: {r.text}")
                    continue
                for result in r.json()["results"]:
                    ids = [h["id"] for h in result["hits"]]
                    if len(ids) != len(set(ids)):
                        errors.append(f"a document appears twice: {ids}")
                    for hit in result["hits"]:
                        check_hit(hit)

    def writer(url: str) -> None:
        try:
            with httpx.Client(base_url=url, timeout=300) as http:
                for v in range(versions):
                    body = {"documents": [texts[(d, v)] for d in range(docs)], "ids": [f"doc-{d}" for d in range(docs)],
                            "metadatas": [{"doc": d, "version": v} for d in range(docs)]}
                    r = http.post("/upsert", json=body)
                    if r.status_code != 200:
                        errors.append(f"upsert answered {r.status_code}: {r.text}")
        finally:
            stop.set()

    with live_server(app) as url:
        readers = [threading.Thread(target=reader, args=(url,)) for _ in range(4)]
        for t in readers:
            t.start()
        writing = threading.Thread(target=writer, args=(url,))
        writing.start()
        writing.join(timeout=600)
        stop.set()
        for t in readers:
            t.join(timeout=120)
        with httpx.Client(base_url=url, timeout=60) as http:
            final = http.post("/search", json={"query": "tea plantations in the hills", "k": 10}).json()
    assert not errors, errors[:5]
    assert sum(seen.values()) > 0, "readers never saw a written document"
    # Once the writer is done, every document is at its last version and nothing else remains.
    found = {h["id"]: h["metadata"] for h in final["results"][0]["hits"] if h["id"] != "seed"}
    assert found == {f"doc-{d}": {"doc": d, "version": versions - 1} for d in range(docs)}
    assert col.verify()["consistent"]
    assert col.count() == docs + 1
    col.close()
    assert len(CORPUS) > 0
