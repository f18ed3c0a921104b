"""Vector index benchmark: semsearch's index types vs raw FAISS, hnswlib, ChromaDB, Milvus Lite
and sentence_transformers.util.semantic_search, all in one process, same data, same run.

Data (``--data``, comma-separated):
  real       real all-MiniLM-L6-v2 embeddings of msmarco-5k sentences + stdlib docstrings
             (bench/ann_data.py, cached in bench/.cache/); queries: held-out texts (5%, not in
             the collection) + the 50 msmarco questions. Recall is also given for the questions.
  synthetic  ``--n`` clustered unit vectors (1,000 anisotropic clusters), dimension 384;
             queries: perturbed data points not in the collection. --quick: 100k, default 1M.

Per system: build time, bytes/vector (from the structure; ChromaDB / Milvus Lite: disk size
of their files, they keep data out of our process), recall@10 vs exact (all queries, batch
mode), QPS for single queries on one thread (faiss.omp_set_num_threads(1),
torch.set_num_threads(1), hnswlib num_threads=1) and batches of 100 (all cores).
Timing is interleaved: every round measures every system once, in rotating order; medians
of ``--repeats`` rounds. Each measurement runs up to 300 queries or ~1.5 s, whichever first.

Overhead: "faiss (same index)" is semsearch's own FAISS object searched through FAISS's
Python API — the same structure and knob, so the ratio is exactly semsearch's per-call
overhead; "faiss" is an independent raw FAISS build with the same factory string and knob.

    PYTHONPATH=src python bench/bench_ann.py --quick --data real,synthetic --out bench/results_ann_quick.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ann_data import clustered, real_embeddings  # noqa: E402
from semsearch.index.build import build_from_store  # noqa: E402
from semsearch.index.tuning import recall_at_k  # noqa: E402

K = 10
DIM = 384
LARGE = 500_000  # from this size on, identical builds are not duplicated (memory)
CORES = os.cpu_count() or 1


@dataclass
class System:
    name: str
    spec: str
    build_s: float
    bytes_per_vector: float
    search: Callable[[np.ndarray], np.ndarray]  # (nq, dim) -> ids (nq, k)
    threads: Callable[[int], None] = lambda n: None
    extra: dict[str, Any] = field(default_factory=dict)
    single: list[float] = field(default_factory=list)
    batch: list[float] = field(default_factory=list)


class ArrayStore:
    """The store methods build_from_store reads, over in-memory arrays."""

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


def set_threads(n: int) -> None:
    faiss.omp_set_num_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def qps(search: Callable[[np.ndarray], Any], queries: np.ndarray, batch: int, budget_s: float = 1.5,
        cap: int = 300) -> float:
    done, t0 = 0, time.perf_counter()
    while done < min(cap, len(queries)):
        search(queries[done : done + batch])
        done += batch
        if time.perf_counter() - t0 > budget_s and done >= 20:
            break
    return done / (time.perf_counter() - t0)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# -- builders ---------------------------------------------------------------------------------
def semsearch_systems(x: np.ndarray, specs: list[str]) -> tuple[list[System], dict[str, Any]]:
    store = ArrayStore(x)
    systems, indexes = [], {}
    for spec in specs:
        if "{nlist}" in spec:
            spec = spec.format(nlist=indexes["auto"].spec_info.nlist or 64)
        if "auto" in indexes and spec == indexes["auto"].factory and len(x) >= LARGE:
            # At 1M the same structure twice costs 1.5 GB of a 24 GB machine: one row serves both.
            indexes[spec] = indexes["auto"]
            systems[0].spec += f" (= explicit {spec}: same build, one row)"
            print(f"{spec} is what auto built: measured once", flush=True)
            continue
        gc.collect()
        t = time.perf_counter()
        index, _ = build_from_store(store, spec, DIM)
        build_s = time.perf_counter() - t
        indexes[spec] = index
        tuning = index.tuning or {}
        label = f"auto → {index.factory}" if spec == "auto" else spec
        systems.append(System("semsearch", label, build_s, index.bytes_per_vector(),
                              lambda q, index=index: index.search(q, K)[1], set_threads,
                              {"knob": tuning.get("param"), "value": tuning.get("value"),
                               "tuned_recall": tuning.get("recall_at_10")}))
        print(f"built semsearch {label} in {build_s:.1f}s {tuning}", flush=True)
    return systems, indexes


def raw_faiss(x: np.ndarray, index: Any) -> System:
    """An independent raw FAISS build: same factory string, same knob as semsearch chose."""
    kind, factory, value = index.spec_info.kind, index.factory, (index.tuning or {}).get("value")
    raw = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
    if kind == "hnsw":
        faiss.downcast_index(raw).hnsw.efConstruction = 40
    for sub in (raw, faiss.try_extract_index_ivf(raw) if kind == "ivf" else None):
        if sub is not None and hasattr(faiss.downcast_index(sub), "do_polysemous_training"):
            faiss.downcast_index(sub).do_polysemous_training = False
    t = time.perf_counter()
    if not raw.is_trained:
        sample = x[np.sort(np.random.default_rng(1).choice(len(x), min(len(x), max(65536, index.min_train)),
                                                           replace=False))]
        raw.train(sample)
    raw.add(x)
    build_s = time.perf_counter() - t
    set_knob(raw, kind, value)
    return System("faiss", f"{factory}" + (f" {index.spec_info.search_param} {value}" if value else ""), build_s,
                  index.bytes_per_vector() - 8, lambda q: raw.search(q, K)[1], set_threads,
                  {"index": raw, "kind": kind})


def set_knob(raw: Any, kind: str, value: int | None) -> None:
    if value is None:
        return
    if kind == "ivf":
        faiss.extract_index_ivf(raw).nprobe = int(value)
    elif kind == "hnsw":
        faiss.downcast_index(raw).hnsw.efSearch = int(value)


def same_object(index: Any) -> System:
    inner = index._index
    return System("faiss (same index)", index.factory, 0.0, index.bytes_per_vector(), lambda q: inner.search(q, K)[1],
                  set_threads)


def hnswlib_system(x: np.ndarray, queries: np.ndarray, truth: np.ndarray, curves: dict) -> System:
    import hnswlib

    t = time.perf_counter()
    p = hnswlib.Index(space="ip", dim=DIM)
    p.init_index(max_elements=len(x), M=32, ef_construction=40)
    p.add_items(x, np.arange(len(x)), num_threads=CORES)
    build_s = time.perf_counter() - t
    p.set_num_threads(1)
    curve, chosen = [], None
    for ef in (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512):
        p.set_ef(ef)
        r = recall_at_k(p.knn_query(queries, k=K)[0].astype(np.int64), truth)
        q1 = statistics.median(qps(lambda q: p.knn_query(q, k=K), queries, 1) for _ in range(3))
        curve.append((r, q1, ef))
        if chosen is None and r >= 0.95:
            chosen = ef
    curves["hnswlib M=32 efC=40 (ef)"] = curve
    p.set_ef(chosen or 512)

    def threads(n: int) -> None:
        set_threads(n)
        p.set_num_threads(n)

    links = 4 * (2 * 32 + 32 / np.log(32)) + 8 + 4 * DIM  # level-0 links, upper levels, label, vector
    return System("hnswlib", f"M=32 efC=40 ef={chosen or 512} (lowest ef with recall ≥ 0.95 here)", build_s, links,
                  lambda q: p.knn_query(q, k=K)[0].astype(np.int64), threads, {"index": p})


def st_system(x: np.ndarray) -> System:
    import torch
    from sentence_transformers.util import semantic_search

    corpus = torch.from_numpy(x)

    def search(q: np.ndarray) -> np.ndarray:
        res = semantic_search(torch.from_numpy(q), corpus, top_k=K)
        return np.array([[h["corpus_id"] for h in r] for r in res], dtype=np.int64)

    return System("st.util.semantic_search", "exact, torch float32", 0.0, 4 * DIM, search, set_threads)


def chroma_system(x: np.ndarray, tmp: Path) -> System:
    import chromadb

    path = tmp / "chroma"
    t = time.perf_counter()
    client = chromadb.PersistentClient(path=str(path))
    col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
    step = 5000
    for s in range(0, len(x), step):
        col.add(ids=[str(i) for i in range(s, min(len(x), s + step))], embeddings=x[s : s + step])
    col.query(query_embeddings=x[:1], n_results=K, include=[])  # loads the index
    build_s = time.perf_counter() - t
    try:
        cfg = col.configuration_json.get("hnsw") or col.configuration_json
    except Exception:  # noqa: BLE001 - only for the label
        cfg = {}

    def search(q: np.ndarray) -> np.ndarray:
        res = col.query(query_embeddings=q, n_results=K, include=[])
        return np.array([[int(i) for i in r] for r in res["ids"]], dtype=np.int64)

    return System("chromadb", f"{chromadb.__version__} PersistentClient, HNSW defaults {json.dumps(cfg)}", build_s,
                  dir_size(path) / len(x), search, set_threads, {"memory": "disk bytes/vector", "client": client})


def collection_system(x: np.ndarray, tmp: Path) -> System:
    """semsearch end to end: a Collection (SQLite store + the auto index) searched by embedding.

    What a user calls: ``col.search(vectors, k=10, mode="dense")`` returns Hit objects with each
    document's id, text and metadata read back from SQLite; the ids are compared with the truth.
    Documents are short placeholders ("document 123"); build = adding the precomputed vectors in
    batches of 20,000 (durable commits, FTS5 rows) + flush (index build, tuning, fsynced save).
    """
    from semsearch import Collection

    col = Collection(tmp / "collection")  # loads and calibrates the encoder: not part of the build
    t = time.perf_counter()
    step = 20_000
    for s in range(0, len(x), step):
        e = min(len(x), s + step)
        col.add([f"document {i}" for i in range(s, e)], ids=[str(i) for i in range(s, e)], embeddings=x[s:e])
    col.flush()
    build_s = time.perf_counter() - t

    def search(q: np.ndarray) -> np.ndarray:
        res = col.search(q, k=K, mode="dense")
        return np.array([[int(h.id) for h in r] + [-1] * (K - len(r)) for r in res], dtype=np.int64)

    index = col.engine.index._index
    tuning = (index.tuning or {}) if index is not None else {}
    return System("semsearch Collection",
                  f"auto → {index.factory if index else '?'}, end to end (hits with text from SQLite)",
                  build_s, index.bytes_per_vector() if index else 0.0, search, set_threads,
                  {"knob": tuning.get("param"), "value": tuning.get("value"),
                   "disk_bytes_per_vector": dir_size(tmp / "collection") / len(x),
                   "client": col})


def milvus_system(x: np.ndarray, tmp: Path) -> System:
    import pymilvus
    from pymilvus import MilvusClient

    t = time.perf_counter()
    client = MilvusClient(str(tmp / "milvus.db"))
    client.create_collection("bench", dimension=DIM, metric_type="IP", auto_id=False)
    step = 10_000
    for s in range(0, len(x), step):
        client.insert("bench", [{"id": i, "vector": v} for i, v in zip(range(s, s + step), x[s : s + step].tolist())])
    client.flush("bench")
    client.search("bench", data=[x[0].tolist()], limit=K)
    build_s = time.perf_counter() - t
    try:
        names = client.list_indexes("bench")
        desc = client.describe_index("bench", names[0]) if names else {}
        index_type = f"{desc.get('index_type')} {desc.get('metric_type')}"
    except Exception as exc:  # noqa: BLE001 - only for the label
        index_type = f"unknown ({exc})"

    def search(q: np.ndarray) -> np.ndarray:
        res = client.search("bench", data=q.tolist(), limit=K)
        return np.array([[h["id"] for h in r] + [-1] * (K - len(r)) for r in res], dtype=np.int64)

    return System("milvus-lite", f"pymilvus {pymilvus.__version__}, index {index_type}", build_s,
                  dir_size(tmp) / len(x), search, set_threads,
                  {"memory": "disk bytes/vector (.db dir)", "client": client})


# -- measurement ------------------------------------------------------------------------------
def measure(systems: list[System], queries: np.ndarray, repeats: int) -> None:
    for r in range(repeats):
        order = systems[r % len(systems):] + systems[: r % len(systems)]
        for s in order:
            s.threads(1)
            s.single.append(qps(s.search, queries, 1))
        for s in order:
            s.threads(CORES)
            s.batch.append(qps(s.search, queries, 100, budget_s=3.0, cap=len(queries)))
        print(f"round {r + 1}/{repeats} done, load {os.getloadavg()[0]:.1f}", flush=True)


def paired_overhead(sem: Callable, raw: Callable, queries: np.ndarray, batch: int, rounds: int = 5,
                    budget_s: float = 1.0) -> dict:
    """semsearch's per-call time over raw FAISS's on the same index object. Calls alternate
    (which goes first flips every call) and the medians of the per-call times are compared,
    so preemption spikes on this shared machine hit neither side's estimate."""
    ts, tr = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i, start in enumerate(range(0, len(queries), batch)):
            q = queries[start : start + batch]
            for f in ((sem, raw) if i % 2 else (raw, sem)):
                t = time.perf_counter()
                f(q)
                (ts if f is sem else tr).append(time.perf_counter() - t)
            if time.perf_counter() - t0 > budget_s and i >= 10:
                break
    ms, mr = statistics.median(ts), statistics.median(tr)
    diffs = [a - b for a, b in zip(ts, tr)]
    return {"overhead": round(ms / mr - 1, 4), "semsearch_us_per_call": round(ms * 1e6, 1),
            "faiss_us_per_call": round(mr * 1e6, 1),
            "median_paired_diff_us": round(statistics.median(diffs) * 1e6, 2), "calls": len(ts)}


