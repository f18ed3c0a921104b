"""Near-duplicate pairs and groups against brute force on synthetic vectors (odd sizes, block edges)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from semsearch import InvalidInputError
from semsearch.corpus import near_duplicates as dup
from semsearch.corpus.near_duplicates import (
    DEFAULT_TEXT_THRESHOLD,
    DuplicateGroup,
    DuplicatePair,
    best_document_pairs,
    group_pairs,
    near_duplicate_groups,
    similar_pairs,
    text_similarity,
)
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


def random_edges(n, count, seed):
    rng = np.random.default_rng(seed)
    edges = {tuple(sorted(e)) for e in rng.integers(0, n, size=(count, 2)).tolist() if e[0] != e[1]}
    i, j = (np.array(v, dtype=np.int64) for v in zip(*sorted(edges)))
    # distinct scores: no grouping depends on a tie
    scores = (0.9 + 0.1 * rng.permutation(len(i)) / len(i)).astype(np.float32)
    return edges, i, j, scores


@pytest.mark.parametrize("seed", range(6))
def test_every_pair_inside_a_group_is_a_pair_and_no_two_groups_could_merge(seed):
    n = 40
    edges, i, j, scores = random_edges(n, 120, seed)
    groups = group_pairs(n, i, j, scores)
    seen = set()
    for g in groups:
        members = g.members.tolist()
        assert members == sorted(members) and len(members) >= 2 and not seen & set(members)  # disjoint
        seen |= set(members)
        inside = {(a, b) for x, a in enumerate(members) for b in members[x + 1:]}
        assert inside <= edges  # a clique of the pair graph: no chaining
        assert {(p.i, p.j) for p in g.pairs} == inside  # and it lists every pair inside it
        assert [p.score for p in g.pairs] == sorted((p.score for p in g.pairs), reverse=True)
    for g, h in itertools.combinations(groups, 2):  # maximal: no two groups form one clique
        assert not all((min(a, b), max(a, b)) in edges for a in g.members.tolist() for b in h.members.tolist())
    assert [len(g.members) for g in groups] == sorted((len(g.members) for g in groups), reverse=True)


def test_a_chain_is_not_one_group():
    # A~B and B~C, A and C unlike: the stronger pair forms the group, C stays out.
    groups = group_pairs(5, np.array([0, 2]), np.array([2, 4]), np.array([0.96, 0.97], dtype=np.float32))
    assert [g.members.tolist() for g in groups] == [[2, 4]]


def test_a_clique_is_one_group_with_all_its_pairs():
    i, j = np.array([0, 0, 1]), np.array([1, 2, 2])
    (g,) = group_pairs(3, i, j, np.array([0.99, 0.97, 0.98], dtype=np.float32), np.array([0.9, 0.8, 0.7]))
    assert g.members.tolist() == [0, 1, 2]
    assert [(p.i, p.j, p.text) for p in g.pairs] == [(0, 1, 0.9), (1, 2, pytest.approx(0.7)), (0, 2, 0.8)]


def test_best_chunk_pair_equals_brute_force():
    rng = np.random.default_rng(4)
    owner = np.sort(rng.integers(0, 23, 71))
    owner[:23] = np.arange(23)  # every document has a chunk
    owner = np.sort(owner)
    chunks = unit(rng.normal(size=(71, 6)))
    i, j, s = similar_pairs(chunks, 0.8, exact=True)
    a, b, best_s = best_document_pairs(owner, i, j, s)
    sims = chunks @ chunks.T
    best = {}
    for x in range(71):
        for y in range(71):
            dx, dy = owner[x], owner[y]
            if dx < dy and sims[x, y] >= 0.8:
                best[(dx, dy)] = max(best.get((dx, dy), -1), sims[x, y])
    got = dict(zip(zip(a.tolist(), b.tolist()), best_s.tolist()))
    edge = {(owner[x], owner[y]) for x, y in borderline(chunks, 0.8)}
    assert set(got) - edge == set(best) - edge
    for key, score in got.items():
        if key in best:
            assert score == pytest.approx(best[key], abs=1e-5)
    groups = near_duplicate_groups(chunks, 0.8, exact=True, owner=owner, n_documents=23)
    assert all((p.i, p.j) in got for g in groups for p in g.pairs)


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
    pairs = [DuplicatePair("a", "b", 0.99, 0.8), DuplicatePair("b", "c", 0.97, 0.7), DuplicatePair("a", "c", 0.98, 0.9)]
    g = DuplicateGroup(ids=["a", "b", "c"], pairs=pairs, lengths=[10, 30, 30])
    assert (g.keeper("first"), g.to_delete("first")) == ("a", ["b", "c"])
    assert (g.keeper("newest"), g.to_delete("newest")) == ("c", ["a", "b"])
    assert (g.keeper("longest"), g.to_delete("longest")) == ("b", ["a", "c"])  # the older of two equally long
    d = g.to_dict("longest")
    assert d["ids"] == ["a", "b", "c"] and d["keep"] == "b" and d["delete"] == ["a", "c"]
    assert (d["min_score"], d["max_score"], d["min_text"]) == (0.97, 0.99, 0.7)
    assert d["pairs"][0] == {"a": "a", "b": "b", "score": 0.99, "text": 0.8}
    with pytest.raises(InvalidInputError, match="keep must be one of"):
        g.keeper("shortest")


SEASON = ("The {y}-{z} FC Vorstadt season was the club's {o} season in existence and its {c} consecutive season in "
          "the Premier Division. The season covered the period from 1 July {y} to 30 June {y1}. FC Vorstadt finished "
          "the league in {p} place with {pts} points, and {s} was the top scorer with {g} goals.")
SISTERS = [
    SEASON.format(y=2012, z=13, y1=2013, o="21st", c="second", p="eighth", pts=43, s="Pieter Novak", g=9),
    SEASON.format(y=2013, z=14, y1=2014, o="22nd", c="third", p="first", pts=38, s="Ivana Dalton", g=28),
    SEASON.format(y=2014, z=15, y1=2015, o="23rd", c="fourth", p="fifth", pts=51, s="Hugo Varga", g=17),
]
PASSAGE = ("The rainy season in Jamaica runs from May to November, with a first peak in May and June and a second, "
           "wetter one from September to November. Hurricanes are most likely in August and September.")


def test_text_similarity_ignores_case_and_punctuation_and_counts_word_pairs():
    assert text_similarity(PASSAGE, PASSAGE.upper().replace(",", "").replace(".", "")) == 1.0
    edited = PASSAGE.replace("wetter", "rainier")  # one changed word breaks three of ~35 word triples
    assert text_similarity(PASSAGE, edited) >= 0.8
    assert text_similarity(PASSAGE, SISTERS[0]) < 0.05
    assert text_similarity("", PASSAGE) == 0.0 and text_similarity("one", "ONE!") == 1.0
    for a, b in itertools.combinations(SISTERS, 2):  # the same template, other facts
        assert text_similarity(a, b) < DEFAULT_TEXT_THRESHOLD - 0.1


def test_sister_documents_alike_in_meaning_are_not_grouped_unless_asked():
    # Vectors as close as an embedding puts template-made sisters; only the edited copy reads alike.
    texts = [*SISTERS, PASSAGE, PASSAGE.replace("wetter", "rainier")]
    rng = np.random.default_rng(0)
    base = unit(rng.normal(size=(2, 16)))
    x = unit(np.stack([base[0] + 0.02 * rng.normal(size=16) for _ in SISTERS]
                      + [base[1], base[1] + 0.02 * rng.normal(size=16)]))
    assert (x @ x.T).min() < 0.5 and np.all((x[:3] @ x[:3].T) > 0.97)
    groups = near_duplicate_groups(x, 0.95, texts=texts, exact=True)
    assert [g.members.tolist() for g in groups] == [[3, 4]]
    assert groups[0].pairs[0].text >= 0.8
    semantic = near_duplicate_groups(x, 0.95, texts=texts, text_threshold=None, exact=True)
    assert sorted(g.members.tolist() for g in semantic) == [[0, 1, 2], [3, 4]]
    assert all(p.text is not None and (p.text < 0.5) == (p.i < 3) for g in semantic for p in g.pairs)
    with pytest.raises(InvalidInputError, match="one text per document"):
        near_duplicate_groups(x, 0.95, texts=texts[:2], exact=True)
    with pytest.raises(InvalidInputError, match="text_threshold"):
        near_duplicate_groups(x, 0.95, texts=texts, text_threshold=1.5, exact=True)
