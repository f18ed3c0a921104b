"""How much training data quantized indexes need (issue 18, item 5): the retraining share.

An index whose codebooks (SQ8 ranges, PQ codebooks, IVF centroids) were trained while the
collection was small is retrained once they were trained on fewer than half of what a rebuild
would train on (``semsearch.index.tuning.RETRAIN_SHARE``). This measures why half: recall@10
against exact search of each quantized type trained on a growing share of the collection's
vectors (a seeded sample), the rest only added, on the same queries (held-out texts for real
data). FAISS directly, same factory strings and knobs semsearch uses.

    PYTHONPATH=src python bench/bench_retrain.py                       # real 104k vectors (bench/ann_data.py)
    PYTHONPATH=src python bench/bench_retrain.py --data synthetic --n 50000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

K = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["real", "synthetic"], default="real")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--specs", default="SQ8,PQ48,IVF256,SQ8")
    args = ap.parse_args()
    from ann_data import clustered, real_embeddings

    if args.data == "real":
        real = real_embeddings(110_000)
        if real is None:
            sys.exit("no cached real embeddings: run bench/ann_data.py --max-texts 110000 first")
        x, queries = real[0][: args.n], real[1][: args.queries]
    else:
        both = clustered(args.n + args.queries, seed=3)
        x, queries = both[: args.n], both[args.n:]
    faiss.omp_set_num_threads(1)
    exact = np.argsort(-(queries @ x.T), axis=1)[:, :K]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    specs = ["SQ8", "PQ48", "IVF256,SQ8"] if args.specs == "SQ8,PQ48,IVF256,SQ8" else args.specs.split(";")
    print(f"{len(x):,} {args.data} vectors, {len(queries)} queries; recall@10 against exact search")
    print("| spec | " + " | ".join(f"trained on {s}" for s in ("2", "1%", "10%", "25%", "50%", "100%")) + " |")
    print("|---|" + "---|" * 6)
    for spec in specs:
        cells = []
        for share in (2, 0.01, 0.1, 0.25, 0.5, 1.0):
            n_train = share if isinstance(share, int) else int(share * len(x))
            index = faiss.index_factory(x.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
            sub = faiss.downcast_index(index.index) if hasattr(index, "index") else index
            if hasattr(sub, "do_polysemous_training"):
                sub.do_polysemous_training = False
            need = 39 * 256 if "PQ" in spec else (39 * 256 if spec.startswith("IVF256") else 1)
            if n_train < need:
                cells.append("untrainable")
                continue
            index.train(x[order[:n_train]])
            index.add(x)
            if spec.startswith("IVF"):
                faiss.extract_index_ivf(index).nprobe = 32
            _, found = index.search(queries, K)
            r = np.mean([len(set(f) & set(t)) / K for f, t in zip(found.tolist(), exact.tolist())])
            cells.append(f"{r:.3f}")
        print(f"| {spec} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
