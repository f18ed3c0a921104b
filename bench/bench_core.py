"""Core benchmark (issue 2): indexing msmarco-5k with semsearch vs the bare pipeline it wraps.

Side by side in one process, repeated with alternating order, medians reported:

1. bare: ``SentenceTransformer.encode_document`` (normalised, on the engine and precision
   semsearch picks: the OpenVINO copy of the model at its batch size, or torch under autocast at
   batch 64) + ``faiss.IndexFlatIP``; queries with ``encode_query``, top-10 search.
2. semsearch: a fresh ``Collection`` then ``index_files([corpus.jsonl])`` + ``flush()``;
   ``search(queries, k=10)`` as one batch.

Both use the *same* SentenceTransformer object, loaded once before anything is timed
(semsearch keeps one model per process and name), so model loading is excluded on both sides.
Quality (nDCG@10, MRR@10 on top-10 lists, Recall@100 on top-100 lists) is computed with
semsearch.evaluation and cross-checked with pytrec_eval when it is installed.

    python bench/bench_core.py            # full: 5,000 passages, 3 repeats (a few minutes)
    python bench/bench_core.py --quick    # 1,000 passages, for a fast check
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from results_md import write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/msmarco-5k"
RESULTS = REPO / "bench" / "RESULTS.md"
HEADING = "## Core: indexing msmarco-5k (issue 2)"
TARGET_RATIO = 1.15
QUICK_DOCS = 1000


@dataclass
class Timing:
    pipeline: str
    repeat: int
    index_s: float  # bare: encode + IndexFlatIP.add; semsearch: index_files + flush
    query_s: float  # encode the queries + top-10 search, one batch
    create_s: float = 0.0  # semsearch only: Collection() on an empty folder, model already cached


@dataclass
class Outcome:
    run10: dict[str, dict[str, float]] = field(default_factory=dict)
    run100: dict[str, dict[str, float]] = field(default_factory=dict)
    chunks: int = 0


# ---------------------------------------------------------------------------------------------
# The two pipelines


def autocast_for(precision: str) -> Any:
    """The context semsearch's Embedder encodes under for this precision (CPU)."""
    import torch

    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast("cpu", dtype=torch.float16)
    return contextlib.nullcontext()


