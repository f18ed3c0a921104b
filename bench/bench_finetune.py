"""Fine-tuning benchmark: nDCG@10 before and after, and the training time, end to end through the CLI.

(a) supervised: `semsearch finetune PAIRS` on real pairs from the system's manual pages
    (bench/finetune_data.py: NAME summary -> DESCRIPTION), scored on held-out man-page queries
    (add `--a-args "--eval ../shared/data/msmarco-5k"` to also score a general set it never sees).
(b) label-free: `semsearch finetune COLLECTION` on a collection of msmarco-5k's corpus text
    (pseudo-queries from the passages themselves), scored on held-out pseudo-queries and on
    msmarco-5k's 50 judged queries. The judged queries are evaluation data only: they are
    never read for training (the collection holds the corpus, nothing else).

To see a model through a whole collection (dense and hybrid), run
`semsearch eval ../shared/data/msmarco-5k --model WORK/model-labelfree --compare dense,hybrid`.

    python bench/bench_finetune.py --work /tmp/ftbench [--only a|b] [--a-args "..."] [--b-args "..."]

Writes WORK/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MSMARCO = REPO.parent / "shared" / "data" / "msmarco-5k"


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run `semsearch ARGS` in a fresh process; (stdout, wall seconds including start-up)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "semsearch.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"semsearch {' '.join(args)} failed ({proc.returncode})")
    return proc.stdout, seconds


def finetune(train: Path, out: Path, *extra: str) -> dict:
    stdout, seconds = cli("finetune", str(train), "--out", str(out), "--json", "--no-progress", "--overwrite", *extra)
    result = json.loads(stdout)
    result["wall_seconds"] = round(seconds, 1)
    card = json.loads((out / "semsearch_finetune.json").read_text(encoding="utf-8"))
    result["training_seconds"] = card["training"]["seconds"]
    result["settings"] = card["settings"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ftbench"))
    parser.add_argument("--only", choices=("a", "b"))
    parser.add_argument("--epochs-a", default="2")
    parser.add_argument("--epochs-b", default="1")
    parser.add_argument("--max-seq-length", default="128")
    parser.add_argument("--a-args", default="",
                        help="more finetune options for (a), e.g. '--eval ../shared/data/msmarco-5k'")
    parser.add_argument("--b-args", default="",
                        help="more finetune options for (b), e.g. '--max-pairs 1500 --negatives 0'")
    args = parser.parse_args()
    if not MSMARCO.is_dir():
        raise SystemExit(f"{MSMARCO} not found: the benchmark needs the shared msmarco-5k data")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    results_file = work / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    common = ("--max-seq-length", args.max_seq_length)
    a_args, b_args = args.a_args.split(), args.b_args.split()

    if args.only in (None, "a"):
        pairs = work / "manpages.jsonl"
        if not pairs.exists():
            subprocess.run([sys.executable, str(REPO / "bench" / "finetune_data.py"), "--out", str(pairs)], check=True)
        results["a_supervised_manpages"] = finetune(pairs, work / "model-manpages", "--epochs", args.epochs_a, *common,
                                                    *a_args)
        results_file.write_text(json.dumps(results, indent=2))

    if args.only in (None, "b"):
        col = work / "col-msmarco"
        if not (col / "collection.sqlite3").exists():
            cli("index", str(MSMARCO / "corpus.jsonl"), "-c", str(col), "--no-progress")
        results["b_label_free_msmarco"] = finetune(col, work / "model-labelfree", "--epochs", args.epochs_b, "--eval",
                                                   str(MSMARCO), *common, *b_args)
        results_file.write_text(json.dumps(results, indent=2))

    print("| run | eval set | nDCG@10 before | after | change | training s | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key in ("a_supervised_manpages", "b_label_free_msmarco"):
        if key not in results:
            continue
        r = results[key]
        for name in r["before"]:
            b, a = r["before"][name]["ndcg@10"], r["after"][name]["ndcg@10"]
            print(f"| {key} | {name} | {b:.4f} | {a:.4f} | {a - b:+.4f} | {r['training_seconds']} | "
                  f"{r['wall_seconds']} |")


if __name__ == "__main__":
    main()
