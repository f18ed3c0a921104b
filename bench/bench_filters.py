"""Filtered search (issue 18): semsearch beside ChromaDB's and Qdrant's local modes, same data, same filters.

Data: 100,000 real all-MiniLM-L6-v2 vectors of bench/ann_data.py's 110k-text set (``--data
synthetic``: clustered unit vectors, for a smoke run), each document with metadata
``{"cat": "c00".."c99", "num": 0..99}`` assigned by a seeded permutation, so no filter is
correlated with the vectors. Three filters, three operators:

    1%   {"cat": "c07"}                       $eq on text   (1,000 documents)
    10%  {"cat": {"$in": ["c10", ..., "c19"]}} $in on text  (10,000)
    50%  {"num": {"$lt": 50}}                  range        (50,000)

(Chroma takes the same dicts; Qdrant the same conditions as MatchValue / MatchAny / Range.)
Queries: held-out texts' vectors (not in the collection), k = 10, one query per call.

Systems: semsearch ``Collection`` searched end to end with a query vector (``mode="dense"``,
hits read back with their text), after ``warm_up()`` as ``semsearch serve`` does, for each
``--specs`` (Flat: exact; auto: IVF at this size); the same code at ``--before`` (a source
tree of an older commit, run in a subprocess on the same folder: what the issue measured);
ChromaDB PersistentClient (its HNSW defaults, ``hnsw:space`` ip); Qdrant local mode
(``QdrantClient(path=...)``, dot product; it scores every point in NumPy). Every round measures
every system and filter once, in rotating order; p50/p99 per round, medians of ``--repeats``
rounds. Exactness: recall@10 against brute force among the matching documents (NumPy).
Also measured for semsearch: the first filtered search of a fresh process (filters run in
SQL until the facet index pays off) and the facet index's build.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_filters.py --before /tmp/head/src
    PYTHONPATH=src python bench/bench_filters.py --data synthetic --n 20000 --queries 20 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402

K = 10
CATS = [f"c{i:02d}" for i in range(100)]
FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "1%": {"cat": "c07"},
    "10%": {"cat": {"$in": CATS[10:20]}},
    "50%": {"num": {"$lt": 50}},
}


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def dataset(kind: str, n: int, n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, queries, cat codes, num values): the same arrays in every process."""
    from ann_data import clustered, real_embeddings

    if kind == "real":
        real = real_embeddings(110_000)
        if real is None:
            sys.exit("no cached real embeddings: "
                     "run `PYTHONPATH=src python bench/ann_data.py --max-texts 110000` first")
        docs, held, _ = real
        if len(docs) < n:
            sys.exit(f"the real set has {len(docs):,} vectors, fewer than --n {n:,}")
        x, queries = docs[:n], held[:n_queries]
    else:
        both = clustered(n + n_queries, seed=3)
        x, queries = both[:n], both[n:]
    perm = np.random.default_rng(42).permutation(n)
    return np.ascontiguousarray(x), np.ascontiguousarray(queries), perm % 100, (perm // 100) % 100


def allowed_mask(name: str, cat: np.ndarray, num: np.ndarray) -> np.ndarray:
    if name == "none":
        return np.ones(len(cat), dtype=bool)
    if name == "1%":
        return cat == 7
    if name == "10%":
        return (cat >= 10) & (cat < 20)
    return num < 50


def truth(x: np.ndarray, queries: np.ndarray, mask: np.ndarray) -> np.ndarray:
    ids = np.flatnonzero(mask)
    scores = queries @ x[ids].T
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :K]]


def recall(found: list[list[int]], exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, exact)]))


