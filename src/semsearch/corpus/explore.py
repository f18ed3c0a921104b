"""More like this, near-duplicates and topics of a collection (what ``col.similar``,
``col.duplicates`` and ``col.topics`` will be on the facade).

They take any collection (local or Milvus) and read it only through :mod:`.reads`; the work is
done by the pure functions of :mod:`.duplicates`, :mod:`.topics` and :mod:`.projection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .near_duplicates import (
    DEFAULT_TEXT_THRESHOLD,
    DEFAULT_THRESHOLD,
    DuplicateGroup,
    check_text_threshold,
    check_threshold,
    named_groups,
    near_duplicate_groups,
)
from .reads import read_corpus, read_document_vectors, read_mean_vectors, write_metadata
from .topic_model import SEED, Topic, find_topics
from .vectors import mean_document_vectors

SIMILAR_QUERIES = ("mean", "chunks")
#: Documents read as candidates of a whole-document comparison (more when k asks for more).
SIMILAR_POOL = 100


def similar(col: Any, doc_id: str, k: int = 10, where: dict[str, Any] | str | None = None, *,
            query: str = "mean") -> list[Any]:
    """The k documents most like a stored document (itself left out), best first, as search hits.

    Nothing is encoded: the query is the document's stored vectors. ``query="mean"`` (default)
    compares documents as wholes: the normalised mean of this document's chunk vectors against
    each other document's, so an edited copy ranks before a document that shares one paragraph
    with it. ``"chunks"`` searches with each chunk and scores a document by its best chunk pair.
    ``where`` filters the hits.

    A hit's ``score`` is that cosine similarity (not the calibrated relevance of a search);
    ``scores`` holds ``document`` (the whole-document cosine, with ``"mean"``) and ``dense`` (the
    best chunk's cosine). Equal scores are ordered by id.

    Raises:
        UnknownDocumentError: no document has this id.
        InvalidInputError: k < 1, a bad filter or query kind.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a whole number of at least 1, got {k!r}")
    if query not in SIMILAR_QUERIES:
        raise InvalidInputError(f"query must be one of {', '.join(SIMILAR_QUERIES)}, got {query!r}")
    vectors = read_document_vectors(col, doc_id)
    if query == "chunks":
        results = col.search(vectors, int(k) + 1, where=where, mode="dense")
        best: dict[str, Any] = {}
        for hits in results:
            for hit in hits:
                hit.score = hit.scores["dense"]
                if hit.id != doc_id and (hit.id not in best or hit.score > best[hit.id].score):
                    best[hit.id] = hit
        return sorted(best.values(), key=lambda h: (-h.score, h.id))[: int(k)]
    mean = mean_document_vectors(vectors, np.zeros(len(vectors), dtype=np.int64), 1)[0]
    # The chunk index finds the documents near the mean; each is then scored as a whole. A pool
    # well beyond k keeps documents whose best chunk is only fair but whose mean is close.
    pool = col.search(mean, max(SIMILAR_POOL, 10 * (int(k) + 1)), where=where, mode="dense")
    hits = [h for h in pool if h.id != doc_id]
    whole = read_mean_vectors(col, [h.id for h in hits])
    for hit in hits:
        cosine = float(whole[hit.id] @ mean) if hit.id in whole else hit.scores["dense"]
        hit.scores["document"] = cosine
        hit.score = cosine
    return sorted(hits, key=lambda h: (-h.score, h.id))[: int(k)]


def duplicates(col: Any, threshold: float = DEFAULT_THRESHOLD, where: dict[str, Any] | str | None = None,
               exact: bool | None = None, *,
               text_threshold: float | None = DEFAULT_TEXT_THRESHOLD) -> list[DuplicateGroup]:
    """Groups of near-duplicate documents, largest first: every two members of a group have a
    cosine (of their mean vectors) of at least ``threshold`` and read alike, their word-triple
    Jaccard similarity at least ``text_threshold`` (``None``: the cosine alone, which also
    groups different documents on one subject and template-made sister articles).

    ``exact=None`` searches exactly up to 20,000 documents and approximately (IVF) above.

    Raises:
        InvalidInputError: a threshold outside (0, 1], a text threshold outside [0, 1], a bad
            filter, or a threshold so low that it matches more pairs than a duplicate search should.
    """
    threshold = check_threshold(threshold)
    text_threshold = check_text_threshold(text_threshold)
    corpus = read_corpus(col, where)
    groups = near_duplicate_groups(corpus.document_vectors(), threshold, texts=corpus.texts,
                                   text_threshold=text_threshold, exact=exact)
    return named_groups(groups, corpus.ids, corpus.texts)


def topics(col: Any, n: int | None = None, where: dict[str, Any] | str | None = None, *,
           seed: int = SEED, plot: str | Path | None = None, outliers: bool = True) -> list[Topic]:
    """The collection's topics (c-TF-IDF labels), largest first, then the outlier topic (id -1)
    of the documents that belong to none, if any (``outliers=False``: every document in a topic).

    ``n=None`` finds the topics as communities of the documents' neighbour graph (their number
    comes from the data); ``n`` asks for that many k-means topics. With ``plot`` a 2-D map
    coloured by topic is written to that image file.

    Raises:
        InvalidInputError: ``n`` outside 1..documents, a bad filter.
    """
    corpus = read_corpus(col, where)
    vectors = corpus.document_vectors()
    found = find_topics(corpus.ids, vectors, corpus.texts, n, seed=seed, outliers=outliers)
    if plot is not None and found:
        from .projection import plot_map, project_2d

        coords, method = project_2d(vectors, seed=seed)
        named = [t for t in found if t.id >= 0]
        title = f"{len(named)} topics ({method} projection)"
        plot_map(coords, _labels_of(corpus.ids, found), [t.label for t in named], plot, title=title)
    return found


def assign_topics(col: Any, found: list[Topic], key: str = "topic", where: dict[str, Any] | str | None = None) -> int:
    """Write each document's topic id (``key``) and label (``key_label``) into its metadata; returns how many changed.

    Afterwards ``where={"topic": 3}`` filters searches to a topic (``{"topic": -1}``: the outliers).

    Raises:
        InvalidInputError: an empty key, a document that no longer exists.
    """
    if not isinstance(key, str) or not key.strip():
        raise InvalidInputError("the metadata key for topics must be a non-empty string")
    updates = {doc_id: {key: t.id, f"{key}_label": t.label} for t in found for doc_id in t.ids}
    corpus = read_corpus(col, where)
    known = set(corpus.ids)
    return write_metadata(col, corpus, {i: v for i, v in updates.items() if i in known})


def _labels_of(ids: list[str], found: list[Topic]) -> np.ndarray:
    topic_of = {doc_id: t.id for t in found for doc_id in t.ids}
    return np.array([topic_of.get(i, -1) for i in ids], dtype=np.int64)
