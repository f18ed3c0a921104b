"""int8 for document encoding (issue 14): NNCF post-training quantisation of semsearch's OpenVINO model.

Candidates, each a variant of the IR semsearch converts (``SEMSEARCH_CACHE_DIR/openvino/...``),
compiled and run exactly as semsearch's full path runs its fp32 model (``Runner``: THROUGHPUT,
sorted batches of 8, workers not used here):

* ``ov-fp32``: the model semsearch uses today (the peer of every row);
* ``int8-weights``: ``nncf.compress_weights`` INT8_ASYM (weights int8, activations fp32);
* ``int8-ptq``: ``nncf.quantize`` with the transformer preset, calibrated on passages that are
  not in the measured sample;
* ``int8-ptq-ffn-fp32``: the same with each layer's FFN output projection left in fp32 (the
  layers most sensitive to activation outliers in BERT-like models).

Agreement is per passage against torch fp32 ``SentenceTransformer.encode`` (the reference of
bench_encoding.py); throughput is the same passages through every variant, interleaved per
repeat, median ratio to ``ov-fp32``. A variant is adopted only at min cosine >= 0.995 (then
nDCG@10 on the full corpus is checked with ``--ndcg``).

    pip install 'nncf>=3.4'
    PYTHONPATH=src python bench/bench_int8.py --docs 400 --calibration 300 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from bench_encoding import load_beir, ndcg_at_10, normalised, retrieve

DATA = Path(__file__).resolve().parents[2] / "shared/data/msmarco-5k"


def features(tokenizer, texts: list[str], batch: int = 8) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Sorted batches (longest first) of tokenised texts: (row indices, arrays)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = []
    for start in range(0, len(texts), batch):
        idx = order[start : start + batch]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=256, return_tensors="np")
        out.append((idx, {k: v.astype(np.int64) for k, v in enc.items()}))
    return out


def encode(runner, batches, n: int) -> np.ndarray:
    vectors = np.empty((n, 384), dtype=np.float32)
    for idx, arrays in batches:
        tokens = runner(arrays)
        mask = arrays["attention_mask"][..., None].astype(np.float32)
        vectors[idx] = (tokens * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return normalised(vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--calibration", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ndcg", action="store_true", help="nDCG@10 on the full corpus for variants that agree")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results_int8.json"))
    args = parser.parse_args()

    import nncf
    import openvino as ov

    from semsearch.embedding import Embedder, openvino_engine

    ids, texts, qids, queries, qrels = load_beir(DATA)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(texts))
    sample = [texts[i] for i in perm[: args.docs]]
    calib = [texts[i] for i in perm[args.docs : args.docs + args.calibration]]

    emb = Embedder(precision="fp32", engine="openvino")
    ov_encoder = emb._openvino("fp32")
    st = emb.model
    tokenizer = st.tokenizer
    table = ov_encoder.runner.table
    base = openvino_engine.core().read_model(ov_encoder.ir_path)
    reference = normalised(st.encode(sample, batch_size=32, convert_to_numpy=True))

    def feed(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = dict(arrays)
        if table is not None:
            arrays["inputs_embeds"] = np.asarray(table[arrays.pop("input_ids")], dtype=np.float32)
        return arrays

    calib_batches = features(tokenizer, calib)
    dataset = nncf.Dataset([arrays for _, arrays in calib_batches], feed)
    variants: dict[str, object] = {"ov-fp32": base}
    variants["int8-weights"] = nncf.compress_weights(base.clone(), mode=nncf.CompressWeightsMode.INT8_ASYM)
    variants["int8-ptq"] = nncf.quantize(base.clone(), dataset, model_type=nncf.ModelType.TRANSFORMER,
                                         preset=nncf.QuantizationPreset.MIXED, subset_size=len(calib_batches))
    variants["int8-ptq-ffn-fp32"] = nncf.quantize(
        base.clone(), dataset, model_type=nncf.ModelType.TRANSFORMER, preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(calib_batches), ignored_scope=nncf.IgnoredScope(patterns=[r".*output/dense/MatMul.*",
                                                                                  r".*output\.dense.*"],
                                                                        validate=False),
    )
    runners = {name: openvino_engine.Runner(model, "fp32", table) for name, model in variants.items()}
    batches = features(tokenizer, sample)
    result: dict[str, dict] = {}
    for name, runner in runners.items():
        got = encode(runner, batches, len(sample))
        cos = np.sum(got * reference, axis=1)
        result[name] = {"min_cos": float(cos.min()), "mean_cos": float(cos.mean()), "seconds": []}
    for repeat in range(args.repeats):
        names = list(runners) if repeat % 2 == 0 else list(runners)[::-1]
        for name in names:
            started = time.perf_counter()
            encode(runners[name], batches, len(sample))
            result[name]["seconds"].append(time.perf_counter() - started)
    fp32 = result["ov-fp32"]["seconds"]
    for name, r in result.items():
        r["passages_per_s"] = len(sample) / statistics.median(r["seconds"])
        r["ratio_to_ov_fp32"] = statistics.median(f / s for f, s in zip(fp32, r["seconds"]))
        if args.ndcg and (r["min_cos"] >= 0.995 or name == "ov-fp32"):
            all_batches = features(tokenizer, texts)
            doc_vecs = encode(runners[name], all_batches, len(texts))
            query_vecs = emb.encode_queries(queries)
            r["ndcg10"] = ndcg_at_10(retrieve(doc_vecs, query_vecs, ids, qids), qrels)
        print(f"{name:20s} min cos {r['min_cos']:.5f} mean {r['mean_cos']:.6f} "
              f"{r['passages_per_s']:.0f} passages/s, x{r['ratio_to_ov_fp32']:.2f} ov-fp32"
              + (f", nDCG@10 {r['ndcg10']:.4f}" if "ndcg10" in r else ""), flush=True)
    Path(args.out).write_text(json.dumps({"docs": len(sample), "calibration": len(calib), "load": os.getloadavg(),
                                          "variants": result}, indent=2) + "\n")
    _ = ov  # the runtime is imported by semsearch's engine; kept explicit for readers


if __name__ == "__main__":
    main()
