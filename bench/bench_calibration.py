"""Calibrated relevance (issue 12): does a score with an absolute meaning keep the ranking and
tell answerable queries from unanswerable ones?

For every set of bench/calibration_sets.py it searches the judged queries (the corpus answers
them) and the set's unanswerable questions in the default hybrid mode and in dense mode, keeps
every fused candidate with what the pipeline knows about it (exact dense cosine from the stored
vectors, BM25 score, ranks, the adaptive dense weight, the query's terms' document frequencies
and the collection size), and then scores the candidates with
``semsearch.retrieval.calibration``. It reports per set, in the same run:

- nDCG@10 of the judged queries (semsearch.evaluation, equal to pytrec_eval) for today's
  default hybrid order and the calibrated score's order;
- ROC AUC of the top-1 score between judged and unanswerable queries for plain dense cosine
  (dense mode's top hit), today's default hybrid score, and the calibrated relevance;
- precision / recall of the default "no good match" threshold on the calibrated relevance
  (recall = share of unanswerable queries called, precision = share of called ones that are).

    PYTHONPATH=src python bench/bench_calibration.py [--sets msmarco,entities] [--work DIR]

Collections are built once under --work and reused; the candidate features are cached in
--work/features-SET.pkl (delete them after changing the pipeline).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

from calibration_sets import calibration_sets

K = 200  # the whole fused pool (100 dense + 100 lexical candidates at most)


@dataclass
class QueryFeatures:
    """One query's fused candidates, in today's default order, and what is known about each."""

    qid: str
    text: str
    answerable: bool
    doc_ids: list[str]
    fused: np.ndarray  # today's default hybrid score (min-max fused), the order of the lists
    cosine: np.ndarray  # exact dense cosine of the document's best chunk (every candidate)
    bm25: np.ndarray  # BM25 score, nan when BM25 did not return the document
    dense_weight: float
    term_frequencies: list[int]  # document frequency of each distinct query term
    total: int  # chunks in the collection
    dense_top: float  # plain dense search: top-1 cosine
    coverage: dict[str, float] = field(default_factory=dict)


def _stored_vectors(col) -> tuple[np.ndarray, list[str]]:
    batches = col.store.all_embeddings(col.dimension)
    next(batches)
    ids, vecs = zip(*batches)
    chunk_ids = np.concatenate(ids)
    docs = col.store.chunk_documents(chunk_ids.tolist())
    return np.concatenate(vecs), [docs[int(c)] for c in chunk_ids]


def collect(col, texts: dict[str, str], answerable: set[str]) -> list[QueryFeatures]:
    """Search every query (default hybrid and dense) and gather its candidates' features."""
    from semsearch.lexical import tokenize

    vectors, chunk_docs = _stored_vectors(col)
    doc_index = {d: i for i, d in enumerate(dict.fromkeys(chunk_docs))}
    chunk_doc_idx = np.array([doc_index[d] for d in chunk_docs])
    qids = list(texts)
    hybrid = col.search([texts[q] for q in qids], k=K)
    dense = col.search([texts[q] for q in qids], k=1, mode="dense")
    qvecs = col.embedder.encode_queries([texts[q] for q in qids])
    out = []
    for qi, qid in enumerate(qids):
        sims = vectors @ qvecs[qi]
        best = np.full(len(doc_index), -1.0)
        np.maximum.at(best, chunk_doc_idx, sims)  # a document's cosine is its best chunk's
        hits = hybrid[qi]
        terms = list(dict.fromkeys(tokenize(texts[qid])))
        freqs, total, _ = col.store.lexical_term_statistics(terms, 0)
        out.append(QueryFeatures(
            qid=qid, text=texts[qid], answerable=qid in answerable,
            doc_ids=[h.id for h in hits],
            fused=np.array([h.score for h in hits]),
            cosine=np.array([best[doc_index[h.id]] for h in hits]),
            bm25=np.array([h.scores.get("lexical", np.nan) for h in hits]),
            dense_weight=float(hits[0].scores.get("dense_weight", 1.0 if "lexical" not in hits[0].scores else 0.0))
            if hits else 1.0,
            term_frequencies=[int(freqs.get(t, 0)) for t in terms],
            total=int(total),
            dense_top=float(dense[qi][0].score) if dense[qi] else -1.0,
        ))
    return out


def features_for(name: str, data, questions: list[str], work: Path) -> list[QueryFeatures]:
    cache = work / f"features-{name}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from semsearch import Collection

    corpus, queries, qrels = data
    col = Collection(work / name, progress=False)
    if col.count() != len(corpus):
        ids = list(corpus)
        col.add([corpus[i] for i in ids], ids=ids)
        col.flush()
    judged = {q: t for q, t in queries.items() if q in qrels and any(g > 0 for g in qrels[q].values())}
    texts = dict(judged)
    texts.update({f"unanswerable-{i}": t for i, t in enumerate(questions)})
    feats = collect(col, texts, set(judged))
    col.close()
    cache.write_bytes(pickle.dumps(feats))
    return feats


