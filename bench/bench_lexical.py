"""BM25 query latency: semsearch's in-memory BM25 vs SQLite FTS5's bm25() vs bm25s.

The collection: the 104,500 real texts of the ANN benchmark (bench/ann_data.py: msmarco
sentences, stdlib and site-packages docstrings) stored as one chunk each; their real MiniLM
vectors when bench/.cache holds them (bench_ann.py --real-texts), else random ones (only the
hybrid rows read vectors, and a dense scan costs the same either way). Queries: the 50 TREC
DL queries of msmarco-5k. All systems answer the same queries in one process, interleaved
(system order rotated every repeat), 5 repeats; medians of per-query latency.

Rows:
- FTS5 bm25(): top 200 by ``SELECT ... ORDER BY bm25(chunks_fts) LIMIT 200`` (what
  semsearch ran before, and still runs until the in-memory index is worth building).
- semsearch memory: top 200 from the in-memory snapshot (the same scores as FTS5).
- bm25s: top 200 from ``bm25s.BM25`` indexed on exactly the same tokens (its default
  "lucene" variant: same cost structure, slightly different idf).
- Collection.search hybrid / lexical k=10 end to end, with BM25 in FTS5 and in memory.

    python bench/bench_lexical.py            # ~3 minutes, prints markdown; JSON next to it
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

import ann_data  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
N_TEXTS = 110_000
REPEATS = 5
TOP = 200


def collection_folder() -> tuple[Path, str]:
    """The benchmark collection (built once into bench/.cache), and where its vectors came from."""
    from semsearch import Collection

    folder = CACHE / "lexical-real100k"
    texts, _ = ann_data.real_texts(N_TEXTS)
    real = ann_data.real_embeddings(N_TEXTS)
    held = np.zeros(len(texts), dtype=bool)
    held[np.random.default_rng(1).choice(len(texts), len(texts) // 20, replace=False)] = True  # as ann_data
    kept = [t for t, h in zip(texts, held) if not h]
    source = "real MiniLM vectors" if real is not None else "random vectors"
    if (folder / "collection.sqlite3").exists():
        return folder, source
    vectors = real[0] if real is not None else np.random.default_rng(0).normal(size=(len(kept), 384)).astype(np.float32)
    with Collection(folder) as col:
        for s in range(0, len(kept), 10_000):
            col.add(kept[s : s + 10_000], ids=[f"t{i}" for i in range(s, min(s + 10_000, len(kept)))],
                    embeddings=vectors[s : s + 10_000])
        col.flush()
    return folder, source


def main() -> None:
    import bm25s

    from semsearch import Collection
    from semsearch.backends.local.fts import search as fts_search
    from semsearch.backends.local.lexical_arrays import LexicalArrays
    from semsearch.lexical import match_expression, tokenize

    folder, source = collection_folder()
    _, queries = ann_data.real_texts(10)
    col = Collection(folder)
    store = col.engine.store
    n_chunks = store.chunk_count()

    started = time.perf_counter()
    memory = LexicalArrays(store).current(build=True)
    build_memory = time.perf_counter() - started
    assert memory is not None
    memory_bytes = sum(s.rows.nbytes + s.tf.nbytes + s.indptr.nbytes for s in memory.segments) + (
        memory.chunk_ids.nbytes + memory.lengths.nbytes + memory.alive.nbytes
    )

    rows = store.con.execute("SELECT rowid, tokens FROM chunks_fts ORDER BY rowid").fetchall()
    corpus_tokens = [t.split() for _, t in rows]
    started = time.perf_counter()
    peer = bm25s.BM25()
    peer.index(corpus_tokens, show_progress=False)
    build_bm25s = time.perf_counter() - started
    del corpus_tokens, rows

    query_terms = [list(dict.fromkeys(tokenize(q))) for q in queries]
    expressions = [match_expression(q) for q in queries]

    def run_fts(i: int) -> None:
        fts_search(store, expressions[i], TOP)

    def run_memory(i: int) -> None:
        memory.search(query_terms[i], TOP)

    def run_bm25s(i: int) -> None:
        peer.retrieve([query_terms[i]], k=TOP, show_progress=False, n_threads=1)

    fts_col = Collection(folder)
    fts_col.engine.bm25._too_large = True  # keeps every BM25 query in FTS5
    mem_col = col
    mem_col.engine.bm25.current(build=True)
    for c in (fts_col, mem_col):
        c.search(queries[0], k=10)  # load model and vector index

    systems = {
        "FTS5 bm25() top 200": run_fts,
        "semsearch memory top 200": run_memory,
        "bm25s top 200": run_bm25s,
        "Collection.search hybrid, BM25 in FTS5": lambda i: fts_col.search(queries[i], k=10),
        "Collection.search hybrid, BM25 in memory": lambda i: mem_col.search(queries[i], k=10),
        "Collection.search lexical, BM25 in FTS5": lambda i: fts_col.search(queries[i], k=10, mode="lexical"),
        "Collection.search lexical, BM25 in memory": lambda i: mem_col.search(queries[i], k=10, mode="lexical"),
    }
    # Same answers: memory and FTS5 scores of each query's top 200.
    worst = 0.0
    for i in range(len(queries)):
        fts = dict(fts_search(store, expressions[i], TOP))
        mem = memory.search(query_terms[i], TOP)
        worst = max([worst] + [abs(fts[c] - s) for c, s in mem if c in fts])
    # Queries are encoded once before timing, so hybrid rows time search, not the encoder.
    col.embedder.encode_queries(queries)
    fts_col.embedder.encode_queries(queries)

    latencies: dict[str, list[float]] = {name: [] for name in systems}
    names = list(systems)
    for rep in range(REPEATS):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            for i in range(len(queries)):
                t = time.perf_counter()
                systems[name](i)
                latencies[name].append(time.perf_counter() - t)

    result = {
        "chunks": n_chunks, "vectors": source, "queries": len(queries), "repeats": REPEATS,
        "postings": memory.postings, "memory_bytes": memory_bytes, "build_memory_s": build_memory,
        "build_bm25s_s": build_bm25s, "max_score_difference_vs_fts5": worst,
        "load": os.getloadavg(),
        "rows": {name: {"p50_ms": statistics.median(v) * 1e3, "mean_ms": statistics.mean(v) * 1e3,
                        "p99_ms": float(np.percentile(v, 99)) * 1e3} for name, v in latencies.items()},
    }
    (ROOT / "bench" / "results_lexical.json").write_text(json.dumps(result, indent=2))
    fts_p50 = result["rows"]["FTS5 bm25() top 200"]["p50_ms"]
    print(f"{n_chunks:,} chunks ({source}), {memory.postings:,} postings, in-memory {memory_bytes / 2**20:.1f} MiB, "
          f"built in {build_memory:.2f} s (bm25s index {build_bm25s:.2f} s); max |score - FTS5| {worst:.1e}")
    print("| system | p50 ms | mean ms | p99 ms | p50 vs FTS5 bm25() |")
    print("|---|---:|---:|---:|---:|")
    for name, r in result["rows"].items():
        ratio = f"{fts_p50 / r['p50_ms']:.1f}x faster" if "top 200" in name else ""
        print(f"| {name} | {r['p50_ms']:.2f} | {r['mean_ms']:.2f} | {r['p99_ms']:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
