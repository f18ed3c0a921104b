"""Load benchmark of `semsearch serve`: QPS and p50/p99 search latency over loopback HTTP.

Three ways of searching the same 100k-document collection, at 1, 8 and 32 concurrent clients,
with and without a writer adding documents at the same time:
- python:  `Collection.search` from N threads in this process (the peer: the library as is);
- batched: the server's batcher (semsearch.server.batching) in this process, from N threads
           (what batching alone gives, without HTTP);
- http:    `semsearch serve` in its own process, N client threads with one keep-alive
           `http.client` connection each (`--client httpx`: N async httpx connections, the
           earlier runs' client, which costs the shared 2 cores more per request).
Runs are interleaved (python, batched, http, python, ...) and repeated; medians are reported.
Then `semsearch search` end to end: a cold process vs the same command answered by the server
(it finds it through the collection's server.json), with the floors (empty Python, imports).

The collection: 1,000 real MS MARCO passages (../shared/data/msmarco-5k) encoded by the real
all-MiniLM-L6-v2, then 100 noisy copies of each vector (Gaussian noise, renormalised, cosine
~0.9 to the original) stored with the passage's real text: 100,000 documents whose vectors
look like real ones, without 100k encodings on a shared 2-core CPU. Queries: distinct
query-like texts (4-9 words of sentences of other msmarco-5k passages), never repeated within
a process, so every request encodes its query as a new user's would; `--queries trec` cycles
the 50 TREC DL queries instead (after the first 50, every query vector is a cache hit).

    python bench/bench_server.py            # ~15 minutes; results printed as markdown
    python bench/bench_server.py --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
from pathlib import Path

from server_cli import cli_latency, print_cli
from server_load import (
    Batched,
    Writer,
    build_collection,
    cpu_seconds,
    load_texts,
    run_http,
    run_http_stdlib,
    run_threads,
    start_server,
    unique_queries,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
WAYS = ("python", "batched", "http")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200, help="most requests per run")
    parser.add_argument("--seconds", type=float, default=15.0, help="most seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", choices=["unique", "trec"], default="unique")
    parser.add_argument("--client", choices=["stdlib", "httpx"], default="stdlib",
                        help="the HTTP load generator: threads with http.client connections, or async httpx")
    parser.add_argument("--cli-runs", type=int, default=5, help="runs of each CLI way (0: skip)")
    parser.add_argument("--torch-threads", type=int, default=1, help="as semsearch serve --torch-threads")
    parser.add_argument("--quick", action="store_true", help="10k docs, 1 repeat, short runs")
    parser.add_argument("--json-out", help="also write every run to this file")
    parser.add_argument("--before-src", help="also measure HTTP against a server run from this src folder "
                        "(e.g. /work/main/src: the server before batching), interleaved with the others")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.requests, args.seconds, args.repeats, args.cli_runs = 10_000, 60, 5.0, 1, 2

    import httpx

    from semsearch import Collection
    from semsearch.server.cli_serve import set_compute_threads

    # The same thread cap `semsearch serve` uses (--torch-threads 1), so the ratio is the serving layer's cost.
    set_compute_threads(args.torch_threads)
    folder = build_collection(args.docs, args.passages)
    passages, trec = load_texts(args.passages)
    ways = WAYS + (("before",) if args.before_src else ())
    per_way = args.repeats * 2 * len(args.clients) * args.requests
    pool = unique_queries(args.passages, per_way * len(ways) + 200)
    if args.queries == "trec":
        streams = {way: itertools.cycle(trec) for way in ways}
    else:
        if len(pool) < per_way * len(ways) + 200:
            print(f"only {len(pool)} distinct queries: some repeat", file=sys.stderr)
        streams = {way: itertools.cycle(pool[i * per_way:(i + 1) * per_way] or pool) for i, way in enumerate(ways)}
    cli_queries = pool[-100:]
    load_before = os.getloadavg()
    col = Collection(folder)
    col.delete(where={"writer": True})  # an earlier run's writer documents: every run starts from the same collection
    col.flush()
    col.warm_up()  # the model, the vector index and BM25 in memory, as the server's warm-up loads them
    batched = Batched(col, args.k)
    batched.search("warm up the batcher's encoder")
    proc, url = start_server(folder, args.torch_threads)
    before_proc = before_url = None
    if args.before_src:  # its own copy of the collection: two servers never write one folder
        import shutil

        copy = folder.with_name(folder.name + "-before")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("server.json", "*.lock"))
        before_proc, before_url = start_server(copy, args.torch_threads, src=Path(args.before_src))
    servers = {"http": (proc.pid, url), "before": (before_proc.pid if before_proc else None, before_url)}
    results: dict[tuple[str, bool, int], list[dict]] = {}
    writer_rates: dict[tuple[str, int], list[float]] = {}
    batching: dict[tuple[bool, int], list[tuple[int, int, int, int]]] = {}
    try:
        identical = same_answers(col, url, pool[-200:-100], args.k)
        # Before any writer: its documents repeat passages, and equal scores may then tie differently.
        cli = cli_latency(folder, url, cli_queries, args.cli_runs, args.k) if args.cli_runs else None
        with (httpx.Client(base_url=url, timeout=300) as http,
              httpx.Client(base_url=before_url or url, timeout=300) as old):
            def http_add(texts, ids, metas):
                http.post("/add", json={"documents": texts, "ids": ids, "metadatas": metas}).raise_for_status()

            def before_add(texts, ids, metas):
                old.post("/add", json={"documents": texts, "ids": ids, "metadatas": metas}).raise_for_status()

            def local_add(texts, ids, metas):
                col.add(texts, ids=ids, metadatas=metas)

            for repeat in range(args.repeats):
                for writing in (False, True):
                    for clients in args.clients:
                        for way in ways:
                            before = batched.stats()
                            add = {"http": http_add, "before": before_add}.get(way, local_add)
                            if writing:
                                with Writer(add, passages) as w:
                                    r = run_once(way, col, batched, *servers.get(way, (None, url)), streams[way],
                                                 clients, args)
                                writer_rates.setdefault((way, clients), []).append(w.rate)
                                r["writer_errors"] = w.errors
                            else:
                                r = run_once(way, col, batched, *servers.get(way, (None, url)), streams[way],
                                             clients, args)
                            if way == "batched":
                                after = batched.stats()
                                batching.setdefault((writing, clients), []).append(
                                    tuple(a - b for a, b in zip(after, before)))  # type: ignore[arg-type]
                            results.setdefault((way, writing, clients), []).append(r)
                            print(f"repeat {repeat} {way:7} writer={writing!s:5} c={clients:2}: "
                                  f"{r['qps']:7.1f} qps p50 {r['p50_ms']:7.1f} ms p99 {r['p99_ms']:7.1f} ms "
                                  f"cpu/search {r['cpu_ms']:6.1f} ms n={r['n']} errors={r['errors']}",
                                  file=sys.stderr, flush=True)
    finally:
        for p in (proc, before_proc):
            if p is not None:
                p.terminate()
                p.wait(timeout=60)
        batched.batcher.close()
        final_docs = col.count()
        col.close()
    report(results, writer_rates, batching, args, load_before, os.getloadavg(), final_docs, identical)
    if args.before_src:
        report_before(results, writer_rates, args)
    if cli:
        print_cli(cli)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"runs": {f"{w}|{wr}|{c}": v for (w, wr, c), v in results.items()}, "cli": cli}, f, indent=1)


def run_once(way: str, col, batched: Batched, server_pid: int | None, url: str, queries, clients: int, args) -> dict:
    """One run; ``cpu_ms`` is the CPU time per search of the process that searched (writer included)."""
    pid = server_pid if way in ("http", "before") else None
    before = cpu_seconds(pid)
    if way == "python":
        r = run_threads(lambda q: col.search(q, k=args.k), queries, clients, args.requests, args.seconds)
    elif way == "batched":
        r = run_threads(batched.search, queries, clients, args.requests, args.seconds)
    elif args.client == "httpx":
        r = asyncio.run(run_http(url, queries, clients, args.requests, args.seconds, args.k))
    else:
        r = run_http_stdlib(url, queries, clients, args.requests, args.seconds, args.k)
    r["cpu_ms"] = (cpu_seconds(pid) - before) * 1000 / max(r["n"], 1)
    return r


def same_answers(col, url: str, queries: list[str], k: int) -> str:
    """How many of these queries get over HTTP exactly the hits Collection.search gives in-process."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    same = 0
    # In a fresh thread, as the server's workers search: FAISS's thread count is per thread, and
    # torch.set_num_threads (set_compute_threads) lowered this main thread's, which rounds differently.
    with httpx.Client(base_url=url, timeout=300) as http, ThreadPoolExecutor(1) as thread:
        for q in queries:
            remote = http.post("/search", json={"query": q, "k": k}).json()["results"][0]["hits"]
            local = thread.submit(col.search, q, k=k).result()
            same += remote == [h.to_dict() for h in local]
    return f"{same}/{len(queries)}"


