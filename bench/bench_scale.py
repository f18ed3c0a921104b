"""Cold paths at scale (issue 25): semsearch at 1,000,000 documents, searched as a user does, beside LanceDB,
Chroma and Qdrant on the same data.

Data (bench/scale_data.py): msmarco-5k's passages made unique and repeated to ``--n`` documents,
embeddings given (nothing is encoded while building), metadata ``cat`` (100 values) and ``num``
(0..999). Filters: none, 1% ``{"cat": "c07"}``, 10% ``{"num": {"$lt": 100}}`` and
``{"cat": {"$in": [10 values]}}``, 50% ``{"num": {"$lt": 500}}``. Collections live outside the
repository (default /work/bench-data); a built one is reused.

Steps (each writes its part of ``--out``, bench/results_scale.json by default):

    build   build the collection with default settings (``Collection.add`` in batches, then close):
            wall time, disk per part, and the ratio to text + one float32 vector per document.
    cold    ``semsearch search QUERY -c PATH --server off --json --mode M [--where F]``, a new process
            each time (the OS file cache warm, as on a machine that searched before): wall time and the
            child's peak RSS (os.wait4), for dense, lexical and hybrid, each filter; every repeat runs
            every case once in rotating order, a different query each time; medians.
    server  ``semsearch serve PATH``: seconds until /readyz says ready; then per mode and filter,
            sequential POST /search of distinct queries: p50/p99.
    peers   the same documents in LanceDB (embedded, IVF_PQ vector index, BTREE/BITMAP scalar indexes,
            prefilter), Chroma's PersistentClient (its HNSW) and Qdrant's local mode: build time, disk,
            the first filtered dense query of a new process (wall, peak RSS; the process imports the
            client and opens the store), and the warm p50 in one process. semsearch is measured the
            same way with the same query vectors (``Collection.search(vector, mode="dense")``).

    PYTHONPATH=src python bench/bench_scale.py build --n 1000000
    PYTHONPATH=src python bench/bench_scale.py cold --n 1000000 --repeats 5 [--baseline OTHER_CHECKOUT/src]
    PYTHONPATH=src python bench/bench_scale.py server --n 1000000
    PYTHONPATH=src python bench/bench_scale.py peers --n 1000000 --systems lancedb,chroma,qdrant
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import scale_data  # noqa: E402
from scale_data import FILTERS  # noqa: E402

REPO = BENCH.parent
MODES = ("dense", "lexical", "hybrid")
K = 10


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores"
    return platform.processor()


def load() -> float:
    return os.getloadavg()[0]


def child_env(src: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(src or REPO / "src"), "HF_HUB_OFFLINE": "1"}
    env.pop("SEMSEARCH_SERVER", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte code cached, as on a user's machine
    return env


def timed_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, this child's own peak RSS in MB, stdout), through os.wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env or child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code:
        raise RuntimeError(f"{' '.join(argv[:8])}... failed ({code}): {err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def save(out: Path, key: str, value: Any) -> None:
    data = json.loads(out.read_text()) if out.exists() else {}
    data[key] = value
    out.write_text(json.dumps(data, indent=1) + "\n")


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def payload_bytes(n: int) -> int:
    """Text (UTF-8) plus one float32 vector per document: the 1x of the disk ratio."""
    texts = scale_data.passages()
    return sum(len(f"{texts[i % len(texts)]} ({i})".encode()) for i in range(n)) + n * scale_data.DIM * 4


# -- build ---------------------------------------------------------------------------------------
BUILD_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
import scale_data
from semsearch import Collection
n, path = int(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
with Collection(path) as col:
    for kw in scale_data.batches(n):
        col.add(**kw)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def build(args: argparse.Namespace) -> None:
    path = Path(args.path)
    if path.exists():
        print(f"{path} exists: reusing it (delete it to build again)")
    else:
        load_before = load()
        wall, peak, out = timed_child([sys.executable, "-c", BUILD_SCRIPT, str(args.n), str(path), str(BENCH)])
        save(args.out, "build", {"n": args.n, "seconds": round(wall, 1), "peak_rss_mb": round(peak),
                                 "load": round(load_before, 2), "cpu": cpu_name()})
    disk = {p.name: p.stat().st_size for p in path.iterdir() if p.is_file()}
    total = sum(disk.values())
    base = payload_bytes(args.n)
    save(args.out, "disk", {"bytes": total, "per_document": round(total / args.n), "payload_bytes": base,
                            "ratio": round(total / base, 2), "files": disk, "sqlite_tables": sqlite_tables(path)})
    print(json.dumps(json.loads(args.out.read_text())["disk"], indent=1))


def sqlite_tables(path: Path) -> dict[str, int]:
    import sqlite3

    con = sqlite3.connect(f"file:{path / 'collection.sqlite3'}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall())
    except sqlite3.Error:
        return {}
    finally:
        con.close()


# -- cold CLI ------------------------------------------------------------------------------------
def cases(filters: list[str]) -> list[tuple[str, str]]:
    return [(mode, name) for name in filters for mode in MODES]


def cold(args: argparse.Namespace) -> None:
    """Cold CLI searches; with ``--baseline SRC`` every case is run by both source trees back to
    back (which goes first alternates), so the two are compared under the same load."""
    queries = scale_data.queries()
    todo = cases(args.filters)
    trees = {"this": REPO / "src", **({"baseline": Path(args.baseline)} if args.baseline else {})}
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {t: {f"{m} {f}": [] for m, f in todo} for t in trees}
    loads = []
    for r in range(args.repeats):
        loads.append(load())
        order = todo[r % len(todo):] + todo[: r % len(todo)]
        for i, (mode, name) in enumerate(order):
            query = queries[(r * len(todo) + i) % len(queries)]
            argv = [sys.executable, "-m", "semsearch.cli", "search", query, "-c", args.path, "--server", "off",
                    "--json", "-k", str(K), "--mode", mode]
            if FILTERS[name] is not None:
                argv += ["--where", json.dumps(FILTERS[name])]
            labels = list(trees) if (r + i) % 2 == 0 else list(reversed(trees))
            for label in labels:
                wall, peak, out = timed_child(argv, child_env(trees[label]))
                hits = json.loads(out)[0]["hits"]
                assert len(hits) == K, f"{mode} {name}: {len(hits)} hits"
                runs[label][f"{mode} {name}"].append((wall, peak))
                print(f"{r} {label:8} {mode:7} {name:6} {wall:6.2f} s {peak:7.0f} MB", flush=True)

    def table(v: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
        return {case: {"wall_s": round(statistics.median(w for w, _ in x), 2),
                       "peak_rss_mb": round(statistics.median(p for _, p in x)),
                       "max_wall_s": round(max(w for w, _ in x), 2)} for case, x in v.items()}

    result: dict[str, Any] = {"repeats": args.repeats, "load": [round(x, 2) for x in loads], "cpu": cpu_name(),
                              "cases": table(runs["this"])}
    if args.baseline:
        result["baseline"] = {"src": args.baseline, "cases": table(runs["baseline"])}
        result["baseline_over_this"] = {c: round(result["baseline"]["cases"][c]["wall_s"] / v["wall_s"], 2)
                                        for c, v in result["cases"].items()}
    save(args.out, "cold", result)


# -- server --------------------------------------------------------------------------------------
def server(args: argparse.Namespace) -> None:
    port = args.port
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", args.path, "--port", str(port)],
                            env=child_env(Path(args.baseline) if args.baseline else None), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        ready = wait_ready(port, proc)
        ready_s = time.perf_counter() - started
        print(f"ready in {ready_s:.2f} s", flush=True)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        queries = scale_data.queries()
        table = {}
        for name in args.filters:
            for mode in MODES:
                times = []
                for i in range(args.queries + 3):
                    body = {"query": f"{queries[i % len(queries)]} {i}", "k": K, "mode": mode}
                    if FILTERS[name] is not None:
                        body["where"] = FILTERS[name]
                    t = time.perf_counter()
                    conn.request("POST", "/search", body=json.dumps(body), headers={"Content-Type": "application/json"})
                    reply = conn.getresponse()
                    data = reply.read()
                    if reply.status != 200:
                        raise RuntimeError(f"{reply.status}: {data[:500]!r}")
                    if i >= 3:  # the first few warm what this mode and filter use
                        times.append((time.perf_counter() - t) * 1000)
                times.sort()
                table[f"{mode} {name}"] = {"p50_ms": round(statistics.median(times), 1),
                                           "p99_ms": round(times[int(0.99 * (len(times) - 1))], 1)}
                print(mode, name, table[f"{mode} {name}"], flush=True)
        save(args.out, "server", {"ready_s": round(ready_s, 2), "ready": ready, "queries": args.queries,
                                  "load": round(load(), 2), "cpu": cpu_name(), "cases": table})
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_ready(port: int, proc: subprocess.Popen) -> dict:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            reply = conn.getresponse()
            body = json.loads(reply.read())
            if reply.status == 200 and body.get("ready"):
                return body
        except (OSError, ValueError):
            pass
        time.sleep(0.05)


# -- peers ---------------------------------------------------------------------------------------
def query_vectors(count: int) -> list[list[float]]:
    """Query vectors near the data (a passage's vector plus noise), as real queries are near documents."""
    import numpy as np

    rng = np.random.default_rng(7)
    docs = rng.integers(0, 5000, size=count)
    vectors = scale_data.vectors_of(docs, seed=99)
    return vectors.tolist()


PEER_QUERY = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import bench_scale_peers as peers
system, path, flt, vector = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
started = time.perf_counter()
ids = peers.SYSTEMS[system].cold_query(path, vector, flt)
print(json.dumps({"seconds": time.perf_counter() - started, "ids": ids}))
"""


def peers(args: argparse.Namespace) -> None:
    import bench_scale_peers

    root = Path(args.root)
    vectors = query_vectors(args.queries + 1 + len(args.filters) * args.repeats)
    results: dict[str, Any] = json.loads(args.out.read_text()).get("peers", {}) if args.out.exists() else {}
    for system in args.systems:
        peer = bench_scale_peers.SYSTEMS[system]
        path = Path(args.path) if system == "semsearch" else root / system
        entry: dict[str, Any] = results.get(system, {})
        if system != "semsearch" and not path.exists():
            started = time.perf_counter()
            try:
                peer.build(path, args.n)
            except Exception as exc:  # a peer that cannot build at this size is reported as such
                entry["build_error"] = repr(exc)[:300]
                results[system] = entry
                save(args.out, "peers", results)
                continue
            entry["build_s"] = round(time.perf_counter() - started, 1)
        entry["disk_bytes"] = folder_bytes(path) if path.is_dir() else path.stat().st_size
        cold_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in args.filters}
        v = 0
        for _ in range(args.repeats):
            for name in args.filters:
                argv = [sys.executable, "-c", PEER_QUERY, str(BENCH), system, str(path), json.dumps(FILTERS[name]),
                        json.dumps(vectors[v])]
                v += 1
                wall, peak, _ = timed_child(argv)
                cold_runs[name].append((wall, peak))
                print(system, name, f"{wall:.2f} s {peak:.0f} MB", flush=True)
        entry["cold"] = {name: {"wall_s": round(statistics.median(w for w, _ in r), 2),
                                "peak_rss_mb": round(statistics.median(p for _, p in r))}
                         for name, r in cold_runs.items()}
        entry["warm_p50_ms"] = peer.warm_p50(path, vectors[-args.queries:], [FILTERS[n] for n in args.filters],
                                             args.filters)
        entry["load"] = round(load(), 2)
        results[system] = entry
        save(args.out, "peers", results)
        print(system, json.dumps(entry), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["build", "cold", "server", "peers"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--path", help="the collection (default: /work/bench-data/scale-<n>)")
    parser.add_argument("--root", help="where peers' stores go (default: /work/bench-data/peers-<n>)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", help="cold: also run every case with this src folder (another version); "
                        "server: serve with it instead")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--filters", default=",".join(FILTERS))
    parser.add_argument("--systems", default="semsearch,lancedb,chroma,qdrant")
    args = parser.parse_args()
    args.path = args.path or f"/work/bench-data/scale-{args.n}"
    args.root = args.root or f"/work/bench-data/peers-{args.n}"
    args.out = args.out or BENCH / f"results_scale_{args.n}.json"
    args.filters = args.filters.split(",")
    args.systems = args.systems.split(",")
    {"build": build, "cold": cold, "server": server, "peers": peers}[args.step](args)


if __name__ == "__main__":
    main()
