"""Near-duplicate documents: pairs above a cosine threshold that also read alike, grouped so that
every pair inside a group is such a pair.

Pairs come from a FAISS range search (all neighbours above the threshold, however many), never
from an all-pairs matrix: exact over a flat index for small inputs, over an IVF index (k-means
cells, ``nprobe`` of them searched per vector) beyond :data:`EXACT_LIMIT`. Near-duplicates sit
far closer to each other than to anything else, so they share a cell or neighbouring ones and
the approximate search finds almost all of them (recall measured in bench/RESULTS.md).

A high cosine says two documents mean the same, not that one is a copy of the other: sister
articles made from one template (a club's 2012 and 2013 seasons, two villages of one district)
and two different passages on one subject score 0.95-0.99 with MiniLM. So by default a pair
must also match as text: the Jaccard similarity of the two documents' sets of word triples
(runs of three lexical tokens, case and punctuation ignored) must be at least
:data:`DEFAULT_TEXT_THRESHOLD`. An edited copy (case, punctuation, a changed word, reordered or
dropped sentences) keeps most triples; a sister article changes one fact every few words, and
each change breaks three triples. ``text_threshold=None`` (the CLI's
``--semantic``) keeps the cosine alone. Measured on planted copies and template-made sisters
in bench/RESULTS.md (issue 27).

Groups never chain: connected components would put A and C together because A~B and B~C,
though A and C are not alike. Instead groups are grown like complete-linkage clusters: pairs are
taken strongest first, and two groups merge only when every pair across them is itself a
near-duplicate pair. So every pair inside a group passes both tests, and deleting all but any
one member never removes a document that is not a near-duplicate of the one kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import InvalidInputError
from .vectors import unit_rows

#: Below this many vectors the exact search (a flat index) is the default: ~20k x 20k inner
#: products take a few seconds on two cores.
EXACT_LIMIT = 20_000
#: Pairs above the threshold beyond which the threshold is too low to mean "duplicate".
MAX_PAIRS = 20_000_000
DEFAULT_THRESHOLD = 0.95
#: Jaccard similarity of two documents' sets of word triples at or above which they read alike
#: (bench/RESULTS.md, issue 27: 99% of planted edited copies pass, no template-made sister article does).
DEFAULT_TEXT_THRESHOLD = 0.6
#: Words per shingle of the textual test: runs of three consecutive words.
SHINGLE_WORDS = 3
KEEP_POLICIES = ("first", "longest", "newest")
_APOSTROPHES = re.compile("['\u2019]")  # dropped, not split at: "don't" and "dont" are one word
_BLOCK = 4096  # query vectors per range search call: bounds the memory of one call's results


class Pair(NamedTuple):
    """A near-duplicate pair by position (``i < j``): its cosine and its textual similarity
    (Jaccard of word triples; None when no texts were given)."""

    i: int
    j: int
    score: float
    text: float | None = None


@dataclass
class PairGroup:
    """A group by position: member indices (ascending) and every pair inside it (highest cosine first)."""

    members: np.ndarray
    pairs: list[Pair]


class DuplicatePair(NamedTuple):
    """Two documents of a group: ``score`` their cosine, ``text`` their textual similarity (None if not measured)."""

    a: str
    b: str
    score: float
    text: float | None = None


@dataclass
class DuplicateGroup:
    """Documents that are near-duplicates of each other: every pair of members passed the tests.

    ``ids`` are the members in the order they were added (oldest first), ``lengths`` their
    text lengths in characters, ``pairs`` every pair of members (highest cosine first).
    """

    ids: list[str]
    pairs: list[DuplicatePair]
    lengths: list[int] = field(default_factory=list)

    @property
    def min_score(self) -> float:
        """The lowest cosine between two members."""
        return min(p.score for p in self.pairs)

    @property
    def max_score(self) -> float:
        """The highest cosine between two members."""
        return max(p.score for p in self.pairs)

    @property
    def min_text(self) -> float | None:
        """The lowest textual similarity between two members (None when it was not measured)."""
        scores = [p.text for p in self.pairs if p.text is not None]
        return min(scores) if scores else None

    def keeper(self, keep: str = "first") -> str:
        """The member to keep: ``first`` (oldest), ``newest``, or ``longest`` text (oldest on ties).

        Raises:
            InvalidInputError: an unknown policy.
        """
        check_keep(keep)
        if keep == "first":
            return self.ids[0]
        if keep == "newest":
            return self.ids[-1]
        lengths = self.lengths or [0] * len(self.ids)
        return self.ids[int(np.argmax(lengths))]  # argmax takes the first of equal lengths

    def to_delete(self, keep: str = "first") -> list[str]:
        """Every member but :meth:`keeper`, oldest first."""
        kept = self.keeper(keep)
        return [i for i in self.ids if i != kept]

    def to_dict(self, keep: str | None = None) -> dict[str, Any]:
        """The group as JSON: ids, size, min/max cosine, the lowest textual similarity and every pair."""
        min_text = self.min_text
        out: dict[str, Any] = {
            "ids": list(self.ids),
            "size": len(self.ids),
            "min_score": round(self.min_score, 6),
            "max_score": round(self.max_score, 6),
            "min_text": None if min_text is None else round(min_text, 6),
            "pairs": [{"a": p.a, "b": p.b, "score": round(p.score, 6),
                       "text": None if p.text is None else round(p.text, 6)} for p in self.pairs],
        }
        if keep is not None:
            out["keep"] = self.keeper(keep)
            out["delete"] = self.to_delete(keep)
        return out


def check_keep(keep: str) -> str:
    if keep not in KEEP_POLICIES:
        raise InvalidInputError(f"keep must be one of {', '.join(KEEP_POLICIES)}, got {keep!r}")
    return keep


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not 0 < threshold <= 1:
        raise InvalidInputError(
            f"threshold must be a cosine similarity in (0, 1], got {threshold!r}; near-duplicates are usually above 0.9"
        )
    return float(threshold)


def check_text_threshold(text_threshold: float | None) -> float | None:
    """``text_threshold`` as a float in [0, 1], or None (the cosine alone decides).

    Raises:
        InvalidInputError: anything else.
    """
    if text_threshold is None:
        return None
    if (isinstance(text_threshold, bool) or not isinstance(text_threshold, (int, float, np.floating))
            or not 0 <= text_threshold <= 1):
        raise InvalidInputError(
            f"text_threshold must be a Jaccard similarity in [0, 1] (or None for the cosine alone), got "
            f"{text_threshold!r}; the default {DEFAULT_TEXT_THRESHOLD} keeps edited copies and drops sister documents"
        )
    return float(text_threshold)


def word_shingles(text: str, n: int = SHINGLE_WORDS) -> frozenset[str]:
    """The text's runs of ``n`` consecutive lexical tokens (case, accents and punctuation
    ignored; apostrophes dropped, so "don't" and "dont" are one word); a text of fewer tokens
    is one shingle of all of them."""
    from ..lexical import tokenize

    tokens = tokenize(_APOSTROPHES.sub("", text))
    if len(tokens) <= n:
        return frozenset([" ".join(tokens)]) if tokens else frozenset()
    return frozenset(" ".join(tokens[k : k + n]) for k in range(len(tokens) - n + 1))


def text_similarity(a: str, b: str) -> float:
    """How alike two texts read: the Jaccard similarity of their sets of word triples, in [0, 1]
    (1.0 for texts that differ only in case and punctuation; 0.0 when either has no word)."""
    return jaccard(word_shingles(a), word_shingles(b))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared) if a and b else 0.0


def pair_text_scores(texts: Sequence[str], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The :func:`text_similarity` of each pair (i[k], j[k]), each text's shingles made once."""
    made = {k: word_shingles(texts[k]) for k in np.unique(np.concatenate([i, j])).tolist()}
    return np.array([jaccard(made[a], made[b]) for a, b in zip(i.tolist(), j.tolist())], dtype=np.float32)


