"""Topics as communities of a nearest-neighbour graph, and documents that belong to no topic.

Each document is linked to its ``k`` nearest neighbours (cosine, FAISS), and the graph is cut
into communities by Louvain modularity (networkx, seeded). Their number comes out of the graph:
two groups of documents are one community only when they are densely linked, so on a collection
of many subjects unrelated ones are not merged to reach a count. ``resolution`` above 1 favours
smaller communities (at 1 Louvain merges groups that are small against the whole graph: its
resolution limit). Beyond :data:`GRAPH_SAMPLE` documents the graph is built from a seeded
sample, and every other document joins the community most of its nearest sampled ones are in.

A document belongs to no topic (topic -1, BERTopic's outlier topic) when fewer than
:data:`OUTLIER_SHARE` of its neighbours share its topic (it sits between topics), when it is
like none of its neighbours (no positive cosine: apart from everything), or when its topic is
smaller than the minimum topic size. :func:`mark_outliers` applies that to any partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

#: Neighbours per document in the graph (fewer for small collections).
NEIGHBOURS = 15
#: Louvain resolution: at 2.0 the communities of the mixed collections measured matched their
#: categories best; at 1.0 several unrelated subjects were merged (bench/RESULTS.md, issue 27).
RESOLUTION = 2.0
#: A document whose neighbours share its topic less often than this belongs to no topic.
OUTLIER_SHARE = 1 / 3
#: Documents the graph is built from; the others join the community of their nearest ones among them.
GRAPH_SAMPLE = 20_000


@dataclass
class Neighbours:
    """Each document's nearest neighbours among the ``picked`` ones (itself left out), best first:
    ``ids`` (positions among all documents) and their cosines ``sims``, one row per document."""

    picked: np.ndarray
    ids: np.ndarray
    sims: np.ndarray


def neighbour_count(n: int) -> int:
    """Neighbours per document for ``n`` documents: :data:`NEIGHBOURS`, fewer when few."""
    return max(1, min(NEIGHBOURS, max(5, n // 20), n - 1))


def nearest(x: np.ndarray, among: np.ndarray, k: int, *, skip_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """(neighbour indices into ``among``, cosines) of the ``k`` nearest rows of ``among`` to each
    row of ``x``, best first; with ``skip_self`` (``x`` is ``among``) a row is not its own neighbour."""
    import faiss

    index = faiss.IndexFlatIP(among.shape[1])
    index.add(among)
    with few_threads_when_small(len(x) * len(among)):
        sims, ids = index.search(x, k + 1 if skip_self else k)
    if skip_self:
        # Drop each row itself (not always first: an identical twin may tie with it).
        own = ids == np.arange(len(x))[:, None]
        own[own.sum(axis=1) == 0, -1] = True  # no self found among the k+1: drop the farthest instead
        keep = ~own
        ids = ids[keep].reshape(len(x), k)
        sims = sims[keep].reshape(len(x), k)
    return ids.astype(np.int64), sims.astype(np.float32)


def find_neighbours(x: np.ndarray, *, seed: int = 0, sample: int = GRAPH_SAMPLE) -> Neighbours:
    """:class:`Neighbours` of unit rows ``x``: among all of them, or among a seeded sample of
    ``sample`` beyond that many."""
    m = len(x)
    picked = np.arange(m) if m <= sample else np.sort(np.random.default_rng(seed).choice(m, sample, replace=False))
    k = neighbour_count(len(picked))
    ids = np.empty((m, k), dtype=np.int64)
    sims = np.empty((m, k), dtype=np.float32)
    found, sims[picked] = nearest(x[picked], x[picked], k, skip_self=True)
    ids[picked] = picked[found]
    rest = np.setdiff1d(np.arange(m), picked)
    if len(rest):
        found, sims[rest] = nearest(x[rest], x[picked], k, skip_self=False)
        ids[rest] = picked[found]
    return Neighbours(picked, ids, sims)


def communities(graph: Neighbours, *, resolution: float = RESOLUTION, seed: int = 0) -> np.ndarray:
    """Community of every document: Louvain's over the picked documents' graph (numbered largest
    first, ties by lowest member), the community most of its neighbours are in for the others."""
    import networkx as nx

    picked, m = graph.picked, len(graph.ids)
    position = np.full(m, -1, dtype=np.int64)
    position[picked] = np.arange(len(picked))
    ids, sims = position[graph.ids[picked]], graph.sims[picked]
    n, k = ids.shape
    network = nx.Graph()
    network.add_nodes_from(range(n))
    # Weights rounded to 1e-3: Louvain follows small differences, and the last bits of a cosine
    # depend on the CPU and the number of threads (BLAS blocking), which must not change topics.
    weights = np.maximum(np.round(sims.ravel().astype(np.float64), 3), 1e-6)
    network.add_weighted_edges_from(zip(np.repeat(np.arange(n), k).tolist(), ids.ravel().tolist(), weights.tolist()))
    found = nx.community.louvain_communities(network, weight="weight", resolution=resolution, seed=seed)
    labels = np.full(m, -1, dtype=np.int64)
    for topic, members in enumerate(sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))):
        labels[picked[members]] = topic
    rest = np.setdiff1d(np.arange(m), picked)
    if len(rest):
        labels[rest] = vote(labels[graph.ids[rest]], graph.sims[rest])[0]
    return labels


def vote(neighbour_labels: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the label most of each row's neighbours carry, weighted by cosine; the share of the
    weight it got). Ties go to the lower label; outlier labels (-1) never win."""
    n = len(neighbour_labels)
    top = int(neighbour_labels.max(initial=-1)) + 1
    if top == 0:
        return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.float32)
    weights = np.maximum(sims, 1e-6)
    totals = np.zeros((n, top), dtype=np.float64)
    rows = np.repeat(np.arange(n), neighbour_labels.shape[1])
    known = neighbour_labels.ravel() >= 0
    np.add.at(totals, (rows[known], neighbour_labels.ravel()[known]), weights.ravel()[known])
    best = np.argmax(totals, axis=1)
    share = totals[np.arange(n), best] / weights.sum(axis=1)
    return np.where(totals.max(axis=1) > 0, best, -1), share.astype(np.float32)


def mark_outliers(labels: np.ndarray, neighbour_ids: np.ndarray, min_size: int, *,
                  neighbour_sims: np.ndarray | None = None, share: float = OUTLIER_SHARE) -> np.ndarray:
    """``labels`` with -1 for documents fewer than ``share`` of whose neighbours
    (``neighbour_ids``, indices into ``labels``) share their topic or, given ``neighbour_sims``,
    that are like none of them (no positive cosine), then for the documents of topics left
    smaller than ``min_size``."""
    own = (labels[neighbour_ids] == labels[:, None]).mean(axis=1)
    alike = np.ones(len(labels), dtype=bool) if neighbour_sims is None else neighbour_sims.max(axis=1) > 0
    out = np.where((labels >= 0) & (own >= share) & alike, labels, -1)
    sizes = np.bincount(out[out >= 0], minlength=int(out.max(initial=-1)) + 1)
    return np.where((out >= 0) & (sizes[np.maximum(out, 0)] >= min_size), out, -1)


@contextmanager
def few_threads_when_small(work: int) -> Iterator[None]:
    """One OpenMP thread for small problems: they gain nothing from more, and on a busy machine
    FAISS's spinning threads turn milliseconds into seconds (measured: 0.4 ms vs ~2 s per run)."""
    import faiss

    if work >= 2_000_000:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
