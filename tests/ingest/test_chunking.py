from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.errors import InvalidInputError
from semsearch.ingest import MIN_CHUNK_SIZE, Chunk, Chunker

SENTENCES = [
    f"Sentence number {i} talks about {topic} in a few plain words."
    for i, topic in enumerate(["rivers", "mountains", "cities", "trains", "bread", "music"] * 8)
]
LONG_TEXT = " ".join(SENTENCES)


def n_tokens(tokenizer, text: str) -> int:
    # tokenize() is transformers' own path, independent of the Chunker's copied backend.
    return len(tokenizer.tokenize(text))


def check_invariants(tokenizer, chunker: Chunker, text: str, chunks: list[Chunk]) -> None:
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text
        assert n_tokens(tokenizer, chunk.text) <= chunker.chunk_size
    # In order, and together they cover every non-whitespace character.
    assert all(a.start < b.start and a.end < b.end for a, b in zip(chunks, chunks[1:]))
    assert not text[: chunks[0].start].strip() if chunks else not text.strip()
    if chunks:
        assert not text[chunks[-1].end :].strip()
    for a, b in zip(chunks, chunks[1:]):
        assert b.start <= a.end or not text[a.end : b.start].strip()


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "overlap", "pattern"),
    [
        (MIN_CHUNK_SIZE - 1, 0, "at least 16"),
        (0, 0, "at least"),
        (True, 0, "at least"),
        (64, -1, "from 0 to 63"),
        (64, 64, "from 0 to 63"),
        (64, 1.5, "from 0 to 63"),
    ],
)
def test_invalid_sizes(tokenizer, size, overlap, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        Chunker(tokenizer, size, overlap)


def test_slow_or_unknown_tokenizer_is_rejected():
    with pytest.raises(InvalidInputError, match="not a fast Hugging Face tokenizer"):
        Chunker(object(), 64, 0)


def test_accepts_backend_tokenizer_and_leaves_callers_tokenizer_alone(tokenizer):
    before = tokenizer.backend_tokenizer.truncation
    chunker = Chunker(tokenizer.backend_tokenizer, 64, 8)
    assert chunker.split("short text") == [Chunk("short text", 0, 10, 0)]
    assert tokenizer.backend_tokenizer.truncation == before


# --- long texts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "overlap"), [(16, 0), (32, 8), (64, 16), (128, 32)])
def test_long_text_chunks_respect_size_and_cover_text(tokenizer, size, overlap):
    chunker = Chunker(tokenizer, size, overlap)
    chunks = chunker.split(LONG_TEXT)
    assert len(chunks) > 1
    check_invariants(tokenizer, chunker, LONG_TEXT, chunks)


def test_consecutive_chunks_overlap_within_budget(tokenizer):
    chunker = Chunker(tokenizer, 64, 24)
    chunks = chunker.split(LONG_TEXT)
    assert len(chunks) >= 5
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks should share text"
        shared = LONG_TEXT[b.start : a.end]
        assert 0 < n_tokens(tokenizer, shared) <= 24


def test_no_overlap_when_overlap_is_zero(tokenizer):
    chunks = Chunker(tokenizer, 64, 0).split(LONG_TEXT)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start >= a.end


def test_chunks_end_at_sentence_boundaries_when_possible(tokenizer):
    # Each sentence is ~14 tokens, so a 40-token budget could cut mid-sentence; it must not.
    chunks = Chunker(tokenizer, 40, 0).split(LONG_TEXT)
    assert len(chunks) > 5
    assert all(chunk.text.endswith("words.") for chunk in chunks)
    assert all(chunk.text.startswith("Sentence number") for chunk in chunks)


def test_paragraph_boundaries_preferred_over_sentences(tokenizer):
    first = " ".join(SENTENCES[:2])
    second = " ".join(SENTENCES[2:4])
    text = f"{first}\n\n{second}"
    chunks = Chunker(tokenizer, 40, 0).split(text)
    assert [c.text for c in chunks] == [first, second]


def test_overlong_word_is_still_bounded(tokenizer):
    text = "x" * 3000 + " " + "naïve café 東京 😀 " * 200
    chunker = Chunker(tokenizer, 32, 4)
    check_invariants(tokenizer, chunker, text, chunker.split(text))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(["word", "émigré", "東京", "😀", ".", "!", ",", " ", " ", "\n", "\n\n",
                         "supercalifragilistic", "Mr.", "3.14", "\t"]),
        max_size=400,
    ).map("".join)
)
def test_random_texts_keep_invariants(tokenizer, text):
    chunker = Chunker(tokenizer, 16, 4)
    check_invariants(tokenizer, chunker, text, chunker.split(text))


