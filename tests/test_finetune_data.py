"""Fine-tuning data without a model: the held-out split, pseudo-queries, negatives padding."""

from __future__ import annotations

import random

import pytest

from semsearch.errors import InvalidInputError
from semsearch.finetune.data import QueryGroup, split_heldout
from semsearch.finetune.negatives import pad_negatives
from semsearch.finetune.pseudo_queries import SourceDocument, inverse_cloze, pseudo_query_groups, split_sentences


def groups(n: int) -> list[QueryGroup]:
    return [QueryGroup(f"query {i}", {f"passage {i}": 1, f"passage {i} again": 2}, negatives=[f"wrong {i}"])
            for i in range(n)]


def test_held_out_queries_never_reach_training_or_the_negatives_pool():
    data = split_heldout(groups(50), fraction=0.2, seed=1, eval_corpus_size=60)
    held = set(data.heldout.queries.values())
    assert len(held) == 10
    assert not held & {row[0] for row in data.train}
    held_passages = {data.heldout.corpus[d] for q in data.heldout.qrels.values() for d in q}
    assert not held_passages & set(data.corpus)  # mined negatives come from data.corpus
    assert not held_passages & {text for row in data.train for text in row[1:]}
    # Both positives of a held-out query are judged, with their grades.
    assert sorted(g for q in data.heldout.qrels.values() for g in q.values()) == [1] * 10 + [2] * 10
    assert len(data.heldout.corpus) == 60  # its 20 answers + 40 distractors
    assert len(data.train) == 80 and all(len(row) == 3 for row in data.train)


def test_the_split_is_reproducible_and_bounded():
    a = split_heldout(groups(30), fraction=0.1, seed=7, eval_corpus_size=10)
    b = split_heldout(groups(30), fraction=0.1, seed=7, eval_corpus_size=10)
    assert a.to_json() == b.to_json()
    data = split_heldout(groups(5000), fraction=0.5, seed=1, eval_corpus_size=10, max_heldout=100)
    assert len(data.heldout.queries) == 100
    assert len(split_heldout(groups(30), fraction=0.1, seed=1, eval_corpus_size=10, max_pairs=7).train) == 7
    with pytest.raises(InvalidInputError, match="only 2 distinct queries"):
        split_heldout(groups(2), fraction=0.1, seed=1, eval_corpus_size=10)


def test_inverse_cloze_judges_the_passage_without_its_sentence():
    passage = ("The harbor opens at dawn every day. Fishermen unload their catch on the old stone pier. "
               "Tourists arrive later in the morning for the market.")
    rng = random.Random(0)
    seen_kept = False
    for _ in range(60):
        query, trained, judged = inverse_cloze(passage, rng)
        assert query in split_sentences(passage)
        assert query not in judged and len(split_sentences(judged)) == 2
        seen_kept |= query in trained
    assert seen_kept  # sometimes (10%) the sentence stays in the trained passage
    assert inverse_cloze("Only one sentence here, nothing else to find.", rng) is None


def test_pseudo_queries_use_titles_and_sentences_and_remember_their_document():
    docs = [
        SourceDocument("# Resetting the router\nHold the button for ten seconds. The lights blink twice when it "
                       "restarts. Wait a minute.", "Resetting the router"),
        SourceDocument("No title here. Just a few plain sentences about nothing in particular. "
                       "And one more to be sure."),
        SourceDocument("Short."),
    ]
    made, passages, counts = pseudo_query_groups(docs, lambda texts: [[t] if t else [] for t in texts], seed=0)
    assert counts == {"title": 1, "inverse_cloze": 2, "skipped_passages": 1}
    title = next(g for g in made if g.query == "Resetting the router")
    assert list(title.positives) == [passages[0]] and not passages[0].startswith("#")
    assert {g.source for g in made} == {"d0", "d1"}


def test_rows_are_padded_to_one_width_without_reusing_the_positive():
    rows, counts = pad_negatives([["q1", "p1"], ["q2", "p2", "n2"]], ["p1", "p2", "x", "y"], {"random_fill": 0})
    assert all(len(r) == 3 for r in rows) and rows[1] == ["q2", "p2", "n2"]
    assert rows[0][2] != "p1" and counts["random_fill"] == 1
    rows, _ = pad_negatives([["q1", "p1"], ["q2", "p2", "n2"]], ["p1"], {"random_fill": 0})
    assert rows == [["q1", "p1"], ["q2", "p2"]]  # nothing to draw from: pairs only
