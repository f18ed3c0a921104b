"""Issue 27: near-duplicate groups before (connected components of cosine pairs) and after (groups
where every pair passes; by default also a textual test), on documents whose duplicates are known.

    PYTHONPATH=src python bench/duplicates_data.py     # build and encode the data once (cached)
    PYTHONPATH=src python bench/bench_duplicates.py    # prints a Markdown table, writes bench/out/duplicates.json

Data (bench/duplicates_data.py): msmarco-5k passages cleaned of near-identical ones, 360 edited
copies of 300 of them (the 420 true pairs), and 154 template-made sister articles (different
entities). Every method groups the same all-MiniLM-L6-v2 document vectors.

- "group pairs": every pair of documents inside a group (what a group claims are duplicates);
  precision and recall against the true pairs.
- "wrongly deleted": documents that `duplicates --delete --keep first` would delete although they
  are no duplicate of the document kept; "sisters deleted" those of them that are sister articles.
- seconds: the grouping call after the vectors are in memory (pairs, texts' shingles, groups),
  median of ``--repeat`` runs, the methods alternated run by run.
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


def connected_groups(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """semsearch before issue 27: the connected components of the pairs at cosine >= threshold."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    from semsearch.corpus.near_duplicates import similar_pairs

    i, j, _ = similar_pairs(vectors, threshold, exact=True)
    n = len(vectors)
    graph = sparse.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for node in np.unique(np.concatenate([i, j])).tolist():
        members.setdefault(int(labels[node]), []).append(node)
    return [sorted(m) for m in members.values() if len(m) > 1]


def clique_groups(vectors: np.ndarray, texts: list[str], threshold: float, text_threshold: float | None):
    from semsearch.corpus.near_duplicates import near_duplicate_groups

    groups = near_duplicate_groups(vectors, threshold, texts=texts, text_threshold=text_threshold, exact=True)
    return [g.members.tolist() for g in groups]


def score(groups: list[list[int]], data: dict) -> dict:
    truth = data["truth"]
    kind = data["kind"]
    inside = {(a, b) for g in groups for k, a in enumerate(g) for b in g[k + 1:]}
    found = inside & truth
    doomed = [(g[0], m) for g in groups for m in g[1:]]  # --keep first: the oldest stays
    wrong = [(k, m) for k, m in doomed if (min(k, m), max(k, m)) not in truth]
    return {
        "groups": len(groups),
        "documents_in_groups": sum(len(g) for g in groups),
        "largest": max((len(g) for g in groups), default=0),
        "group_pairs": len(inside),
        "precision": round(len(found) / len(inside), 3) if inside else 1.0,
        "recall": round(len(found) / len(truth), 3),
        "deleted": len(doomed),
        "wrongly_deleted": len(wrong),
        "sisters_deleted": sum(kind[m] == "sister" for _, m in wrong),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--thresholds", default="0.9,0.95")
    args = parser.parse_args()
    import faiss

    from duplicates_data import duplicate_corpus, encode

    faiss.omp_set_num_threads(1)
    data = duplicate_corpus()
    vectors = encode(data["texts"], "duplicates")
    texts = data["texts"]
    methods = {
        "before: connected components (cosine)": lambda t: connected_groups(vectors, t),
        "after, --semantic: every pair passes (cosine)": lambda t: clique_groups(vectors, texts, t, None),
        "after, default: every pair passes (cosine + text >= 0.6)": lambda t: clique_groups(vectors, texts, t, 0.6),
    }
    out = {"documents": len(texts), "true_pairs": len(data["truth"]),
           "kinds": {k: data["kind"].count(k) for k in ("base", "copy", "sister")}, "results": {}}
    for threshold in (float(t) for t in args.thresholds.split(",")):
        times: dict[str, list[float]] = {name: [] for name in methods}
        results = {}
        for _ in range(args.repeat):
            for name, run in methods.items():  # alternated: the load falls on every method alike
                started = time.perf_counter()
                groups = run(threshold)
                times[name].append(time.perf_counter() - started)
                results[name] = score(groups, data)
        for name in methods:
            results[name]["seconds"] = round(statistics.median(times[name]), 3)
        out["results"][str(threshold)] = results
        print(f"\n### cosine threshold {threshold}\n")
        print("| method | groups | docs in groups | largest | group pairs | precision | recall | deleted "
              "| wrongly deleted | sisters deleted | seconds |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['groups']} | {r['documents_in_groups']} | {r['largest']} | {r['group_pairs']} "
                  f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['deleted']} | {r['wrongly_deleted']} "
                  f"| {r['sisters_deleted']} | {r['seconds']:.2f} |")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "duplicates.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
