"""Measure the dense-cosine cut under which ``ask`` refuses ("no good match"), for all-MiniLM-L6-v2.

For each question, the gate sees the best dense cosine between the question and any chunk of
the collection. Answerable questions: each judged set's queries against its own corpus.
Unanswerable questions: msmarco-5k's queries against its corpus with every passage judged
for that query removed, and each set's queries against another set's corpus. The script
prints, per candidate cut, the share of answerable questions refused (false refusals) and of
unanswerable ones refused, per set, and the cut keeping false refusals on English sets <= 5%.

    PYTHONPATH=src .venv/bin/python bench/ask_threshold.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

from quality_sets import SHARED, judged, load_beir, paraphrase

CUTS = [round(x, 2) for x in np.arange(0.15, 0.56, 0.05)]


def main() -> None:
    from semsearch import Embedder
    from semsearch.ingest.chunking import Chunker  # noqa: F401  (same chunking is irrelevant: texts are short)

    emb = Embedder()
    sets = {name: judged(name) for name in ("faq", "entities", "european", "cjk")}
    sets["paraphrase"] = paraphrase()
    ms_folder = SHARED / "msmarco-5k"
    if ms_folder.exists():
        corpus, queries, qrels = load_beir(ms_folder)
        queries = {q: t for q, t in queries.items() if any(g > 0 for g in qrels[q].values())}
        sets["msmarco"] = (corpus, queries, qrels)
    vectors = {}
    for name, (corpus, queries, _) in sets.items():
        ids = list(corpus)
        vectors[name] = (ids, emb.encode_documents([corpus[i] for i in ids]),
                         list(queries), emb.encode_queries(list(queries.values())))
    answerable: dict[str, np.ndarray] = {}
    unanswerable: dict[str, np.ndarray] = {}
    for name, (ids, docs, qids, qv) in vectors.items():
        sims = qv @ docs.T
        answerable[name] = sims.max(axis=1)
        if name == "msmarco":
            qrels = sets[name][2]
            index = {d: i for i, d in enumerate(ids)}
            masked = sims.copy()
            for row, q in enumerate(qids):
                for d in qrels[q]:
                    if d in index:
                        masked[row, index[d]] = -1.0
            unanswerable["msmarco minus judged"] = masked.max(axis=1)
    english = ("faq", "entities", "paraphrase", "msmarco")
    for a in english:
        for b in english:
            if a != b and a in vectors and b in vectors:
                unanswerable[f"{a} q -> {b} docs"] = (vectors[a][3] @ vectors[b][1].T).max(axis=1)
    print("share refused at each cut (answerable: lower is better; unanswerable: higher is better)")
    header = "cut   " + "".join(f"{c:>7}" for c in CUTS)
    print(header)
    for label, group in (("answerable", answerable), ("unanswerable", unanswerable)):
        print(f"-- {label}")
        for name, best in group.items():
            print(f"{name[:28]:<28} n={len(best):>3} " + "".join(f"{np.mean(best < c):7.2f}" for c in CUTS))
    eng = np.concatenate([answerable[n] for n in english if n in answerable])
    unans = np.concatenate(list(unanswerable.values()))
    for cut in CUTS:
        print(f"cut {cut:.2f}: English answerable refused {np.mean(eng < cut):.3f}, unanswerable refused "
              f"{np.mean(unans < cut):.3f}")
    print("answerable English percentiles (1, 5, 10%):", np.percentile(eng, [1, 5, 10]).round(3))


if __name__ == "__main__":
    main()
