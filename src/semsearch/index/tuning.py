"""Choosing an index for a collection ("auto") and tuning its search knob to a target recall.

How ``auto`` decides (documented in docs and `semsearch index --help`):

* below ``EXACT_UNTIL`` (100,000) vectors: exact search ("Flat"), unless a memory budget
  ("auto:512MB") cannot hold float32 vectors, then "SQ8" (int8, 1 byte per dimension);
* from there on: "IVF{nlist},SQfp16" (float16 codes: the store holds the float32 vectors), with
  nlist = 4·sqrt(n) rounded to a power of two and never more than n/39 (FAISS's minimum of 39
  training points per centroid); under a memory budget "IVF{nlist},SQ8" and then
  "IVF{nlist},PQ{m}" with the largest m that fits.

Tuning: sample vectors of the collection, perturbed to cosine ~0.7 (held-out queries near
the data, see build.held_out_queries), serve as queries; exact top-10 neighbours are computed in the same
pass that fills the index, and the search knob (nprobe, efSearch, binary oversampling) is raised along a
ladder until recall@10 reaches the target (default 0.95). The measured recall is stored with the index.

How well this predicts users' recall (bench/RESULTS.md, issue 4): on ~19k real MiniLM vectors
the tuning queries sit a little farther from the data (top-1 cosine ~0.71) than held-out
texts (0.77) or msmarco questions (0.82), and the knob they pick gives 0.966 / 0.944 (IVF,
nprobe 16) and 0.972 / 0.972 (HNSW, efSearch 16) on those real queries. On synthetic clustered
data the gap is larger. There is no query log yet; tuning on logged real queries is the fix
when one exists.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import faiss
import numpy as np

from .spec import MIN_POINTS_PER_CENTROID

EXACT_UNTIL = 100_000
DEFAULT_TARGET_RECALL = 0.95
TUNING_QUERIES = 200
RECALL_K = 10
TRAIN_SAMPLE = 65_536  # vectors sampled for training, or min_train when that is larger
#: Codebooks (IVF centroids, PQ codebooks, scalar quantizer ranges) are retrained once the
#: vectors they were trained on are fewer than this share of what a rebuild would train on.
#: A half means retraining at each doubling while the collection is small: every rebuild
#: costs O(n), so all of them together cost under twice the last one (amortised O(1) per
#: vector), and codebooks always come from at least half the data, where recall equals that
#: of training on all of it for SQ8, PQ48 and IVF,SQ8 (bench/bench_retrain.py, bench/RESULTS.md
#: issue 18; SQ8 trained on 2 vectors: 0.25-0.5, on 1%: 0.93; IVF centroids on 25%: -0.014).
RETRAIN_SHARE = 0.5
#: ``auto`` re-decides its choice when the collection has grown (or shrunk) this much since
#: the index was built, and at once when the index no longer fits its memory budget.
AUTO_REDECIDE_GROWTH = 2.0


def nlist_for(n: int) -> int:
    """IVF list count for n vectors: ~4·sqrt(n) as a power of two, never above n/39."""
    if n < MIN_POINTS_PER_CENTROID:
        return 1
    target = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    return max(1, min(target, n // MIN_POINTS_PER_CENTROID))


def resolve_auto(n: int, dim: int, memory_budget: int | None = None) -> str:
    """The concrete spec ``auto`` uses for n vectors of dimension dim (see the module docstring)."""
    per_vector = memory_budget / max(n, 1) if memory_budget else math.inf
    if n < EXACT_UNTIL:
        if 4 * dim + 8 <= per_vector:
            return "Flat"
        if dim + 8 <= per_vector or n < 256 * MIN_POINTS_PER_CENTROID:
            return "SQ8"
        return f"PQ{_pq_m(dim, per_vector - 8)}"
    nlist = nlist_for(n)
    # IVF lists cost ~8 bytes per vector for the id; centroids are negligible. The codes are
    # float16: the store keeps every float32 vector already, and a second float32 copy was the
    # largest part of a collection on disk (issue 25); the same neighbours come back (recall
    # equal to IVF,Flat at every nprobe measured) and scores differ from float32 by < 1e-3.
    if 2 * dim + 8 <= per_vector:
        return f"IVF{nlist},SQfp16"
    if dim + 8 <= per_vector:
        return f"IVF{nlist},SQ8"
    return f"IVF{nlist},PQ{_pq_m(dim, per_vector - 8)}"


def training_size(n: int, min_train: int) -> int:
    """How many of n vectors a (re)build trains on."""
    return min(n, max(min_train, TRAIN_SAMPLE))


def stale_codebooks(n: int, trained_on: int, min_train: int) -> str | None:
    """Why codebooks trained on ``trained_on`` vectors should be retrained for an index of n, or None."""
    wanted = training_size(n, min_train)
    if 0 < trained_on < RETRAIN_SHARE * wanted:
        return f"trained on {trained_on:,} vectors, the index holds {n:,}: retraining on {wanted:,}"
    return None


def auto_redecision(budget: int | None, factory: str, n: int, dim: int, built_n: int,
                    bytes_per_vector: float) -> str | None:
    """Why ``auto`` should rebuild as another type now, or None.

    It re-decides when the kind of index changes (exact below :data:`EXACT_UNTIL`, IVF above),
    at once when the index outgrew its memory budget, and otherwise when the collection grew or
    shrank :data:`AUTO_REDECIDE_GROWTH`-fold since the build (so a collection hovering at a
    threshold is not rebuilt at every flush).
    """
    from .spec import parse_spec

    target = resolve_auto(n, dim, budget)
    if target == factory:
        return None
    changed_kind = parse_spec(target, dim).kind != parse_spec(factory, dim).kind
    over_budget = budget is not None and not math.isnan(bytes_per_vector) and n * bytes_per_vector > budget
    grown = n >= AUTO_REDECIDE_GROWTH * max(built_n, 1) or n * AUTO_REDECIDE_GROWTH <= built_n
    if changed_kind or over_budget or grown:
        why = f"~{n * bytes_per_vector / 2**20:,.1f} MiB is over the budget" if over_budget else f"{n:,} vectors"
        return f"auto chooses {target} for {why} (was {factory})"
    return None


def _pq_m(dim: int, bytes_available: float) -> int:
    divisors = [m for m in range(1, dim + 1) if dim % m == 0 and m <= max(bytes_available, 1)]
    return divisors[-1] if divisors else 1


class GroundTruth:
    """Exact top-k neighbours of sample queries, accumulated over batches of the data."""

    def __init__(self, queries: np.ndarray, query_ids: np.ndarray, k: int = RECALL_K) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.query_ids = np.asarray(query_ids, dtype=np.int64)
        self.k = k
        nq = len(self.queries)
        self._scores = np.full((nq, 0), -np.inf, dtype=np.float32)
        self._ids = np.full((nq, 0), -1, dtype=np.int64)

    def update(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0 or len(self.queries) == 0:
            return
        scores = self.queries @ np.asarray(vectors, dtype=np.float32).T
        # A query is its own nearest neighbour; leave it out, as the ANN side does.
        scores[self.query_ids[:, None] == ids[None, :]] = -np.inf
        keep = min(self.k, scores.shape[1])
        part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        cand_scores = np.concatenate([self._scores, np.take_along_axis(scores, part, 1)], axis=1)
        cand_ids = np.concatenate([self._ids, ids[part]], axis=1)
        order = np.argsort(-cand_scores, axis=1, kind="stable")[:, : self.k]
        self._scores = np.take_along_axis(cand_scores, order, 1)
        self._ids = np.take_along_axis(cand_ids, order, 1)

    def truth(self) -> np.ndarray:
        """(n_queries, <=k) exact neighbour ids, -1 where fewer exist."""
        ids = self._ids.copy()
        ids[~np.isfinite(self._scores)] = -1
        return ids


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = RECALL_K) -> float:
    """Mean fraction of the exact top-k found (rows of -1 padding are ignored)."""
    hits = total = 0
    for f, t in zip(found, truth):
        t = t[t >= 0][:k]
        if len(t) == 0:
            continue
        hits += len(np.intersect1d(f[f >= 0][:k], t))
        total += len(t)
    return hits / total if total else 1.0


@dataclass
class Tuning:
    """The outcome of tuning: which knob, which value, what recall@10 it measured."""

    param: str | None
    value: int | None
    recall_at_10: float
    target: float
    queries: int
    reached: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def tune(index, truth: GroundTruth, target: float = DEFAULT_TARGET_RECALL) -> Tuning:  # noqa: ANN001
    """Raise ``index``'s search knob along its ladder until recall@10 reaches ``target``.

    The index is left set to the chosen value. When the target cannot be reached (PQ codes
    cap recall), the smallest value within 0.005 of the best recall seen is kept.
    """
    exact = truth.truth()
    k = truth.k

    def measure() -> float:
        _, found = index.search(truth.queries, k + 1)
        found = np.where(found == truth.query_ids[:, None], -1, found)
        cleaned = np.array([row[row >= 0][:k].tolist() + [-1] * (k - min(k, int((row >= 0).sum()))) for row in found])
        return recall_at_k(cleaned.reshape(len(found), k), exact, k)

    ladder = index.tuning_ladder()
    if not ladder or len(truth.queries) == 0:
        r = measure() if len(truth.queries) else 1.0
        return Tuning(None, None, r, target, len(truth.queries), r >= target)
    seen: list[tuple[int, float]] = []
    for value in ladder:
        index.set_search_value(value)
        r = measure()
        seen.append((value, r))
        if r >= target:
            return Tuning(index.spec_info.search_param, value, r, target, len(truth.queries), True)
    best = max(r for _, r in seen)
    value, r = next((v, r) for v, r in seen if r >= best - 0.005)
    index.set_search_value(value)
    return Tuning(index.spec_info.search_param, value, r, target, len(truth.queries), False)


def sample_query_ids(ids: np.ndarray, n: int = TUNING_QUERIES, seed: int = 0) -> np.ndarray:
    """A reproducible sample of stored ids used as tuning queries."""
    if len(ids) <= n:
        return np.sort(ids)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ids, size=n, replace=False))


def no_polysemous_training(index: faiss.Index) -> None:
    """index_factory turns on polysemous training for PQ; semsearch never searches polysemously
    and the training costs minutes, so it is off (as "PQ48np" would say in FAISS)."""
    for sub in (index, getattr(index, "index", None)):
        sub = faiss.downcast_index(sub) if sub is not None else None
        if sub is not None and hasattr(sub, "do_polysemous_training"):
            sub.do_polysemous_training = False
    if isinstance(index, faiss.IndexPreTransform):
        no_polysemous_training(faiss.downcast_index(index.index))
    ivf = faiss.try_extract_index_ivf(index) if hasattr(faiss, "try_extract_index_ivf") else None
    if ivf is not None and hasattr(faiss.downcast_index(ivf), "do_polysemous_training"):
        faiss.downcast_index(ivf).do_polysemous_training = False
