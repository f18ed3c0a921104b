"""Load benchmark of `semsearch serve`: QPS and p50/p99 search latency over loopback HTTP.

Measures 1, 8 and 32 concurrent clients (async httpx) on a 100k-document collection, with
and without a writer adding documents at the same time, against the same queries through
the Python API in-process with the same number of threads (the server's overhead is the
ratio of the two). Runs are interleaved (in-process, server, in-process, ...) and repeated;
medians are reported. Loopback only; every run is bounded in requests and seconds.

The collection: 1,000 real MS MARCO passages (../shared/data/msmarco-5k) encoded by the
real all-MiniLM-L6-v2, then 100 noisy copies of each vector (Gaussian noise, renormalised,
cosine ~0.9 to the original) stored with the passage's real text: 100,000 documents whose
vectors look like real ones, without 100k encodings on a shared 2-core CPU. Queries are the
50 TREC DL queries of the same set, encoded per request as a user's query would be.

    python bench/bench_server.py            # ~10 minutes; results printed as markdown
    python bench/bench_server.py --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "msmarco-5k"
CACHE = Path(os.environ.get("SEMSEARCH_BENCH_CACHE", ROOT / "bench" / ".cache"))


def load_texts(n_passages: int) -> tuple[list[str], list[str]]:
    if not DATA.exists():
        sys.exit(f"needs {DATA} (the shared MS MARCO subset); not available on this machine")
    with open(DATA / "corpus.jsonl") as f:
        passages = [json.loads(line)["text"] for _, line in zip(range(n_passages), f)]
    with open(DATA / "queries.jsonl") as f:
        queries = [json.loads(line)["text"] for line in f]
    return passages, queries


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
    copies = n_docs // n_passages
    with Collection(folder) as col:
        for c in range(copies):
            noise = rng.normal(scale=0.5 / np.sqrt(base.shape[1]), size=base.shape).astype(np.float32)
            vectors = base + noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = [f"p{i}-{c}" for i in range(len(passages))]
            metas = [{"passage": i, "copy": c} for i in range(len(passages))]
            col.add(passages, ids=ids, metadatas=metas, embeddings=vectors)
        col.flush()
    return folder


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# -- the two ways of searching -----------------------------------------------------------
def run_in_process(col, queries: list[str], clients: int, requests: int, seconds: float, k: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    counter = iter(range(requests))

    def client() -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            t = time.perf_counter()
            col.search(queries[i % len(queries)], k=k)
            with lock:
                latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    return summary(latencies, time.perf_counter() - started, errors=0)


async def run_http(url: str, queries: list[str], clients: int, requests: int, seconds: float, k: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def client() -> None:
            nonlocal errors
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t = time.perf_counter()
                r = await http.post("/search", json={"query": queries[i % len(queries)], "k": k})
                if r.status_code != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
    return summary(latencies, time.perf_counter() - started, errors)


def summary(latencies: list[float], wall: float, errors: int) -> dict:
    return {
        "n": len(latencies), "errors": errors, "qps": len(latencies) / wall if wall else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
    }


# -- writers -------------------------------------------------------------------------------
class Writer:
    """Adds batches of real passages (encoded by whoever receives them) until stopped."""

    def __init__(self, add_batch, passages: list[str], batch: int = 16) -> None:
        self.add_batch, self.passages, self.batch = add_batch, passages, batch
        self.stop = threading.Event()
        self.docs = 0
        self.errors = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.seq = 0

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

    def __enter__(self) -> Writer:
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


def start_server(folder: Path, torch_threads: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("SEMSEARCH_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch.cli", "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
         "--torch-threads", str(torch_threads)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("server did not become ready in 300s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200, help="most requests per run")
    parser.add_argument("--seconds", type=float, default=15.0, help="most seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--torch-threads", type=int, default=1, help="as semsearch serve --torch-threads")
    parser.add_argument("--quick", action="store_true", help="10k docs, 1 repeat, short runs")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.requests, args.seconds, args.repeats = 10_000, 60, 5.0, 1

    import httpx

    from semsearch import Collection

    from semsearch.server.cli_serve import set_compute_threads

    # The same thread cap `semsearch serve` uses (--torch-threads 1), so the ratio is the HTTP layer's cost.
    set_compute_threads(args.torch_threads)
    folder = build_collection(args.docs, args.passages)
    passages, queries = load_texts(args.passages)
    load_before = os.getloadavg()
    col = Collection(folder)
    col.delete(where={"writer": True})  # an earlier run's writer documents: every run starts from the same collection
    col.flush()
    col.search(queries[0], k=args.k)  # load the model and index
    proc, url = start_server(folder, args.torch_threads)
    results: dict[tuple[str, bool, int], list[dict]] = {}
    writer_rates: dict[tuple[str, int], list[float]] = {}
    try:
        with httpx.Client(base_url=url, timeout=300) as http:
            http_add = lambda texts, ids, metas: http.post(  # noqa: E731
                "/add", json={"documents": texts, "ids": ids, "metadatas": metas}).raise_for_status()
            for repeat in range(args.repeats):
                for writing in (False, True):
                    for clients in args.clients:
                        for way in ("python", "http"):
                            if writing:
                                add = (lambda t, i, m: col.add(t, ids=i, metadatas=m)) if way == "python" else http_add
                                with Writer(add, passages) as w:
                                    r = bench_once(way, col, url, queries, clients, args)
                                writer_rates.setdefault((way, clients), []).append(w.rate)
                                r["writer_errors"] = w.errors
                            else:
                                r = bench_once(way, col, url, queries, clients, args)
                            results.setdefault((way, writing, clients), []).append(r)
                            print(f"repeat {repeat} {way:6} writer={writing!s:5} c={clients:2}: "
                                  f"{r['qps']:7.1f} qps p50 {r['p50_ms']:7.1f} ms p99 {r['p99_ms']:7.1f} ms "
                                  f"n={r['n']} errors={r['errors']}", file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        final_docs = col.count()
        col.close()
    report(results, writer_rates, args, load_before, os.getloadavg(), final_docs)


def bench_once(way: str, col, url: str, queries: list[str], clients: int, args) -> dict:  # noqa: ANN001
    if way == "python":
        return run_in_process(col, queries, clients, args.requests, args.seconds, args.k)
    return asyncio.run(run_http(url, queries, clients, args.requests, args.seconds, args.k))


def report(results, writer_rates, args, load_before, load_after, final_docs) -> None:  # noqa: ANN001
    med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    print(f"\n{args.docs:,} documents at start ({final_docs:,} at the end), Flat index, all-MiniLM-L6-v2, k={args.k}; "
          f"torch/FAISS threads {args.torch_threads} in both processes; {args.repeats} interleaved repeats, medians; each run ≤{args.requests} requests and ≤{args.seconds:g}s. "
          f"Load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (2-core shared machine).\n")
    print("| writer | clients | Python API QPS | HTTP QPS | QPS ratio (HTTP/Python) | Python p50 / p99 ms | HTTP p50 / p99 ms | p50 ratio | writer docs/s (Python / HTTP) | HTTP errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for writing in (False, True):
        for c in args.clients:
            py, ht = results[("python", writing, c)], results[("http", writing, c)]
            rates = (f"{statistics.median(writer_rates[('python', c)]):.0f} / {statistics.median(writer_rates[('http', c)]):.0f}"
                     if writing else "–")
            print(f"| {'adding' if writing else 'none'} | {c} | {med(py, 'qps'):.1f} | {med(ht, 'qps'):.1f} | "
                  f"{med(ht, 'qps') / med(py, 'qps'):.2f} | {med(py, 'p50_ms'):.1f} / {med(py, 'p99_ms'):.1f} | "
                  f"{med(ht, 'p50_ms'):.1f} / {med(ht, 'p99_ms'):.1f} | {med(ht, 'p50_ms') / med(py, 'p50_ms'):.2f} | "
                  f"{rates} | {sum(r['errors'] for r in ht)} |")


if __name__ == "__main__":
    main()