def eval_matches_pytrec(name: str, data, work: Path) -> tuple[float, float]:
    """Largest |semsearch eval - pytrec_eval| over nDCG@10, Recall@100, MAP@100, MRR@10 of the
    default method, on the set as it is and with half of its queries left out of the queries
    file (its qrels then judge queries that are not searched)."""
    import pytrec_eval

    from semsearch import Collection
    from semsearch.evaluation import BeirDataset
    from semsearch.evaluation.runner import run_methods

    _, queries, qrels = data
    col = Collection(work / name, progress=False)
    worst = []
    for keep in (queries, dict(list(queries.items())[: len(queries) // 2])):
        dataset = BeirDataset(corpus={}, queries=keep, qrels=qrels)
        got = run_methods(col, dataset, ["hybrid"])[0].metrics
        qids = list(dataset.judged_queries())
        hits = col.search([keep[q] for q in qids], k=100)  # the same vectors (query cache) and hits
        run = {q: {h.id: float(len(hs) - i) for i, h in enumerate(hs)} for q, hs in zip(qids, hits)}
        ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100"}).evaluate(run)
        top10 = {q: dict(sorted(r.items(), key=lambda kv: -kv[1])[:10]) for q, r in run.items()}
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)

        def mean(res, key):
            return float(np.mean([res[q][key] for q in res]))

        worst.append(max(abs(got["ndcg@10"] - mean(ref, "ndcg_cut_10")),
                         abs(got["recall@100"] - mean(ref, "recall_100")),
                         abs(got["map@100"] - mean(ref, "map_cut_100")), abs(got["mrr@10"] - mean(rr, "recip_rank"))))
    col.close()
    return worst[0], worst[1]


def ndcg10(feats: list[QueryFeatures], qrels, scores: list[np.ndarray]) -> float:
    from semsearch.evaluation import evaluate

    run = {}
    for f, s in zip(feats, scores):
        if f.answerable:
            # rank positions, so ties keep the candidate order (scores can tie after clipping)
            order = sorted(range(len(s)), key=lambda i: (-s[i], i))
            run[f.qid] = {f.doc_ids[i]: float(len(order) - r) for r, i in enumerate(order)}
    return evaluate(run, qrels, ["ndcg@10"])["ndcg@10"]


def top1(feats: list[QueryFeatures], scores: list[np.ndarray]) -> tuple[list[float], list[float]]:
    ans = [float(np.max(s)) if len(s) else -np.inf for f, s in zip(feats, scores) if f.answerable]
    una = [float(np.max(s)) if len(s) else -np.inf for f, s in zip(feats, scores) if not f.answerable]
    return ans, una


def calibrated(f: QueryFeatures, **params) -> np.ndarray:
    from semsearch.retrieval import calibration

    reference = calibration.bm25_reference(f.term_frequencies, f.total)
    return calibration.relevance(f.cosine, f.bm25, f.dense_weight, reference, **params)


def study(all_feats: dict[str, list[QueryFeatures]], all_qrels: dict[str, dict]) -> None:
    """The alternatives measured on the same candidates: ordering by the evidence itself, other
    ways of combining the two evidences, and thresholds around the default."""
    from semsearch.evaluation import roc_auc, threshold_verdicts
    from semsearch.retrieval import calibration as cal

    names = list(all_feats)

    def parts(f: QueryFeatures) -> tuple[np.ndarray, np.ndarray, float]:
        reference = cal.bm25_reference(f.term_frequencies, f.total)
        return cal.dense_evidence(f.cosine, 0.2, 0.7), cal.lexical_evidence(f.bm25, reference), f.dense_weight

    print("\nOrdering by the evidence itself (instead of keeping the fused order): nDCG@10 change")
    print("| cosine bounds | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for lo, hi in ((0.2, 0.7), (0.0, 0.8), (0.3, 0.7)):
        cells = []
        for n in names:
            sc = [cal.absolute_relevance(f.cosine, f.bm25, f.dense_weight,
                                         cal.bm25_reference(f.term_frequencies, f.total),
                                         bounds=(lo, hi)) for f in all_feats[n]]
            base = ndcg10(all_feats[n], all_qrels[n], [f.fused for f in all_feats[n]])
            cells.append(f"{ndcg10(all_feats[n], all_qrels[n], sc) - base:+.3f}")
        print(f"| ({lo}, {hi}) | " + " | ".join(cells) + " |")
    rules = {
        "convex w*d + (1-w)*l (default)": lambda d, lex, w: w * d + (1 - w) * lex,
        "noisy-or 1-(1-d)(1-l)": lambda d, lex, w: 1 - (1 - d) * (1 - lex),
        "max(d, l)": lambda d, lex, w: np.maximum(d, lex),
        "mean (d+l)/2": lambda d, lex, w: (d + lex) / 2,
    }
    print("\nCombining dense evidence d and lexical evidence l: ROC AUC of the top-1 score (fused order kept)")
    print("| rule | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for rule, fn in rules.items():
        cells = []
        for n in names:
            tops = [(f.answerable, cal.ordered_relevance(fn(*parts(f)))[0] if len(f.cosine) else 0.0)
                    for f in all_feats[n]]
            cells.append(f"{roc_auc([t for a, t in tops if a], [t for a, t in tops if not a]):.3f}")
        print(f"| {rule} | " + " | ".join(cells) + " |")
    print("\nWithout the cosine of candidates only BM25 found (NaN: no dense evidence): ROC AUC of the top-1 score")
    print("| cosine of BM25-only candidates | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, drop in (("exact (from the stored vectors)", False), ("unknown (NaN)", True)):
        cells = []
        for n in names:
            tops = []
            for f in all_feats[n]:
                cosine = f.cosine.copy()
                if drop and len(cosine) > 100:  # the dense list is the 100 best cosines of the pool
                    cosine[cosine < np.sort(cosine)[::-1][99]] = np.nan
                r = cal.relevance(cosine, f.bm25, f.dense_weight, cal.bm25_reference(f.term_frequencies, f.total))
                tops.append((f.answerable, r[0] if len(r) else 0.0))
            cells.append(f"{roc_auc([t for a, t in tops if a], [t for a, t in tops if not a]):.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nThresholds: precision / recall of \"no good match\" / share of answerable queries kept")
    print("| threshold | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for t in (0.4, 0.45, 0.5, 0.55, 0.6):
        cells = []
        for n in names:
            v = threshold_verdicts(*top1(all_feats[n], [calibrated(f) for f in all_feats[n]]), t)
            cells.append(f"{v.precision or 0:.2f} / {v.recall:.2f} / {v.answerable_kept:.2f}")
        print(f"| {t} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    parser.add_argument("--work", default="/tmp/semsearch-calib", help="where collections and features are kept")
    parser.add_argument("--study", action="store_true", help="also print the alternatives measured (see study())")
    args = parser.parse_args()
    from semsearch.evaluation import roc_auc, threshold_verdicts
    from semsearch.retrieval.calibration import NO_MATCH_THRESHOLD

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sets = calibration_sets()
    names = args.sets.split(",") if args.sets else list(sets)
    rows, all_feats, all_qrels = [], {}, {}
    for name in names:
        data, questions = sets[name]
        started = time.perf_counter()
        feats = features_for(name, data, questions, work)
        qrels = data[2]
        all_feats[name], all_qrels[name] = feats, qrels
        today = [f.fused for f in feats]
        new = [calibrated(f) for f in feats]
        dense_ans = [f.dense_top for f in feats if f.answerable]
        dense_una = [f.dense_top for f in feats if not f.answerable]
        row = {
            "set": name, "docs": len(data[0]), "answerable": len(dense_ans), "unanswerable": len(dense_una),
            "ndcg_today": ndcg10(feats, qrels, today), "ndcg_new": ndcg10(feats, qrels, new),
            "auc_dense": roc_auc(dense_ans, dense_una), "auc_today": roc_auc(*top1(feats, today)),
            "auc_new": roc_auc(*top1(feats, new)),
        }
        verdicts = threshold_verdicts(*top1(feats, new), NO_MATCH_THRESHOLD)
        row.update(precision=verdicts.precision, recall=verdicts.recall, kept=verdicts.answerable_kept)
        row["eval_diff"], row["eval_diff_trimmed"] = eval_matches_pytrec(name, data, work)
        rows.append(row)
        print(f"done {name} ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    print(f"default no-good-match threshold: {NO_MATCH_THRESHOLD}")
    print("| set | docs | answerable / unanswerable queries | nDCG@10 today | nDCG@10 calibrated | AUC dense cosine "
          "| AUC today's default | AUC calibrated | threshold precision | threshold recall | answerable kept "
          "| max abs(eval - pytrec_eval), all / half the queries |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['set']} | {r['docs']} | {r['answerable']} / {r['unanswerable']} | {r['ndcg_today']:.3f} | "
              f"{r['ndcg_new']:.3f} | {r['auc_dense']:.3f} | {r['auc_today']:.3f} | {r['auc_new']:.3f} | "
              f"{fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['kept'])} | "
              f"{r['eval_diff']:.1e} / {r['eval_diff_trimmed']:.1e} |")
    if args.study:
        study(all_feats, all_qrels)


if __name__ == "__main__":
    main()
