"""Fusing a dense and a lexical candidate list into one ranking.

- :func:`rrf`: reciprocal rank fusion, ``sum 1 / (k + rank)`` (Cormack et al. 2009).
- :func:`weighted`: min-max normalise each list's scores to [0, 1], then
  ``alpha * dense + (1 - alpha) * lexical`` (a document missing from a list gets 0 there).
- :func:`adaptive` (the default): weighted fusion whose dense weight is chosen per query
  from the evidence that each retriever can answer it: how much of the query the embedding
  model's vocabulary covers (dense) and how much of the query's information, idf-weighted,
  BM25's best hit actually contains (lexical). See :func:`dense_weight`.

Why this rule (bench/RESULTS.md, "Retrieval quality (issue 3)", has the table of every rule
tried on ten judged sets): fixed fusions fail somewhere. RRF and min-max 0.7 collapse when
the model cannot read the language (dense is noise) or the query is a part number; a fixed
lexical share drags paraphrased questions (FAQ-style) down because BM25 always returns
*something* and min-max makes its best hit look perfect. Coverage alone fixed the first
failure; moving BM25's share to dense when its best hit matches little of the query fixes the second
without changing the cases where BM25 matched the query's rare words (entity names,
identifiers, msmarco), where both retrievers keep their weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..types import Candidate


def rrf(dense: Sequence[Candidate], lexical: Sequence[Candidate], k: float = 60.0) -> dict[str, float]:
    """Reciprocal rank fusion scores by document id."""
    out: dict[str, float] = {}
    for ranked in (dense, lexical):
        for rank, c in enumerate(ranked, 1):
            out[c.doc_id] = out.get(c.doc_id, 0.0) + 1.0 / (k + rank)
    return out


def minmax(cands: Sequence[Candidate]) -> dict[str, float]:
    """Scores rescaled so the pool's best is 1 and its worst 0 (all 1 when they are equal)."""
    if not cands:
        return {}
    scores = np.array([c.score for c in cands], dtype=np.float64)
    lo, hi = float(scores.min()), float(scores.max())
    span = hi - lo
    return {c.doc_id: (1.0 if span <= 0 else (c.score - lo) / span) for c in cands}


def weighted(dense: Sequence[Candidate], lexical: Sequence[Candidate], alpha: float) -> dict[str, float]:
    """Convex combination of min-max normalised scores, ``alpha`` the dense weight."""
    d, lx = minmax(dense), minmax(lexical)
    return {doc: alpha * d.get(doc, 0.0) + (1 - alpha) * lx.get(doc, 0.0) for doc in d.keys() | lx.keys()}


def standout(cands: Sequence[Candidate]) -> float:
    """How far the best score stands above the rest of its pool, in standard deviations."""
    if len(cands) < 3:
        return 0.0
    scores = np.array([c.score for c in cands], dtype=np.float64)
    rest = scores[1:]
    sd = float(rest.std())
    return 0.0 if sd <= 1e-12 else float((scores[0] - rest.mean()) / sd)


def vocabulary_coverage(text: str, tokenizer: object) -> float:
    """The share of the query the embedding model's vocabulary knows, in [0, 1].

    A WordPiece/BPE tokenizer maps text it was not trained on to unknown tokens or shatters
    its words into pieces of one or two characters, and then the model's embedding of the
    query carries little meaning. A word kept whole is known; a word split into pieces is
    known in proportion to how long its pieces are (English words average 4-6 characters a
    piece; Cyrillic, Devanagari, Han or made-up words 1-2); a word with an unknown token is
    not known. The result is the average over the query's words, weighted by their length.
    ``tokenizer`` has ``tokenize(word)`` and ``unk_token``: an Embedder's ``plain_tokenizer``
    (the model's own tokenizer would change settings an encode in another thread relies on).
    """
    from ..lexical import WORD

    words = WORD.findall(text.casefold())
    if not words:
        return 0.0
    unk = getattr(tokenizer, "unk_token", None)
    known = total = 0.0
    for word in words:
        pieces = tokenizer.tokenize(word)  # type: ignore[attr-defined]
        total += len(word)
        if not pieces or (unk is not None and unk in pieces):
            continue
        if len(pieces) == 1:
            known += len(word)
            continue
        chars_per_piece = len(word) / len(pieces)
        known += len(word) * min(1.0, max(0.0, (chars_per_piece - SHATTERED) / (WHOLE - SHATTERED)))
    return known / total


#: Characters per WordPiece at or below which a word is shattered (unknown to the model), and
#: at or above which it is read as known; English words split into pieces average 4+.
SHATTERED, WHOLE = 1.5, 3.0


