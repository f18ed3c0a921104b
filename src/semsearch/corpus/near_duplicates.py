"""Near-duplicate documents: every pair above a cosine threshold, grouped into connected components.

Pairs come from a FAISS range search (all neighbours above the threshold, however many), never
from an all-pairs matrix: exact over a flat index for small inputs, over an IVF index (k-means
cells, ``nprobe`` of them searched per vector) beyond :data:`EXACT_LIMIT`. Near-duplicates sit
far closer to each other than to anything else, so they share a cell or neighbouring ones and
the approximate search finds almost all of them (recall measured in bench/RESULTS.md).

Groups are the connected components of the pair graph (``scipy.sparse.csgraph``): A~B and B~C
put A, B and C in one group even when A and C score below the threshold; each group lists the
pairs that joined it, so a caller can see how tight it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .vectors import unit_rows

#: Below this many vectors the exact search (a flat index) is the default: ~20k x 20k inner
#: products take a few seconds on two cores.
EXACT_LIMIT = 20_000
#: Pairs above the threshold beyond which the threshold is too low to mean "duplicate".
MAX_PAIRS = 20_000_000
DEFAULT_THRESHOLD = 0.95
KEEP_POLICIES = ("first", "longest", "newest")
_BLOCK = 4096  # query vectors per range search call: bounds the memory of one call's results


@dataclass
class PairGroup:
    """A group by position: member indices (ascending) and the pairs (i < j, score) inside it."""

    members: np.ndarray
    pairs: list[tuple[int, int, float]]


@dataclass
class DuplicateGroup:
    """Documents that are near-duplicates of each other.

    ``ids`` are the members in the order they were added (oldest first), ``lengths`` their
    text lengths in characters, ``pairs`` every pair ``(id, id, cosine)`` found at or above the
    threshold inside the group (highest first).
    """

    ids: list[str]
    pairs: list[tuple[str, str, float]]
    lengths: list[int] = field(default_factory=list)

    @property
    def min_score(self) -> float:
        return min(p[2] for p in self.pairs)

    @property
    def max_score(self) -> float:
        return max(p[2] for p in self.pairs)

    def keeper(self, keep: str = "first") -> str:
        """The member to keep: ``first`` (oldest), ``newest``, or ``longest`` text (oldest on ties).

        Raises:
            InvalidInputError: an unknown policy.
        """
        check_keep(keep)
        if keep == "first":
            return self.ids[0]
        if keep == "newest":
            return self.ids[-1]
        lengths = self.lengths or [0] * len(self.ids)
        return self.ids[int(np.argmax(lengths))]  # argmax takes the first of equal lengths

    def to_delete(self, keep: str = "first") -> list[str]:
        """Every member but :meth:`keeper`, oldest first."""
        kept = self.keeper(keep)
        return [i for i in self.ids if i != kept]

    def to_dict(self, keep: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ids": list(self.ids),
            "size": len(self.ids),
            "min_score": round(self.min_score, 6),
            "max_score": round(self.max_score, 6),
            "pairs": [{"a": a, "b": b, "score": round(s, 6)} for a, b, s in self.pairs],
        }
        if keep is not None:
            out["keep"] = self.keeper(keep)
            out["delete"] = self.to_delete(keep)
        return out


def check_keep(keep: str) -> str:
    if keep not in KEEP_POLICIES:
        raise InvalidInputError(f"keep must be one of {', '.join(KEEP_POLICIES)}, got {keep!r}")
    return keep


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not 0 < threshold <= 1:
        raise InvalidInputError(
            f"threshold must be a cosine similarity in (0, 1], got {threshold!r}; near-duplicates are usually above 0.9"
        )
    return float(threshold)


def similar_pairs(
    vectors: np.ndarray,
    threshold: float,
    *,
    exact: bool | None = None,
    nprobe: int = 16,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows whose cosine is at least ``threshold``: (i, j, score) with i < j.

    ``vectors`` are normalised here. ``exact=None`` searches exactly up to :data:`EXACT_LIMIT`
    rows and through an IVF index (``nprobe`` cells per row) above. Pairs come sorted by (i, j).

    Raises:
        InvalidInputError: a threshold outside (0, 1], bad vectors, or more than ``max_pairs``
            pairs (the threshold is too low to mean "duplicate").
    """
    import faiss

    threshold = check_threshold(threshold)
    x = unit_rows(vectors)
    n, dim = x.shape
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    if n < 2:
        return empty
    if exact is None:
        exact = n <= EXACT_LIMIT
    nlist = _nlist(n)
    if exact or nlist < 2:
        index: Any = faiss.IndexFlatIP(dim)
        params = None
    else:
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.cp.min_points_per_centroid = 1  # no warning for small training sets: nlist already respects them
        train = x if n <= nlist * 64 else x[np.sort(np.random.default_rng(seed).choice(n, nlist * 64, replace=False))]
        index.train(train)
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, nlist))
    index.add(x)
    # FAISS keeps inner products strictly above the radius; the float slack is removed below.
    radius = threshold - 1e-5
    rows, cols, scores = [], [], []
    total = 0
    for start in range(0, n, _BLOCK):
        block = x[start : start + _BLOCK]
        if params is None:
            lims, dist, labels = index.range_search(block, radius)
        else:
            lims, dist, labels = index.range_search(block, radius, params=params)
        q = np.repeat(np.arange(start, start + len(block), dtype=np.int64), np.diff(lims).astype(np.int64))
        keep = (labels != q) & (dist >= threshold)
        a, b, s = q[keep], labels[keep].astype(np.int64), dist[keep].astype(np.float32)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        if exact:  # each pair is seen from both ends: keep one
            sel = a < b
            lo, hi, s = lo[sel], hi[sel], s[sel]
        total += len(lo)
        if total > max_pairs * (1 if exact else 2):
            raise InvalidInputError(
                f"more than {max_pairs:,} pairs of documents score at least {threshold}: at that threshold "
                "documents are neighbours, not duplicates; raise the threshold (near-duplicates are usually above 0.9)"
            )
        rows.append(lo)
        cols.append(hi)
        scores.append(np.minimum(s, 1.0))
    i, j, s = np.concatenate(rows), np.concatenate(cols), np.concatenate(scores)
    # Approximate search can find a pair from one end only; sorting and de-duplicating also
    # makes the order independent of the search.
    order = np.lexsort((j, i))
    i, j, s = i[order], j[order], s[order]
    if len(i):
        first = np.ones(len(i), dtype=bool)
        first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
        i, j, s = i[first], j[first], s[first]
    return i, j, s


