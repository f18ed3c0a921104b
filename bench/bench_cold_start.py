"""Cold start (issue 14): what one ``semsearch search`` costs a user, before and after the light query path.

Each measured command is a fresh Python process (the OS file cache is warm, as on any machine
that searched before; the machine cache of prepared models is warm: the collection was indexed
here). Every repeat runs all commands in alternating order; wall time and the child's own peak
RSS (``os.wait4``) are recorded per run and medians reported:

* ``python -c pass`` and ``python -c "import semsearch"``: the floor;
* ``semsearch search QUERY -c COLLECTION --json`` with the baseline source tree (``--baseline``,
  e.g. a worktree of main before issue 14) and with this tree.

Then, in one process per tree, the warm single-query latency of ``Collection.search`` (hybrid,
k=10, query cache off, so every call encodes): p50/p99 over distinct queries.

    git -C /work/main worktree add /tmp/base b1dbbe6            # the baseline, once
    PYTHONPATH=src python bench/bench_cold_start.py --baseline /tmp/base/src --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/msmarco-5k"
QUERY = "how long to boil an egg"

LATENCY_SCRIPT = r"""
import json, statistics, sys, time
from semsearch import Collection
try:
    from semsearch.embedding.caches import QueryCache
except ImportError:  # the baseline tree (b1dbbe6) kept it in embedding_cache.py
    from semsearch.embedding_cache import QueryCache
queries = [json.loads(line)["text"] for line in open(sys.argv[2], encoding="utf-8")]
with Collection(sys.argv[1]) as col:
    col.embedder.query_cache = QueryCache(0)
    for q in queries[:5]:
        col.search(q, k=10)  # warm: model, index, lexical statistics
    times = []
    for rnd in range(int(sys.argv[3])):
        for q in queries:
            started = time.perf_counter()
            col.search(f"{q} {rnd}" if rnd else q, k=10)
            times.append((time.perf_counter() - started) * 1000)
times.sort()
print(json.dumps({"n": len(times), "p50_ms": statistics.median(times), "p99_ms": times[int(0.99 * (len(times) - 1))],
                  "engine": col.embedder.engine, "precision": col.embedder.precision}))
"""


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else "")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_maxrss / 1024, proc.returncode


def environment(src: str | None, cache: str) -> dict[str, str]:
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": cache, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    # Byte-compiled modules are cached as on any user's machine (the untimed first run writes
    # them); a shell that sets PYTHONDONTWRITEBYTECODE would add ~0.15 s of compiling per process.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if src:
        env["PYTHONPATH"] = src
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="src folder of the baseline tree (omit to measure this tree only)")
    parser.add_argument("--collection", default=str(Path(tempfile.gettempdir()) / "semsearch-bench-msmarco-5k"))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "semsearch-bench-cache"),
                        help="SEMSEARCH_CACHE_DIR shared by both trees (converted models)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-rounds", type=int, default=4, help="passes over the 50 queries for p50/p99")
    parser.add_argument("--out", default=str(REPO / "bench" / "results_cold_start.json"))
    args = parser.parse_args()
    src = str(REPO / "src")
    python = sys.executable
    after_env = environment(src, args.cache)
    if not (Path(args.collection) / "collection.sqlite3").exists():
        print(f"indexing {DATA / 'corpus.jsonl'} into {args.collection} (once) ...", flush=True)
        subprocess.run([python, "-m", "semsearch.cli", "index", str(DATA / "corpus.jsonl"), "-c", args.collection,
                        "--no-progress"], env=after_env, check=True)
    search = ["-m", "semsearch.cli", "search", QUERY, "-c", args.collection, "--json"]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([python, "-c", "pass"], after_env),
        "python -c 'import semsearch'": ([python, "-c", "import semsearch"], after_env),
        "semsearch search (after)": ([python, *search], after_env),
    }
    if args.baseline:
        commands["semsearch search (before)"] = ([python, *search], environment(args.baseline, args.cache))
    # One untimed run each: converted models, compiled-model cache and calibration are in place.
    for argv, env in commands.values():
        run(argv, env)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    names = list(commands)
    for repeat in range(args.repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            wall, rss, code = run(*commands[name])
            if code != 0:
                raise SystemExit(f"{name} failed with exit code {code}")
            runs[name].append((wall, rss))
            print(f"repeat {repeat + 1}: {name}: {wall:.2f} s, {rss:.0f} MB", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}",
        "query": QUERY,
        "collection": args.collection,
        "runs": runs,
        "medians": {name: {"wall_s": statistics.median(w for w, _ in r),
                           "peak_rss_mb": statistics.median(m for _, m in r)}
                    for name, r in runs.items()},
        "latency": {},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")  # the cold runs are kept whatever follows
    result["latency"]["after"] = latency_of(python, after_env, args.collection, args.latency_rounds)
    if args.baseline:
        result["latency"]["before"] = latency_of(python, environment(args.baseline, args.cache), args.collection,
                                                 args.latency_rounds)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


def latency_of(python: str, env: dict[str, str], collection: str, rounds: int) -> dict[str, Any]:
    proc = subprocess.run([python, "-c", LATENCY_SCRIPT, collection, str(DATA / "queries.jsonl"), str(rounds)],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(result: dict[str, Any]) -> str:
    lines = ["| command | wall s (median) | peak RSS MB (median) | runs (s) |", "|---|---:|---:|---|"]
    for name, med in result["medians"].items():
        walls = ", ".join(f"{w:.2f}" for w, _ in result["runs"][name])
        lines.append(f"| {name} | {med['wall_s']:.2f} | {med['peak_rss_mb']:.0f} | {walls} |")
    if "semsearch search (before)" in result["medians"]:
        before, after = result["medians"]["semsearch search (before)"], result["medians"]["semsearch search (after)"]
        lines.append(f"\nafter/before: wall {after['wall_s'] / before['wall_s']:.3f}, "
                     f"peak RSS {after['peak_rss_mb'] / before['peak_rss_mb']:.3f}")
    for tree, lat in result["latency"].items():
        if "error" in lat:
            lines.append(f"warm single query ({tree}): failed: {lat['error']}")
            continue
        lines.append(f"warm single query ({tree}): p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
                     f"over {lat['n']} searches ({lat['engine']} {lat['precision']})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
