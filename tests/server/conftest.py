"""Fixtures for the HTTP server: a small real collection, in-process clients, a live uvicorn."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytest.importorskip("fastapi", reason="the server extra (pip install 'semsearch[server]')")
pytest.importorskip("httpx", reason="httpx drives the API tests")

API_KEY = "test-key-0123456789abcdef"

CORPUS = [
    ("hotel-1", "Budget-friendly lodging by the coast, five minutes from the sand.", {"topic": "travel", "year": 2021}),
    ("recipe-1", "A recipe for chocolate cake with dark cocoa and butter.", {"topic": "food", "year": 2019}),
    ("python-1", "How to parse command line arguments in Python with argparse.", {"topic": "code", "year": 2023}),
    ("space-1", "Apollo 11 landed on the Moon in 1969 and Neil Armstrong walked on it.",
     {"topic": "history", "year": 1969}),
    ("garden-1", "Water tomato plants deeply twice a week during hot summer days.", {"topic": "garden", "year": 2022}),
    ("xss-1", "<script>alert('pwned')</script> Markup in a document must show as text.",
     {"topic": "code", "year": 2024}),
]


@pytest.fixture(scope="session")
def corpus_vectors(minilm_path):
    """CORPUS encoded once per session by the real model (encoding is the slow part on a busy CPU)."""
    from semsearch import Embedder

    return Embedder().encode_documents([t for _, t, _ in CORPUS])


@pytest.fixture()
def served(tmp_path, corpus_vectors):
    """A fresh collection holding CORPUS (the real MiniLM model, loaded once per process)."""
    from semsearch import Collection

    col = Collection(tmp_path / "docs")
    col.add([t for _, t, _ in CORPUS], ids=[i for i, _, _ in CORPUS], metadatas=[m for _, _, m in CORPUS],
            embeddings=corpus_vectors)
    yield col
    col.close()


@pytest.fixture()
def make_client(served):
    """Build a TestClient over ``served`` (as collection "docs") with create_app's options."""
    from fastapi.testclient import TestClient

    from semsearch.server import create_app

    clients = []

    def make(collections=None, **options) -> TestClient:
        options.setdefault("warm_up", False)
        client = TestClient(create_app(collections or {"docs": served}, **options))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client):
    return make_client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` in a real uvicorn server on a free loopback port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def error_of(response) -> dict:
    """The ``error`` object every failure carries, checking its shape on the way."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message"}, body
    assert body["error"]["message"], body
    return body["error"]