def timed(search: Callable[[np.ndarray], list[int]], queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    lat, found = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(search(q))
        lat.append(time.perf_counter() - t)
    return lat, found


# -- semsearch ------------------------------------------------------------------------------
def semsearch_collection(folder: Path, x: np.ndarray, cat: np.ndarray, num: np.ndarray, spec: str) -> tuple[Any, float]:
    """Open (building once) the collection of these vectors; returns (collection, build seconds or 0)."""
    from semsearch import Collection

    done = folder / "built.json"
    if done.exists() and json.loads(done.read_text()) == {"n": len(x), "spec": spec}:
        return Collection(folder, progress=False), 0.0
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    col = Collection(folder, index=spec, progress=False)
    step = 20_000
    for s in range(0, len(x), step):
        e = min(len(x), s + step)
        col.add([f"document {i}" for i in range(s, e)], ids=[str(i) for i in range(s, e)],
                metadatas=[{"cat": CATS[int(cat[i])], "num": int(num[i])} for i in range(s, e)], embeddings=x[s:e])
    col.flush()
    seconds = time.perf_counter() - started
    done.write_text(json.dumps({"n": len(x), "spec": spec}))
    return col, seconds


def semsearch_search(col: Any, where: dict | None) -> Callable[[np.ndarray], list[int]]:
    def search(q: np.ndarray) -> list[int]:
        return [int(h.id) for h in col.search(q, k=K, mode="dense", where=where)]

    return search


def worker(args: argparse.Namespace) -> None:
    """One semsearch measurement in this process (whatever ``semsearch`` PYTHONPATH gives):
    the first filtered search of a fresh process, then warm latencies for every filter."""
    _, queries, _, _ = dataset(args.data, args.n, args.queries)
    import semsearch
    from semsearch import Collection

    t = time.perf_counter()
    col = Collection(args.worker, progress=False)
    col.search(queries[0], k=K, mode="dense")  # loads the vector index
    opened = time.perf_counter() - t
    t = time.perf_counter()
    col.search(queries[1], k=K, mode="dense", where=FILTERS["1%"])
    first = time.perf_counter() - t
    t = time.perf_counter()
    col.warm_up()
    warm_up = time.perf_counter() - t
    out: dict[str, Any] = {"source": str(Path(semsearch.__file__).parents[1]), "open_s": opened,
                           "first_filtered_s": first, "warm_up_s": warm_up, "lat": {}, "found": {}}
    for name, where in FILTERS.items():
        lat, found = timed(semsearch_search(col, where), queries)
        out["lat"][name], out["found"][name] = lat, found
    col.close()
    print(json.dumps(out))


def run_worker(src: str, folder: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{BENCH}"}
    cmd = [sys.executable, __file__, "--worker", str(folder), "--data", args.data, "--n", str(args.n),
           "--queries", str(args.queries)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"worker failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- peers ----------------------------------------------------------------------------------
def chroma_system(work: Path, x: np.ndarray, cat: np.ndarray, num: np.ndarray) -> tuple[Callable, str, float]:
    import chromadb

    path = work / "chroma"
    done = work / "chroma.json"
    client_new = not (done.exists() and json.loads(done.read_text()) == {"n": len(x)})
    if client_new:
        shutil.rmtree(path, ignore_errors=True)
    client = chromadb.PersistentClient(path=str(path))
    started = time.perf_counter()
    if client_new:
        col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
        step = 5000
        for s in range(0, len(x), step):
            e = min(len(x), s + step)
            col.add(ids=[str(i) for i in range(s, e)], embeddings=x[s:e],
                    metadatas=[{"cat": CATS[int(cat[i])], "num": int(num[i])} for i in range(s, e)])
        done.write_text(json.dumps({"n": len(x)}))
    col = client.get_collection("bench")
    col.query(query_embeddings=x[:1], n_results=K, include=[])  # loads the index
    build = time.perf_counter() - started if client_new else 0.0

    def make(where: dict | None) -> Callable[[np.ndarray], list[int]]:
        def search(q: np.ndarray) -> list[int]:
            res = col.query(query_embeddings=q[None, :], n_results=K, where=where, include=[])
            return [int(i) for i in res["ids"][0]]

        return search

    return make, f"chromadb {chromadb.__version__} PersistentClient, HNSW defaults", build


def qdrant_system(work: Path, x: np.ndarray, cat: np.ndarray, num: np.ndarray) -> tuple[Callable, str, float]:
    from importlib.metadata import version

    from qdrant_client import QdrantClient, models

    path = work / "qdrant"
    done = work / "qdrant.json"
    fresh = not (done.exists() and json.loads(done.read_text()) == {"n": len(x)})
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
    started = time.perf_counter()
    client = QdrantClient(path=str(path))
    if fresh:
        client.create_collection("bench",
                                 vectors_config=models.VectorParams(size=x.shape[1], distance=models.Distance.DOT))
        step = 5000
        for s in range(0, len(x), step):
            e = min(len(x), s + step)
            client.upload_collection("bench", vectors=x[s:e], ids=list(range(s, e)),
                                     payload=[{"cat": CATS[int(cat[i])], "num": int(num[i])} for i in range(s, e)])
        done.write_text(json.dumps({"n": len(x)}))
    build = time.perf_counter() - started if fresh else 0.0
    conditions = {
        "none": None,
        "1%": models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="c07"))]),
        "10%": models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchAny(any=CATS[10:20]))]),
        "50%": models.Filter(must=[models.FieldCondition(key="num", range=models.Range(lt=50))]),
    }

    def make(name: str) -> Callable[[np.ndarray], list[int]]:
        def search(q: np.ndarray) -> list[int]:
            res = client.query_points("bench", query=q.tolist(), limit=K, query_filter=conditions[name],
                                      with_payload=False)
            return [int(p.id) for p in res.points]

        return search

    return make, f"qdrant-client {version('qdrant-client')} local mode (path=...), dot product", build


