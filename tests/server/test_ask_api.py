"""POST /ask over HTTP: JSON answers, Server-Sent Events, the error model, authentication."""

from __future__ import annotations

import json
import socket

from .conftest import API_KEY, error_of

MOON = "when did people first walk on the moon?"
UNANSWERABLE = "What is the boiling point of liquid nitrogen at sea level?"


def events_of(response) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a text/event-stream body."""
    assert response.headers["content-type"].startswith("text/event-stream")
    out = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_ask_answers_with_citations_that_map_to_hits(client):
    for path in ("/ask", "/collections/docs/ask"):
        r = client.post(path, json={"question": MOON})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answered"] and body["grounded"] and body["collection"] == "docs"
        assert "1969" in body["answer"] and "[1]" in body["answer"]
        assert {k: body["citations"][0][k] for k in ("n", "id")} == {"n": 1, "id": "space-1"}
        for c in body["citations"]:
            assert body["hits"][c["n"] - 1]["id"] == c["id"]
        assert body["model"].startswith("extractive:")


def test_ask_streams_hits_then_tokens_then_the_answer(client):
    for request in ({"json": {"question": MOON, "stream": True}},
                    {"json": {"question": MOON}, "headers": {"Accept": "text/event-stream"}}):
        with client.stream("POST", "/ask", **request) as r:
            r.read()
        assert r.status_code == 200
        events = events_of(r)
        kinds = [kind for kind, _ in events]
        assert kinds[0] == "hits" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"token"}
        answer = events[-1][1]
        assert "".join(d["text"] for k, d in events if k == "token") == answer["answer"]
        assert events[0][1]["hits"][0]["id"] == answer["citations"][0]["id"] == "space-1"


def test_nothing_relevant_is_a_refusal_not_an_error(client):
    r = client.post("/ask", json={"question": UNANSWERABLE})
    assert r.status_code == 200
    body = r.json()
    assert body["answered"] is False and body["citations"] == [] and body["model"] is None


def test_bad_input_gets_the_usual_json_errors(client, make_client):
    for body in (
        {"question": ""}, {"question": "x", "top_k": 3}, {"question": "x", "k": 0}, {}, {"question": "x", "k": 1000}
    ):
        r = client.post("/ask", json=body)
        assert r.status_code == 422, (body, r.text)
        error_of(r)
    r = client.post("/ask", json={"question": "x", "mode": "psychic"})
    assert r.status_code == 422
    assert error_of(client.post("/collections/nope/ask", json={"question": MOON}))["type"] == "collection_not_found"
    r = client.post("/ask", json={"question": "x", "stream": True, "where": {"year": {"$bogus": 1}}})
    assert r.status_code == 422 and error_of(r)["type"] == "invalid_input"  # refused before any event


def test_ask_needs_the_key_like_search_and_public_reads_let_it_through(make_client):
    locked = make_client(api_key=API_KEY)
    assert locked.post("/ask", json={"question": MOON}).status_code == 401
    assert locked.get("/ask/options").status_code == 401
    ok = locked.post("/ask", json={"question": MOON}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200
    public = make_client(api_key=API_KEY, public_reads=True)
    assert public.post("/ask", json={"question": MOON}).status_code == 200


def test_an_unreachable_model_is_a_502_or_an_error_event_and_llm_false_answers_offline(make_client):
    from semsearch.answer import ChatSettings

    client = make_client(llm=ChatSettings(closed_url(), model="m", connect_timeout=2))
    assert client.get("/ask/options").json() == {"llm": True, "model": "m"}
    r = client.post("/ask", json={"question": MOON})
    assert r.status_code == 502
    assert error_of(r)["type"] == "llm_unavailable" and "cannot reach the language model" in error_of(r)["message"]
    with client.stream("POST", "/ask", json={"question": MOON, "stream": True}) as r:
        r.read()
    events = events_of(r)
    assert [k for k, _ in events] == ["hits", "error"]
    assert events[-1][1]["error"]["type"] == "llm_unavailable"
    offline = client.post("/ask", json={"question": MOON, "llm": False})
    assert offline.status_code == 200 and offline.json()["model"].startswith("extractive:")
    # A refusal never reaches for the model, so an unreachable one does not matter.
    assert client.post("/ask", json={"question": UNANSWERABLE}).json()["answered"] is False


def test_options_say_the_server_answers_extractively_by_default(client):
    assert client.get("/ask/options").json() == {"llm": False, "model": None}
