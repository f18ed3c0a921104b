"""Topics on synthetic vectors with known clusters, labels by c-TF-IDF, the 2-D map."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import InvalidInputError
from semsearch.corpus.labels import distinctive_words
from semsearch.corpus.projection import pca_2d, place_labels, plot_map, project_2d, topic_colours
from semsearch.corpus.topic_model import choose_topic_count, cluster_documents, find_topics, kmeans


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def blobs(sizes, dim=16, spread=0.15, seed=0):
    """Well-separated clusters on the sphere of the given (odd) sizes; returns (vectors, true labels)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(len(sizes), dim)))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = unit(centres[truth] + spread * rng.normal(size=(len(truth), dim)))
    order = rng.permutation(len(truth))  # members interleaved, as documents arrive
    return x[order], truth[order]


def same_partition(a, b):
    pairs = {(int(x), int(y)) for x, y in zip(a, b)}
    return len(pairs) == len(set(a)) == len(set(b))


def test_the_number_of_topics_is_found_and_the_groups_recovered():
    x, truth = blobs([13, 29, 41, 7, 23])
    n, silhouettes = choose_topic_count(x)
    assert n == 5
    assert max(silhouettes, key=silhouettes.get) == 5
    result = kmeans(x, n)
    assert same_partition(result.labels, truth)


def many_subjects(groups=30, dim=32, spread=0.5, seed=0):
    """Many groups of uneven sizes (15-59), as a collection of many subjects is; returns (vectors, truth)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(groups), rng.integers(15, 60, groups))
    centres = unit(rng.normal(size=(groups, dim)))
    x = unit(centres[truth] + spread * rng.normal(size=(len(truth), dim)) / np.sqrt(dim))
    order = rng.permutation(len(truth))
    return x[order], truth[order]


@pytest.mark.parametrize("seed", [0, 1])
def test_many_subjects_are_found_apart_not_merged_to_reach_a_count(seed):
    # The silhouette curve of such data has no peak; the count at its knee merged a third of
    # the groups into others. The neighbour graph's communities keep every group apart.
    x, truth = many_subjects(seed=seed)
    result = cluster_documents(x, None, outliers=False)
    assert result.n == 30 and same_partition(result.labels, truth)
    again = cluster_documents(x, None, outliers=False)
    assert np.array_equal(result.labels, again.labels)  # deterministic


def axis_groups(sizes, dim=16, spread=0.05, seed=0):
    """Tight groups around distinct axes (every coordinate >= 0) and one document unlike all of them
    (every coordinate < 0); returns (vectors, truth with -1 for that one)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = np.abs(rng.normal(size=(len(truth), dim))) * spread
    x[np.arange(len(truth)), truth] += 1.0
    x = np.vstack([x, -np.abs(rng.normal(size=(1, dim))) - 0.5])
    truth = np.concatenate([truth, [-1]])
    order = rng.permutation(len(truth))
    return unit(x[order]), truth[order]


@pytest.mark.parametrize("n", [None, 4])
def test_a_document_like_none_other_is_in_the_outlier_topic(n):
    x, truth = axis_groups([40, 30, 25, 20])
    ids = [f"d{i}" for i in range(len(x))]
    texts = [f"group {t} text" if t >= 0 else "nothing like the rest" for t in truth]
    found = find_topics(ids, x, texts, n=n)
    loner = ids[int(np.flatnonzero(truth == -1)[0])]
    assert [t.id for t in found] == [0, 1, 2, 3, -1]
    outliers = found[-1]
    assert outliers.ids == [loner] and outliers.size == 1 and outliers.label == "outliers" and outliers.words == []
    assert outliers.to_dict() == {"id": -1, "label": "outliers", "words": [], "size": 1, "ids": [loner]}
    assert [t.size for t in found[:4]] == [40, 30, 25, 20]
    everyone = find_topics(ids, x, texts, n=n, outliers=False)
    assert -1 not in [t.id for t in everyone] and sum(t.size for t in everyone) == len(ids)


def test_given_n_topics_come_largest_first_and_the_run_repeats_exactly():
    x, truth = blobs([11, 31, 19])
    a, b = kmeans(x, 3), kmeans(x, 3)
    assert np.array_equal(a.labels, b.labels)
    assert same_partition(a.labels, truth)
    sizes = np.bincount(a.labels)
    assert sizes.tolist() == [31, 19, 11]


@pytest.mark.parametrize("bad", [0, -1, 8, 2.5, True])
def test_a_topic_count_outside_the_documents_is_refused(bad):
    x, _ = blobs([3, 4])
    with pytest.raises(InvalidInputError, match="number of topics"):
        kmeans(x, bad)


def test_tiny_inputs_make_one_topic():
    x, _ = blobs([3])
    ids = ["a", "b", "c"]
    (topic,) = find_topics(ids, x, ["alpha beta", "alpha gamma", "alpha delta"])
    assert topic.size == 3 and sorted(topic.ids) == ids and topic.words[0] == "alpha"
    assert find_topics([], np.empty((0, 16), np.float32), []) == []


