"""Markdown tables for bench/RESULTS.md from bench_ann.py's JSON output.

    python bench/ann_table.py bench/results_ann_synthetic1m.json
"""

from __future__ import annotations

import json
import sys


def table(res: dict) -> str:
    questions = any("recall@10_questions" in r for r in res["rows"])
    head = ("| system | spec | build s | bytes/vector | recall@10 |" + (" recall@10 questions |" if questions else "")
            + " QPS 1 thread | QPS batch-100 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in res["rows"]:
        spec = r["spec"]
        if r["system"].startswith("semsearch") and r.get("knob"):
            tuned = f", tuned recall {r['tuned_recall']}" if r.get("tuned_recall") is not None else ""
            spec += f" ({r['knob']} {r['value']}{tuned})"
        cells = [r["system"], spec, f"{r['build_s']:.1f}", f"{r['bytes_per_vector']:,.0f}", f"{r['recall@10']:.3f}"]
        if questions:
            cells.append(f"{r['recall@10_questions']:.3f}" if "recall@10_questions" in r else "–")
        cells += [f"{r['qps_1thread']:,.0f}", f"{r['qps_batch100']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overhead(res: dict) -> str:
    lines = ["| index | single query (1 thread) | batch of 100 |", "|---|---|---|"]
    for name, o in res["overhead_vs_same_faiss_object"].items():
        s, b = o["single_1thread"], o["batch100"]
        lines.append(f"| {name} | {100 * s['overhead']:+.1f}% ({s['semsearch_us_per_call']:,.1f} vs "
                     f"{s['faiss_us_per_call']:,.1f} µs, "
                     f"{s['calls']} calls) | {100 * b['overhead']:+.1f}% ({b['calls']} calls) |")
    return "\n".join(lines)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        for res in json.load(open(path))["results"]:
            print(f"## {res['data']} n={res['n']:,} queries={res['queries']} load {res['load_start'][0]:.1f} -> "
                  f"{res['load_end'][0]:.1f}\n")
            print(table(res), "\n")
            print(overhead(res), "\n")
            print(json.dumps(res["targets"]), "\n")
