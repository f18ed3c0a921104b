"""Fine-tuning benchmark: nDCG@10 before and after, and the training time, end to end through the CLI.

(a) supervised: `semsearch finetune PAIRS` on real pairs from the system's manual pages
    (bench/finetune_data.py: NAME summary -> DESCRIPTION), scored on held-out man-page queries
    and, as a general set the model never trains on, on msmarco-5k's judged queries.
(b) label-free: `semsearch finetune COLLECTION` on a collection of msmarco-5k's corpus text
    (pseudo-queries from the passages themselves), scored on held-out pseudo-queries and on
    msmarco-5k's 50 judged queries. The judged queries are evaluation data only: they are
    never read for training (the collection holds the corpus, nothing else).

Optionally (--collection-eval) each model is also run through `semsearch eval` (dense and
hybrid, a real collection per model) so the numbers are what a user of the search sees.

    python bench/bench_finetune.py --work /tmp/ftbench [--only a|b] [--collection-eval]

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
    stdout, seconds = cli("finetune", str(train), "--out", str(out), "--eval", str(MSMARCO), "--json", "--no-progress",
                          "--overwrite", *extra)
    result = json.loads(stdout)
    result["wall_seconds"] = round(seconds, 1)
    card = json.loads((out / "semsearch_finetune.json").read_text(encoding="utf-8"))
    result["training_seconds"] = card["training"]["seconds"]
    result["settings"] = card["settings"]
    return result


def collection_eval(model: str, folder: Path) -> dict:
    stdout, seconds = cli("eval", str(MSMARCO), "--compare", "dense,hybrid", "--model", model, "-c", str(folder),
                          "--json", "--no-progress")
    out = json.loads(stdout)["results"]
    return {m: round(v["ndcg@10"], 4) for m, v in out.items()} | {"seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ftbench"))
    parser.add_argument("--only", choices=("a", "b"))
    parser.add_argument("--epochs-a", default="2")
    parser.add_argument("--epochs-b", default="1")
    parser.add_argument("--max-seq-length", default="128")
    parser.add_argument("--collection-eval", action="store_true")
    args = parser.parse_args()
    if not MSMARCO.is_dir():
        raise SystemExit(f"{MSMARCO} not found: the benchmark needs the shared msmarco-5k data")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    results_file = work / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    common = ("--max-seq-length", args.max_seq_length)

    if args.only in (None, "a"):
        pairs = work / "manpages.jsonl"
        if not pairs.exists():
            subprocess.run([sys.executable, str(REPO / "bench" / "finetune_data.py"), "--out", str(pairs)], check=True)
        results["a_supervised_manpages"] = finetune(pairs, work / "model-manpages", "--epochs", args.epochs_a, *common)
        results_file.write_text(json.dumps(results, indent=2))

    if args.only in (None, "b"):
        col = work / "col-msmarco"
        if not (col / "collection.sqlite3").exists():
            cli("index", str(MSMARCO / "corpus.jsonl"), "-c", str(col), "--no-progress")
        results["b_label_free_msmarco"] = finetune(col, work / "model-labelfree", "--epochs", args.epochs_b, *common)
        results_file.write_text(json.dumps(results, indent=2))

    if args.collection_eval:
        models = {"base": "all-MiniLM-L6-v2"}
        for key, folder in (("a_supervised_manpages", "model-manpages"), ("b_label_free_msmarco", "model-labelfree")):
            if key in results:
                models[key] = str(work / folder)
        results["collection_eval"] = {name: collection_eval(m, work / f"eval-{name}") for name, m in models.items()}
        results_file.write_text(json.dumps(results, indent=2))

    print("| run | eval set | nDCG@10 before | after | change | training s | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key in ("a_supervised_manpages", "b_label_free_msmarco"):
        if key not in results:
            continue
        r = results[key]
        for name in r["before"]:
            b, a = r["before"][name]["ndcg@10"], r["after"][name]["ndcg@10"]
            print(f"| {key} | {name} | {b:.4f} | {a:.4f} | {a - b:+.4f} | {r['training_seconds']} | {r['wall_seconds']} |")
    if "collection_eval" in results:
        print(json.dumps(results["collection_eval"], indent=2))


if __name__ == "__main__":
    main()
