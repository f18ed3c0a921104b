"""One answer, four doors: Python, `semsearch ask --json`, HTTP /ask and the MCP `ask` tool return the same
serialisation (``Answer.to_dict()``), refuse at the same cut, and flag an uncited model answer alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from semsearch.answer import NO_ANSWER, ChatSettings, ask

from .test_mcp import run_session

MOON = "When did people first land on the Moon?"
#: The calibrated relevance of its best hit is under the no-good-match line (0.5), its dense cosine
#: over the 0.35 the CLI used to refuse at on its own.
BELOW_THE_LINE = "vegetables in summer"
REPLY = "PWNED"


@contextmanager
def model_that_says(reply: str) -> Iterator[str]:
    """An OpenAI-compatible endpoint on loopback that streams ``reply`` whatever it is asked; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._send("application/json", json.dumps({"data": [{"id": "parrot"}]}).encode())

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            chunks = [{"choices": [{"delta": {"content": reply}, "finish_reason": None}]},
                      {"choices": [{"delta": {}, "finish_reason": "stop"}]}]
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self._send("text/event-stream", body.encode())

        def _send(self, kind: str, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def through_every_door(col, question: str, llm: str | None = None) -> dict[str, dict]:
    """The answer's dict from Python, the CLI, HTTP and MCP (the collection is closed afterwards)."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch.cli import app
    from semsearch.server import create_app

    answers = {"python": ask(col, question, llm=llm).to_dict()}
    with TestClient(create_app({"docs": col}, warm_up=False, llm=ChatSettings(llm) if llm else None)) as client:
        response = client.post("/ask", json={"question": question})
        assert response.status_code == 200, response.text
        answers["http"] = {k: v for k, v in response.json().items() if k not in ("collection", "took_ms")}
    path = str(col.path)
    col.close()
    extra = ["--llm-url", llm] if llm else []
    r = CliRunner().invoke(app, ["ask", question, "--json", "-c", path, *extra])
    assert r.exit_code == 0, r.output
    answers["cli"] = json.loads(r.stdout)

    async def scenario(session) -> None:
        result = await session.call_tool("ask", {"question": question})
        assert not result.isError, result.content
        answers["mcp"] = {k: v for k, v in result.structuredContent.items() if k != "collection"}

    run_session([path, *extra], scenario)
    return answers


def same(a: dict, b: dict) -> bool:
    """The same answer; hit scores equal to float noise (each process encodes the question itself)."""

    def without_scores(data: dict) -> dict:
        return {**data, "hits": [{k: v for k, v in h.items() if k not in ("score", "scores")} for h in data["hits"]]}

    def scores(data: dict) -> list[float]:
        return [x for h in data["hits"] for x in (h["score"], *h["scores"].values())]

    return without_scores(a) == without_scores(b) and scores(a) == pytest.approx(scores(b), abs=1e-4)


def test_every_door_returns_the_same_checkable_answer(docs_collection):
    answers = through_every_door(docs_collection, MOON)
    python = answers["python"]
    for door, data in answers.items():
        assert same(data, python), door
    assert python["answered"] and python["grounded"] and python["warning"] is None
    assert python["removed_citations"] == []
    (cited,) = python["citations"]
    assert (cited["n"], cited["id"]) == (1, "apollo")
    # What the reader needs to check the answer: the passage given to the model, and where it stands.
    from .conftest import DOCS

    document = dict((i, t) for i, t, _ in DOCS)["apollo"]
    assert cited["text"] == document[cited["start"]:cited["end"]]
    for sentence in python["answer"].split(" [1]"):
        assert sentence.strip() in cited["text"]


def test_every_door_refuses_at_the_same_line(docs_collection):
    answers = through_every_door(docs_collection, BELOW_THE_LINE)
    for door, data in answers.items():
        assert data["answered"] is False and data["answer"] == NO_ANSWER, door
        assert same(data, answers["python"]), door


def test_an_uncited_model_answer_is_flagged_the_same_way_by_every_door(docs_collection):
    with model_that_says(REPLY) as url:
        answers = through_every_door(docs_collection, MOON, llm=url)
    for door, data in answers.items():
        assert data["answer"] == REPLY, door
        assert data["grounded"] is False and data["citations"] == [], door
        assert "cites none of its sources" in data["warning"], door
        assert same(data, answers["python"]), door