def run_bare(model: Any, precision: str, texts: list[str], ids: list[str], queries: list[str], qids: list[str],
             batch_size: int = 64) -> tuple[Timing, Outcome]:
    import faiss

    t0 = time.perf_counter()
    with autocast_for(precision):
        emb = model.encode_document(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(np.ascontiguousarray(emb, dtype=np.float32))
    t1 = time.perf_counter()
    with autocast_for(precision):
        q = model.encode_query(queries, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    scores, rows = index.search(np.ascontiguousarray(q, dtype=np.float32), 10)
    t2 = time.perf_counter()
    out = Outcome(chunks=len(texts))
    out.run10 = _run(qids, scores, rows, ids)
    s100, r100 = index.search(np.ascontiguousarray(q, dtype=np.float32), 100)  # untimed, for Recall@100
    out.run100 = _run(qids, s100, r100, ids)
    return Timing("bare", 0, t1 - t0, t2 - t1), out


def _run(qids: list[str], scores: np.ndarray, rows: np.ndarray, ids: list[str]) -> dict[str, dict[str, float]]:
    return {q: {ids[r]: float(s) for s, r in zip(srow, rrow) if r >= 0} for q, srow, rrow in zip(qids, scores, rows)}


def run_semsearch(corpus: Path, queries: list[str], qids: list[str]) -> tuple[Timing, Outcome]:
    from semsearch.collection import Collection
    from semsearch.evaluation import run_from_hits
    from semsearch.ingest.loaders import LoadOptions

    folder = Path(tempfile.mkdtemp(prefix="semsearch-bench-")) / "col"
    try:
        t0 = time.perf_counter()
        col = Collection(folder, progress=False)
        t1 = time.perf_counter()
        report = col.index_files([corpus], LoadOptions())
        col.flush()
        t2 = time.perf_counter()
        hits10 = col.search(queries, k=10, mode="dense")
        t3 = time.perf_counter()
        hits100 = col.search(queries, k=100, mode="dense")  # untimed, for Recall@100
        col.close()
        # Runs hold each hit's cosine (scores["dense"]), comparable with the bare pipeline's;
        # Hit.score is the calibrated relevance, the same order on another scale.
        cosines = [[[(h.id, h.scores["dense"]) for h in row] for row in hits] for hits in (hits10, hits100)]
        out = Outcome(run_from_hits(qids, cosines[0]), run_from_hits(qids, cosines[1]), report.chunks)
        return Timing("semsearch", 0, t2 - t1, t3 - t2, create_s=t1 - t0), out
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Quality


def quality(out: Outcome, qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    from semsearch.evaluation import evaluate

    m = evaluate(out.run10, qrels, ["ndcg@10", "mrr@10"])
    m.update(evaluate(out.run100, qrels, ["recall@100"]))
    return m


def pytrec_check(out: Outcome, qrels: dict[str, dict[str, int]], ours: dict[str, float]) -> str:
    """Max |difference| between our metrics and pytrec_eval's, or why it could not be checked."""
    try:
        import pytrec_eval
    except ImportError:
        return "pytrec_eval not installed (pip install pytrec-eval-terrier)"
    judged = {q: d for q, d in qrels.items() if any(g > 0 for g in d.values())}

    def mean(run: dict, measure: str, key: str) -> float:
        res = pytrec_eval.RelevanceEvaluator(judged, {measure}).evaluate({q: r for q, r in run.items() if r})
        return sum(res.get(q, {key: 0.0})[key] for q in judged) / len(judged)

    ref = {
        "ndcg@10": mean(out.run10, "ndcg_cut.10", "ndcg_cut_10"),
        "mrr@10": mean(out.run10, "recip_rank", "recip_rank"),  # run10 is the run cut at 10
        "recall@100": mean(out.run100, "recall.100", "recall_100"),
    }
    diff = max(abs(ref[k] - ours[k]) for k in ref)
    return f"pytrec_eval agrees (max abs diff {diff:.1e})" if diff < 1e-9 else f"pytrec_eval DISAGREES: {ref}"


# ---------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict[str, str]:
    import faiss
    import sentence_transformers
    import torch

    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    except OSError:
        cpu = platform.processor() or "?"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": cpu + (" (avx512_bf16)" if "avx512_bf16" in flags else ""),
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence-transformers": sentence_transformers.__version__,
        "faiss": faiss.__version__,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def markdown(ctx: dict[str, Any]) -> str:
    t: list[Timing] = ctx["timings"]
    n = ctx["n_docs"]
    bare = [x for x in t if x.pipeline == "bare"]
    sem = [x for x in t if x.pipeline == "semsearch"]
    med = lambda xs: statistics.median(xs)  # noqa: E731
    b_idx, s_idx = med([x.index_s for x in bare]), med([x.index_s for x in sem])
    b_q, s_q = med([x.query_s for x in bare]), med([x.query_s for x in sem])
    ratio = s_idx / b_idx
    qb, qs = ctx["quality"]["bare"], ctx["quality"]["semsearch"]
    lines = [
        HEADING,
        "",
        f"Date: {ctx['date']}. Command: `{ctx['command']}` (`make bench` runs `python bench/bench_core.py`).",
        f"Data: {ctx['data']} — {n} passages, {ctx['n_queries']} queries "
        f"({ctx['n_judged']} with a relevant judgement); semsearch stored {ctx['chunks']} chunks for {n} documents.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in ctx["machine"].items())
        + f"; load average at end {ctx['load_end']}. The machine is shared with other engineers, so "
        "absolute numbers are noisy; the two pipelines run side by side in one process, "
        f"{ctx['repeats']} repeats in alternating order, medians reported.",
        "",
        f"Encoding: engine {ctx.get('engine', 'torch')}, precision {ctx['precision']} (what `Embedder()` chooses here; "
        "the "
        "bare pipeline encodes with the same model object, engine and precision).",
        "",
        "| pipeline | indexing s (median) | docs/s | query batch s (median) | nDCG@10 | MRR@10 | Recall@100 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| bare ST + IndexFlatIP | {b_idx:.2f} | {n / b_idx:,.0f} | {b_q:.3f} | {qb['ndcg@10']:.4f} | "
        f"{qb['mrr@10']:.4f} | {qb['recall@100']:.4f} |",
        f"| semsearch Collection | {s_idx:.2f} | {n / s_idx:,.0f} | {s_q:.3f} | {qs['ndcg@10']:.4f} | "
        f"{qs['mrr@10']:.4f} | {qs['recall@100']:.4f} |",
        "",
        f"**Ratio semsearch / bare (indexing, medians): {ratio:.3f}** (target ≤ {TARGET_RATIO}: "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}). "
        f"Per-repeat ratios: {', '.join(f'{r:.3f}' for r in ctx['pair_ratios'])}.",
        "",
        "All runs (seconds, in the order they ran):",
        "",
        "| # | pipeline | indexing s | query batch s | Collection() s |",
        "|---:|---|---:|---:|---:|",
    ]
    for i, x in enumerate(t, 1):
        create = f"{x.create_s:.3f}" if x.pipeline == "semsearch" else "–"
        lines.append(f"| {i} | {x.pipeline} | {x.index_s:.2f} | {x.query_s:.3f} | {create} |")
    lines += [
        "",
        f"Metrics: semsearch.evaluation (trec_eval definitions); bare: {ctx['check']['bare']}; "
        f"semsearch: {ctx['check']['semsearch']}. nDCG@10 bare {qb['ndcg@10']:.4f} vs semsearch {qs['ndcg@10']:.4f}"
        f" ({ctx['agreement']}).",
        "",
        "What each timing covers (the model is loaded once, before any timing, and the same "
        "SentenceTransformer object serves both pipelines, as semsearch shares one model per process):",
        "",
        "- bare indexing: `encode_document(texts, normalize_embeddings=True)` on the engine above (OpenVINO: the "
        "same converted model and batch size semsearch uses; torch: batch 64 under the same autocast) "
        "+ `IndexFlatIP.add`. Texts are already in memory (exactly the strings semsearch's loader produces); "
        "nothing is written to disk.",
        "- semsearch indexing: `col.index_files([corpus.jsonl], LoadOptions())` + `col.flush()` on a fresh collection "
        "in a temporary folder: reading and hashing the file, parsing JSONL, token-counting every passage for "
        "chunking, encoding, SQLite inserts (durable commits), building the FAISS index from the store and saving it "
        "with fsync.",
        "- `Collection()` (reported, not in indexing): creating the empty collection — SQLite schema, manifest, "
        "and the engine/precision calibration (done once per process: already done here); the model itself is already "
        "cached.",
        "- query batch: encoding all queries in one batch + top-10 search (semsearch: `col.search(queries, k=10, "
        "mode=\"dense\")`, "
        "which also fetches the hits' text and metadata from SQLite). Recall@100 comes from a separate, untimed "
        "k=100 search on both sides.",
    ]
    if ctx.get("notes"):
        lines += ["", *ctx["notes"]]
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    write_section(HEADING, section, RESULTS)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"first {QUICK_DOCS} passages only (fast check)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per pipeline (default 3)")
    ap.add_argument("--data", type=Path, default=DATA, help="BEIR folder (default ../shared/data/msmarco-5k)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    args = ap.parse_args(argv)

    from semsearch.embedding import DEFAULT_MODEL, Embedder, load_openvino_model, load_sentence_transformer
    from semsearch.evaluation import load_beir
    from semsearch.ingest.loaders import LoadOptions, load_file

    if not args.data.is_dir():
        print(f"data not found at {args.data}; it lives in ../shared/data on dev machines", file=sys.stderr)
        return 2
    info = machine()
    ds = load_beir(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="semsearch-bench-data-"))
    try:
        corpus = args.data / "corpus.jsonl"
        if args.quick:  # a temporary subset outside the repository, removed at the end
            lines = [ln for ln in corpus.read_text(encoding="utf-8").split("\n") if ln.strip()][:QUICK_DOCS]
            corpus = tmp / "corpus.jsonl"
            corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        records = load_file(corpus, LoadOptions())  # exactly the strings semsearch indexes
        texts, ids = [r.text for r in records], [str(r.id) for r in records]
        qids = list(ds.queries)
        queries = [ds.queries[q] for q in qids]

        # Load the model once (excluded from every timing) and share it, as semsearch does.
        model = load_sentence_transformer(DEFAULT_MODEL, "cpu")
        chosen = Embedder()
        precision, engine, bare_batch = chosen.precision, chosen.engine, 64
        if engine == "openvino":  # the same OpenVINO copy semsearch encodes with; it sets its own precision
            model = load_openvino_model(DEFAULT_MODEL, "cpu", precision)
            bare_batch = model.batch_size
            precision_ctx = "fp32"
        else:
            precision_ctx = precision
        print(f"{len(texts)} passages, {len(queries)} queries; engine {engine}, precision {precision}; "
              f"model {DEFAULT_MODEL}", flush=True)
        # Warm up both paths (oneDNN kernels, SQLite, tokenizer) on a small slice, untimed.
        run_bare(model, precision_ctx, texts[:256], ids[:256], queries, qids, bare_batch)
        warm = tmp / "warm.jsonl"
        warm.write_text("\n".join(json.dumps({"_id": i, "text": t}) for i, t in zip(ids[:256], texts[:256])) + "\n")
        run_semsearch(warm, queries, qids)

        timings: list[Timing] = []
        outcomes: dict[str, Outcome] = {}
        pair: dict[int, dict[str, float]] = {}
        for rep in range(args.repeats):
            order = ("bare", "semsearch") if rep % 2 == 0 else ("semsearch", "bare")
            for name in order:
                gc.collect()
                if name == "bare":
                    timing, out = run_bare(model, precision_ctx, texts, ids, queries, qids, bare_batch)
                else:
                    timing, out = run_semsearch(corpus, queries, qids)
                timing.repeat = rep
                timings.append(timing)
                outcomes.setdefault(name, out)
                pair.setdefault(rep, {})[name] = timing.index_s
                print(f"  repeat {rep + 1} {name:9s} indexing {timing.index_s:7.2f}s  queries {timing.query_s:.3f}s"
                      + (f"  Collection() {timing.create_s:.3f}s" if name == "semsearch" else ""), flush=True)

        qual = {name: quality(out, ds.qrels) for name, out in outcomes.items()}
        check = {name: pytrec_check(out, ds.qrels, qual[name]) for name, out in outcomes.items()}
        nb, ns = qual["bare"]["ndcg@10"], qual["semsearch"]["ndcg@10"]
        notes = diagnose(outcomes, ds.qrels, len(texts))
        ctx = {
            "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "command": "python bench/bench_core.py" + (" --quick" if args.quick else ""),
            "data": "../shared/data/msmarco-5k" + (f" (first {QUICK_DOCS} passages)" if args.quick else ""),
            "n_docs": len(texts),
            "n_queries": len(queries),
            "n_judged": len(ds.judged_queries()),
            "chunks": outcomes["semsearch"].chunks,
            "machine": info,
            "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "repeats": args.repeats,
            "precision": precision,
            "engine": engine,
            "timings": timings,
            "pair_ratios": [p["semsearch"] / p["bare"] for p in pair.values()],
            "quality": qual,
            "check": check,
            "agreement": "equal to 4 decimals" if f"{nb:.4f}" == f"{ns:.4f}" else f"differ by {ns - nb:+.6f}",
            "notes": notes,
        }
        section = markdown(ctx)
        print()
        print(section)
        if not args.no_write:
            write_results(section)
            print(f"written to {RESULTS}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def diagnose(outcomes: dict[str, Outcome], qrels: dict[str, dict[str, int]], n_docs: int) -> list[str]:
    """Where the two pipelines' rankings differ, so a quality gap can be explained."""
    from semsearch.evaluation import evaluate_per_query, trec_ranking

    b, s = outcomes["bare"], outcomes["semsearch"]
    same_top10 = sum(trec_ranking(b.run10[q]) == trec_ranking(s.run10[q]) for q in b.run10)
    same_set = sum(set(b.run10[q]) == set(s.run10[q]) for q in b.run10)
    score_diff = max(
        (abs(b.run100[q][d] - s.run100[q][d]) for q in b.run100 for d in b.run100[q] if d in s.run100[q]), default=0.0
    )
    pb = evaluate_per_query(b.run10, qrels, ["ndcg@10"])
    ps = evaluate_per_query(s.run10, qrels, ["ndcg@10"])
    changed = [q for q in pb if abs(pb[q]["ndcg@10"] - ps[q]["ndcg@10"]) > 1e-12]
    return [
        f"Rankings: identical top-10 lists for {same_top10}/{len(b.run10)} queries, same top-10 sets for "
        f"{same_set}/{len(b.run10)}; largest score difference for a document both return in the top 100: "
        f"{score_diff:.2e}; "
        f"per-query nDCG@10 differs for {len(changed)} "
        f"queries{(' (' + ', '.join(changed[:8]) + ')') if changed else ''}; "
        f"{s.chunks - n_docs} extra chunks from passages longer than the model's 256-token window "
        "(semsearch splits them and scores a document by its best chunk; the bare pipeline truncates).",
    ]


if __name__ == "__main__":
    sys.exit(main())
