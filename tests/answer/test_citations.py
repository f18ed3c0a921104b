"""Citation checking: what the user reads is what was validated, streamed or not."""

from __future__ import annotations

import random

import pytest

from semsearch.answer import CitationFilter, check_citations
from semsearch.answer.citations import citation_numbers


@pytest.mark.parametrize(
    ("inside", "numbers"),
    [
        ("1", [1]), (" 2 ", [2]), ("1, 3", [1, 3]), ("1;2", [1, 2]), ("2-4", [2, 3, 4]), ("1 and 2", [1, 2]),
        ("Source 2", [2]), ("source 1, source 3", [1, 3]), ("#4", [4]), ("Passage 5", [5]),
        ("note", None), ("1a", None), ("see 2", None), ("", None), ("x, 1", None),
    ],
)
def test_citation_numbers_reads_the_usual_forms_and_nothing_else(inside, numbers):
    assert citation_numbers(inside) == numbers


def test_invalid_numbers_are_removed_and_reported():
    text, cited, removed = check_citations("Paris is the capital [9]. It is old [1][2, 7]. Rivers [3-4].", {1, 2, 3})
    assert text == "Paris is the capital. It is old [1][2]. Rivers [3]."
    assert cited == [1, 2, 3]
    assert removed == [9, 7, 4]


def test_brackets_that_are_not_citations_are_kept_as_written():
    text, cited, removed = check_citations("Use a[i] or [note] or 【2】, and [unclosed", {2})
    assert text == "Use a[i] or [note] or [2], and [unclosed"
    assert (cited, removed) == ([2], [])


def test_doubled_and_nested_brackets_are_read_as_the_citation_inside():
    assert check_citations("A [[43]] B [[1]] C [see [2]] D [[x]]", {1, 2}) == (
        "A B [1] C [see [2]] D [[x]]", [1, 2], [43])


def test_an_answer_without_any_citation_cites_nothing():
    assert check_citations("No sources here.", {1, 2}) == ("No sources here.", [], [])


def test_streamed_in_any_pieces_gives_exactly_the_checked_text():
    text = ("Apollo 11 landed in 1969 [1]. Armstrong walked first [2, 9]; Aldrin [7] followed [Source 2].  Done [x]. "
            "Echoed [[43]] and [[2]] and [a [1]] [[9]]")
    expected = check_citations(text, {1, 2})
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 25)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        checker = CitationFilter({1, 2})
        shown = "".join(checker.feed(p) for p in pieces) + checker.finish()
        assert (shown, checker.cited, checker.removed) == expected


def test_a_possible_citation_is_held_back_until_it_closes():
    checker = CitationFilter({1})
    assert checker.feed("It is true [") == "It is true"
    assert checker.feed("1") == ""
    assert checker.feed("] ok") == " [1] ok"
    # A bracket longer than any citation is shown without waiting for it to close.
    assert checker.feed(" [" + "x" * 60) == " [" + "x" * 60