def group_pairs(n: int, i: np.ndarray, j: np.ndarray, scores: np.ndarray) -> list[PairGroup]:
    """Connected components (two or more members) of the graph with these edges.

    Groups come largest first, then by their first member; members ascending; pairs by
    descending score.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    if len(i) == 0:
        return []
    graph = sparse.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    edge_group = labels[i]
    by_group: dict[int, list[tuple[int, int, float]]] = {}
    for order in np.lexsort((-scores, edge_group)):
        by_group.setdefault(int(edge_group[order]), []).append((int(i[order]), int(j[order]), float(scores[order])))
    member_order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = [
        PairGroup(members=member_order[starts[g] : starts[g + 1]], pairs=by_group[g])
        for g in by_group
    ]
    groups.sort(key=lambda grp: (-len(grp.members), int(grp.members[0])))
    return groups


def near_duplicate_groups(
    vectors: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    exact: bool | None = None,
    owner: np.ndarray | None = None,
    n_documents: int | None = None,
    nprobe: int = 16,
    max_pairs: int = MAX_PAIRS,
) -> list[PairGroup]:
    """Groups of rows (documents) whose vectors are near-duplicates.

    With ``owner`` (one document index per row, ``n_documents`` documents) the rows are chunks
    and two documents are as similar as their *best chunk pair*; without it each row is a
    document (pass mean vectors for the recommended whole-document similarity, see
    :mod:`semsearch.corpus.vectors`).

    Raises:
        InvalidInputError: see :func:`similar_pairs`.
    """
    i, j, s = similar_pairs(vectors, threshold, exact=exact, nprobe=nprobe, max_pairs=max_pairs)
    n = len(vectors)
    if owner is not None:
        owner = np.asarray(owner, dtype=np.int64)
        n = int(n_documents if n_documents is not None else owner.max(initial=-1) + 1)
        a, b = owner[i], owner[j]
        other = a != b
        a, b, s = np.minimum(a, b)[other], np.maximum(a, b)[other], s[other]
        # Best chunk pair per document pair.
        order = np.lexsort((-s, b, a))
        a, b, s = a[order], b[order], s[order]
        first = np.ones(len(a), dtype=bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        i, j, s = a[first], b[first], s[first]
    return group_pairs(n, i, j, s)


def named_groups(groups: Sequence[PairGroup], ids: Sequence[str], texts: Sequence[str]) -> list[DuplicateGroup]:
    """:class:`PairGroup` positions turned into document ids (positions are insertion order)."""
    return [
        DuplicateGroup(
            ids=[ids[m] for m in g.members],
            pairs=[(ids[a], ids[b], s) for a, b, s in g.pairs],
            lengths=[len(texts[m]) for m in g.members],
        )
        for g in groups
    ]


def _nlist(n: int) -> int:
    # ~4 sqrt(n) cells, each trained on at least 39 points (FAISS's own minimum).
    return int(max(1, min(4 * np.sqrt(n), n // 39)))