def matched_share(query_terms: Sequence[str], doc_terms: set[str], frequencies: dict[str, int], total: int) -> float:
    """The idf-weighted share of a query's distinct terms found in a document, in [0, 1].

    idf is BM25's, ``log(1 + (N - df + 0.5) / (df + 0.5))``, so matching a rare word counts
    for much more than matching "the" or "how".
    """
    terms = list(dict.fromkeys(query_terms))
    if not terms:
        return 0.0
    idf = {t: math.log(1.0 + (total - frequencies.get(t, 0) + 0.5) / (frequencies.get(t, 0) + 0.5)) for t in terms}
    whole = sum(idf.values())
    return 0.0 if whole <= 0 else sum(v for t, v in idf.items() if t in doc_terms) / whole


def adaptive(
    dense: Sequence[Candidate], lexical: Sequence[Candidate], text: str, tokenizer: object, lexical_match: float = 1.0
) -> tuple[dict[str, float], float]:
    """Weighted fusion with a per-query dense weight; returns (scores by document, the weight)."""
    weight = dense_weight(text, tokenizer, lexical_match, dense_found=bool(dense), lexical_found=bool(lexical))
    return weighted(dense, lexical, weight), weight


#: The two retrievers' weights before the per-query evidence: 0.7 dense / 0.3 lexical, the
#: best fixed min-max setting on msmarco-5k (0.801 nDCG@10) and no worse than 0.5 elsewhere.
BASE_DENSE_WEIGHT = 0.7
#: Vocabulary coverage below LOW means the embedding is noise (dense weight 0); above HIGH the
#: model is trusted fully. Measured with MiniLM's tokenizer: msmarco's English queries 0.95
#: (10th percentile 0.85); German/French/Spanish 0.6-0.9; made-up Latin-script words 0.4;
#: Russian, Hindi, Chinese, Japanese, Thai, Georgian 0.0-0.1.
COVERAGE_LOW, COVERAGE_HIGH = 0.35, 0.8
#: Identifiers (tokens with digits: part numbers, versions, codes) are where dense models blur
#: and exact words decide; their presence halves the dense weight.
IDENTIFIER_FACTOR = 0.5
#: BM25's share follows the matched share of the query to this power: matching half of the
#: query's information (share 0.5) keeps a quarter of BM25's share (for a query the model reads).
MATCH_POWER = 2.0


def dense_weight(
    text: str, tokenizer: object, lexical_match: float = 1.0, *, dense_found: bool = True, lexical_found: bool = True
) -> float:
    """The per-query dense weight (alpha) of :func:`adaptive` fusion, in [0, 1].

    It starts from how much of the query the embedding model can read, ``readable`` in
    [0, 1]: its tokenizer's vocabulary coverage (:func:`vocabulary_coverage`) mapped through
    COVERAGE_LOW..HIGH, halved for identifier lookups. The base dense weight is
    ``BASE_DENSE_WEIGHT * readable`` -- 0 for a language or script the model never learnt.
    Then BM25's share ``1 - base`` is cut by ``readable * (1 - lexical_match ** MATCH_POWER)``
    and handed to dense, where ``lexical_match`` is the idf-weighted share of the query's
    terms that BM25's best hit contains (:func:`matched_share`):

        alpha = base + (1 - base) * readable * (1 - lexical_match ** MATCH_POWER)

    So BM25 keeps its share when its best hit holds the query's rare words (names, codes),
    steps back when it only shares a few common ones (a paraphrased question), and steps
    back only as far as the model can read the query (a weak dense side is not promoted
    because BM25 matched partly). With ``lexical_match = 1`` this is the base weight. A
    retriever that found nothing (``dense_found``/``lexical_found`` False) gets weight 0.

    Every input describes the query and the collection, never a filtered subset of it (the
    search pipeline passes BM25's best hit in the whole collection), so a document's score does
    not change with a filter it passes.
    """
    from ..lexical import tokenize

    if not lexical_found:
        return 1.0
    if not dense_found:
        return 0.0
    coverage = vocabulary_coverage(text, tokenizer)
    readable = min(1.0, max(0.0, (coverage - COVERAGE_LOW) / (COVERAGE_HIGH - COVERAGE_LOW)))
    if any(any(ch.isdigit() for ch in token) for token in tokenize(text)):
        readable *= IDENTIFIER_FACTOR
    base = BASE_DENSE_WEIGHT * readable
    unmatched = 1.0 - min(1.0, max(0.0, lexical_match)) ** MATCH_POWER
    return base + (1.0 - base) * readable * unmatched
