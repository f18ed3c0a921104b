"""Resuming an interrupted `semsearch index` (issue 13): msmarco-5k's corpus as one JSONL file,
indexed end to end from the CLI (process start-up included) into a fresh collection, then again
into another fresh collection killed with SIGKILL once ~60% of its chunks are committed and
re-run to completion. Reports the resumed run's wall time as a share of the fresh run's, per
repeat and as the median.

    PYTHONPATH=src python bench/bench_resume.py --repeats 3 [--commit-every 512]
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


def run(data: Path, collection: Path, commit_every: int, kill_at: float | None = None) -> tuple[float, int, bool]:
    """(wall seconds, chunks committed, killed) of one `semsearch index --json` process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch.cli", "index", str(data), "-c", str(collection), "--json",
         "--commit-every", str(commit_every)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    done = [0]
    killed = [False]

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            event = json.loads(line)
            if event["event"] == "batch":
                done[0] = event["chunks_done"]
                if kill_at is not None and event["chunks_done"] >= kill_at * event["chunks"] and not killed[0]:
                    killed[0] = True
                    proc.send_signal(signal.SIGKILL)

    reader = threading.Thread(target=read)
    reader.start()
    proc.wait()
    reader.join()
    return time.perf_counter() - started, done[0], killed[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commit-every", type=int, default=512)
    parser.add_argument("--kill-at", type=float, default=0.6)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="semsearch-resume-") as work:
        cache = Path(work) / "cache"
        os.environ["SEMSEARCH_CACHE_DIR"] = str(cache)
        run(args.data, Path(work) / "warm-up", args.commit_every)  # model conversion and calibration, once
        for r in range(args.repeats):
            fresh, chunks, _ = run(args.data, Path(work) / f"fresh-{r}", args.commit_every)
            first, committed, killed = run(args.data, Path(work) / f"killed-{r}", args.commit_every, args.kill_at)
            resumed, _, _ = run(args.data, Path(work) / f"killed-{r}", args.commit_every)
            rows.append({"fresh_s": fresh, "killed_after_s": first, "committed_at_kill": committed, "chunks": chunks,
                         "killed": killed, "resumed_s": resumed, "resumed_share": resumed / fresh})
            print(json.dumps(rows[-1]), flush=True)
    share = statistics.median(r["resumed_share"] for r in rows)
    print(json.dumps({"median_resumed_share": share, "median_fresh_s": statistics.median(r["fresh_s"] for r in rows),
                      "median_resumed_s": statistics.median(r["resumed_s"] for r in rows)}))


if __name__ == "__main__":
    main()