def report(results, writer_rates, batching, args, load_before, load_after, final_docs, identical) -> None:
    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"\n{args.docs:,} documents at start ({final_docs:,} at the end), auto index, all-MiniLM-L6-v2, k={args.k}, "
          f"{args.queries} queries; torch threads {args.torch_threads} in both processes (FAISS: its default); "
          f"{args.repeats} "
          f"interleaved repeats, medians; each run ≤{args.requests} requests and ≤{args.seconds:g}s. Load average "
          f"before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (2 cores, shared). HTTP answers identical to "
          f"in-process Collection.search: {identical}.\n")
    print("| writer | clients | QPS python / batched / HTTP | HTTP ÷ python | HTTP ÷ batched | p50 / p99 ms python "
          "| p50 / p99 ms batched | p50 / p99 ms HTTP | CPU ms per search python / batched / HTTP server "
          "| writer docs/s (python / batched / HTTP) | HTTP errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for writing in (False, True):
        for c in args.clients:
            py, ba, ht = (results[(w, writing, c)] for w in WAYS)
            rates = " / ".join(f"{statistics.median(writer_rates[(w, c)]):.0f}" for w in WAYS) if writing else "–"
            lat = [f"{med(r, 'p50_ms'):.1f} / {med(r, 'p99_ms'):.1f}" for r in (py, ba, ht)]
            cpu = " / ".join(f"{med(r, 'cpu_ms'):.1f}" for r in (py, ba, ht))
            print(f"| {'adding' if writing else 'none'} | {c} | {med(py, 'qps'):.1f} / {med(ba, 'qps'):.1f} / "
                  f"{med(ht, 'qps'):.1f} | {med(ht, 'qps') / med(py, 'qps'):.2f} | "
                  f"{med(ht, 'qps') / med(ba, 'qps'):.2f} | "
                  f"{' | '.join(lat)} | {cpu} | {rates} | {sum(r['errors'] for r in ht)} |")
    print("\nBatching (the in-process batcher): requests per batch, queries per model call.\n")
    print("| writer | clients | requests per batch | queries per encode |")
    print("|---|---:|---:|---:|")
    for (writing, c), runs in sorted(batching.items()):
        batches, jobs, calls, encoded = (sum(x) for x in zip(*runs))
        print(f"| {'adding' if writing else 'none'} | {c} | {jobs / max(batches, 1):.2f} | "
              f"{encoded / max(calls, 1):.2f} |")


def report_before(results, writer_rates, args) -> None:
    """HTTP before (a server from --before-src) and after (this checkout), from the same interleaved runs."""
    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"\nHTTP before ({args.before_src}) and after (this checkout), the same runs as above.\n")
    print("| writer | clients | QPS before / after | after ÷ before | before ÷ python | p50 / p99 ms before "
          "| p50 / p99 ms after | writer docs/s before / after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for writing in (False, True):
        for c in args.clients:
            old, new, py = (results[(w, writing, c)] for w in ("before", "http", "python"))
            rates = (f"{statistics.median(writer_rates[('before', c)]):.0f} / "
                     f"{statistics.median(writer_rates[('http', c)]):.0f}") if writing else "–"
            print(f"| {'adding' if writing else 'none'} | {c} | {med(old, 'qps'):.1f} / {med(new, 'qps'):.1f} | "
                  f"{med(new, 'qps') / med(old, 'qps'):.2f} | {med(old, 'qps') / med(py, 'qps'):.2f} | "
                  f"{med(old, 'p50_ms'):.1f} / {med(old, 'p99_ms'):.1f} | {med(new, 'p50_ms'):.1f} / "
                  f"{med(new, 'p99_ms'):.1f} | {rates} |")


if __name__ == "__main__":
    main()
