"""Encoding speed, agreement and retrieval quality of every encoding path, in one run.

    PYTHONPATH=src python bench/bench_encoding.py [--data ../shared/data/msmarco-5k]
        [--timing-docs 800] [--repeats 3] [--skip-onnx] [--out bench/encoding_results.json]

Paths (all with all-MiniLM-L6-v2, offline):
  reference     plain ``SentenceTransformer.encode`` fp32, batch 32 (what the tutorials do)
  st-bf16       the same call under ``torch.autocast("cpu", bfloat16)``
  st-bf16-w     the model's weights cast to bf16 (``model.to(torch.bfloat16)``), no autocast
  semsearch-*   ``semsearch.Embedder`` per engine (torch, openvino), precision and batch size;
                ``semsearch-default`` is what ``Collection`` uses with no options
  st-fp32-pool  the reference split over sentence-transformers' multi-process pool (a process per core)
  ort-fp32/int8 ONNX Runtime on a torch.onnx export, and its dynamic int8 quantisation
                (only when onnxruntime and onnx are installed)

Throughput is measured on a fixed sample of ``--timing-docs`` passages (seeded), the paths
interleaved and repeated; each path's ratio to the reference is taken within the same repeat
and the median reported, so load from other processes hits all paths alike. Agreement (cosine
to the fp32 reference per passage) and nDCG@10 over the 50 queries use the full corpus, one
pass per path. The hardware limit is the model's FLOPs per passage (at the corpus's real token
lengths) divided into the measured peak of a 4096x4096 bf16 matmul.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from semsearch.embedding import DEFAULT_MODEL, Embedder, load_sentence_transformer  # noqa: E402

Encoder = Callable[[list[str]], np.ndarray]


# -- data and quality -----------------------------------------------------------------------
def load_beir(folder: Path) -> tuple[list[str], list[str], list[str], list[str], dict[str, dict[str, int]]]:
    doc_ids, docs, query_ids, queries = [], [], [], []
    for line in open(folder / "corpus.jsonl", encoding="utf-8"):
        row = json.loads(line)
        doc_ids.append(str(row["_id"]))
        docs.append((row.get("title", "") + " " + row["text"]).strip())
    for line in open(folder / "queries.jsonl", encoding="utf-8"):
        row = json.loads(line)
        query_ids.append(str(row["_id"]))
        queries.append(row["text"])
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(s)
    return doc_ids, docs, query_ids, queries, qrels


def ndcg_at_10(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    """Mean nDCG@10 over the judged queries (trec_eval definition)."""
    try:
        from semsearch.evaluation import evaluate  # the project's shared implementation
    except ImportError:  # before the evaluation module is merged: the same definition, inline
        scores = []
        for q, rels in qrels.items():
            if not any(g > 0 for g in rels.values()):
                continue
            ranked = sorted(run.get(q, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            dcg = sum(max(rels.get(d, 0), 0) / np.log2(i + 2) for i, (d, _) in enumerate(ranked))
            ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:10]
            scores.append(dcg / sum(g / np.log2(i + 2) for i, g in enumerate(ideal)))
        return float(np.mean(scores))
    return float(evaluate(run, qrels, ["ndcg@10"])["ndcg@10"])


def retrieve(doc_vecs: np.ndarray, query_vecs: np.ndarray, doc_ids: list[str],
             query_ids: list[str]) -> dict[str, dict[str, float]]:
    scores = query_vecs @ doc_vecs.T
    top = np.argsort(-scores, axis=1)[:, :100]
    return {q: {doc_ids[j]: float(scores[i, j]) for j in row} for i, (q, row) in enumerate(zip(query_ids, top))}


# -- the paths -------------------------------------------------------------------------------
def normalised(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def st_path(model, autocast: bool, batch_size: int = 32) -> tuple[Encoder, Encoder]:
    def run(texts: list[str], query: bool = False) -> np.ndarray:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        encode = model.encode_query if query else model.encode_document
        with ctx, torch.inference_mode():
            return normalised(encode(texts, batch_size=batch_size, show_progress_bar=False))

    return run, lambda qs: run(qs, query=True)


def semsearch_path(precision: str, batch_size: int | None, engine: str = "auto") -> tuple[Encoder, Encoder, Embedder]:
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    # Caches off: the bench measures encoding, and repeats would otherwise be free.
    e = Embedder(DEFAULT_MODEL, device="cpu", precision=precision, engine=engine, query_cache=0, **kwargs)
    _ = e.precision  # load, calibrate and warm up outside the timing
    return e.encode_documents, e.encode_queries, e


def onnx_paths(model, workdir: Path) -> dict[str, tuple[Encoder, Encoder]]:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hf = model[0].auto_model
    tok = model.tokenizer
    max_len = model.max_seq_length

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = tok(["hello world", "a slightly longer sentence"], padding=True, return_tensors="pt")
    fp32 = workdir / "model.onnx"
    with warnings_silenced():
        torch.onnx.export(
            LastHidden(hf), tuple(sample[n] for n in names), str(fp32), input_names=names,
            output_names=["h"], dynamic_axes={n: {0: "b", 1: "s"} for n in names + ["h"]},
            opset_version=17, dynamo=False,
        )
    int8 = workdir / "model-int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)

    def make(path: Path) -> tuple[Encoder, Encoder]:
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def run(texts: list[str], batch_size: int = 32) -> np.ndarray:
            order = np.argsort([-len(t) for t in texts], kind="stable")
            out = np.empty((len(texts), hf.config.hidden_size), dtype=np.float32)
            for i in range(0, len(texts), batch_size):
                idx = order[i : i + batch_size]
                enc = tok([texts[j] for j in idx], padding=True, truncation=True, max_length=max_len,
                          return_tensors="np")
                h = sess.run(None, {n: enc[n].astype(np.int64) for n in names})[0]
                mask = enc["attention_mask"][..., None].astype(np.float32)
                out[idx] = (h * mask).sum(1) / mask.sum(1)
            return normalised(out)

        return run, run  # MiniLM has no query prompt

    return {"ort-fp32": make(fp32), "ort-int8": make(int8)}


@contextlib.contextmanager
def warnings_silenced():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- the hardware ----------------------------------------------------------------------------
def matmul_peak(dtype: torch.dtype, n: int = 4096, repeats: int = 5) -> float:
    """Best observed FLOP/s of an n x n matmul (best, not median: the question is the ceiling)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def flops_per_token(config, seq_len: float) -> float:
    """Multiply-adds x2 of one BERT encoder pass per token (projections, FFN, attention)."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    dense = 2 * (4 * h * h + 2 * h * inter)
    attention = 2 * 2 * seq_len * h  # QK^T and AV
    return layers * (dense + attention)


def padding_report(lengths: np.ndarray, batch_sizes: list[int]) -> dict[str, float]:
    """Fraction of computed token positions that are padding, unsorted vs globally sorted."""
    out = {}
    for bs in batch_sizes:
        for label, lens in (("unsorted", lengths), ("sorted", np.sort(lengths)[::-1])):
            padded = sum(int(lens[i : i + bs].max()) * len(lens[i : i + bs]) for i in range(0, len(lens), bs))
            out[f"bs{bs}-{label}"] = 1 - lengths.sum() / padded
    return out


def latency(encode_query: Encoder, queries: list[str], n: int = 200) -> dict[str, float]:
    times = []
    for i in range(n):
        q = queries[i % len(queries)] + ("" if i < len(queries) else f" {i}")  # distinct texts
        t = time.perf_counter()
        encode_query([q])
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "first_ms": float(ms[0])}


# -- the run -----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "msmarco-5k")
    ap.add_argument("--timing-docs", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-onnx", action="store_true")
    ap.add_argument("--skip-pool", action="store_true", help="skip sentence-transformers' 2-process pool")
    ap.add_argument("--max-docs", type=int, default=0, help="use only the first N passages (a smoke test)")
    ap.add_argument(
        "--corpus-docs", type=int, default=0,
        help="retrieve from a seeded sample of N passages (a smaller task when the machine is loaded)",
    )
    ap.add_argument(
        "--quality-paths",
        default="reference,st-bf16,st-bf16-w,semsearch-default,ort-fp32,ort-int8",
        help="paths encoded over the full corpus for nDCG@10 (the others: agreement on the timing sample)",
    )
    ap.add_argument("--only", default="", help="comma-separated path names to run (default: all)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "encoding_results.json")
    args = ap.parse_args()

    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"no corpus at {args.data}; pass --data with a BEIR-format folder")
    doc_ids, docs, query_ids, queries, qrels = load_beir(args.data)
    if args.max_docs:
        doc_ids, docs = doc_ids[: args.max_docs], docs[: args.max_docs]
    qrels = {q: r for q, r in qrels.items() if q in set(query_ids)}
    if args.corpus_docs and args.corpus_docs < len(docs):
        # Most passages are judged (graded TREC-style qrels), so a sample keeps the task
        # meaningful; its nDCG compares paths with each other, not with the full-corpus number.
        keep = sorted(np.random.default_rng(1).choice(len(docs), size=args.corpus_docs, replace=False))
        doc_ids, docs = [doc_ids[i] for i in keep], [docs[i] for i in keep]
    rng = np.random.default_rng(0)
    sample = [docs[i] for i in rng.choice(len(docs), size=min(args.timing_docs, len(docs)), replace=False)]
    print(f"{len(docs)} passages, {len(queries)} queries ({len(qrels)} judged); timing sample {len(sample)}; "
          f"torch threads {torch.get_num_threads()}; load {os.getloadavg()}", flush=True)

    model = load_sentence_transformer(DEFAULT_MODEL, "cpu")
    paths: dict[str, tuple[Encoder, Encoder]] = {
        "reference": st_path(model, autocast=False),
        "st-bf16": st_path(model, autocast=True),
    }
    from sentence_transformers import SentenceTransformer

    from semsearch.embedding import model_location

    bf16_weights = SentenceTransformer(model_location(DEFAULT_MODEL), device="cpu").to(torch.bfloat16).eval()
    paths["st-bf16-w"] = st_path(bf16_weights, autocast=False)
    for name, engine, precision, bs in (
        ("semsearch-torch-fp32", "torch", "fp32", None),
        ("semsearch-torch-bf16", "torch", "bf16", None),
        ("semsearch-ov-fp32", "openvino", "fp32", None),
        ("semsearch-ov-bf16-b8", "openvino", "bf16", 8),
        ("semsearch-ov-bf16-b32", "openvino", "bf16", 32),
        ("semsearch-default", "auto", "auto", None),
    ):
        if args.only and name not in args.only.split(","):
            continue
        d, q, e = semsearch_path(precision, bs, engine)
        paths[name] = (d, q)
        if name == "semsearch-default":
            default_info = {"engine": e.engine, "precision": e.precision, "batch_size": e.batch_size}
    pool = None
    if not args.skip_pool:
        # sentence-transformers' multi-process pool: one process per core, each fp32.
        pool = model.start_multi_process_pool(["cpu"] * max(2, os.cpu_count() or 2))

        def pooled(texts: list[str], query: bool = False) -> np.ndarray:
            encode = model.encode_query if query else model.encode_document
            return normalised(encode(texts, batch_size=32, pool=pool, chunk_size=max(64, len(texts) // 8)))

        paths["st-fp32-pool"] = (pooled, lambda qs: pooled(qs, query=True))
    tmp = tempfile.TemporaryDirectory()
    if not args.skip_onnx:
        try:
            paths.update(onnx_paths(model, Path(tmp.name)))
        except ImportError as exc:
            print(f"ONNX paths skipped: {exc}", flush=True)
    if args.only:
        keep = {"reference", *args.only.split(",")}
        paths = {k: v for k, v in paths.items() if k in keep}

    # Throughput: interleaved repeats, ratio to the reference within each repeat.
    tput: dict[str, list[float]] = {k: [] for k in paths}
    ratios: dict[str, list[float]] = {k: [] for k in paths}
    loads = []
    sample_vecs: dict[str, np.ndarray] = {}
    for rep in range(args.repeats):
        loads.append(os.getloadavg()[0])
        row = {}
        for name, (enc_docs, _) in paths.items():
            t = time.perf_counter()
            sample_vecs[name] = enc_docs(sample)
            row[name] = len(sample) / (time.perf_counter() - t)
        for name, v in row.items():
            tput[name].append(v)
            ratios[name].append(v / row["reference"])
        print(f"repeat {rep + 1}: " + ", ".join(f"{k} {v:.0f}/s" for k, v in row.items()) + f" (load {loads[-1]:.1f})",
              flush=True)

    # Agreement and quality on the full corpus, one pass per quality path; every path's
    # agreement on the timing sample as well.
    quality: dict[str, dict[str, float]] = {}
    for name in paths:
        cos = np.sum(sample_vecs[name] * sample_vecs["reference"], axis=1)
        quality[name] = {"sample_min_cos": float(cos.min()), "sample_mean_cos": float(cos.mean())}
    wanted = ["reference"] + [p for p in args.quality_paths.split(",") if p in paths and p != "reference"]
    ref_docs = ref_queries = None
    for name in wanted:
        enc_docs, enc_queries = paths[name]
        t = time.perf_counter()
        dv = enc_docs(docs)
        full_rate = len(docs) / (time.perf_counter() - t)
        qv = enc_queries(queries)
        if ref_docs is None:
            ref_docs, ref_queries = dv, qv
        cos = np.sum(dv * ref_docs, axis=1)
        quality[name].update({
            "ndcg@10": ndcg_at_10(retrieve(dv, qv, doc_ids, query_ids), qrels),
            "min_cos": float(cos.min()),
            "mean_cos": float(cos.mean()),
            "query_min_cos": float(np.sum(qv * ref_queries, axis=1).min()),
            "full_corpus_docs_per_s": full_rate,
            "load": os.getloadavg()[0],
        })
        print(f"{name}: {quality[name]}", flush=True)

    # Hardware limit.
    tokenized = model.tokenizer(docs, truncation=True, max_length=model.max_seq_length)["input_ids"]
    lengths = np.array([len(x) for x in tokenized])
    t = time.perf_counter()
    model.tokenizer(sample, padding=True, truncation=True, max_length=model.max_seq_length)
    tokenize_s_per_doc = (time.perf_counter() - t) / len(sample)
    flops_doc = float(np.mean([flops_per_token(model[0].auto_model.config, n) * n for n in lengths]))
    peak_bf16 = matmul_peak(torch.bfloat16)
    peak_fp32 = matmul_peak(torch.float32)
    limit_bf16 = peak_bf16 / flops_doc
    limit_fp32 = peak_fp32 / flops_doc

    # Single-query latency (query cache off, so every call reaches the model).
    lat = {name: latency(paths[name][1], queries)
           for name in ("reference", "semsearch-torch-bf16", "semsearch-default") if name in paths}
    cached = Embedder(DEFAULT_MODEL, device="cpu")
    cached.encode_queries([queries[0]])
    lat["semsearch-default-cached"] = latency(lambda qs: cached.encode_queries([queries[0]]), queries)

    summary = {
        "load_avg_during_timing": loads,
        "load_after": os.getloadavg(),
        "timing_docs": len(sample),
        "repeats": args.repeats,
        "default": default_info if "semsearch-default" in paths else None,
        "mean_tokens": float(lengths.mean()),
        "flops_per_doc": flops_doc,
        "tokenize_ms_per_doc": tokenize_s_per_doc * 1000,
        "peak_bf16_gflops": peak_bf16 / 1e9,
        "peak_fp32_gflops": peak_fp32 / 1e9,
        "limit_docs_per_s_bf16": limit_bf16,
        "limit_docs_per_s_fp32": limit_fp32,
        "padding_waste": padding_report(lengths, [16, 32, 64]),
        "paths": {
            name: {
                "docs_per_s_median": statistics.median(tput[name]),
                "ratio_to_reference_median": statistics.median(ratios[name]),
                "fraction_of_bf16_limit": statistics.median(tput[name]) / limit_bf16,
                **quality[name],
            }
            for name in paths
        },
        "latency": lat,
    }
    if pool is not None:
        model.stop_multi_process_pool(pool)
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print_table(summary)


def print_table(s: dict) -> None:
    print("\n| path | docs/s (median) | × reference | % of bf16 limit | min cos | mean cos | nDCG@10 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, p in s["paths"].items():
        full = "min_cos" in p
        lo, mean = (p["min_cos"], p["mean_cos"]) if full else (p["sample_min_cos"], p["sample_mean_cos"])
        mark = "" if full else " (sample)"
        ndcg = f"{p['ndcg@10']:.4f}" if full else "-"
        print(f"| {name} | {p['docs_per_s_median']:.0f} | {p['ratio_to_reference_median']:.2f} | "
              f"{100 * p['fraction_of_bf16_limit']:.0f}% | {lo:.5f}{mark} | {mean:.6f}{mark} | {ndcg} |")
    print(f"\nlimit: {s['flops_per_doc'] / 1e9:.2f} GFLOP/passage at {s['mean_tokens']:.1f} tokens; "
          f"bf16 matmul peak {s['peak_bf16_gflops']:.0f} GFLOP/s -> {s['limit_docs_per_s_bf16']:.0f} passages/s; "
          f"fp32 peak {s['peak_fp32_gflops']:.0f} GFLOP/s -> {s['limit_docs_per_s_fp32']:.0f} passages/s")
    for name, lat in s["latency"].items():
        print(f"latency {name}: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, first {lat['first_ms']:.1f} ms")


if __name__ == "__main__":
    main()
