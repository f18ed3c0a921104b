"""`semsearch search` end to end: a cold process vs the same command answered by a running server."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from server_load import ROOT


def timed(args: list[str], env: dict) -> tuple[float, int | None, str]:
    """(wall seconds, peak RSS in MB or None, stdout) of one command, start-up included."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    prefix = [gnu_time, "-f", "%M"] if gnu_time else []
    t = time.perf_counter()
    done = subprocess.run(prefix + args, capture_output=True, text=True, env=env, timeout=600, check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr[-1000:]}")
    peak = None
    if gnu_time:
        last = done.stderr.strip().splitlines()[-1]
        peak = round(int(last) / 1024) if last.isdigit() else None
    return wall, peak, done.stdout


def cli_latency(folder: Path, url: str, queries: list[str], runs: int, k: int) -> dict:
    """Interleaved runs of each way on the same fresh query; medians, and whether outputs matched."""
    import http.client
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "120"}
    env.pop("SEMSEARCH_SERVER", None)
    cli = [sys.executable, "-m", "semsearch.cli", "search", "-c", str(folder), "-k", str(k), "--json"]
    ways: dict[str, list[tuple[float, int | None]]] = {"empty python": [], "import semsearch.cli": [],
                                                       "cold CLI (--server off)": [], "CLI through the server": [],
                                                       "one HTTP request (warm client)": []}
    same = 0
    host, port = url.removeprefix("http://").split(":")
    for i in range(runs):
        query = queries[i]
        w, m, _ = timed([sys.executable, "-c", "pass"], env)
        ways["empty python"].append((w, m))
        w, m, _ = timed([sys.executable, "-c", "import semsearch.cli"], env)
        ways["import semsearch.cli"].append((w, m))
        w, m, local = timed(cli + [query, "--server", "off"], env)
        ways["cold CLI (--server off)"].append((w, m))
        w, m, served = timed(cli + [query], env)
        ways["CLI through the server"].append((w, m))
        same += local == served
        if local != served:
            print(f"CLI outputs differ for {query!r}:\n{local[:1500]}\n---\n{served[:1500]}", file=sys.stderr)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        t = time.perf_counter()
        conn.request("POST", "/search", body=json.dumps({"query": query + " again", "k": k}),
                     headers={"content-type": "application/json"})
        conn.getresponse().read()
        ways["one HTTP request (warm client)"].append((time.perf_counter() - t, None))
        conn.close()
    out = {}
    for name, values in ways.items():
        peaks = [m for _, m in values if m is not None]
        out[name] = {"median_s": statistics.median(w for w, _ in values), "runs": [round(w, 3) for w, _ in values],
                     "peak_mb": statistics.median(peaks) if peaks else None}
    out["identical outputs"] = f"{same}/{runs}"
    return out


def print_cli(result: dict) -> None:
    print("\n| command (end to end, start-up included) | median wall | peak RSS | runs (s) |")
    print("|---|---:|---:|---|")
    for name, r in result.items():
        if isinstance(r, dict):
            peak = f"{r['peak_mb']} MB" if r["peak_mb"] is not None else "–"
            print(f"| {name} | {r['median_s'] * 1000:.0f} ms | {peak} | {', '.join(map(str, r['runs']))} |")
    print(f"\n`--json` outputs of the two CLI ways identical: {result['identical outputs']}.")
