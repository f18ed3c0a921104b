"""How far may the light query path differ from the full path before rankings change? (issue 27, item 2)

The light path (semsearch/embedding/light.py) encodes queries without torch; it is taken for a
model when its query vectors were measured within ``light.TOLERANCE`` (a Euclidean distance
between unit vectors) of the full path's. A score is an inner product with a unit vector, so a
query vector moved by ``d`` moves every score by at most ``d``: only hits closer than ``2d``
can swap. This benchmark measures, on msmarco-5k's passages, for the default model and a
fine-tuned one (any sentence-transformers folder, e.g. written by ``semsearch finetune``):

* the real light-vs-full distance of every query, and whether its top 10 (ids and order) is the
  full path's;
* a sweep: each full query vector moved by exactly ``d`` in a random direction; the share of
  queries whose top 10 keeps its order, and the mean top-10 overlap, per ``d``;
* for scale, the distance between the full path and torch fp32 (what calibration accepts for
  bf16: cosine >= 0.999, i.e. a distance up to 0.045) and the gaps between neighbouring
  top-10 scores.

Queries: msmarco-5k's 50 judged queries plus 450 pseudo-queries (the first 4-10 words of seeded
random passages, which then search among the others too).

    PYTHONPATH=src python bench/bench_light_tolerance.py --model /tmp/ft-model \
        [--out bench/results_light_tolerance.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = next((p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.exists()),
            REPO.parent / "shared" / "data") / "msmarco-5k"
DISTANCES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2)
K = 10


def queries(data: Path, passages: list[str], extra: int = 450, seed: int = 0) -> list[str]:
    real = [json.loads(line)["text"] for line in (data / "queries.jsonl").open(encoding="utf-8") if line.strip()]
    rng = random.Random(seed)
    pseudo = []
    for text in rng.sample(passages, extra):
        words = text.split()
        pseudo.append(" ".join(words[: rng.randint(4, 10)]))
    return real + pseudo


def top(q: np.ndarray, docs: np.ndarray) -> np.ndarray:
    scores = q @ docs.T
    idx = np.argpartition(-scores, K, axis=1)[:, :K]
    order = np.take_along_axis(scores, idx, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(idx, order, axis=1)


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    same_order = float(np.mean([list(x) == list(y) for x, y in zip(a, b)]))
    overlap = float(np.mean([len(set(x) & set(y)) / K for x, y in zip(a, b)]))
    return {"same_top10_order": same_order, "top10_overlap": overlap}


def moved(q: np.ndarray, distance: float, rng: np.random.Generator) -> np.ndarray:
    """Each unit vector of ``q`` moved to another unit vector exactly ``distance`` away, in a random direction."""
    r = rng.standard_normal(q.shape)
    r -= (r * q).sum(axis=1, keepdims=True) * q  # orthogonal to q
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    angle = 2 * np.arcsin(distance / 2)  # the chord of this angle on the unit sphere is `distance`
    return np.cos(angle) * q + np.sin(angle) * r


def measure(model: str, passages: list[str], texts: list[str]) -> dict[str, Any]:
    from semsearch.embedding import Embedder, light, models

    embedder = Embedder(model, query_cache=0)
    precision = embedder.precision
    docs = embedder.encode_documents(passages)
    ov = models.load_openvino_model(embedder.name, "cpu", precision)
    full = ov.encode_query(texts, batch_size=ov.batch_size, normalize_embeddings=True)
    recipe = embedder._prepared().recipe()  # what the machine prepared for this model
    light_encoder = light.LightEncoder(recipe, precision, ov.batch_size) if recipe else None
    light_q = light_encoder.encode(texts) if light_encoder else None
    st = models.load_sentence_transformer(embedder.name, "cpu")
    fp32 = st.encode_query(texts, batch_size=32, normalize_embeddings=True)
    full = full / np.linalg.norm(full, axis=1, keepdims=True)
    truth = top(full, docs)
    out: dict[str, Any] = {"model": embedder.name, "precision": precision, "engine": embedder.engine,
                           "recorded_distance": light.measured(recipe, "query").get(precision)}
    if light_q is not None:
        light_q = light_q / np.linalg.norm(light_q, axis=1, keepdims=True)
        d = np.linalg.norm(light_q - full, axis=1)
        out["light_vs_full"] = {"max_distance": float(d.max()), "median_distance": float(np.median(d)),
                                **agreement(top(light_q, docs), truth)}
    d = np.linalg.norm(fp32 - full, axis=1)
    out["torch_fp32_vs_full"] = {"max_distance": float(d.max()), "median_distance": float(np.median(d)),
                                 **agreement(top(fp32, docs), truth)}
    scores = np.sort(full @ docs.T, axis=1)[:, ::-1][:, :K]
    gaps = (scores[:, :-1] - scores[:, 1:]).ravel()
    out["top10_neighbour_gaps"] = {f"p{p}": float(np.percentile(gaps, p)) for p in (1, 5, 10, 50)}
    rng = np.random.default_rng(0)
    sweep = {}
    for distance in DISTANCES:
        runs = [agreement(top(moved(full, distance, rng), docs), truth) for _ in range(5)]
        sweep[f"{distance:g}"] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    out["sweep"] = sweep
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", action="append", default=[],
                        help="a fine-tuned model folder (repeatable); the default model is always measured")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results_light_tolerance.json")
    args = parser.parse_args()
    corpus = args.data / "corpus.jsonl"
    if not corpus.exists():
        raise SystemExit(f"{corpus} not found: the benchmark needs the shared msmarco-5k data")
    passages = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8") if line.strip()]
    texts = queries(args.data, passages)
    results = [measure(m, passages, texts) for m in ["all-MiniLM-L6-v2", *args.model]]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "queries": len(texts), "passages": len(passages), "results": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
