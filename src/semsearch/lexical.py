"""Lexical (BM25) retrieval: a tokenizer for any script, and FTS5 queries built from it.

Text is tokenized here in Python and handed to SQLite FTS5 as space-separated tokens (FTS5's
``ascii`` tokenizer then only splits on those spaces and keeps every non-ASCII character), so
the same rules apply to documents and queries, whatever the language:

- NFKC normalisation and Unicode case folding (``Straße`` -> ``strasse``).
- Words are runs of letters, digits and combining marks, so Devanagari or Thai vowel signs stay
  inside their word (SQLite's ``unicode61`` tokenizer splits words at them).
- Diacritics are removed from Latin and Greek letters only (``café`` matches ``cafe``); in
  other scripts marks are part of the spelling.
- Scripts written without spaces between words (Han, Kana, Hangul, Thai, Lao, Khmer, Myanmar,
  Tibetan) are indexed as overlapping character bigrams (grapheme clusters, so a Thai
  consonant keeps its vowel sign), the approach of Lucene's CJK analyzer: no dictionary, and
  a query matches any document sharing its bigrams.
- No stemming: it is right for some languages and wrong for others, and a wrong stemmer
  conflates words a user wants kept apart. Dense retrieval covers morphology in hybrid mode.

A query is a disjunction of its distinct tokens, each quoted, so characters that are syntax
to FTS5 (quotes, ``*``, ``:``, ``-``, parentheses, ``AND``/``OR``/``NOT``) are plain text.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import regex

#: Bumped whenever tokenization changes: collections indexed with another version rebuild
#: their lexical index when opened.
TOKENIZER_VERSION = "semsearch-words-bigrams-1"

WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")
_SEGMENTS = regex.compile(
    r"(?P<unspaced>(?:[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
    r"\p{Tibetan}\p{Bopomofo}\u30fc]\p{M}*)+)|(?P<spaced>(?:[^\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
    r"\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}\p{Bopomofo}\u30fc])+)"
)
_FOLDABLE = regex.compile(r"[\p{Latin}\p{Greek}]\p{Mn}")
_GRAPHEME = regex.compile(r"\X")


def tokenize(text: str) -> list[str]:
    """The lexical tokens of a text, in order (with repeats)."""
    tokens: list[str] = []
    for word in WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        if word.isascii():
            # ASCII letters and digits are one spaced segment with nothing to fold: the same
            # token as below, without two regex passes (5x faster on English text, measured).
            tokens.append(word)
            continue
        for seg in _SEGMENTS.finditer(word):
            if seg.group("spaced"):
                tokens.append(_fold(seg.group("spaced")))
            else:
                units = _GRAPHEME.findall(seg.group("unspaced"))
                if len(units) == 1:
                    tokens.append(units[0])
                else:
                    tokens.extend(units[i] + units[i + 1] for i in range(len(units) - 1))
    return tokens


@lru_cache(maxsize=65536)
def _fold(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    if not _FOLDABLE.search(decomposed):
        return word
    # Drop only the marks that follow a Latin or Greek letter (or another such mark).
    out: list[str] = []
    strip = False
    for ch in decomposed:
        if unicodedata.category(ch) == "Mn":
            if strip:
                continue
        else:
            strip = bool(regex.match(r"[\p{Latin}\p{Greek}]", ch))
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def index_text(text: str) -> str:
    """What is stored in the FTS5 table for a chunk: its tokens separated by spaces."""
    return " ".join(tokenize(text))


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression finding chunks with any of the query's tokens (None if it has none)."""
    seen: dict[str, None] = {}
    for token in tokenize(query):
        seen.setdefault(token, None)
    if not seen:
        return None
    # Tokens hold only letters, digits and marks, so quoting makes every one a plain term.
    return " OR ".join(f'"{t}"' for t in seen)
