"""Topics: groups of documents about one thing, labelled by their most distinctive words, and
an outlier topic (-1) for documents that belong to none.

When the number of topics is not given it comes from the data, from two partitions of the
document vectors that compete on their cosine silhouette (:func:`cluster_documents`):

- spherical k-means (``faiss.Kmeans``: k-means++ seeding, best of three runs) with the count
  whose k-means silhouette peaks (or, when the curve keeps rising, is at its knee), which suits
  a collection of a few well separated subjects;
- the communities of the documents' nearest-neighbour graph (:mod:`.communities`: FAISS
  neighbours, Louvain), which suit a collection of many subjects of every size, where the
  knee of a flat silhouette curve merged unrelated ones ("axon, plate, continental").

Documents that sit between topics or apart from everything (fewer than a third of their
neighbours share their topic, or no neighbour is like them) form the outlier topic, id -1, as
BERTopic's does (``outliers=False`` keeps every document in a topic). With ``n`` given, the
topics are k-means clusters, with the same outlier test. Agreement with known categories,
before and after, is in bench/RESULTS.md (issue 27).

Everything is deterministic for a fixed seed: seeded samples, seeded Louvain and k-means, ties
broken by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .communities import communities, few_threads_when_small, find_neighbours, mark_outliers
from .vectors import unit_rows

MAX_AUTO_TOPICS = 40
SILHOUETTE_SAMPLE = 3000
KMEANS_SAMPLE = 20_000  # documents each k-means of the automatic choice trains on
SEED = 1234
OUTLIERS = -1  #: the id of the topic of documents that belong to no topic
OUTLIER_LABEL = "outliers"
LABEL_DOCUMENTS = 20_000  # texts read for labels; above, a sample from every topic


@dataclass
class Topic:
    """A group of documents about one thing, or (``id`` -1, label "outliers") the documents that
    belong to no topic.

    ``ids`` are its documents, the most central first (nearest to the topic's centroid; the
    outliers in the order they were added); ``words`` its most distinctive words (best first)
    and ``label`` the first few of them.
    """

    id: int
    label: str
    words: list[str]
    size: int
    ids: list[str]
    word_scores: list[float] = field(default_factory=list)

    def central(self, n: int = 5) -> list[str]:
        """The ``n`` documents nearest the topic's centre."""
        return self.ids[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "words": list(self.words), "size": self.size, "ids": list(self.ids)}


@dataclass
class Clustering:
    """Topic of each row (numbered largest first; -1: none) and the topics' centroids."""

    labels: np.ndarray
    centroids: np.ndarray

    @property
    def n(self) -> int:
        return len(self.centroids)

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """The nearest centroid (topic) of each vector."""
        return np.argmax(unit_rows(vectors) @ self.centroids.T, axis=1)


def kmeans(vectors: np.ndarray, n: int, *, seed: int = SEED, niter: int = 25, nredo: int = 3,
           sample: int | None = None) -> Clustering:
    """Spherical k-means with ``n`` clusters; clusters renumbered by size (largest first).

    Raises:
        InvalidInputError: ``n`` below 1 or above the number of rows.
    """
    import faiss

    x = unit_rows(vectors)
    m, dim = x.shape
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= m:
        raise InvalidInputError(f"the number of topics must be between 1 and the number of documents ({m}), got {n!r}")
    train = x
    if sample is not None and m > sample:
        train = x[np.sort(np.random.default_rng(seed).choice(m, sample, replace=False))]
    # k-means++ seeding and the best of three runs: plain random seeding lands in a local
    # optimum (two true clusters merged, another split) often enough to fool the choice of k.
    # Trained on at most 256 points per centroid (FAISS's own default sample), then every vector is
    # assigned: at 100k documents training on all of them cost 4x the time for the same topics.
    km = faiss.Kmeans(dim, int(n), niter=niter, seed=seed, spherical=True, verbose=False, nredo=nredo,
                      min_points_per_centroid=1, max_points_per_centroid=256)
    km.cp.init_method = faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS
    with few_threads_when_small(len(train) * int(n)):
        km.train(train)
        _, assign = km.index.search(x, 1)
    return _renumbered(x, assign[:, 0].astype(np.int64), km.centroids)