def test_topics_carry_size_central_documents_first_and_distinctive_words():
    x, truth = blobs([9, 15, 21], seed=3)
    words = {0: "volcano lava eruption magma", 1: "violin orchestra symphony concerto",
             2: "goalkeeper penalty striker league"}
    texts = [f"The {words[t].split()[i % 4]} and the {words[t].split()[(i + 1) % 4]} were in the news."
             for i, t in enumerate(truth)]
    ids = [f"d{i}" for i in range(len(texts))]
    found = find_topics(ids, x, texts, n=3)
    assert [t.size for t in found] == [21, 15, 9]
    for t in found:
        members = [int(i[1:]) for i in t.ids]
        (true_topic,) = set(truth[members])
        assert set(t.words[:4]) == set(words[true_topic].split())  # its own words, no stop words
        assert t.label == ", ".join(t.words[:3])
        centre = unit(x[members].sum(axis=0, keepdims=True))[0]
        closeness = x[members] @ centre
        assert closeness[0] == pytest.approx(closeness.max(), abs=1e-6)  # most central first
        assert t.to_dict().keys() == {"id", "label", "words", "size", "ids"}


def test_stop_words_go_by_the_language_of_the_topic():
    # "die" is an English word in the first topic and an article in the German one.
    english = ["The die casting of aluminium parts", "A die for casting metal parts", "Die casting moulds wear out"]
    german = ["Die Katze und die Maus spielen", "Die Maus und die Katze schlafen", "Die Katze jagt die Maus"]
    labels = np.array([0, 0, 0, 1, 1, 1])
    words = distinctive_words(english + german, labels, 2)
    en, de = ([w for w, _ in ws] for ws in words)
    assert "die" in en and "casting" in en and "the" not in en
    assert "die" not in de and "und" not in de and {"katze", "maus"} <= set(de)


def test_a_word_of_one_long_document_does_not_name_its_topic():
    texts = ["river boat river boat", "river bank", "boat trip on the river zebra zebra zebra zebra zebra"]
    (words,) = distinctive_words(texts, np.zeros(3, dtype=np.int64), 1)
    assert "zebra" not in [w for w, _ in words]


def test_pca_projection_is_deterministic_and_spreads_the_clusters():
    x, truth = blobs([10, 10], dim=8)
    a, b = pca_2d(x), pca_2d(x)
    assert a.shape == (20, 2) and np.array_equal(a, b)
    coords, method = project_2d(x, "pca")
    assert method == "pca" and np.allclose(coords, a, atol=1e-5)
    # Two far-apart clusters separate along the first axis.
    assert ((coords[truth == 0, 0].max() < coords[truth == 1, 0].min())
            or (coords[truth == 1, 0].max() < coords[truth == 0, 0].min()))


def test_tsne_projection_when_installed():
    pytest.importorskip("openTSNE")
    x, _ = blobs([15, 16], dim=8)
    coords, method = project_2d(x, "tsne", seed=1)
    assert method == "tsne" and coords.shape == (31, 2) and np.all(np.isfinite(coords))
    again, _ = project_2d(x, "tsne", seed=1)
    assert np.allclose(coords, again)


def test_unknown_projection_is_refused():
    with pytest.raises(InvalidInputError, match="projection method"):
        project_2d(np.eye(3, dtype=np.float32), "mds")


def test_plot_writes_an_image(tmp_path):
    pytest.importorskip("matplotlib")
    x, truth = blobs([6, 7], dim=4)
    truth[0] = -1  # a document in no topic is drawn too (grey)
    path = plot_map(pca_2d(x), truth, ["rivers", "mountains"], tmp_path / "map.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("n", [3, 20, 21, 45])
def test_no_two_topics_share_a_colour(n):
    pytest.importorskip("matplotlib")
    colours = topic_colours(n)
    assert len(colours) == n and len({tuple(round(c, 4) for c in colour) for colour in colours}) == n


def test_topic_labels_are_placed_where_they_overlap_no_other():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    anchors = [(0.01 * i, 0.0) for i in range(25)]  # 25 topic centres nearly on top of each other
    boxes = place_labels(ax, anchors, [f"{i}: topic" for i in range(25)])
    plt.close(fig)
    assert len(boxes) == 25
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_labels_read_a_sample_from_every_topic_of_a_large_collection():
    from semsearch.corpus.topic_model import label_sample

    labels = np.repeat([0, 1, 2], [9000, 900, 30])
    picked = label_sample(labels, total=1000, least=50)
    counts = np.bincount(labels[picked], minlength=3)
    assert counts.tolist() == [9000 * 1000 // 9930 + 1, 91, 30]  # the same rate everywhere, small topics whole
    assert np.array_equal(picked, np.sort(picked)) and len(set(picked.tolist())) == len(picked)
    assert np.array_equal(label_sample(labels, total=1000, least=50), picked)  # seeded
    assert np.array_equal(label_sample(labels[:500]), np.arange(500))  # small collections: every text
