"""Exact cosines for candidates an index scored in a reduced space (PCA specs).

A ``PCA<n>`` index compares vectors after projecting them onto n principal components: its
scores rank nearly as cosine does but are not the cosines that calibrated relevance, thresholds
and ``Hit.scores["dense"]`` promise. The index is asked for :data:`RESCORE_OVERSAMPLING` times
the documents wanted; the stored float32 vectors give the exact cosine of each candidate's chunk
(rows read by id, a few hundred per query batch), and the best by it are kept, so what the
projection misranked just below the cut comes back.
"""

from __future__ import annotations

import numpy as np

from ...types import Candidate
from .store import Store

#: Candidates fetched from a PCA index per document returned (the sentence-transformers
#: rescoring recipe uses 4x for binary codes; PCA ranks better than signs, and rows are cheap).
RESCORE_OVERSAMPLING = 4


def exact_cosines(
    store: Store, queries: np.ndarray, found: list[list[Candidate]], dimension: int
) -> list[list[Candidate]]:
    """``found`` (one list per query) with each score replaced by the exact cosine, best first."""
    wanted = np.unique(np.array([c.chunk_id for cands in found for c in cands], dtype=np.int64))
    if len(wanted) == 0:
        return found
    ids, vectors = store.embeddings(wanted, dimension)
    row = {int(i): n for n, i in enumerate(ids.tolist())}
    out = []
    for query, cands in zip(queries, found):
        kept = [c for c in cands if c.chunk_id in row]
        scores = vectors[[row[c.chunk_id] for c in kept]] @ query if kept else np.empty(0, dtype=np.float32)
        rescored = [Candidate(c.doc_id, c.chunk_id, float(s)) for c, s in zip(kept, scores.tolist())]
        out.append(sorted(rescored, key=lambda c: -c.score))
    return out