def _renumbered_labels(x: np.ndarray, assign: np.ndarray) -> Clustering:
    """Topics numbered largest first (ties: by first member), -1 kept, centres of each."""
    return _renumbered(x, assign, np.zeros((int(assign.max(initial=-1)) + 1, x.shape[1]), dtype=np.float32))


def _renumbered(x: np.ndarray, assign: np.ndarray, centroids: np.ndarray) -> Clustering:
    members = assign >= 0
    sizes = np.bincount(assign[members], minlength=len(centroids))
    first = np.full(len(centroids), len(assign))
    np.minimum.at(first, assign[members], np.flatnonzero(members))
    used = [c for c in np.lexsort((first, -sizes)) if sizes[c] > 0]  # largest first, ties by first member
    new = np.full(len(centroids) + 1, -1, dtype=np.int64)  # the last slot maps -1 (no topic) to itself
    new[used] = np.arange(len(used))
    labels = new[assign]
    # Centres of the final assignment (k-means' last centroids predate it by one step).
    cents = np.zeros((len(used), x.shape[1]), dtype=np.float32)
    np.add.at(cents, labels[labels >= 0], x[labels >= 0])
    cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-12)
    return Clustering(labels=labels, centroids=cents)


def choose_topic_count(
    vectors: np.ndarray, *, k_max: int | None = None, seed: int = SEED, sample: int = SILHOUETTE_SAMPLE
) -> tuple[int, dict[int, float]]:
    """The number of topics for these vectors, and the silhouette of every k tried.

    For each k in 2..k_max (default min(:data:`MAX_AUTO_TOPICS`, sqrt(n))), k-means runs on a
    sample and the cosine silhouette is measured on another. A clear peak inside the range wins.
    On real text embeddings the silhouette usually keeps creeping up with k instead (every
    extra cluster splits a theme a little more), and its maximum would just be the top of the
    range; then the knee of the curve is taken: the k where it stops rising steeply (the point
    farthest above the chord from the first to the last k, the "Kneedle" rule, on the curve
    smoothed over three neighbours).
    """
    from sklearn.metrics import silhouette_score

    x = unit_rows(vectors)
    m = len(x)
    if m < 4:
        return 1, {}
    upper = k_max if k_max is not None else min(MAX_AUTO_TOPICS, max(2, int(np.sqrt(m))))
    upper = max(2, min(upper, m - 1))
    rng = np.random.default_rng(seed)
    probe = x[np.sort(rng.choice(m, min(m, sample), replace=False))]
    train = x if m <= KMEANS_SAMPLE else x[np.sort(rng.choice(m, KMEANS_SAMPLE, replace=False))]
    scores: dict[int, float] = {}
    for k in range(2, upper + 1):
        labels = kmeans(train, k, seed=seed, niter=15).assign(probe)
        if len(np.unique(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(probe, labels, metric="cosine"))
    if not scores:
        return 1, {}
    return _peak_or_knee(scores), scores


def _peak_or_knee(scores: dict[int, float]) -> int:
    ks = np.array(sorted(scores))
    s = np.array([scores[k] for k in ks])
    best = int(ks[int(np.argmax(s))])
    if len(ks) < 4 or best <= 0.8 * ks[-1]:
        return best
    smooth = s.copy()
    smooth[1:-1] = (s[:-2] + s[1:-1] + s[2:]) / 3
    spread = smooth.max() - smooth.min()
    if spread <= 0:
        return best
    rise = (smooth - smooth.min()) / spread - (ks - ks[0]) / (ks[-1] - ks[0])
    return int(ks[int(np.argmax(rise))])


def cluster_documents(vectors: np.ndarray, n: int | None = None, *, seed: int = SEED,
                      outliers: bool = True) -> Clustering:
    """Topics of these vectors, numbered largest first, -1 for documents in none (``outliers``).

    With ``n``: spherical k-means with ``n`` clusters. Without: two partitions compete, k-means
    with the count :func:`choose_topic_count` picks and the communities of the documents'
    neighbour graph (:func:`.communities.communities`), and the one with the higher cosine
    silhouette wins. k-means wins on collections of a few well separated subjects, where the
    graph's communities split subjects into their parts; the communities win on collections
    of many subjects of every size, where the silhouette curve has no peak and the count taken
    at its knee merges unrelated subjects (bench/RESULTS.md, issue 27).

    Raises:
        InvalidInputError: ``n`` below 1 or above the number of rows.
    """
    x = unit_rows(vectors)
    if len(x) < 4:  # too few to have neighbours or a silhouette: one topic, or the n asked for
        return kmeans(x, 1 if n is None else n, seed=seed)
    graph = find_neighbours(x, seed=seed)
    if n is not None:
        labels = kmeans(x, n, seed=seed).labels
    else:
        labels = _better_partition(x, kmeans(x, choose_topic_count(x, seed=seed)[0], seed=seed).labels,
                                   communities(graph, seed=seed), seed=seed)
    if outliers:
        labels = mark_outliers(labels, graph.ids, min_topic_size(len(x)) if n is None else 1,
                               neighbour_sims=graph.sims)
    return _renumbered_labels(x, labels)


def _better_partition(x: np.ndarray, first: np.ndarray, second: np.ndarray, *, seed: int) -> np.ndarray:
    """Of two partitions, the one with the higher cosine silhouette on a fixed sample (the first on a tie)."""
    from sklearn.metrics import silhouette_score

    probe = np.sort(np.random.default_rng(seed).choice(len(x), min(len(x), SILHOUETTE_SAMPLE), replace=False))
    scores = [float(silhouette_score(x[probe], labels[probe], metric="cosine"))
              if 1 < len(np.unique(labels[probe])) < len(probe) else -1.0 for labels in (first, second)]
    return second if scores[1] > scores[0] else first


def min_topic_size(n: int) -> int:
    """The fewest documents a topic found in ``n`` documents holds: 10 (BERTopic's default), fewer when few."""
    return int(min(10, max(2, n // 50)))


def label_sample(labels: np.ndarray, *, seed: int = SEED, total: int = LABEL_DOCUMENTS, least: int = 100) -> np.ndarray:
    """Positions of the documents whose texts label the topics: all of them up to ``total``,
    else a seeded sample at the same rate from every topic (at least ``least`` of each). Outliers
    (-1) name no topic and are left out.

    Word counts of a few hundred documents per topic name it as well as all of them do, and
    tokenizing every text of a large collection would take most of the time of ``topics``.
    """
    m = int((labels >= 0).sum())
    if m <= total:
        return np.flatnonzero(labels >= 0)
    rng = np.random.default_rng(seed)
    rate = total / m
    picked = []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        take = min(len(members), max(least, int(np.ceil(rate * len(members)))))
        picked.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(picked))


def find_topics(
    ids: Sequence[str],
    vectors: np.ndarray,
    texts: Sequence[str],
    n: int | None = None,
    *,
    seed: int = SEED,
    top_words: int = 8,
    label_words: int = 3,
    outliers: bool = True,
) -> list[Topic]:
    """Topics of these documents (one unit vector and one text per id), largest first, then the
    outlier topic (id -1, label "outliers", no words) of the documents that belong to none, if
    any; ``outliers=False`` puts every document in a topic.

    Raises:
        InvalidInputError: mismatched lengths, or ``n`` outside 1..len(ids).
    """
    from .labels import distinctive_words

    if not (len(ids) == len(vectors) == len(texts)):
        raise InvalidInputError(f"got {len(ids)} ids, {len(vectors)} vectors and {len(texts)} texts; give one of each "
                                "per document")
    if len(ids) == 0:
        return []
    x = unit_rows(vectors)
    clustering = cluster_documents(x, n, seed=seed, outliers=outliers)
    sample = label_sample(clustering.labels, seed=seed)
    words = distinctive_words([texts[i] for i in sample], clustering.labels[sample], clustering.n, top=top_words)
    topics = []
    for c in range(clustering.n):
        members = np.flatnonzero(clustering.labels == c)
        closeness = x[members] @ clustering.centroids[c]
        ordered = members[np.argsort(-closeness, kind="stable")]
        ws = words[c]
        topics.append(Topic(
            id=c,
            label=", ".join(w for w, _ in ws[:label_words]) or f"topic {c}",
            words=[w for w, _ in ws],
            size=len(members),
            ids=[ids[i] for i in ordered],
            word_scores=[round(s, 6) for _, s in ws],
        ))
    alone = np.flatnonzero(clustering.labels == OUTLIERS)
    if len(alone):
        topics.append(Topic(id=OUTLIERS, label=OUTLIER_LABEL, words=[], size=len(alone),
                            ids=[ids[int(i)] for i in alone]))
    return topics