def curve_sweep(index: Any, raw: System | None, queries: np.ndarray, truth: np.ndarray, curves: dict,
                cap: int | None = None) -> None:
    """Recall and single-thread QPS along the knob ladder, semsearch and raw FAISS interleaved."""
    kind, value = index.spec_info.kind, (index.tuning or {}).get("value")
    set_threads(1)
    sem, fa = [], []
    for v in index.tuning_ladder():
        if cap and v > cap:
            break
        index.set_search_value(v)
        r1 = recall_at_k(index.search(queries, K)[1], truth)
        t_sem, t_raw = [], []
        if raw is not None:
            set_knob(raw.extra["index"], kind, v)
            r2 = recall_at_k(raw.search(queries), truth)
        for _ in range(3):
            t_sem.append(qps(lambda q: index.search(q, K), queries, 1, budget_s=0.7))
            if raw is not None:
                t_raw.append(qps(raw.search, queries, 1, budget_s=0.7))
        sem.append((r1, statistics.median(t_sem), v))
        if raw is not None:
            fa.append((r2, statistics.median(t_raw), v))
        if r1 >= 0.999:
            break
    curves[f"semsearch {index.factory} ({index.spec_info.search_param})"] = sem
    if raw is not None:
        curves[f"faiss {index.factory} ({index.spec_info.search_param})"] = fa
        set_knob(raw.extra["index"], kind, value)
    index.set_search_value(value)


