"""Issue 27: topics chosen without --n, before (k-means at the silhouette knee) and after (that
partition against the neighbour graph's communities, plus an outlier topic), against known categories.

    PYTHONPATH=src python bench/topics_data.py      # render and encode the mixed corpus once (cached)
    PYTHONPATH=src python bench/corpus_data.py      # the stdlib families of issue 16 (cached)
    PYTHONPATH=src python bench/bench_topics.py     # Markdown tables; bench/out/topics.json

Sets (bench/topics_data.py, bench/corpus_data.py): the mixed corpus of 19 categories (manual
pages of 13 subjects, docstrings of 6 standard-library packages) with 1,500 msmarco passages
mixed in (no category: they are scored only as outliers or not); the same without msmarco;
the 20 standard-library families of issue 16; and small collections of 2-5 of the categories.

ARI and NMI (scikit-learn) are over the categorised documents; "strict" counts the outlier
topic as one more topic (a document put in it is a miss), "assigned" scores only documents
put in a topic (their share is "coverage"). Times: the call on vectors already in memory,
median of ``--repeat`` runs, before and after alternated run by run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

SMALL = ([4, 11], [4, 11, 17], [0, 5, 13, 16], [8, 9], [3, 12, 14], [1, 2], [0, 6, 7, 10, 15])


def before(x: np.ndarray) -> np.ndarray:
    """semsearch before issue 27: k-means with the count at the silhouette curve's peak or knee."""
    from semsearch.corpus.topic_model import choose_topic_count, kmeans

    return kmeans(x, choose_topic_count(x)[0]).labels


def after(x: np.ndarray) -> np.ndarray:
    from semsearch.corpus.topic_model import cluster_documents

    return cluster_documents(x, None).labels


def score(labels: np.ndarray, truth: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    known = truth >= 0
    placed = known & (labels >= 0)
    return {
        "topics": int(labels.max()) + 1,
        "ari": round(adjusted_rand_score(truth[known], labels[known]), 3),
        "nmi": round(normalized_mutual_info_score(truth[known], labels[known]), 3),
        "ari_assigned": round(adjusted_rand_score(truth[placed], labels[placed]), 3),
        "nmi_assigned": round(normalized_mutual_info_score(truth[placed], labels[placed]), 3),
        "coverage": round(float(placed.sum() / known.sum()), 3),
        "outliers_uncategorised": round(float((labels[~known] < 0).mean()), 3) if (~known).any() else None,
    }


def sets() -> list[tuple[str, np.ndarray, np.ndarray]]:
    from corpus_data import encode, stdlib_families
    from topics_data import labelled_corpus

    mixed = labelled_corpus()
    x, y, names = mixed["vectors"], mixed["labels"], mixed["categories"]
    out = [("mixed: 19 categories + 1,500 msmarco", x, y), ("19 categories alone", x[y >= 0], y[y >= 0])]
    family = stdlib_families()
    out.append(("stdlib: 20 package families (issue 16)", encode(family["texts"], "stdlib_families"),
                family["labels"]))
    for picks in SMALL:
        keep = np.isin(y, picks)
        out.append((" + ".join(names[p] for p in picks), x[keep], y[keep]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = []
    for name, x, y in sets():
        row = {"set": name, "documents": len(x), "categories": len(np.unique(y[y >= 0]))}
        for method in ("before", "after"):
            row[method] = {"seconds": []}
        for _ in range(args.repeat):
            for method, run in (("before", before), ("after", after)):
                started = time.perf_counter()
                labels = run(x)
                row[method]["seconds"].append(time.perf_counter() - started)
                row[method].update(score(labels, y))
        for method in ("before", "after"):
            row[method]["seconds"] = round(statistics.median(row[method]["seconds"]), 2)
        results.append(row)
        b, a = row["before"], row["after"]
        print(f"| {name} | {len(x)} | {row['categories']} | {b['topics']} / {a['topics']} | {b['ari']:.3f} / "
              f"**{a['ari']:.3f}** | {b['nmi']:.3f} / **{a['nmi']:.3f}** | {a['ari_assigned']:.3f} / "
              f"{a['nmi_assigned']:.3f} | {a['coverage']:.2f} | "
              f"{'' if a['outliers_uncategorised'] is None else a['outliers_uncategorised']} | "
              f"{b['seconds']:.1f} / {a['seconds']:.1f} |", flush=True)
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "topics.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
