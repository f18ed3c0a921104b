"""Context assembly: best first, within budget, duplicates dropped, neighbours merged."""

from __future__ import annotations

from semsearch import Hit
from semsearch.answer import assemble_context
from semsearch.answer.context import HEADER_TOKENS


def words(texts):
    return [len(t.split()) for t in texts]


def hit(id: str, text: str, start: int = 0, score: float = 0.5) -> Hit:
    return Hit(id=id, score=score, text=text, metadata={}, source=f"{id}.txt", start=start, end=start + len(text))


def test_passages_are_numbered_best_first_and_fit_the_budget():
    hits = [hit(f"d{i}", " ".join(f"w{i}x{j}" for j in range(20))) for i in range(6)]
    budget = 3 * (20 + HEADER_TOKENS) + 5
    passages = assemble_context(hits, budget_tokens=budget, count_tokens=words)
    assert [p.n for p in passages] == [1, 2, 3]
    assert [p.id for p in passages] == ["d0", "d1", "d2"]
    assert sum(p.tokens + HEADER_TOKENS for p in passages) <= budget
    assert all(p.hit is h for p, h in zip(passages, hits))


def test_a_long_passage_is_skipped_for_a_shorter_one_and_the_best_is_cut_to_fit():
    long = hit("long", " ".join(f"a{j}" for j in range(100)))
    short = hit("short", "tiny passage here")
    passages = assemble_context([hit("best", "b " * 10), long, short], budget_tokens=2 * HEADER_TOKENS + 20,
                                count_tokens=words)
    assert [p.id for p in passages] == ["best", "short"]
    only = assemble_context([long], budget_tokens=HEADER_TOKENS + 30, count_tokens=words)
    assert len(only) == 1 and only[0].tokens <= 30 and long.text.startswith(only[0].text)


def test_duplicates_and_contained_passages_are_dropped():
    text = "The Eiffel Tower is 330 metres tall and stands in Paris on the Champ de Mars since 1889."
    hits = [hit("a", text), hit("b", text.upper()), hit("c", "stands in Paris on the Champ de Mars"),
            hit("d", "A different passage about the Louvre museum.")]
    passages = assemble_context(hits, budget_tokens=1000, count_tokens=words)
    assert [p.id for p in passages] == ["a", "d"]


def test_neighbouring_text_is_merged_around_the_best_chunk_within_budget():
    sentences = [f"Sentence number {i} of the manual." for i in range(12)]
    document = " ".join(sentences)
    core = sentences[6]
    start = document.index(core)
    h = hit("manual", core, start=start)
    tight = assemble_context([h], budget_tokens=HEADER_TOKENS + 8, count_tokens=words, documents={"manual": document})
    assert tight[0].text == core  # no room: the chunk alone
    grown = assemble_context([h], budget_tokens=200, count_tokens=words, documents={"manual": document})
    p = grown[0]
    assert core in p.text and len(p.text) > len(core) * 2
    assert document[p.start:p.end] == p.text
    # About one chunk's width of neighbours on each side, cut at sentence boundaries.
    assert p.text.startswith("Sentence number") and p.text.endswith("manual.")
    assert len(p.text) <= 3 * len(core) + 2


def test_two_chunks_of_one_document_that_touch_become_one_passage():
    document = "alpha beta gamma delta. epsilon zeta eta theta. iota kappa lambda mu."
    first = "alpha beta gamma delta."
    second = "epsilon zeta eta theta."
    hits = [hit("doc", second, start=document.index(second)), hit("doc", first, start=0)]
    passages = assemble_context(hits, budget_tokens=1000, count_tokens=words, documents={"doc": document},
                                neighbours=False)
    assert len(passages) == 1
    assert passages[0].text == document[: document.index(second) + len(second)]
