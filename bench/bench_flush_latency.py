"""Search latency while the same process flushes its vector index (issue 18, item 7).

A collection of 100,000 real all-MiniLM-L6-v2 vectors (bench/ann_data.py; ``--data synthetic``
for clustered ones), default index (``auto``: IVF at this size). One thread searches without
pause (a query vector per call, k = 10, ``mode="dense"``, hits read back with their text) while
the main thread adds 1,000 documents and then calls ``flush()``, which writes the ~150 MB index
file (temp file, fsync, rename). Reported per run: the flush's duration, and the latency of the
searches that overlapped it (max, p99, p50) next to the searches outside it (p50, p99).

The same worker runs on two source trees in subprocesses, alternating, each on its own
collection folder built by that code: ``--before`` (e.g. commit b1dbbe6, which wrote the file
under the index's exclusive lock) and the tree this script is run from. Medians of
``--repeats`` runs each.

    git worktree add /tmp/base-b1d b1dbbe6     # or: git archive b1dbbe6 src | tar -x -C /tmp/base-b1d
    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_flush_latency.py --before /tmp/base-b1d/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402

ADDED = 1_000


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def dataset(kind: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(collection vectors, vectors to add during a run, queries)."""
    from ann_data import clustered, real_embeddings

    if kind == "real":
        real = real_embeddings(110_000)
        if real is None:
            sys.exit("no cached real embeddings: "
                     "run `PYTHONPATH=src python bench/ann_data.py --max-texts 110000` first")
        docs, held, _ = real
        if len(docs) < n + ADDED:
            sys.exit(f"the real set has {len(docs):,} vectors, fewer than --n {n:,} + {ADDED:,}")
        return docs[:n], docs[n : n + ADDED], held[:500]
    both = clustered(n + ADDED + 500, seed=4)
    return both[:n], both[n : n + ADDED], both[n + ADDED :]


def worker(folder: Path, data: str, n: int) -> dict:
    from semsearch import Collection

    x, extra, queries = dataset(data, n)
    done = folder / "built.json"
    if not (done.exists() and json.loads(done.read_text()) == {"n": n}):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        col = Collection(folder, progress=False)
        for s in range(0, n, 20_000):
            e = min(n, s + 20_000)
            col.add([f"document {i}" for i in range(s, e)], ids=[str(i) for i in range(s, e)], embeddings=x[s:e])
        col.flush()
        col.close()
        done.write_text(json.dumps({"n": n}))
    col = Collection(folder, progress=False)
    col.search(queries[0], k=10, mode="dense")  # loads the index
    samples: list[tuple[float, float]] = []  # (start, latency)
    stop = threading.Event()

    def searching() -> None:
        i = 0
        while not stop.is_set():
            q = queries[i % len(queries)]
            t = time.perf_counter()
            col.search(q, k=10, mode="dense")
            samples.append((t, time.perf_counter() - t))
            i += 1

    thread = threading.Thread(target=searching)
    thread.start()
    time.sleep(1.0)
    ids = [f"added-{i}" for i in range(ADDED)]
    col.add([f"added {i}" for i in range(ADDED)], ids=ids, embeddings=extra)
    time.sleep(1.0)  # the searches catch the index up; what is left for flush is writing the file
    t0 = time.perf_counter()
    col.flush()
    t1 = time.perf_counter()
    time.sleep(1.0)
    stop.set()
    thread.join()
    col.delete(ids)
    col.flush()
    col.close()
    during = [lat for start, lat in samples if start < t1 and start + lat > t0]
    outside = [lat for start, lat in samples if not (start < t1 and start + lat > t0)]
    ms = lambda v, q: float(np.percentile(np.asarray(v) * 1000, q)) if v else float("nan")  # noqa: E731
    return {"flush_s": t1 - t0, "during_n": len(during),
            "during_max_ms": max(during) * 1000 if during else float("nan"),
            "during_p99_ms": ms(during, 99), "during_p50_ms": ms(during, 50), "outside_p50_ms": ms(outside, 50),
            "outside_p99_ms": ms(outside, 99), "load": os.getloadavg()[0]}


def run(src: str, folder: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{BENCH}"}
    cmd = [sys.executable, __file__, "--worker", str(folder), "--data", args.data, "--n", str(args.n)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"worker on {src} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=False, help="the older source tree (…/src)")
    ap.add_argument("--data", choices=["real", "synthetic"], default="real")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path("/tmp/semsearch-bench-flush"))
    ap.add_argument("--out", type=Path, default=BENCH / "results_flush_latency.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker), args.data, args.n)))
        return
    import semsearch

    trees = {"after": str(Path(semsearch.__file__).parents[1])}
    if args.before:
        trees = {"before": args.before, **trees}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(args.repeats):
        for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
            result = run(trees[name], args.work / f"{args.data}_{name}", args)
            runs[name].append(result)
            log(f"run {r + 1} {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in result.items()))
    out = {"n": args.n, "data": args.data, "repeats": args.repeats, "trees": trees, "runs": runs,
           "medians": {name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in runs.items()}}
    args.out.write_text(json.dumps(out, indent=1))
    print("| code | flush s | searches during flush | max ms | p99 ms | p50 ms | p50 ms outside flush | p99 ms outside "
          "|")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in out["medians"].items():
        print(f"| {name} ({trees[name]}) | {m['flush_s']:.2f} | {m['during_n']:.0f} | {m['during_max_ms']:.1f} | "
              f"{m['during_p99_ms']:.1f} | {m['during_p50_ms']:.2f} | {m['outside_p50_ms']:.2f} | "
              f"{m['outside_p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
