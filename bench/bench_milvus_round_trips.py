"""Hybrid search on Milvus Lite: the stored vectors the ranking needs come with the BM25 search
(issue 24) vs one more ``get`` after it (before), side by side in one process.

The collection holds the first ``--n`` passages of ../shared/data/msmarco-5k (real words, so BM25
finds documents the vector search did not: the ones whose stored vectors fused ranking reads)
with random unit vectors (what is measured is the round trips, not the ranking's quality); without
the data set, random word strings. Each query is searched by both variants in alternating order,
``--rounds`` times; the table gives medians and p90 per variant, the ratio, and the client calls
one search makes in each.

    PYTHONPATH=src .venv/bin/python bench/bench_milvus_round_trips.py [--n 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from semsearch import Collection  # noqa: E402
from semsearch.backends.milvus import engine as milvus_engine  # noqa: E402
from semsearch.backends.milvus import release_lite  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco-5k"


def texts_and_queries(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    corpus, queries = DATA / "corpus.jsonl", DATA / "queries.jsonl"
    if corpus.exists() and queries.exists():
        with corpus.open() as f:
            texts = [json.loads(line)["text"] for _, line in zip(range(n), f)]
        with queries.open() as f:
            return texts, [json.loads(line)["text"] for line in f][:60]
    words = [f"w{i}" for i in range(400)]
    texts = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(n)]
    return texts, [" ".join(rng.choice(words) for _ in range(4)) for _ in range(60)]


class Calls:
    """Counts a pymilvus client's calls by name."""

    def __init__(self, client: Any) -> None:
        self.client, self.names = client, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.names.append(name)
            return attr(*args, **kwargs)

        return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(3)
    texts, queries = texts_and_queries(args.n, rng)
    vectors = np.random.default_rng(3).standard_normal((len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    uri = str(Path(tempfile.mkdtemp()) / "round_trips.db")
    col = Collection("round_trips", backend="milvus", uri=uri, progress=False)
    for i in range(0, len(texts), 1000):
        col.add(texts[i:i + 1000], ids=[f"d{j}" for j in range(i, min(len(texts), i + 1000))],
                embeddings=vectors[i:i + 1000])
    with_search = milvus_engine.bm25_search

    def separate_get(*a: Any, **kw: Any) -> Any:  # before: no vectors from BM25; retrieve reads them with a get
        return with_search(*a[:7], **{k: v for k, v in kw.items() if k != "stored"})

    engine = col.engine
    checked_read = engine.vectors

    def plain_read(chunk_ids: Any) -> Any:  # the read as before (no manifest check of its own)
        rows = engine.client.get(engine.name, ids=[int(i) for i in chunk_ids], output_fields=["pk", "vector"])
        return (np.array([int(r["pk"]) for r in rows], dtype=np.int64),
                np.array([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), -1))

    variants = {"vectors with the BM25 search": with_search, "one more get (before)": separate_get}
    reads = {"vectors with the BM25 search": checked_read, "one more get (before)": plain_read}
    for q in queries[:5]:
        col.search(q, k=10)
    client = Calls(col.engine.client)
    col.engine.client = client
    times: dict[str, list[float]] = {name: [] for name in variants}
    calls: dict[str, list[str]] = {}
    for r in range(args.rounds):
        for q in queries:
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                milvus_engine.bm25_search = variants[name]
                engine.vectors = reads[name]
                client.names.clear()
                started = time.perf_counter()
                col.search(q, k=10)
                times[name].append((time.perf_counter() - started) * 1000)
                calls.setdefault(name, sorted(client.names))
    milvus_engine.bm25_search = with_search
    engine.vectors = checked_read
    col.engine.client = client.client
    col.drop()
    release_lite(uri)
    before, after = times["one more get (before)"], times["vectors with the BM25 search"]
    faster = sum(a < b for a, b in zip(after, before)) / len(after)
    base = statistics.median(before)
    print(f"{len(texts)} documents, {len(queries)} queries x {args.rounds} rounds, hybrid k=10 (candidates 100)\n")
    print("| variant | client calls per search | median ms | p90 ms | ratio vs before |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        p90 = sorted(ts)[int(len(ts) * 0.9)]
        print(f"| {name} | {', '.join(calls[name])} | {statistics.median(ts):.1f} | {p90:.1f} | "
              f"{statistics.median(ts) / base:.2f} |")
    print(f"\nPaired (same query, same round): the new way faster in {faster:.0%} of {len(after)} pairs.")


if __name__ == "__main__":
    main()
