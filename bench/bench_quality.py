"""Retrieval quality of dense, lexical and hybrid search, next to bm25s and semantic_search.

Runs every judged set of bench/quality_sets.py (msmarco-5k from ../shared/data when present,
its two "language the model does not cover" variants, part-number lookup, paraphrase and a
hand-written multilingual set) and prints nDCG@10 / Recall@100 / MRR@10 per method, measured
in the same run with pytrec_eval (trec_eval definitions):

- semsearch: dense, lexical, hybrid (the default adaptive fusion), hybrid rrf (k=60),
  hybrid weighted (alpha=0.7);
- peers: bm25s (Lucene BM25, English stopwords + PyStemmer English stemming, as its README
  recommends) and sentence_transformers.util.semantic_search over the same stored embeddings.

    PYTHONPATH=src .venv/bin/python bench/bench_quality.py [--sets msmarco,codes] [--work DIR]

Collections are built once under --work and reused (indexing msmarco-5k takes minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402

from quality_sets import all_sets  # noqa: E402

K = 100
METHODS = {
    "dense": {"mode": "dense"},
    "lexical": {"mode": "lexical"},
    "hybrid (default)": {"mode": "hybrid"},
    "hybrid rrf k=60": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid weighted a=0.7": {"mode": "hybrid", "fusion": "weighted", "alpha": 0.7},
}


def metrics(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """nDCG@10, Recall@100, MRR@10 averaged over the judged queries (pytrec_eval)."""
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    res = ev.evaluate({q: run.get(q) or {"__none__": 0.0} for q in qrels})
    top10 = {}
    for q in qrels:
        ranked = sorted((run.get(q) or {}).items(), key=lambda kv: -kv[1])[:10]
        top10[q] = dict(ranked) or {"__none__": 0.0}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    mean = lambda key, r: float(np.mean([r[q][key] for q in qrels]))  # noqa: E731
    return {"nDCG@10": mean("ndcg_cut_10", res), "R@100": mean("recall_100", res), "MRR@10": mean("recip_rank", rr)}


def as_run(qids, results) -> dict[str, dict[str, float]]:  # noqa: ANN001
    # Scores are replaced by descending ranks so pytrec_eval's ordering is exactly ours.
    return {q: {h.id: float(len(hits) - i) for i, h in enumerate(hits)} for q, hits in zip(qids, results)}


def bm25s_run(corpus, queries) -> dict[str, dict[str, float]]:  # noqa: ANN001
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids = list(corpus)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([corpus[i] for i in ids], stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    qids = list(queries)
    tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    k = min(K, len(ids))
    docs, scores = retriever.retrieve(tokens, k=k, show_progress=False)
    run = {}
    for qi, q in enumerate(qids):
        run[q] = {ids[d]: float(s) for d, s in zip(docs[qi], scores[qi]) if s > 0}
    return run


def semantic_search_run(col, qids, texts) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """sentence_transformers.util.semantic_search over the collection's stored chunk embeddings."""
    import torch
    from sentence_transformers import util

    batches = col.engine.store.all_embeddings(col.dimension)
    next(batches)
    ids, vecs = zip(*batches)
    chunk_ids, corpus_emb = np.concatenate(ids), np.concatenate(vecs)
    docs = col.engine.store.chunk_documents(chunk_ids.tolist())
    q = col.embedder.encode_queries(texts)
    found = util.semantic_search(torch.from_numpy(q), torch.from_numpy(corpus_emb), top_k=min(len(chunk_ids), 4 * K))
    run = {}
    for qid, hits in zip(qids, found):
        best: dict[str, float] = {}
        for h in hits:
            d = docs[int(chunk_ids[h["corpus_id"]])]
            if d not in best:
                best[d] = float(h["score"])
        run[qid] = dict(list(best.items())[:K])
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    parser.add_argument("--work", default="/tmp/semsearch-bench-quality", help="where collections are built and reused")
    args = parser.parse_args()
    from semsearch import Collection

    sets = all_sets()
    names = args.sets.split(",") if args.sets else list(sets)
    rows = []
    for name in names:
        corpus, queries, qrels = sets[name]
        qids = [q for q in queries if q in qrels]
        texts = [queries[q] for q in qids]
        col = Collection(Path(args.work) / name, progress=False)
        if col.count() != len(corpus):
            ids = list(corpus)
            col.add([corpus[i] for i in ids], ids=ids)
            col.flush()
        judged = {q: qrels[q] for q in qids}
        results = {}
        for method, options in METHODS.items():
            started = time.perf_counter()
            results[method] = metrics(as_run(qids, col.search(texts, k=K, **options)), judged)
            results[method]["s"] = time.perf_counter() - started
        results["bm25s (stemmed)"] = metrics(bm25s_run(corpus, {q: queries[q] for q in qids}), judged)
        results["st semantic_search"] = metrics(semantic_search_run(col, qids, texts), judged)
        col.close()
        best_single = max(results["dense"]["nDCG@10"], results["lexical"]["nDCG@10"])
        for method, m in results.items():
            rows.append((name, len(corpus), len(qids), method, m,
                         m["nDCG@10"] / best_single if best_single else float("nan")))
        print(f"done {name}", file=sys.stderr, flush=True)
    print("| set | docs | queries | method | nDCG@10 | R@100 | MRR@10 | nDCG / best of dense,lexical |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for name, n_docs, n_q, method, m, ratio in rows:
        print(f"| {name} | {n_docs} | {n_q} | {method} | {m['nDCG@10']:.3f} | {m['R@100']:.3f} | {m['MRR@10']:.3f} | "
              f"{ratio:.2f}x |")


if __name__ == "__main__":
    main()
