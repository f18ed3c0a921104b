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


def manual(n: int = 12) -> tuple[str, list[tuple[int, int]]]:
    """A document of n one-sentence chunks separated by blank lines, and its chunk spans."""
    sentences = [f"Sentence number {i} of the manual." for i in range(n)]
    document = "\n\n".join(sentences)
    spans, at = [], 0
    for sentence in sentences:
        spans.append((at, at + len(sentence)))
        at += len(sentence) + 2
    return document, spans


def chunk_hit(id: str, document: str, spans, position: int, score: float = 0.5) -> Hit:
    start, end = spans[position]
    return Hit(id=id, score=score, text=document[start:end], metadata={}, source=f"{id}.txt", chunk=position,
               start=start, end=end)


def test_a_passage_grows_by_whole_neighbouring_chunks_within_budget():
    document, spans = manual()
    h = chunk_hit("manual", document, spans, 6)
    tight = assemble_context([h], budget_tokens=HEADER_TOKENS + 8, count_tokens=words, documents={"manual": document},
                             spans={"manual": spans})
    assert tight[0].text == h.text  # no room: the chunk alone
    # Room for two more chunks (6 words each): one on each side, whole, in document order.
    grown = assemble_context([h], budget_tokens=HEADER_TOKENS + 6 * 3, count_tokens=words,
                             documents={"manual": document}, spans={"manual": spans})
    p = grown[0]
    assert p.text == document[spans[5][0]:spans[7][1]]
    assert document[p.start:p.end] == p.text
    everything = assemble_context([h], budget_tokens=1000, count_tokens=words, documents={"manual": document},
                                  spans={"manual": spans})
    assert everything[0].text == document  # up to the budget, not one chunk's width


def test_a_title_only_hit_grows_into_the_text_it_heads():
    # The passage is the chunks around the hit, not the hit's width: a short best chunk brings its text.
    document = "How People Get Rich Now\n\n" + " ".join(f"Founders build wealth step {i}." for i in range(40))
    spans = [(0, 23), (25, len(document))]
    h = chunk_hit("essay", document, spans, 0)
    (p,) = assemble_context([h], budget_tokens=400, count_tokens=words, documents={"essay": document},
                            spans={"essay": spans})
    assert p.text == document


def test_duplicates_are_judged_on_the_passage_not_the_best_chunk():
    # Two documents whose best chunks are the same title, with different text under it: both are passages.
    a = "Great Hackers\n\nGreat hackers choose interesting problems over money."
    b = "Great Hackers\n\nThe best programmers prefer to work in small teams with good tools."
    hits = [chunk_hit("a", a, [(0, 13), (15, len(a))], 0), chunk_hit("b", b, [(0, 13), (15, len(b))], 0)]
    passages = assemble_context(hits, budget_tokens=1000, count_tokens=words, documents={"a": a, "b": b},
                                spans={"a": [(0, 13), (15, len(a))], "b": [(0, 13), (15, len(b))]})
    assert [p.text for p in passages] == [a, b]


def test_other_relevant_chunks_of_a_document_become_passages_of_their_own():
    document, spans = manual()
    h = chunk_hit("manual", document, spans, 2)
    passages = assemble_context([h], budget_tokens=4 * (HEADER_TOKENS + 6) + 2, count_tokens=words,
                                documents={"manual": document}, spans={"manual": spans}, extra=[(h, 9)],
                                neighbours=False)
    assert [(p.start, p.end) for p in passages] == [spans[2], spans[9]]
    assert all(document[p.start:p.end] == p.text for p in passages)


def test_two_chunks_of_one_document_that_touch_become_one_passage():
    document = "alpha beta gamma delta. epsilon zeta eta theta. iota kappa lambda mu."
    first = "alpha beta gamma delta."
    second = "epsilon zeta eta theta."
    hits = [hit("doc", second, start=document.index(second)), hit("doc", first, start=0)]
    passages = assemble_context(hits, budget_tokens=1000, count_tokens=words, documents={"doc": document},
                                neighbours=False)
    assert len(passages) == 1
    assert passages[0].text == document[: document.index(second) + len(second)]
