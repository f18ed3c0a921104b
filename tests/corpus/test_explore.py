"""similar, duplicates and topics on small real collections (the real MiniLM model), on both backends."""

from __future__ import annotations

import itertools

import pytest

from semsearch import Collection, InvalidInputError, UnknownDocumentError
from semsearch.corpus import assign_topics, duplicates, similar, topics

GROUPS = {
    "cooking": [
        "Whisk the eggs with sugar until pale, then fold in the sifted flour to make a light sponge cake batter.",
        "Simmer the tomatoes with garlic and basil for twenty minutes to make a rich pasta sauce.",
        "Knead the bread dough for ten minutes, let it rise in a warm place, then bake it until golden.",
        "Marinate the chicken in yoghurt and spices overnight before grilling it over charcoal.",
        "Caramelise the onions slowly in butter to make a sweet base for French onion soup.",
        "Roast the vegetables with olive oil, salt and rosemary in a hot oven until crisp at the edges.",
    ],
    "football": [
        "The striker scored twice in the second half and the home team won the cup final.",
        "The goalkeeper saved a penalty in the last minute to keep a clean sheet.",
        "The referee showed a red card to the defender after a dangerous tackle.",
        "The midfielder's long pass found the winger, who crossed for a headed goal.",
        "The club signed a young forward from its academy on a five-year contract.",
        "Fans sang in the stadium as the league leaders extended their unbeaten run.",
    ],
    "astronomy": [
        "The telescope captured light from a galaxy billions of light years away.",
        "Jupiter's moons orbit the giant planet and were first observed by Galileo.",
        "A supernova explosion marks the violent death of a massive star.",
        "Astronomers detected an exoplanet passing in front of its host star.",
        "The comet's icy tail points away from the Sun as it approaches the inner solar system.",
        "Black holes bend the light of stars behind them through gravitational lensing.",
    ],
}
TEXTS = [t for texts in GROUPS.values() for t in texts]
IDS = [f"{g}-{i}" for g, texts in GROUPS.items() for i in range(len(texts))]
METAS = [{"group": g, "copy": False} for g, texts in GROUPS.items() for _ in texts]
# Near-duplicates planted by the edits users make: case, punctuation, one changed word.
COPIES = {
    "cooking-0-upper": ("cooking-0", TEXTS[0].upper()),
    "football-3-nopunct": ("football-3", "The midfielders long pass found the winger who crossed for a headed goal"),
    "astronomy-2-word": ("astronomy-2", "A supernova explosion marks the violent death of a huge star."),
}

_names = itertools.count()


@pytest.fixture(scope="module", params=["local", "milvus"])
def make(request, tmp_path_factory, minilm_path):
    opened = []
    folder = tmp_path_factory.mktemp("explore")
    where = {"backend": "milvus", "uri": request.getfixturevalue("milvus_uri")} if request.param == "milvus" else {}

    def make(**kwargs):
        col = Collection(folder / f"c{next(_names)}", engine="torch", **where, **kwargs)
        opened.append(col)
        return col

    yield make
    for col in opened:
        if request.param == "milvus":
            col.drop()
        col.close()


def fill(col):
    col.add(TEXTS, ids=IDS, metadatas=METAS)
    col.add([t for _, t in COPIES.values()], ids=list(COPIES),
            metadatas=[{"group": o.split("-")[0], "copy": True} for o, _ in COPIES.values()])
    return col


@pytest.fixture(scope="module")
def filled(make):
    return fill(make())


def test_planted_duplicates_are_found_and_nothing_else(filled):
    groups = duplicates(filled)
    assert sorted(tuple(g.ids) for g in groups) == sorted((orig, copy) for copy, (orig, _) in COPIES.items())
    for g in groups:
        assert g.min_score >= 0.95 and len(g.pairs) == 1
        assert g.to_delete("first") == [g.ids[1]]  # the copy came later
        assert g.to_delete("newest") == [g.ids[0]]
    assert duplicates(filled, exact=False) == groups  # the approximate path agrees on a small collection


def test_duplicates_respect_the_filter_and_the_threshold(filled):
    assert duplicates(filled, where={"group": "football"})[0].ids == ["football-3", "football-3-nopunct"]
    assert len(duplicates(filled, where={"group": "football"})) == 1
    assert duplicates(filled, where={"copy": False}) == []
    with pytest.raises(InvalidInputError, match="threshold"):
        duplicates(filled, threshold=0)


def test_similar_finds_its_own_kind_and_leaves_itself_out(filled):
    hits = similar(filled, "cooking-1", k=5)
    assert len(hits) == 5 and "cooking-1" not in [h.id for h in hits]
    assert all(h.metadata["group"] == "cooking" for h in hits[:4])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert similar(filled, "astronomy-2", k=1)[0].id == "astronomy-2-word"  # its near-duplicate first
    assert similar(filled, "astronomy-2", k=1, query="chunks")[0].id == "astronomy-2-word"


def test_similar_applies_the_filter(filled):
    hits = similar(filled, "cooking-1", k=4, where={"group": "football"})
    assert len(hits) == 4 and {h.metadata["group"] for h in hits} == {"football"}