# --- fast path and edge cases -----------------------------------------------------------------


class ExplodingSplitter:
    def chunk_all_indices(self, texts):
        raise AssertionError("the splitter must not run for texts that fit")


def test_short_texts_take_the_fast_path(tokenizer):
    chunker = Chunker(tokenizer, 64, 8)
    chunker._splitter = ExplodingSplitter()
    texts = ["Short passage.", "  padded text \n", " ".join(["word"] * 64)]
    assert n_tokens(tokenizer, texts[2]) == 64  # exactly chunk_size still fits
    result = chunker.split_many(texts)
    assert result == [
        [Chunk("Short passage.", 0, 14, 0)],
        [Chunk("padded text", 2, 13, 0)],
        [Chunk(texts[2], 0, len(texts[2]), 0)],
    ]


def test_blank_texts_give_no_chunks_and_order_is_kept(tokenizer):
    chunker = Chunker(tokenizer, 32, 4)
    result = chunker.split_many(["", "   \n\t", "one two", LONG_TEXT, "three"])
    assert result[0] == [] and result[1] == []
    assert result[2] == [Chunk("one two", 0, 7, 0)]
    assert len(result[3]) > 1
    assert result[4] == [Chunk("three", 0, 5, 0)]
    assert chunker.split(LONG_TEXT) == result[3]


def test_count_tokens_has_no_truncation_or_special_tokens(tokenizer):
    chunker = Chunker(tokenizer, 32, 0)
    assert chunker.count_tokens(["hello world", LONG_TEXT]) == [
        2,
        n_tokens(tokenizer, LONG_TEXT),
    ]
    assert n_tokens(tokenizer, LONG_TEXT) > 512


def test_split_many_does_not_run_the_splitter_on_texts_that_fit(tokenizer):
    # Short passages (most corpora) must take the one-batch-tokenize fast path.
    chunker = Chunker(tokenizer, 64, 8)
    calls = []
    real = chunker._splitter

    class Spy:
        def chunk_all_indices(self, texts):
            calls.append(list(texts))
            return real.chunk_all_indices(texts)

    chunker._splitter = Spy()
    short = [f"passage number {i} about the weather today." for i in range(200)]
    result = chunker.split_many(short + [LONG_TEXT])
    assert [len(r) for r in result[:200]] == [1] * 200
    assert calls == [[LONG_TEXT]]


# --- headings stay with the text they head (issue 26) -------------------------------------------

ESSAY_SENTENCES = [f"Sentence {i} explains how founders create wealth by making things people want."
                   for i in range(22)]
LONG_PARAGRAPH = " ".join(ESSAY_SENTENCES)  # ~330 tokens: longer than one 254-token chunk


def headings_alone_or_last(chunks: list[Chunk], headings: set[str]) -> list[str]:
    """Chunks made of headings only, or ending with one (a heading heads what follows it)."""
    bad = []
    for chunk in chunks:
        lines = [line.strip() for line in chunk.text.split("\n") if line.strip()]
        if all(line in headings for line in lines) or lines[-1] in headings:
            bad.append(chunk.text)
    return bad


def test_a_markdown_title_and_date_are_kept_with_the_text_they_head(tokenizer):
    text = (f"# How People Get Rich Now\n\nApril 2021\n\n{LONG_PARAGRAPH}\n\n{LONG_PARAGRAPH}\n\n"
            f"## The second part\n\n{LONG_PARAGRAPH}")
    chunker = Chunker(tokenizer, 254, 31)
    chunks = chunker.split(text)
    check_invariants(tokenizer, chunker, text, chunks)
    headings = {"# How People Get Rich Now", "April 2021", "## The second part"}
    assert headings_alone_or_last(chunks, headings) == []
    assert chunks[0].text.startswith("# How People Get Rich Now\n\nApril 2021\n\nSentence 0 explains")
    second = next(c for c in chunks if "## The second part" in c.text)
    assert second.text.startswith("## The second part\n\nSentence 0 explains")


