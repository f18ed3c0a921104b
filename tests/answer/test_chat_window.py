"""A prompt is never cut silently: the client reads the server's context size where the server reports it
(llama.cpp's /props and /tokenize), and an answer the model stopped for length is flagged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from semsearch.answer import ChatSettings, Retrieved, ask, stream_ask

QUESTION = "How fast does the X200 kettle boil water?"


@contextmanager
def llama_server_like(n_ctx: int, finish_reason: str = "stop") -> Iterator[tuple[str, list[int]]]:
    """A loopback endpoint answering as llama.cpp's server does: /props reports ``n_ctx``, /tokenize counts
    (one token per word here), chat completions stream "It boils fast [1]." Yields (API base URL, the token
    length of every prompt it was sent)."""
    prompts: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/props":
                self._send({"default_generation_settings": {"n_ctx": n_ctx}})
            else:
                self._send({"data": [{"id": "llama"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path == "/tokenize":
                self._send({"tokens": list(range(len(body["content"].split())))})
                return
            prompts.append(sum(len(m["content"].split()) for m in body["messages"]))
            chunks = [{"choices": [{"delta": {"content": "It boils fast [1]."}, "finish_reason": None}]},
                      {"choices": [{"delta": {}, "finish_reason": finish_reason}]}]
            data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self._send(data, "text/event-stream")

        def _send(self, payload: object, kind: str = "application/json") -> None:
            body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", prompts
    finally:
        server.shutdown()
        server.server_close()


def manuals(col) -> None:
    docs = [" ".join(f"The X200 kettle batch {i}.{j} boils a litre of water in {30 + j} seconds." for j in range(40))
            for i in range(6)]
    col.add(docs, ids=[f"manual-{i}" for i in range(6)])


def test_a_prompt_that_would_not_leave_room_to_answer_is_never_sent(collection):
    manuals(collection)
    with llama_server_like(n_ctx=900) as (url, prompts):
        events = list(stream_ask(collection, QUESTION, context_tokens=1500, min_relevance=0.0,
                                 llm=ChatSettings(url, max_tokens=200)))
    contexts = [e.passages for e in events if isinstance(e, Retrieved)]
    assert len(contexts) >= 2  # the first context did not fit: fewer passages, asked again
    assert prompts and all(p + 200 <= 900 for p in prompts)  # every prompt sent left room for the answer
    answer = events[-1].answer
    assert answer.grounded and answer.warning is None


def test_an_answer_the_model_stopped_for_length_is_flagged(collection):
    manuals(collection)
    with llama_server_like(n_ctx=100_000, finish_reason="length") as (url, _):
        answer = ask(collection, QUESTION, min_relevance=0.0, llm=ChatSettings(url, max_tokens=50))
    assert answer.cut_short and "cut short" in answer.to_dict()["warning"]
