"""BM25 from the FTS5 index on disk: the best chunks of a collection, or scores of a few given chunks.

FTS5 (:mod:`.fts`) finds and ranks matching chunks itself, but its ``bm25()`` runs once per
matching row: a query with a common word matches most of a collection. When a filter leaves
only a few thousand chunks, those are scored here instead, with FTS5's own statistics (its row
and token totals, each term's document frequency) and the chunks' own tokens, so the scores are
exactly the ``bm25()`` FTS5 would give them and nothing outside the filter is read.

Scores follow ``fts5_aux.c`` (as :mod:`.bm25` does): k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5)
/ (n + 0.5)) floored at 1e-6, summed over the query's distinct terms in query order.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence

import numpy as np

from . import fts
from .bm25 import K1, B
from .store import Store

#: Terms whose document frequencies a process remembers (LexicalIndex.document_frequencies).
FREQUENCIES_KEPT = 65_536


def _any_of(terms: Sequence[str]) -> str:
    # Tokens hold only letters, digits and marks, so quoting makes every one a plain term.
    return " OR ".join(f'"{t}"' for t in terms)


class LexicalIndex:
    """The FTS5 lexical index of one store, read where a query needs it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._frequencies: dict[str, int] = {}
        self._frequencies_head = -1

    def best(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25) of the best ``limit`` chunks holding any of ``terms``, best first.

        FTS5 computes ``bm25()`` for every matching row, and a word in more than half of the
        chunks ("the", "of" in English text) matches most of a collection while its idf is
        floored at 1e-6: it adds at most 2.2e-6 to a score. Such terms are left out of the match
        (scores then differ from FTS5's by that much at most), unless fewer than ``limit``
        chunks hold another term of the query.
        """
        distinct = list(dict.fromkeys(terms))
        rows, _ = self.totals()
        frequencies = self.document_frequencies(distinct)
        informative = [t for t in distinct if 2 * frequencies.get(t, 0) < rows]
        if informative and len(informative) < len(distinct):
            found = fts.search(self.store, _any_of(informative), limit)
            if len(found) == limit:
                return found
        return fts.search(self.store, _any_of(distinct), limit)

    def totals(self) -> tuple[int, int]:
        """(rows, tokens) as FTS5's ``bm25()`` counts them."""
        with self.store.read() as con:
            return fts.fts_totals(con)

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each term (FTS5's vocabulary; absent terms are left out).

        FTS5 counts a term's rows by reading its whole posting list (~0.3 s for "the" in a
        million chunks): a search asks twice (planning the match, then fusion's statistics), so
        counts are remembered until the store changes.
        """
        head = self.store.head()
        with self._lock:
            if self._frequencies_head != head:
                self._frequencies, self._frequencies_head = {}, head
            known = {t: self._frequencies[t] for t in terms if t in self._frequencies}
        missing = [t for t in dict.fromkeys(terms) if t not in known]
        if missing:
            found = fts.document_frequencies(self.store, missing)
            counted = {t: found.get(t, 0) for t in missing}
            with self._lock:
                if self._frequencies_head == head:
                    self._frequencies.update(counted)
                    while len(self._frequencies) > FREQUENCIES_KEPT:
                        self._frequencies.pop(next(iter(self._frequencies)))
            known.update(counted)
        return {t: n for t, n in known.items() if n > 0}

    def term_statistics(self, terms: Sequence[str], chunk_id: int | None) -> tuple[dict[str, int], int, set[str]]:
        """(chunks holding each term, number of chunks, the terms of chunk ``chunk_id``; none for
        None): what adaptive fusion reads to tell how much of a query a lexical hit matched."""
        found = self.chunk_tokens(np.array([chunk_id], dtype=np.int64)) if chunk_id is not None else []
        return self.document_frequencies(terms), self.totals()[0], set(found[0][1].split()) if found else set()

    def chunk_tokens(self, chunk_ids: np.ndarray) -> list[tuple[int, str]]:
        """(chunk id, its indexed tokens) of the given chunks that exist (FTS5's content rows, read by id)."""
        ids = json.dumps(np.asarray(chunk_ids, dtype=np.int64).tolist())
        with self.store.read() as con:
            return con.execute("SELECT id, c0 FROM chunks_fts_content WHERE id IN (SELECT value FROM json_each(?))",
                               (ids,)).fetchall()

    def scores_of(self, terms: Sequence[str], chunk_ids: np.ndarray) -> list[tuple[int, float]]:
        """(chunk id, BM25) of those of ``chunk_ids`` holding a query term, best first (ties by id).

        Reads the given chunks' tokens and the query terms' statistics only.
        """
        distinct = list(dict.fromkeys(terms))
        if len(chunk_ids) == 0 or not distinct:
            return []
        n_rows, n_tokens = self.totals()
        frequencies = self.document_frequencies(distinct)
        present = [t for t in distinct if frequencies.get(t, 0) > 0]
        if n_rows == 0 or not present:
            return []
        avgdl = n_tokens / n_rows
        weights = []
        for t in present:
            idf = math.log((n_rows - frequencies[t] + 0.5) / (frequencies[t] + 0.5))
            weights.append((f" {t} ", idf if idf > 0.0 else 1e-6))
        found: list[tuple[int, float]] = []
        for chunk_id, tokens in self.chunk_tokens(chunk_ids):
            # Tokens are single-space separated: with the spaces doubled, a term's occurrences are
            # its non-overlapping counts between spaces (str.count, in C; "a a" holds " a " twice).
            padded = f" {tokens.replace(' ', '  ')} "
            counts = [padded.count(needle) for needle, _ in weights]
            if not any(counts):
                continue
            norm = K1 * (1.0 - B + B * (tokens.count(" ") + 1) / avgdl)
            score = 0.0
            for f, (_, idf) in zip(counts, weights):
                if f:
                    score += idf * (f * (K1 + 1.0)) / (f + norm)
            found.append((int(chunk_id), score))
        found.sort(key=lambda pair: (-pair[1], pair[0]))
        return found


__all__ = ["LexicalIndex"]