@pytest.mark.parametrize("title", ["Great Hackers", "Ideas for Startups\nOctober 2005"])
def test_a_title_prepended_to_a_record_starts_its_first_chunk(tokenizer, tmp_path, title):
    from semsearch.ingest import load_file

    path = tmp_path / "essays.jsonl"
    import json

    path.write_text(json.dumps({"id": "e1", "title": title, "text": LONG_PARAGRAPH + " " + LONG_PARAGRAPH}) + "\n")
    (record,) = load_file(path)
    chunker = Chunker(tokenizer, 254, 31)
    chunks = chunker.split(record.text)
    check_invariants(tokenizer, chunker, record.text, chunks)
    assert chunks[0].text.startswith(f"{title}\nSentence 0 explains")
    assert headings_alone_or_last(chunks, set(title.split("\n"))) == []


def test_html_headings_are_kept_with_their_paragraphs(tokenizer, tmp_path):
    from semsearch.ingest import load_file

    path = tmp_path / "page.html"
    path.write_text(f"<html><head><title>Startup Wealth</title></head><body><h1>Startup Wealth</h1>"
                    f"<p>{LONG_PARAGRAPH}</p><h2>Where it comes from</h2><p>{LONG_PARAGRAPH}</p></body></html>")
    (record,) = load_file(path)
    chunker = Chunker(tokenizer, 254, 31)
    chunks = chunker.split(record.text)
    check_invariants(tokenizer, chunker, record.text, chunks)
    assert headings_alone_or_last(chunks, {"Startup Wealth", "Where it comes from"}) == []
    assert any(c.text.startswith("Where it comes from\n\nSentence 0") for c in chunks)


def test_short_sections_share_a_chunk_and_a_long_one_starts_with_its_heading(tokenizer):
    text = (f"# FAQ\n\n## Refunds\n\nRefunds take five days.\n\n## Delivery\n\nWe ship on Mondays.\n\n"
            f"## Warranty\n\n{LONG_PARAGRAPH}")
    chunker = Chunker(tokenizer, 254, 31)
    chunks = chunker.split(text)
    check_invariants(tokenizer, chunker, text, chunks)
    assert chunks[0].text == "# FAQ\n\n## Refunds\n\nRefunds take five days.\n\n## Delivery\n\nWe ship on Mondays."
    assert chunks[1].text.startswith("## Warranty\n\nSentence 0 explains")


def test_headings_inside_code_and_lines_that_read_as_sentences_do_not_cut(tokenizer):
    text = f"{LONG_PARAGRAPH}\n\n```\n# not a heading\n```\n\nA line that ends like a sentence.\n\n{LONG_PARAGRAPH}"
    chunker = Chunker(tokenizer, 254, 31)
    from semsearch.ingest.headings import sections

    assert len(sections(text)) == 1
    check_invariants(tokenizer, chunker, text, chunker.split(text))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["# Title", "## Part two", "Short Heading", "March 2020"]),
                          st.integers(min_value=0, max_value=30)), min_size=1, max_size=6))
def test_random_headed_documents_never_leave_a_heading_alone(tokenizer, parts):
    blocks = []
    for heading, sentences in parts:
        blocks.append(heading)
        if sentences:
            blocks.append(" ".join(ESSAY_SENTENCES[:sentences] if sentences <= 22 else ESSAY_SENTENCES * 2))
    blocks.append(LONG_PARAGRAPH)  # text after the last heading
    text = "\n\n".join(blocks)
    chunker = Chunker(tokenizer, 64, 8)
    chunks = chunker.split(text)
    check_invariants(tokenizer, chunker, text, chunks)
    assert headings_alone_or_last(chunks, {"# Title", "## Part two", "Short Heading", "March 2020"}) == []
