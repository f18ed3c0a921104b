"""Near-duplicate pairs and groups against brute force on synthetic vectors (odd sizes, block edges)."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import InvalidInputError
from semsearch.corpus import near_duplicates as dup
from semsearch.corpus.near_duplicates import DuplicateGroup, group_pairs, near_duplicate_groups, similar_pairs
from semsearch.corpus.vectors import mean_document_vectors


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def planted(n, dim=24, copies=20, noise=0.03, seed=0):
    """Random unit vectors with ``copies`` rows replaced by noisy copies of other rows; returns (x, planted pairs)."""
    rng = np.random.default_rng(seed)
    x = unit(rng.normal(size=(n, dim)))
    rows = rng.choice(n, size=2 * copies, replace=False)
    pairs = set()
    for a, b in zip(rows[:copies], rows[copies:]):
        x[b] = unit((x[a] + noise * rng.normal(size=dim))[None])[0]
        pairs.add((min(a, b), max(a, b)))
    return x, pairs


def brute_pairs(x, threshold):
    sims = x @ x.T
    i, j = np.nonzero(np.triu(sims >= threshold, 1))
    return {(int(a), int(b)): float(sims[a, b]) for a, b in zip(i, j)}


def borderline(x, threshold):
    """Pairs within float error of the threshold, which either side of it may round to."""
    sims = x @ x.T
    i, j = np.nonzero(np.triu(np.abs(sims - threshold) < 1e-5, 1))
    return set(zip(i.tolist(), j.tolist()))


@pytest.mark.parametrize("n", [1, 2, 17, 257])
@pytest.mark.parametrize("threshold", [0.3, 0.9])
def test_exact_pairs_equal_brute_force(n, threshold):
    x, _ = planted(max(n, 2), copies=min(n // 4, 10))
    x = x[:n]
    i, j, s = similar_pairs(x, threshold, exact=True)
    want = brute_pairs(x, threshold)
    edge = borderline(x, threshold)
    assert set(zip(i.tolist(), j.tolist())) - edge == set(want) - edge
    for a, b, score in zip(i.tolist(), j.tolist(), s):
        assert score == pytest.approx((x[a] @ x[b]), abs=1e-5)
    assert np.all(i < j)
    assert list(zip(i, j)) == sorted(zip(i, j))  # sorted, whatever the search order


def test_pairs_across_search_blocks(monkeypatch):
    monkeypatch.setattr(dup, "_BLOCK", 7)  # many blocks, pairs straddling their edges
    x, _ = planted(101, copies=25)
    i, j, _ = similar_pairs(x, 0.5, exact=True)
    edge = borderline(x, 0.5)
    assert set(zip(i.tolist(), j.tolist())) - edge == set(brute_pairs(x, 0.5)) - edge


def test_identical_vectors_score_one_and_are_all_paired():
    x = unit(np.random.default_rng(1).normal(size=(9, 8)))
    x[3] = x[5] = x[8] = x[0]
    i, j, s = similar_pairs(x, 1.0, exact=True)
    assert set(zip(i.tolist(), j.tolist())) == {(0, 3), (0, 5), (0, 8), (3, 5), (3, 8), (5, 8)}
    assert np.all(s == pytest.approx(1.0, abs=1e-6)) and np.all(s <= 1.0)


def test_approximate_search_finds_the_planted_duplicates_and_only_pairs_above_threshold():
    # Clustered data (like sentence embeddings) large enough for an IVF index of many cells.
    rng = np.random.default_rng(2)
    centres = unit(rng.normal(size=(40, 32)))
    x = unit(centres[rng.integers(0, 40, 6001)] + 0.6 * rng.normal(size=(6001, 32)))
    rows = rng.choice(len(x), 300, replace=False)
    for a, b in zip(rows[:150], rows[150:]):
        x[b] = unit((x[a] + 0.02 * rng.normal(size=32))[None])[0]
    i, j, _ = similar_pairs(x, 0.95, exact=False, nprobe=8)
    want = brute_pairs(x, 0.95)
    got = set(zip(i.tolist(), j.tolist()))
    assert got <= set(want)  # never a pair below the threshold
    assert len(got) >= 0.98 * len(want)


def test_too_low_a_threshold_is_refused_with_advice():
    x = unit(np.random.default_rng(3).normal(size=(200, 4)))
    with pytest.raises(InvalidInputError, match="raise the threshold"):
        similar_pairs(x, 0.01, exact=True, max_pairs=100)


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True, "0.9", float("nan")])
def test_threshold_must_be_a_cosine(bad):
    with pytest.raises(InvalidInputError, match="threshold"):
        similar_pairs(np.eye(3, dtype=np.float32), bad)


def test_bad_vectors_are_refused():
    with pytest.raises(InvalidInputError, match="2-D"):
        similar_pairs(np.ones(5, dtype=np.float32), 0.9)
    with pytest.raises(InvalidInputError, match="NaN"):
        similar_pairs(np.array([[1.0, np.nan], [0.0, 1.0]]), 0.9)


def brute_components(n, edges):
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for a, b in edges:
        parent[find(a)] = find(b)
    groups = {}
    for v in range(n):
        groups.setdefault(find(v), []).append(v)
    return {tuple(g) for g in groups.values() if len(g) > 1}


@pytest.mark.parametrize("seed", range(4))
def test_groups_are_the_connected_components(seed):
    rng = np.random.default_rng(seed)
    n = 53
    edges = {tuple(sorted(e)) for e in rng.integers(0, n, size=(30, 2)).tolist() if e[0] != e[1]}
    i, j = (np.array(v, dtype=np.int64) for v in zip(*sorted(edges)))
    scores = rng.uniform(0.9, 1.0, len(i)).astype(np.float32)
    groups = group_pairs(n, i, j, scores)
    assert {tuple(g.members.tolist()) for g in groups} == brute_components(n, edges)
    assert sum(len(g.pairs) for g in groups) == len(edges)
    for g in groups:
        assert all(a in g.members and b in g.members for a, b, _ in g.pairs)
        assert [p[2] for p in g.pairs] == sorted((p[2] for p in g.pairs), reverse=True)
    assert [len(g.members) for g in groups] == sorted((len(g.members) for g in groups), reverse=True)


def test_a_chain_is_one_group():
    groups = group_pairs(5, np.array([0, 2]), np.array([2, 4]), np.array([0.97, 0.96], dtype=np.float32))
    assert len(groups) == 1 and groups[0].members.tolist() == [0, 2, 4]


def test_best_chunk_pair_equals_brute_force():
    rng = np.random.default_rng(4)
    owner = np.sort(rng.integers(0, 23, 71))
    owner[:23] = np.arange(23)  # every document has a chunk
    owner = np.sort(owner)
    chunks = unit(rng.normal(size=(71, 6)))
    groups = near_duplicate_groups(chunks, 0.8, exact=True, owner=owner, n_documents=23)
    sims = chunks @ chunks.T
    best = {}
    for a in range(71):
        for b in range(71):
            da, db = owner[a], owner[b]
            if da < db and sims[a, b] >= 0.8:
                best[(da, db)] = max(best.get((da, db), -1), sims[a, b])
    got = {(a, b): s for g in groups for a, b, s in g.pairs}
    assert set(got) == set(best)
    for key, s in got.items():
        assert s == pytest.approx(best[key], abs=1e-5)


def test_mean_document_vectors_equal_a_loop():
    rng = np.random.default_rng(5)
    owner = np.array([2, 0, 0, 2, 2, 1, 4])  # document 3 has no chunk
    chunks = unit(rng.normal(size=(7, 5)))
    got = mean_document_vectors(chunks, owner, 5)
    for d in range(5):
        rows = chunks[owner == d]
        want = unit(rows.sum(axis=0, keepdims=True))[0] if len(rows) else np.zeros(5)
        assert got[d] == pytest.approx(want, abs=1e-6)


def test_keep_policies():
    g = DuplicateGroup(ids=["a", "b", "c"], pairs=[("a", "b", 0.99), ("b", "c", 0.97)], lengths=[10, 30, 30])
    assert (g.keeper("first"), g.to_delete("first")) == ("a", ["b", "c"])
    assert (g.keeper("newest"), g.to_delete("newest")) == ("c", ["a", "b"])
    assert (g.keeper("longest"), g.to_delete("longest")) == ("b", ["a", "c"])  # the older of two equally long
    d = g.to_dict("longest")
    assert d["ids"] == ["a", "b", "c"] and d["keep"] == "b" and d["delete"] == ["a", "c"]
    assert (d["min_score"], d["max_score"]) == (0.97, 0.99)
    with pytest.raises(InvalidInputError, match="keep must be one of"):
        g.keeper("shortest")
