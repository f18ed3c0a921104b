"""Lexical BM25 search: any-script tokenization, FTS5 kept in the store's transactions, migration."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.errors import DuplicateIdError
from semsearch.lexical import match_expression, tokenize


def test_tokenizer_handles_scripts_without_spaces_and_with_marks():
    assert tokenize("Café ÉTÉ Straße") == ["cafe", "ete", "strasse"]
    assert tokenize("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert tokenize("熊") == ["熊"]
    assert tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs stay inside the word
    assert tokenize("สวัสดี") == ["สวั", "วัส", "สดี"]  # grapheme bigrams keep Thai vowels on their consonant
    assert tokenize("Ёлка й") == ["ёлка", "й"]  # Cyrillic letters with marks are distinct letters, kept
    assert tokenize("naïve résumé") == tokenize("naive resume")



@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80), st.text(max_size=20))
def test_ascii_words_are_their_lowercase_letter_and_digit_runs(ascii_text, other):
    # The ASCII fast path must give what the full rules give: each run of letters and digits, lowercased.
    import re

    assert tokenize(ascii_text) == re.findall(r"[a-z0-9]+", ascii_text.lower())
    mixed = ascii_text + " " + other
    assert tokenize(mixed)[: len(tokenize(ascii_text + " "))] == tokenize(ascii_text + " ")

def test_queries_with_fts_syntax_are_plain_text():
    assert match_expression('C++ "AND" (foo:bar) -x* NOT') == '"c" OR "and" OR "foo" OR "bar" OR "x" OR "not"'
    assert match_expression("?!* ()") is None


@pytest.fixture()
def lexical_col(tmp_path, tiny_model_dir):
    from semsearch import Collection

    col = Collection(tmp_path / "col", model=str(tiny_model_dir))
    docs = {
        "bolt": "Part XK-4471: stainless steel hex bolt, 8 mm.",
        "screw": "Part XK-4472: brass wood screw, 4 mm.",
        "ja": "東京スカイツリーの展望台からは富士山が見えることがあります。",
        "th": "ต้มยำกุ้งเป็นอาหารไทยที่มีรสเปรี้ยวและเผ็ด",
        "hi": "ताजमहल आगरा में यमुना नदी के किनारे स्थित है।",
        "de": "Die Kartoffelsuppe wird mit Majoran gekocht.",
    }
    rng = np.random.default_rng(0)
    col.add(list(docs.values()), ids=list(docs), embeddings=rng.normal(size=(len(docs), col.dimension)))
    yield col
    col.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [("XK-4471", "bolt"), ("xk 4472 screw", "screw"), ("富士山 展望台", "ja"), ("ต้มยำกุ้ง", "th"),
     ("ताजमहल कहाँ है", "hi"), ("kartoffelsuppe", "de")],
)
def test_lexical_search_finds_words_in_any_script(lexical_col, query, expected):
    hits = lexical_col.search(query, k=3, mode="lexical")
    assert hits[0].id == expected
    assert hits[0].scores["lexical"] > 0 and hits[0].scores["lexical_rank"] == 1
    assert "dense" not in hits[0].scores


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(alphabet=st.sampled_from(list('"*:-()^+ANDORNTaxk4471{}[]\\\'.,NEAR/ 東')), min_size=1,
                     max_size=30))
def test_any_query_text_searches_without_error(lexical_col, query):
    if not query.strip():
        return
    hits = lexical_col.search(query, k=3, mode="lexical")
    assert all(h.id in {"bolt", "screw", "ja", "th", "hi", "de"} for h in hits)


def _fts_rows(col) -> dict[int, str]:
    return dict(col.engine.store.con.execute("SELECT rowid, tokens FROM chunks_fts"))


def test_lexical_index_follows_every_write(lexical_col):
    col = lexical_col
    rng = np.random.default_rng(1)
    col.upsert(["Part XK-9999: a nylon washer."], ids=["bolt"], embeddings=rng.normal(size=(1, col.dimension)))
    assert col.search("4471 stainless", k=5, mode="lexical") == []
    assert col.search("XK-9999", k=1, mode="lexical")[0].id == "bolt"
    col.delete(["screw"])
    assert col.search("brass", k=5, mode="lexical") == []
    chunk_ids = {r[0] for r in col.engine.store.con.execute("SELECT rowid FROM chunks")}
    assert set(_fts_rows(col)) == chunk_ids
    # A write that fails mid-way leaves neither chunks nor lexical rows behind.
    with pytest.raises(DuplicateIdError):
        col.add(["Part ZZ-1234 ok", "second"], ids=["new", "bolt"], embeddings=rng.normal(size=(2, col.dimension)))
    assert col.search("ZZ-1234", k=1, mode="lexical") == [] and set(_fts_rows(col)) == chunk_ids


def test_long_documents_are_indexed_per_chunk(tmp_path, tiny_model_dir):
    from semsearch import Collection

    with Collection(tmp_path / "c", model=str(tiny_model_dir), chunk_size=16, chunk_overlap=0) as col:
        text = " ".join(f"word{i}" for i in range(200)) + " needle"
        col.add([text], ids=["long"])
        hit = col.search("needle", k=1, mode="lexical")[0]
        assert hit.id == "long" and "needle" in hit.text and hit.start > 0


def test_a_format_1_collection_gets_its_lexical_index_on_open(tmp_path, tiny_model_dir):
    from semsearch import Collection

    path = tmp_path / "old"
    with Collection(path, model=str(tiny_model_dir)) as col:
        col.add(["alpha bravo", "charlie delta"], ids=["a", "c"], embeddings=np.eye(2, col.dimension) + 0.1)
    # Make it look like format 1: no FTS table, no trigger, no tokenizer in the manifest.
    con = sqlite3.connect(path / "collection.sqlite3")
    con.executescript(
        "DROP TRIGGER chunks_removed_fts; DROP TABLE chunks_fts; "
        "UPDATE manifest SET value = '1' WHERE key = 'format_version'; DELETE FROM manifest WHERE key = "
        "'lexical_tokenizer';"
    )
    con.close()
    with Collection(path) as col:
        assert col.manifest["format_version"] == 3
        assert col.search("charlie", k=1, mode="lexical")[0].id == "c"
        col.delete(["c"])
        assert col.search("charlie", k=1, mode="lexical") == []
    con = sqlite3.connect(path / "collection.sqlite3")
    assert json.loads(con.execute("SELECT value FROM manifest WHERE key='format_version'").fetchone()[0]) == 3
    con.close()