def similar_pairs(
    vectors: np.ndarray,
    threshold: float,
    *,
    exact: bool | None = None,
    nprobe: int = 16,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows whose cosine is at least ``threshold``: (i, j, score) with i < j.

    ``vectors`` are normalised here. ``exact=None`` searches exactly up to :data:`EXACT_LIMIT`
    rows and through an IVF index (``nprobe`` cells per row) above. Pairs come sorted by (i, j).

    Raises:
        InvalidInputError: a threshold outside (0, 1], bad vectors, or more than ``max_pairs``
            pairs (the threshold is too low to mean "duplicate").
    """
    import faiss

    threshold = check_threshold(threshold)
    x = unit_rows(vectors)
    n, dim = x.shape
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    if n < 2:
        return empty
    if exact is None:
        exact = n <= EXACT_LIMIT
    nlist = _nlist(n)
    if exact or nlist < 2:
        index: Any = faiss.IndexFlatIP(dim)
        params = None
    else:
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.cp.min_points_per_centroid = 1  # no warning for small training sets: nlist already respects them
        train = x if n <= nlist * 64 else x[np.sort(np.random.default_rng(seed).choice(n, nlist * 64, replace=False))]
        index.train(train)
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, nlist))
    index.add(x)
    # FAISS keeps inner products strictly above the radius; the float slack is removed below.
    radius = threshold - 1e-5
    rows, cols, scores = [], [], []
    total = 0
    for start in range(0, n, _BLOCK):
        block = x[start : start + _BLOCK]
        if params is None:
            lims, dist, labels = index.range_search(block, radius)
        else:
            lims, dist, labels = index.range_search(block, radius, params=params)
        q = np.repeat(np.arange(start, start + len(block), dtype=np.int64), np.diff(lims).astype(np.int64))
        keep = (labels != q) & (dist >= threshold)
        a, b, s = q[keep], labels[keep].astype(np.int64), dist[keep].astype(np.float32)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        if exact:  # each pair is seen from both ends: keep one
            sel = a < b
            lo, hi, s = lo[sel], hi[sel], s[sel]
        total += len(lo)
        if total > max_pairs * (1 if exact else 2):
            raise InvalidInputError(
                f"more than {max_pairs:,} pairs of documents score at least {threshold}: at that threshold "
                "documents are neighbours, not duplicates; raise the threshold (near-duplicates are usually above 0.9)"
            )
        rows.append(lo)
        cols.append(hi)
        scores.append(np.minimum(s, 1.0))
    i, j, s = np.concatenate(rows), np.concatenate(cols), np.concatenate(scores)
    # Approximate search can find a pair from one end only; sorting and de-duplicating also
    # makes the order independent of the search.
    order = np.lexsort((j, i))
    i, j, s = i[order], j[order], s[order]
    if len(i):
        first = np.ones(len(i), dtype=bool)
        first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
        i, j, s = i[first], j[first], s[first]
    return i, j, s


def group_pairs(n: int, i: np.ndarray, j: np.ndarray, scores: np.ndarray,
                text: np.ndarray | None = None) -> list[PairGroup]:
    """Groups (two or more members) in which every two members are one of the given pairs.

    Pairs are taken by descending score (ties by position); a pair joins the groups of its two
    ends only when every pair across those groups is given too (complete linkage over the pair
    graph), so a chain A~B~C where A and C are no pair never becomes one group. ``text`` (one
    score per pair) is carried into the groups' pairs. Groups come largest first, then by their
    first member; members ascending; pairs by descending score.
    """
    if len(i) == 0:
        return []
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    score_of = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(i.tolist(), j.tolist()))}
    group_of: dict[int, list[int]] = {}  # member -> the (shared) list of its group's members
    for k in np.lexsort((j, i, -np.asarray(scores))):
        a, b = int(i[k]), int(j[k])
        ga, gb = group_of.get(a, [a]), group_of.get(b, [b])
        if ga is gb or not all((min(x, y), max(x, y)) in score_of for x in ga for y in gb):
            continue
        merged = ga + gb
        for member in merged:
            group_of[member] = merged
    groups = []
    for members in {id(g): g for g in group_of.values()}.values():
        ordered = sorted(members)
        pairs = []
        for x_pos, x in enumerate(ordered):
            for y in ordered[x_pos + 1 :]:
                k = score_of[(x, y)]
                pairs.append(Pair(x, y, float(scores[k]), None if text is None else float(text[k])))
        pairs.sort(key=lambda p: (-p.score, p.i, p.j))
        groups.append(PairGroup(members=np.asarray(ordered, dtype=np.int64), pairs=pairs))
    groups.sort(key=lambda grp: (-len(grp.members), int(grp.members[0])))
    return groups


def near_duplicate_groups(
    vectors: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    texts: Sequence[str] | None = None,
    text_threshold: float | None = DEFAULT_TEXT_THRESHOLD,
    exact: bool | None = None,
    owner: np.ndarray | None = None,
    n_documents: int | None = None,
    nprobe: int = 16,
    max_pairs: int = MAX_PAIRS,
) -> list[PairGroup]:
    """Groups of rows (documents) that are near-duplicates: every pair inside a group has a
    cosine of at least ``threshold`` and, when ``texts`` (one per document) are given and
    ``text_threshold`` is not None, a :func:`text_similarity` of at least ``text_threshold``.

    With ``owner`` (one document index per row, ``n_documents`` documents) the rows are chunks
    and two documents are as similar as their *best chunk pair*; without it each row is a
    document (pass mean vectors for the recommended whole-document similarity, see
    :mod:`semsearch.corpus.vectors`).

    Raises:
        InvalidInputError: see :func:`similar_pairs`; a text threshold outside [0, 1]; a
            number of texts other than one per document.
    """
    text_threshold = check_text_threshold(text_threshold)
    i, j, s = similar_pairs(vectors, threshold, exact=exact, nprobe=nprobe, max_pairs=max_pairs)
    n = len(vectors)
    if owner is not None:
        owner = np.asarray(owner, dtype=np.int64)
        n = int(n_documents if n_documents is not None else owner.max(initial=-1) + 1)
        i, j, s = best_document_pairs(owner, i, j, s)
    text = None
    if texts is not None:
        if len(texts) != n:
            raise InvalidInputError(f"got {len(texts)} texts for {n} documents; give one text per document")
        text = pair_text_scores(texts, i, j)
        if text_threshold is not None:
            alike = text >= text_threshold
            i, j, s, text = i[alike], j[alike], s[alike], text[alike]
    return group_pairs(n, i, j, s, text)


def best_document_pairs(owner: np.ndarray, i: np.ndarray, j: np.ndarray,
                        scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunk pairs (rows i, j with ``owner`` their documents) turned into document pairs
    (a < b), each scored by its best chunk pair; pairs of chunks of one document are left out."""
    a, b = owner[i], owner[j]
    other = a != b
    a, b, s = np.minimum(a, b)[other], np.maximum(a, b)[other], scores[other]
    order = np.lexsort((-s, b, a))
    a, b, s = a[order], b[order], s[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first], b[first], s[first]


def named_groups(groups: Sequence[PairGroup], ids: Sequence[str], texts: Sequence[str]) -> list[DuplicateGroup]:
    """:class:`PairGroup` positions turned into document ids (positions are insertion order)."""
    return [
        DuplicateGroup(
            ids=[ids[m] for m in g.members],
            pairs=[DuplicatePair(ids[p.i], ids[p.j], p.score, p.text) for p in g.pairs],
            lengths=[len(texts[m]) for m in g.members],
        )
        for g in groups
    ]


def _nlist(n: int) -> int:
    # ~4 sqrt(n) cells, each trained on at least 39 points (FAISS's own minimum).
    return int(max(1, min(4 * np.sqrt(n), n // 39)))