# -- the run --------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["real", "synthetic"], default="real")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--specs", default="Flat,auto", help="semsearch index specs to measure")
    ap.add_argument("--before", help="a semsearch source tree (…/src) to measure in a subprocess, e.g. an older commit")
    ap.add_argument("--skip", default="", help="comma list of: chroma, qdrant")
    ap.add_argument("--work", type=Path, default=Path("/tmp/semsearch-bench-filters"))
    ap.add_argument("--out", type=Path, default=BENCH / "results_filters.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    x, queries, cat, num = dataset(args.data, args.n, args.queries)
    exact = {name: truth(x, queries, allowed_mask(name, cat, num)) for name in FILTERS}
    log(f"{len(x):,} vectors, {len(queries)} queries; filters keep",
        {name: int(allowed_mask(name, cat, num).sum()) for name in FILTERS})

    systems: dict[str, Callable[[str], Callable[[np.ndarray], list[int]]]] = {}
    labels: dict[str, str] = {}
    builds: dict[str, float] = {}
    folders: dict[str, Path] = {}
    extra: dict[str, dict] = {}
    import semsearch

    for spec in args.specs.split(","):
        folder = args.work / f"semsearch_{args.data}_{spec.replace(',', '_')}"
        col, builds[f"semsearch {spec}"] = semsearch_collection(folder, x, cat, num, spec)
        t = time.perf_counter()
        col.warm_up()
        extra[f"semsearch {spec}"] = {"warm_up_s": time.perf_counter() - t,
                                      "facets_entries": col.engine.facets.current().entries}
        details = col.info()["index_details"]
        name = f"semsearch {spec}"
        systems[name] = lambda filt, col=col: semsearch_search(col, FILTERS[filt])
        labels[name] = f"semsearch {Path(semsearch.__file__).parents[1].name} Collection, {details.get('type')}" + (
            f" ({details['tuning']['param']} {details['tuning']['value']})"
            if details.get("tuning", {}).get("param") else "")
        folders[spec] = folder
    if "chroma" not in skip:
        make, labels["chroma"], builds["chroma"] = chroma_system(args.work, x, cat, num)
        systems["chroma"] = lambda filt, make=make: make(FILTERS[filt])
    if "qdrant" not in skip:
        make, labels["qdrant"], builds["qdrant"] = qdrant_system(args.work, x, cat, num)
        systems["qdrant"] = make
    names = list(systems) + ([f"before {s}" for s in folders] if args.before else [])
    rounds: dict[str, dict[str, list[dict]]] = {n: {f: [] for f in FILTERS} for n in names}
    found_first: dict[str, dict[str, list]] = {}
    workers: dict[str, list[dict]] = {}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        load = os.getloadavg()[0]
        log(f"round {r + 1}/{args.repeats}, load {load:.1f}: {order}")
        for name in order:
            if name.startswith("before "):
                result = run_worker(args.before, folders[name.split(" ", 1)[1]], args)
                workers.setdefault(name, []).append(result)
                per = {f: (result["lat"][f], result["found"][f]) for f in FILTERS}
            else:
                per = {f: timed(systems[name](f), queries) for f in FILTERS}
            for f, (lat, found) in per.items():
                rounds[name][f].append({"p50": percentile(lat, 50), "p99": percentile(lat, 99), "load": load})
                found_first.setdefault(name, {}).setdefault(f, found)
    # The current code's own cold numbers, in fresh processes like the "before" ones.
    if args.before:
        src = str(Path(semsearch.__file__).parents[1])
        for spec, folder in folders.items():
            workers[f"semsearch {spec} (fresh process)"] = [run_worker(src, folder, args)
                                                            for _ in range(min(3, args.repeats))]
    results = {"n": len(x), "queries": len(queries), "data": args.data, "repeats": args.repeats, "labels": labels,
               "builds_s": builds, "extra": extra, "rows": {}, "workers": {
                   k: {m: statistics.median(w[m] for w in v) for m in ("open_s", "first_filtered_s", "warm_up_s")}
                   | {"source": v[0]["source"]} for k, v in workers.items()}}
    for name in names:
        row = {}
        for f in FILTERS:
            row[f] = {"p50_ms": statistics.median(x["p50"] for x in rounds[name][f]),
                      "p99_ms": statistics.median(x["p99"] for x in rounds[name][f]),
                      "p50_runs": [round(x["p50"], 3) for x in rounds[name][f]],
                      "recall_at_10": recall(found_first[name][f], exact[f])}
        results["rows"][name] = row
    args.out.write_text(json.dumps(results, indent=1))
    print(table(results))


def table(results: dict) -> str:
    lines = ["| system | filter | p50 ms | p99 ms | p50 / own unfiltered | recall@10 among matches |",
             "|---|---|---|---|---|---|"]
    for name, row in results["rows"].items():
        base = row["none"]["p50_ms"]
        for f, v in row.items():
            lines.append(f"| {name} | {f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['p50_ms'] / base:.2f} | "
                         f"{v['recall_at_10']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
