"""Resuming an interrupted `semsearch index` (issues 13 and 23): msmarco-5k's corpus as one JSONL
file, indexed end to end from the CLI (process start-up included) into a fresh collection, then
again into another fresh collection killed with SIGKILL at a share of the fresh run's wall time
(not at a commit event: a user's Ctrl-C or a crash does not wait for one) and re-run to
completion. The default settings are what a user gets; ``--commit-every N`` measures a setting
users must ask for. Reports the resumed run's wall time as a share of the fresh run's, per repeat
and as the median, and checks that every document is there exactly once.

    PYTHONPATH=src python bench/bench_resume.py --repeats 3                    # default settings
    PYTHONPATH=src python bench/bench_resume.py --repeats 3 --commit-every 512
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco-5k" / "corpus.jsonl"


def run(data: Path, collection: Path, options: list[str], kill_after: float | None = None) -> dict:
    """One `semsearch index --json` process: its wall seconds, the chunks its last batch event
    reported committed, whether it was killed, and the finish event if it finished."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch.cli", "index", str(data), "-c", str(collection), "--json", *options],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    events: list[dict] = []
    reader = threading.Thread(target=lambda: events.extend(json.loads(line) for line in proc.stdout))  # type: ignore
    reader.start()
    killed = False
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed = True
    proc.wait()
    reader.join()
    batches = [e for e in events if e["event"] == "batch"]
    finish = next((e for e in events if e["event"] == "finish"), None)
    return {"seconds": time.perf_counter() - started, "committed": batches[-1]["chunks_done"] if batches else 0,
            "killed": killed, "finish": finish}


def count(collection: Path) -> tuple[int, int]:
    """(documents, distinct ids) in a collection, read in a fresh process as a user would."""
    code = ("import sys, semsearch; c = semsearch.Collection(sys.argv[1], create=False); "
            "ids = [d.id for d in c.get()]; print(len(ids), len(set(ids)))")
    out = subprocess.run([sys.executable, "-c", code, str(collection)], capture_output=True, text=True, check=True)
    a, b = out.stdout.split()
    return int(a), int(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commit-every", type=int, default=None, help="pass --commit-every N (default: not passed)")
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of the fresh run's wall time")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="a new converted-model cache for every run (default: one, prepared by a first run)")
    args = parser.parse_args()
    options = [] if args.commit_every is None else ["--commit-every", str(args.commit_every)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="semsearch-resume-") as work:
        os.environ["SEMSEARCH_CACHE_DIR"] = str(Path(work) / "cache")
        if not args.fresh_cache:
            run(args.data, Path(work) / "warm-up", options)  # model conversion and calibration, once per machine
        for r in range(args.repeats):
            if args.fresh_cache:
                os.environ["SEMSEARCH_CACHE_DIR"] = str(Path(work) / f"cache-{r}")
            fresh = run(args.data, Path(work) / f"fresh-{r}", options)
            killed = run(args.data, Path(work) / f"killed-{r}", options, kill_after=args.kill_at * fresh["seconds"])
            resumed = run(args.data, Path(work) / f"killed-{r}", options)
            docs, distinct = count(Path(work) / f"killed-{r}")
            expected = (fresh["finish"] or {}).get("documents")
            rows.append({"fresh_s": round(fresh["seconds"], 2),
                         "killed_at_s": round(args.kill_at * fresh["seconds"], 2), "killed": killed["killed"],
                         "committed_at_kill": killed["committed"],
                         "resumed_s": round(resumed["seconds"], 2),
                         "resumed_share": round(resumed["seconds"] / fresh["seconds"], 3),
                         "kept_documents": (resumed["finish"] or {}).get("kept_documents"),
                         "documents": docs, "distinct_ids": distinct, "expected": expected})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({
        "settings": "default" if args.commit_every is None else f"--commit-every {args.commit_every}",
        "kill_at": args.kill_at, "median_resumed_share": statistics.median(r["resumed_share"] for r in rows),
        "median_fresh_s": statistics.median(r["fresh_s"] for r in rows),
        "median_resumed_s": statistics.median(r["resumed_s"] for r in rows),
        "all_complete": all(r["documents"] == r["distinct_ids"] == r["expected"] for r in rows),
    }))


if __name__ == "__main__":
    main()