def run_dataset(name: str, x: np.ndarray, queries: np.ndarray, n_questions: int, args: argparse.Namespace) -> dict:
    n = len(x)
    load0 = os.getloadavg()
    print(f"== {name}: n={n:,} queries={len(queries)} load={load0[0]:.1f}", flush=True)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(x)
    top1, truth = exact.search(queries, K)
    del exact
    skip = set(filter(None, args.skip.split(",")))
    curves: dict[str, list] = {}
    specs = ["auto", "IVF{nlist},Flat", "HNSW32", "IVF{nlist},SQ8", "SQ8", "binary,SQ8", "Flat"]
    if "pq" not in skip:
        specs.insert(4, "IVF{nlist},PQ48")
    systems, indexes = semsearch_systems(x, specs)
    ivf_key = next(k for k in indexes if k.startswith("IVF") and k.endswith(",Flat"))
    extra: list[System] = []
    # Overhead: the same FAISS object, and an independent build, for the IVF and HNSW rows.
    raws = {}
    paired = (ivf_key, "HNSW32", [k for k in indexes if k.endswith(",SQ8") and k.startswith("IVF")][0], "Flat")
    for key in paired:
        extra.append(same_object(indexes[key]))
        if key == "Flat" and n >= LARGE:
            continue  # an independent IndexFlatIP is bit-identical to the same object; saves 1.5 GB at 1M
        raws[key] = raw_faiss(x, indexes[key])
        extra.append(raws[key])
    if "hnswlib" not in skip:
        extra.append(hnswlib_system(x, queries, truth, curves))
    if "st" not in skip:
        extra.append(st_system(x))
    tmp = Path(tempfile.mkdtemp(prefix="bench_ann_"))
    try:
        if "chroma" not in skip:
            extra.append(chroma_system(x, tmp))
            print(f"built chromadb in {extra[-1].build_s:.1f}s", flush=True)
        if "milvus" not in skip:
            extra.append(milvus_system(x, tmp))
            print(f"built milvus-lite in {extra[-1].build_s:.1f}s", flush=True)
        if "collection" not in skip and n <= 200_000:
            extra.insert(0, collection_system(x, tmp))
            print(f"built semsearch Collection in {extra[0].build_s:.1f}s", flush=True)
        all_systems = systems + extra
        for s in all_systems:
            s.threads(CORES)
            s.extra["ids"] = s.search(queries)
        measure(all_systems, queries, args.repeats)
        curve_sweep(indexes[ivf_key], raws[ivf_key], queries, truth, curves, cap=256)
        curve_sweep(indexes["HNSW32"], raws["HNSW32"], queries, truth, curves)
    finally:
        for s in extra:
            if "client" in s.extra and hasattr(s.extra["client"], "close"):
                try:
                    s.extra["client"].close()
                except Exception:  # noqa: BLE001
                    pass
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for s in all_systems:
        ids = s.extra.pop("ids")
        row = {"system": s.name, "spec": s.spec, "build_s": round(s.build_s, 1),
               "bytes_per_vector": round(s.bytes_per_vector, 1),
               "recall@10": round(recall_at_k(ids, truth), 4),
               "qps_1thread": round(statistics.median(s.single), 1),
               "qps_batch100": round(statistics.median(s.batch), 1),
               "qps_1thread_all": [round(v) for v in s.single], "qps_batch100_all": [round(v) for v in s.batch],
               **{k: v for k, v in s.extra.items() if k not in ("index", "client", "kind")}}
        if n_questions:
            row["recall@10_questions"] = round(recall_at_k(ids[-n_questions:], truth[-n_questions:]), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    # Overhead: semsearch vs the same FAISS object, paired call by call (pure per-call overhead).
    overhead = {}
    for key in paired:
        index = indexes[key]
        inner = index._index
        out = {}
        for label, batch, threads in (("single_1thread", 1, 1), ("batch100", 100, CORES)):
            set_threads(threads)
            out[label] = paired_overhead(lambda q, index=index: index.search(q, K),
                                         lambda q, inner=inner: inner.search(q, K), queries, batch)
        overhead[index.factory] = out
        print("overhead", index.factory, json.dumps(out), flush=True)
    return {"data": name, "n": n, "queries": len(queries), "questions": n_questions, "load_start": load0,
            "load_end": os.getloadavg(), "top1_cosine_median": float(np.median(top1[:, 0])),
            "rows": rows, "curves": curves, "overhead_vs_same_faiss_object": overhead, "targets": targets(rows, curves)}


def targets(rows: list[dict], curves: dict) -> dict:
    """Best single-thread and batch QPS at recall@10 >= 0.95: semsearch vs each peer."""
    best: dict[str, tuple[float, str]] = {}
    for r in rows:
        if r["recall@10"] >= 0.95 and r["system"] != "faiss (same index)":
            for key in ("qps_1thread", "qps_batch100"):
                cur = best.get(f"{r['system']}|{key}")
                if cur is None or r[key] > cur[0]:
                    best[f"{r['system']}|{key}"] = (r[key], r["spec"])
    for name, pts in curves.items():
        system = name.split(" ")[0]
        for rec, q1, v in pts:
            if rec >= 0.95:
                cur = best.get(f"{system}|qps_1thread (curve)")
                if cur is None or q1 > cur[0]:
                    best[f"{system}|qps_1thread (curve)"] = (round(q1, 1), f"{name} = {v}")
    return {k: v for k, v in sorted(best.items())}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5.5), squeeze=False)
    for ax, res in zip(axes[0], results):
        for name, pts in res["curves"].items():
            pts = sorted(pts)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                    ls="-" if name.startswith("semsearch") else "--", label=name)
        for r in res["rows"]:
            if r["system"] in ("chromadb", "milvus-lite", "st.util.semantic_search") or (
                r["system"] == "semsearch" and not r["spec"].startswith(("HNSW32", "IVF")) and "auto" not in r["spec"]
            ) or (r["system"] == "semsearch" and "PQ" in r["spec"]):
                ax.scatter([r["recall@10"]], [r["qps_1thread"]], marker="s", s=30)
                ax.annotate(f"{r['system']} {r['spec'].split(' ')[0]}", (r["recall@10"], r["qps_1thread"]), fontsize=7)
        ax.axvline(0.95, color="grey", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 vs exact")
        ax.set_ylabel("queries/s (single query, 1 thread)")
        ax.set_title(f"{res['data']}: {res['n']:,} vectors, dim {DIM}, load ~{res['load_start'][0]:.0f}")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="synthetic at 100k instead of 1M")
    ap.add_argument("--data", default="real,synthetic")
    ap.add_argument("--n", type=int, default=None, help="synthetic size")
    ap.add_argument("--queries", type=int, default=1000, help="held-out / synthetic queries")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma-separated: chroma,milvus,hnswlib,st,pq,collection")
    ap.add_argument("--real-texts", type=int, default=40_000,
                    help="size of the real set to load (bench/ann_data.py --max-texts)")
    ap.add_argument("--out", default="bench/results_ann_quick.json")
    ap.add_argument("--plot", default="bench/ann_tradeoff.png")
    ap.add_argument("--plot-with", default="",
                    help="comma-separated result JSONs of other runs to draw in the same PNG")
    args = ap.parse_args()
    results: list[dict] = []
    extra_results = [r for f in filter(None, args.plot_with.split(","))
                     for r in json.loads(Path(f).read_text())["results"]]
    if args.data == "none":
        plot(extra_results, Path(args.plot))
        return
    for data in args.data.split(","):
        if data == "real":
            got = real_embeddings(args.real_texts)
            if got is None:
                print("real embeddings not cached: run bench/ann_data.py first; skipping", flush=True)
                continue
            docs, held, questions = got
            rng = np.random.default_rng(3)
            held = held[np.sort(rng.choice(len(held), min(args.queries, len(held)), replace=False))]
            queries = np.ascontiguousarray(np.concatenate([held, questions]), dtype=np.float32)
            results.append(run_dataset("real MiniLM", np.ascontiguousarray(docs), queries, len(questions), args))
        else:
            n = args.n or (100_000 if args.quick else 1_000_000)
            x = clustered(n)
            rng = np.random.default_rng(7)
            picked = x[rng.choice(n, args.queries, replace=False)]  # drawn before the noise, as before
            q = picked + 0.08 * rng.normal(size=(args.queries, DIM)).astype(np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            results.append(run_dataset("synthetic clustered", x, q.astype(np.float32), 0, args))
        Path(args.out).write_text(json.dumps({"cores": CORES, "results": results}, indent=1, default=str))
        plot(results + extra_results, Path(args.plot))
    for res in results:
        print(res["data"], json.dumps(res["targets"], indent=1), json.dumps(res["overhead_vs_same_faiss_object"]))


if __name__ == "__main__":
    main()
