"""Local (SQLite + FAISS) vs Milvus Lite through the same collection interface.

Two workloads, both measured side by side in one process, repeats interleaved, medians
reported (the machine is shared: run `uptime` next to it):

1. msmarco-5k (../shared/data/msmarco-5k): passages and queries are encoded ONCE with
   all-MiniLM-L6-v2 and the vectors reused, so encoding is not measured twice. Per backend:
   insert throughput (``add`` with precomputed embeddings, in batches of 1000 documents),
   dense search QPS (one query vector per call, k=10), and quality (nDCG@10, Recall@100,
   MRR@10 with pytrec_eval) for dense and hybrid search (hybrid = the local any-script FTS5
   BM25 vs Milvus' BM25 function, both fused by the same adaptive fusion).
2. synthetic clustered vectors (dim 384, --n of them, default 100k): insert throughput,
   search QPS and recall@10 against exact ground truth (numpy), for local Flat, Milvus
   FLAT and Milvus HNSW (M=32, ef=64).

    PYTHONPATH=src .venv/bin/python bench/bench_milvus.py [--work DIR] [--n 100000] [--repeats 3] [--skip-msmarco]

Prints markdown tables (copied to bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

from semsearch import Collection  # noqa: E402
from semsearch.backends.milvus import MilvusCollection, release_lite  # noqa: E402


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def open_backend(kind: str, work: Path, name: str, **kwargs):  # noqa: ANN001, ANN201
    if kind == "local":
        folder = work / f"local_{name}"
        shutil.rmtree(folder, ignore_errors=True)
        return Collection(folder, progress=False, **kwargs)
    uri = str(work / f"milvus_{name}.db")
    release_lite(uri)
    shutil.rmtree(uri, ignore_errors=True)
    return MilvusCollection(name, uri=uri, progress=False, **kwargs)


def close_backend(col) -> None:  # noqa: ANN001
    col.close()
    if isinstance(col, MilvusCollection):
        release_lite(col.engine.uri)  # the facade over the Milvus engine


def timed_insert(col, texts, ids, vectors, batch: int = 1000) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for i in range(0, len(ids), batch):
        col.add(texts[i : i + batch], ids=ids[i : i + batch], embeddings=vectors[i : i + batch])
    if isinstance(col, Collection):
        col.flush()  # the local vector index is built lazily; count its build as part of ingest
    else:
        col.flush()  # seals segments so Milvus Lite builds its index
    return len(ids) / (time.perf_counter() - started)


def timed_search(col, queries: np.ndarray, k: int = 10) -> tuple[float, list[list[str]]]:  # noqa: ANN001
    col.search(queries[0], k=k)  # warm up (loads the index)
    started = time.perf_counter()
    ids = [[h.id for h in col.search(q, k=k)] for q in queries]
    return len(queries) / (time.perf_counter() - started), ids


# -- msmarco-5k ------------------------------------------------------------------------------
def msmarco(work: Path, repeats: int) -> list[str]:
    from bench_quality import as_run, metrics
    from quality_sets import SHARED, load_beir

    folder = SHARED / "msmarco-5k"
    if not folder.exists():
        return ["msmarco-5k not found; skipped"]
    corpus, queries, qrels = load_beir(folder)
    qids = [q for q in queries if q in qrels]
    ids = list(corpus)
    texts = [corpus[i] for i in ids]
    cache = work / "msmarco_vectors.npz"
    if cache.exists():
        data = np.load(cache)
        doc_vecs, query_vecs = data["docs"], data["queries"]
    else:
        from semsearch import DEFAULT_MODEL, Embedder

        emb = Embedder(DEFAULT_MODEL)
        log("encoding msmarco-5k once ...")
        doc_vecs = emb.encode_documents(texts)
        query_vecs = emb.encode_queries([queries[q] for q in qids])
        np.savez(cache, docs=doc_vecs, queries=query_vecs)
    inserts: dict[str, list[float]] = {"local": [], "milvus": []}
    qps: dict[str, list[float]] = {"local": [], "milvus": []}
    quality: dict[str, dict[str, float]] = {}
    for r in range(repeats):
        cols = {}
        for kind in (("local", "milvus") if r % 2 == 0 else ("milvus", "local")):
            gc.collect()
            cols[kind] = open_backend(kind, work, "msmarco")
            inserts[kind].append(timed_insert(cols[kind], texts, ids, doc_vecs))
            log(kind, "insert/s", inserts[kind][-1])
        # Search rounds alternate between the two open collections, so both see the same load.
        for round_ in range(3):
            for kind in (("local", "milvus") if round_ % 2 == 0 else ("milvus", "local")):
                q, _ = timed_search(cols[kind], query_vecs)
                qps[kind].append(q)
                log(kind, "qps", q)
        if r == 0:
            for kind, col in cols.items():
                for mode in ("dense", "hybrid"):
                    if mode == "dense":
                        results = col.search(query_vecs, k=100)
                    else:
                        results = col.search([queries[q] for q in qids], k=100, mode="hybrid")
                    quality[f"{kind} {mode}"] = metrics(as_run(qids, results), {q: qrels[q] for q in qids})
        for col in cols.values():
            close_backend(col)
    lines = [
        "| backend | insert docs/s (median) | ratio vs local | dense search QPS, 1 query/call (median) | ratio vs "
        "local |",
        "|---|---|---|---|---|",
    ]
    for kind in ("local", "milvus"):
        ins, q = statistics.median(inserts[kind]), statistics.median(qps[kind])
        lines.append(f"| {kind} | {ins:,.0f} | {ins / statistics.median(inserts['local']):.2f} | {q:,.1f} | "
                     f"{q / statistics.median(qps['local']):.2f} |")
    lines += ["", "| backend / mode | nDCG@10 | R@100 | MRR@10 |", "|---|---|---|---|"]
    for key, m in quality.items():
        lines.append(f"| {key} | {m['nDCG@10']:.3f} | {m['R@100']:.3f} | {m['MRR@10']:.3f} |")
    lines.append(f"\n(builds: {repeats}, 3 interleaved search rounds of {len(qids)} queries each; raw insert/s "
                 f"{json.dumps({k: [round(x) for x in v] for k, v in inserts.items()})}; "
                 f"raw QPS {json.dumps({k: [round(x, 1) for x in v] for k, v in qps.items()})})")
    return lines


# -- synthetic -------------------------------------------------------------------------------
def clustered(n: int, dim: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(10, n // 1000), dim)).astype(np.float32)
    def draw(m: int) -> np.ndarray:
        x = centers[rng.integers(0, len(centers), m)] + 0.5 * rng.normal(size=(m, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.concatenate([draw(min(100_000, n - i)) for i in range(0, n, 100_000)]), draw(n_queries)


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = []
    for i in range(0, len(queries), 50):
        sims = queries[i : i + 50] @ data.T
        out.append(np.argsort(-sims, axis=1)[:, :k])
    return np.concatenate(out)


def synthetic(work: Path, n: int, repeats: int, n_queries: int = 200,
              configs: list[tuple[str, str]] | None = None) -> list[str]:
    data, queries = clustered(n, 384, n_queries)
    truth = exact_top(data, queries, 10)
    ids = [f"v{i}" for i in range(n)]
    texts = [f"vector {i}" for i in range(n)]
    configs = configs or [("local", "Flat"), ("milvus", "Flat"), ("milvus", "HNSW32")]
    ins: dict[str, list[float]] = {f"{k} {s}": [] for k, s in configs}
    qps: dict[str, list[float]] = {f"{k} {s}": [] for k, s in configs}
    recall: dict[str, float] = {}
    for r in range(repeats):
        order = configs if r % 2 == 0 else list(reversed(configs))
        for kind, spec in order:
            key = f"{kind} {spec}"
            gc.collect()
            col = open_backend(kind, work, f"synthetic_{spec.lower()}", index=spec)
            ins[key].append(timed_insert(col, texts, ids, data, batch=5000))
            q, found = timed_search(col, queries)
            qps[key].append(q)
            hits = [len(set(f) & {f"v{j}" for j in t}) / 10 for f, t in zip(found, truth)]
            recall[key] = float(np.mean(hits))
            close_backend(col)
            log(key, "insert/s", ins[key][-1], "qps", q, "recall", recall[key])
    base = next(iter(ins))
    base_i, base_q = statistics.median(ins[base]), statistics.median(qps[base])
    lines = [
        f"| {n:,} vectors, dim 384 | insert vectors/s (median) | ratio vs {base} | search QPS (k=10, 1 query/call) | "
        f"ratio vs {base} | recall@10 |",
        "|---|---|---|---|---|---|",
    ]
    for key in ins:
        i, q = statistics.median(ins[key]), statistics.median(qps[key])
        lines.append(f"| {key} | {i:,.0f} | {i / base_i:.2f} | {q:,.1f} | {q / base_q:.2f} | {recall[key]:.3f} |")
    lines.append(f"\n(repeats: {repeats}; {n_queries} queries; ground truth by exact numpy inner product)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_milvus"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--synthetic-repeats", type=int, default=1)
    ap.add_argument("--skip-msmarco", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--queries", type=int, default=200, help="synthetic queries")
    ap.add_argument("--configs", default="local:Flat,milvus:Flat,milvus:HNSW32", help="synthetic backend:spec list")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"load before: {os.getloadavg()}")
    if not args.skip_msmarco:
        print("\n".join(msmarco(args.work, args.repeats)), flush=True)
    print(f"load: {os.getloadavg()}")
    if not args.skip_synthetic:
        configs = [tuple(c.split(":", 1)) for c in args.configs.split(",")]
        print("\n".join(synthetic(args.work, args.n, args.synthetic_repeats, args.queries, configs)), flush=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