def test_similar_to_an_unknown_document_or_with_bad_k_is_a_clear_error(filled):
    with pytest.raises(UnknownDocumentError, match="no document with id 'nope'"):
        similar(filled, "nope")
    with pytest.raises(InvalidInputError, match="k must be"):
        similar(filled, "cooking-1", k=0)


def test_topics_recover_the_groups(filled):
    found = topics(filled, where={"copy": False})
    assert len(found) == 3 and sum(t.size for t in found) == len(TEXTS)
    by_group = {t.id: {i.split("-")[0] for i in t.ids} for t in found}
    assert sorted(len(g) for g in by_group.values()) == [1, 1, 1]
    assert {g for gs in by_group.values() for g in gs} == set(GROUPS)
    for t in found:
        assert t.words and "the" not in t.words and t.label
    assert [t.to_dict() for t in topics(filled, where={"copy": False})] == [t.to_dict() for t in found]  # deterministic
    assert len(topics(filled, n=2)) == 2


def test_assigned_topics_become_filters(make):
    col = fill(make())
    found = topics(col, n=3, where={"copy": False})
    changed = assign_topics(col, found)
    assert changed == len(TEXTS)
    target = found[0]
    hits = col.search("anything at all", k=30, where={"topic": target.id})
    assert sorted(h.id for h in hits) == sorted(target.ids)
    doc = col.get([target.ids[0]])[0]
    assert doc.metadata["topic_label"] == target.label and doc.metadata["copy"] is False  # merged, not replaced
    assert assign_topics(col, found) == 0  # nothing left to change
    assert sorted(sorted(g.ids) for g in duplicates(col)) == sorted(sorted((o, c)) for c, (o, _) in COPIES.items())


def test_assigning_topics_locally_keeps_the_documents_order(tmp_path, minilm_path):
    # In place on a local collection: "first"/"newest" still mean what they meant (Milvus
    # upserts, which makes the changed documents the newest until the engine can update metadata).
    with Collection(tmp_path / "order", engine="torch") as col:
        fill(col)
        before = [g.to_delete("first") for g in duplicates(col)]
        assign_topics(col, topics(col, n=3))
        assert [g.to_delete("first") for g in duplicates(col)] == before
        assert [d.id for d in col.get(where={"copy": False})] == IDS


def test_a_long_document_sharing_one_paragraph_is_not_a_duplicate(tmp_path, minilm_path):
    # Documents of several chunks compare as wholes (mean vectors), not by their best chunk pair.
    col = Collection(tmp_path / "long", chunk_size=32, chunk_overlap=0, engine="torch")
    a = "\n\n".join([GROUPS["cooking"][0], GROUPS["football"][0], GROUPS["astronomy"][0]])
    edited = a.replace("billions of", "many billions of")
    shares_one = "\n\n".join([GROUPS["cooking"][0], GROUPS["football"][5], GROUPS["astronomy"][5]])
    col.add([a, edited, shares_one], ids=["a", "a-edited", "shares-one"])
    assert [g.ids for g in duplicates(col)] == [["a", "a-edited"]]
    assert similar(col, "a", k=1)[0].id == "a-edited"
    col.close()


def test_similar_ranks_whole_documents_when_their_best_chunks_tie(tmp_path, minilm_path):
    # Every document opens with the same paragraph, so each one's best chunk matches the query
    # document's mean equally well (a tie that FAISS and the CPU used to break): the whole
    # documents must decide, and the score shown is their cosine, not a calibrated 1.000.
    import numpy as np

    from semsearch.corpus.reads import read_document_vectors

    col = Collection(tmp_path / "ties", chunk_size=32, chunk_overlap=0)
    shared = GROUPS["cooking"][0]
    a = "\n\n".join([shared, GROUPS["football"][0], GROUPS["astronomy"][0]])
    docs = {
        "a": a,
        "a-edited": a.replace("billions of", "many billions of"),
        "shares-one": "\n\n".join([shared, GROUPS["football"][5], GROUPS["astronomy"][5]]),
        "shares-one-too": "\n\n".join([shared, GROUPS["football"][2], GROUPS["astronomy"][4]]),
    }
    col.add(list(docs.values()), ids=list(docs))
    hits = similar(col, "a", k=3)
    assert hits[0].id == "a-edited"
    assert {h.id for h in hits[1:]} == {"shares-one", "shares-one-too"}

    def unit_mean(doc_id):
        m = read_document_vectors(col, doc_id).mean(axis=0)
        return m / np.linalg.norm(m)

    for hit in hits:
        whole = float(unit_mean("a") @ unit_mean(hit.id))
        assert hit.score == pytest.approx(whole, abs=1e-5)
        assert hit.scores["document"] == hit.score
    assert hits[0].score > hits[1].score + 0.05  # an edited copy is clearly closer than a shared paragraph
    assert hits[1].score < 0.95  # not the best chunk's near-1 cosine
    # "chunks" keeps the best-chunk ranking, its score the best chunk pair's cosine
    by_chunks = similar(col, "a", k=3, query="chunks")
    assert all(h.score == h.scores["dense"] for h in by_chunks)
    assert [h.score for h in by_chunks] == sorted((h.score for h in by_chunks), reverse=True)
    col.close()
