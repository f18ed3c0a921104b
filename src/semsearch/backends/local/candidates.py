"""Candidates of a local collection: a filter planned by its size, then dense and BM25 candidates
from the structures on disk (memory-mapped vector index, FTS5, the metadata index), or from
BM25 and metadata columns in memory when a warm process holds them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...filters import Node
from ...lexical import tokenize
from ...types import Candidate, Scope, TermStatistics
from . import fts
from .facet_index import CompiledFilter, FacetIndex, compile_filter
from .facets import MemoryFacets, matching_document_rowids
from .lexical_arrays import LexicalArrays
from .lexical_index import LexicalIndex
from .store import Store
from .vectors import DerivedIndex

#: A filter estimated to keep at most this many chunks is listed (an allow-list: the index scores
#: exactly those vectors, BM25 scores exactly those chunks); a larger one checks candidates instead.
ALLOW_LIST_MAX = 10_000
#: Searches after which a process reads the store through a memory map (Store.use_memory_map).
MEMORY_MAP_AFTER = 8
#: Candidates fetched per wanted one, over the filter's share, when candidates are checked.
CHECK_OVERSAMPLING = 1.5


@dataclass(frozen=True)
class LocalScope(Scope):
    """A filter prepared for one search, by its estimated size (Qdrant's habit):

    - ``allow``: the ascending ids of the chunks it allows, when few (None: no list);
    - ``check``: the compiled filter, when it keeps too many chunks to list: retrievers fetch
      about ``1 / share`` times more candidates and keep those the filter matches.
    """

    allow: np.ndarray | None = None
    check: CompiledFilter | None = None
    share: float = 1.0

    def fetch(self, want: int) -> int:
        """How many unfiltered candidates to fetch to keep about ``want`` (at least ``want``)."""
        if self.check is None:
            return want
        return int(math.ceil(want * CHECK_OVERSAMPLING / max(self.share, 1e-6))) + 10


class Retrievers:
    """Plans a search's filter and finds its dense and lexical candidates, for one collection."""

    def __init__(self, store: Store, index: DerivedIndex, bm25: LexicalArrays, facets: MemoryFacets) -> None:
        self.store = store
        self.index = index
        self.bm25 = bm25
        self.facets = facets
        self.facet_index = FacetIndex(store)
        self.lexical_index = LexicalIndex(store)
        self._searches = 0
        self._best: dict[tuple[str, int], int | None] = {}

    def scope(self, where: Node | None) -> LocalScope:
        """The filter's plan: an allow-list when it keeps few chunks, else a check of candidates.

        Its size is counted on the metadata index (the entries of the values asked for); a
        facet snapshot already in memory (a warm server's) answers instead when there is one.
        """
        self._searches += 1
        if self._searches == MEMORY_MAP_AFTER:  # a process that searches again and again is a warm one
            self.store.use_memory_map()
        if where is None:
            return LocalScope()
        compiled = compile_filter(where)  # raises for what get/delete's SQL cannot address, so search agrees
        facets = self.facets.current()
        if facets is not None:
            allow = facets.allowed(where, lambda node: matching_document_rowids(self.store, node))
            return LocalScope(empty=len(allow) == 0, allow=allow)
        started = time.perf_counter()
        with self.store.read():
            matching = self.facet_index.document_count(compiled)
            documents = self.store.document_count()
            chunks = self.store.chunk_count()
        share = min(1.0, matching / documents) if documents else 0.0  # (matching is an upper bound)
        if matching == 0:
            return LocalScope(empty=True, allow=np.empty(0, dtype=np.int64), share=0.0)
        if share * chunks <= ALLOW_LIST_MAX:
            allow = self.facet_index.chunk_ids(compiled)
            scope = LocalScope(empty=len(allow) == 0, allow=allow, share=share)
        else:
            scope = LocalScope(check=compiled, share=share)
        self.facets.spent(time.perf_counter() - started)
        return scope

    def dense(self, vectors: np.ndarray, n: int, scope: LocalScope) -> list[list[Candidate]]:
        """The n most similar documents per query vector in scope (see DerivedIndex.candidates)."""
        if scope.check is None:
            return self.index.candidates(vectors, n, scope.allow)
        compiled = scope.check
        return self.index.checked_candidates(vectors, n, scope.fetch,
                                             lambda ids: self.facet_index.kept(compiled, ids),
                                             lambda: self.facet_index.chunk_ids(compiled))

    def _ranked_chunks(self, terms: list[str],
                       scope: LocalScope) -> Callable[[int], tuple[list[tuple[int, float]], bool]]:
        """``search(limit)`` -> (at most ``limit`` (chunk id, BM25) in scope, best first; whether
        there are no more), from BM25 in memory when the process holds it, else from disk."""
        snapshot = self.bm25.current()
        check = scope.check

        def kept(rows: list[tuple[int, float]]) -> list[tuple[int, float]]:
            if check is None or not rows:
                return rows
            keep = set(self.facet_index.kept(check, np.array([r[0] for r in rows], dtype=np.int64)).tolist())
            return [r for r in rows if r[0] in keep]

        if snapshot is not None:
            def from_memory(limit: int) -> tuple[list[tuple[int, float]], bool]:
                fetch = scope.fetch(limit)
                rows = snapshot.search(terms, fetch, scope.allow)
                return kept(rows)[:limit], len(rows) < fetch
            return from_memory
        if scope.allow is not None:
            # Few chunks: score exactly those (their tokens and the terms' statistics are all it reads).
            scored = self.lexical_index.scores_of(terms, scope.allow)
            return lambda limit: (scored[:limit], len(scored) <= limit)

        def from_disk(limit: int) -> tuple[list[tuple[int, float]], bool]:
            fetch = scope.fetch(limit)
            started = time.perf_counter()
            rows = self.lexical_index.best(terms, fetch)
            self.bm25.spent(time.perf_counter() - started)
            return kept(rows)[:limit], len(rows) < fetch
        return from_disk

    def best_chunk(self, text: str) -> int | None:
        """The chunk BM25 ranks first in the whole collection (None: no chunk holds a query term).

        What the adaptive weight reads when a filter is set (a score must not depend on which
        documents the filter removed). Never builds BM25 in memory and is not counted towards
        building it; remembered per text until the store changes."""
        terms = tokenize(text)
        if not terms:
            return None
        head = self.store.head()
        key = (text, head)
        if key in self._best:
            return self._best[key]
        snapshot = self.bm25.current(build=False)
        rows = snapshot.search(terms, 1, None) if snapshot is not None else self.lexical_index.best(terms, 1)
        if len(self._best) >= 1024 or any(h != head for _, h in list(self._best)[:1]):
            self._best.clear()
        self._best[key] = int(rows[0][0]) if rows else None
        return self._best[key]

    def lexical(self, text: str, n: int, scope: LocalScope) -> list[Candidate]:
        """BM25 in memory when the collection holds it there, else from disk; both give the same scores."""
        terms = tokenize(text)
        if not terms:  # no token to look for
            return []
        search = self._ranked_chunks(terms, scope)
        limit = n * 2
        while True:
            rows, exhausted = search(limit)
            docs = self.store.chunk_documents([r[0] for r in rows])
            seen: set[str] = set()
            found: list[Candidate] = []
            for cid, score in rows:
                doc = docs.get(cid)
                if doc is None or doc in seen:
                    continue
                seen.add(doc)
                found.append(Candidate(doc, cid, score))
                if len(found) == n:
                    return found
            if exhausted:
                return found
            limit *= 4

    def term_statistics(self, terms: Sequence[str], chunk_id: int | None) -> TermStatistics:
        """Document frequencies of ``terms`` and the terms of chunk ``chunk_id`` (adaptive fusion's;
        none for None)."""
        snapshot = self.bm25.current()
        if snapshot is not None:
            best = fts.tokens(self.store, np.array([chunk_id])) if chunk_id is not None else []
            hit_terms = set(best[0][1].split()) if best else set()
            return TermStatistics(snapshot.term_frequencies(terms), snapshot.count, hit_terms)
        return TermStatistics(*self.lexical_index.term_statistics(terms, chunk_id))



__all__ = ["ALLOW_LIST_MAX", "LocalScope", "Retrievers"]
