"""The pieces of bench_server.py: data, the three ways of searching, the writer, the server process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "msmarco-5k"
CACHE = Path(os.environ.get("SEMSEARCH_BENCH_CACHE", ROOT / "bench" / ".cache"))


def load_texts(n_passages: int) -> tuple[list[str], list[str]]:
    """(the first n passages, the 50 TREC DL queries)."""
    if not DATA.exists():
        sys.exit(f"needs {DATA} (the shared MS MARCO subset); not available on this machine")
    with open(DATA / "corpus.jsonl") as f:
        passages = [json.loads(line)["text"] for _, line in zip(range(n_passages), f)]
    with open(DATA / "queries.jsonl") as f:
        queries = [json.loads(line)["text"] for line in f]
    return passages, queries


def unique_queries(skip: int, n: int) -> list[str]:
    """n distinct query-like texts (4-9 words of sentences of passages the collection does not hold)."""
    out: list[str] = []
    seen: set[str] = set()
    with open(DATA / "corpus.jsonl") as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            for sentence in re.split(r"(?<=[.?!])\s+", json.loads(line)["text"]):
                words = sentence.strip(" .?!").split()
                text = " ".join(words[: 4 + len(out) % 6]).lower()
                if len(words) >= 4 and text not in seen:
                    seen.add(text)
                    out.append(text)
                    if len(out) == n:
                        return out
    return out


def build_collection(n_docs: int, n_passages: int) -> Path:
    """The benchmark collection, built once and reused (cached under bench/.cache)."""
    from semsearch import Collection, Embedder

    folder = CACHE / f"server-{n_docs}"
    if (folder / "collection.sqlite3").exists():
        with Collection(folder) as col:
            if col.count() >= n_docs:
                return folder
        import shutil

        shutil.rmtree(folder)
    passages, _ = load_texts(n_passages)
    vec_file = CACHE / f"msmarco-{n_passages}.npy"
    if vec_file.exists():
        base = np.load(vec_file)
    else:
        CACHE.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        base = Embedder().encode_documents(passages)
        np.save(vec_file, base)
        print(f"encoded {len(passages)} passages in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    rng = np.random.default_rng(0)
    with Collection(folder) as col:
        for c in range(n_docs // n_passages):
            noise = rng.normal(scale=0.5 / np.sqrt(base.shape[1]), size=base.shape).astype(np.float32)
            vectors = base + noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = [f"p{i}-{c}" for i in range(len(passages))]
            metas = [{"passage": i, "copy": c} for i in range(len(passages))]
            col.add(passages, ids=ids, metadatas=metas, embeddings=vectors)
        col.flush()
    return folder


# -- the three ways of searching -----------------------------------------------------------
def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system, all threads) of this process, or of process ``pid`` (Linux /proc)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(latencies: list[float], wall: float, errors: int) -> dict:
    def pct(q: float) -> float:
        return float(np.percentile(latencies, q)) * 1000 if latencies else float("nan")

    return {"n": len(latencies), "errors": errors, "qps": len(latencies) / wall if wall else 0.0,
            "p50_ms": pct(50), "p99_ms": pct(99)}


def run_threads(search, queries: Iterator[str], clients: int, requests: int, seconds: float) -> dict:
    """``search(query)`` from ``clients`` threads until ``requests`` are done or ``seconds`` have passed."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    counter = iter(range(requests))

    def client() -> None:
        for _ in counter:
            if time.perf_counter() > deadline:
                return
            with lock:
                query = next(queries)
            t = time.perf_counter()
            search(query)
            with lock:
                latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    return summary(latencies, time.perf_counter() - started, errors=0)


async def run_http(url: str, queries: Iterator[str], clients: int, requests: int, seconds: float, k: int) -> dict:
    """POST /search from ``clients`` async httpx connections (keep-alive), bounded like run_threads."""
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def client() -> None:
            nonlocal errors
            for _ in counter:
                if time.perf_counter() > deadline:
                    return
                t = time.perf_counter()
                r = await http.post("/search", json={"query": next(queries), "k": k})
                if r.status_code != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
    return summary(latencies, time.perf_counter() - started, errors)


def run_http_stdlib(url: str, queries: Iterator[str], clients: int, requests: int, seconds: float, k: int) -> dict:
    """POST /search from ``clients`` threads, each with its own keep-alive ``http.client``
    connection, bounded like run_threads: a lean load generator, as wrk would be. The client
    shares the machine's 2 cores with the server, so its own cost shows in the server's figures:
    with httpx's async client one client measured 0.69-0.73x of in-process, with this one 0.90x
    (bench/RESULTS.md, the quiet server rerun of 2026-11-29)."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(url)
    local = threading.local()
    errors = [0]

    def search(query: str) -> None:
        con = getattr(local, "con", None)
        if con is None:
            con = local.con = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
        con.request("POST", "/search", json.dumps({"query": query, "k": k}), {"Content-Type": "application/json"})
        response = con.getresponse()
        response.read()
        if response.status != 200:
            errors[0] += 1

    result = run_threads(search, queries, clients, requests, seconds)
    result["errors"] = errors[0]
    return result


class Batched:
    """The server's batcher, in-process: what batching gives without HTTP."""

    def __init__(self, col, k: int) -> None:
        from semsearch.collection import SearchOptions
        from semsearch.server.batching import SearchBatcher

        self.batcher, self.col = SearchBatcher(), col
        self.options = SearchOptions.checked(k=k, has_text=True)

    def search(self, query: str) -> list:
        from semsearch.server.batching import SearchJob

        return self.batcher.search(SearchJob(self.col, [query], self.options))

    def stats(self) -> tuple[int, int, int, int]:
        """(batches, jobs, encode calls, queries encoded) so far."""
        sizes = self.batcher.batch_sizes
        return len(sizes), sum(sizes), self.col.searcher.model_calls, self.col.searcher.encoded_queries


# -- the writer and the server ----------------------------------------------------------------
class Writer:
    """Adds batches of real passages (encoded by whoever receives them) until stopped."""

    def __init__(self, add_batch, passages: list[str], batch: int = 16) -> None:
        self.add_batch, self.passages, self.batch = add_batch, passages, batch
        self.stop = threading.Event()
        self.docs = self.errors = self.seq = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            texts = [self.passages[(self.seq + i) % len(self.passages)] for i in range(self.batch)]
            ids = [f"w{os.getpid()}-{time.time_ns()}-{i}" for i in range(self.batch)]
            self.seq += self.batch
            try:
                self.add_batch(texts, ids, [{"writer": True}] * self.batch)
                self.docs += self.batch
            except Exception:  # noqa: BLE001 - counted and reported
                self.errors += 1

    def __enter__(self) -> Writer:  # noqa: PYI034 - a final class
        self.started = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.rate = self.docs / (time.perf_counter() - self.started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, torch_threads: int, src: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`semsearch serve folder` on a free loopback port, once /readyz says ready and server.json is written.

    ``src``: run the server from another checkout's ``src`` (e.g. main before this branch, to
    measure before and after in one run); such a server may not write server.json, so only
    /readyz is waited for.
    """
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src or ROOT / "src")}
    env.pop("SEMSEARCH_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch.cli", "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
         "--torch-threads", str(torch_threads)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            ready = httpx.get(url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        announced = (folder / "server.json").exists() and str(port) in (folder / "server.json").read_text()
        if ready and (announced or src is not None):
            return proc, url
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("server did not become ready in 600s")
