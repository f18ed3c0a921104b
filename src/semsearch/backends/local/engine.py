"""The local engine: one folder holding SQLite (the truth), a derived FAISS index and a write lock.

- ``collection.sqlite3``: documents, chunks, metadata, embeddings, the FTS5 lexical index, the
  metadata index and the change log, in WAL mode with ``synchronous=FULL`` (:mod:`.store`,
  :mod:`.schema`); a search reads BM25 (:mod:`.lexical_index`) and filters (:mod:`.facet_index`)
  from it where it needs, so a cold process opens a collection without reading all of it.
- ``vectors-<seq>.faiss`` + ``vectors.json``: the vector index, derived, memory-mapped (:mod:`.vectors`).
- BM25 and metadata columns held in memory by a warm process when the collection is small enough
  to build them in a second or two, derived too (:mod:`.bm25`, :mod:`.facets`).
- ``write.lock``: one writing process at a time; readers never wait (:mod:`.locking`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DuplicateIdError, NotACollectionError
from ...filters import Node, matches
from ...index import DEFAULT_SPEC
from ...lexical import TOKENIZER_VERSION, tokenize
from ...types import Candidate, ChunkRow, Document, DocumentRow, FileState, Scope, StoredChunk, TermStatistics
from . import fts, reembedding
from .bm25 import MemoryBM25
from .facet_index import CompiledFilter, FacetIndex, compile_filter
from .facets import MemoryFacets, matching_document_rowids
from .lexical_index import LexicalIndex
from .locking import WriteLock
from .schema import DB_NAME, FORMAT_VERSION, migrate, needs_migration
from .store import Store
from .vectors import DerivedIndex, check_spec

EMBEDDING_CACHE_FILE = "embedding_cache.sqlite"


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


class LocalEngine:
    """The :class:`semsearch.engine.Engine` of a collection folder.

    Raises (on opening):
        NotACollectionError: the path is a file, a folder holding something else, or holds no
            collection while ``create`` is False; or the collection was written by a newer semsearch.
    """

    default_index = DEFAULT_SPEC

    def __init__(self, path: str | Path, *, create: bool = True, lock_timeout: float = 60.0,
                 index_save_every: int = 200_000) -> None:
        self.folder = Path(path).expanduser().resolve()
        self.path = self.folder
        self.name = self.folder.name
        self._lock_timeout = lock_timeout
        self._index_save_every = index_save_every
        if self.folder.exists() and not self.folder.is_dir():
            raise NotACollectionError(f"{self.folder} is a file, not a collection folder; give a folder path")
        db = self.folder / DB_NAME
        if not db.exists():
            if not create:
                raise NotACollectionError(
                    f"{self.folder} is not a semsearch collection (no {DB_NAME}); check the path, "
                    "or index documents into it to create one"
                )
            if self.folder.exists() and any(self.folder.iterdir()) and not any(
                p.name.startswith(DB_NAME) for p in self.folder.iterdir()
            ):
                raise NotACollectionError(
                    f"{self.folder} is a non-empty folder that is not a semsearch collection; "
                    "choose an empty or new folder for a collection"
                )
            self.manifest: dict[str, Any] | None = None
            return
        self.store = Store(self.folder, create=False)
        self.lock = WriteLock(self.folder, lock_timeout)
        manifest = self.store.manifest()
        if not manifest:
            raise NotACollectionError(f"{self.folder} holds an empty collection database; "
                                      "delete the folder and index again")
        if manifest.get("format_version", 0) > FORMAT_VERSION:
            raise NotACollectionError(
                f"{self.folder} was written by a newer semsearch (format {manifest['format_version']}); "
                "upgrade semsearch")
        if needs_migration(manifest, TOKENIZER_VERSION):
            with self.lock, self.store.write() as con:
                # Read again under the lock: another process may have migrated meanwhile.
                current = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM manifest")}
                migrate(con, TOKENIZER_VERSION, int(current.get("format_version", 1)), current.get("lexical_tokenizer"))
                self.store.set_manifest({"format_version": FORMAT_VERSION, "lexical_tokenizer": TOKENIZER_VERSION}, con)
        self._opened()

    def _opened(self) -> None:
        self.manifest = self.store.manifest()
        self._embeddings_id, self._checked_head = self.manifest.get(reembedding.EMBEDDINGS_ID), -1
        self.index = DerivedIndex(self.folder, self.store, int(self.manifest["dimension"]), self.manifest["index"],
                                  self.lock)
        # BM25 in memory once FTS5 has spent as long as building it would take (bm25.py).
        self.bm25 = MemoryBM25(self.store)
        self.facets = MemoryFacets(self.store)
        self.facet_index = FacetIndex(self.store)
        self._searches = 0
        self.lexical_index = LexicalIndex(self.store)

    # -- life cycle -----------------------------------------------------------------------
    def create(self, manifest: dict[str, Any]) -> None:
        self.check_index(manifest["index"], int(manifest["dimension"]))
        self.store = Store(self.folder, create=True)
        self.lock = WriteLock(self.folder, self._lock_timeout)
        with self.lock:
            if not self.store.manifest():  # another process may have created it meanwhile
                self.store.set_manifest({**manifest, "format_version": FORMAT_VERSION,
                                         "lexical_tokenizer": TOKENIZER_VERSION})
        self._opened()

    def check_index(self, spec: str, dimension: int) -> None:
        check_spec(spec, dimension)

    def set_index(self, spec: str) -> None:
        """Crash-safe: the manifest change commits first; an index file of the old spec is then
        treated as stale and rebuilt from the store, so a kill leaves the old spec or the new one."""
        assert self.manifest is not None
        self.check_index(spec, int(self.manifest["dimension"]))
        with self.lock:
            self.store.set_manifest({"index": spec})
            self.manifest = self.store.manifest()
            self.index.set_spec(spec)

    def reembed(self, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *, batch: int = 4096,
                progress: Callable[[int, int], None] | None = None) -> reembedding.ReindexReport:
        """A staged embedding set, resumable, swapped in by one transaction (:mod:`.reembedding`)."""
        return reembedding.reembed(self, target, encode, batch=batch, progress=progress)

    def reload(self) -> None:
        self._opened()

    def _check_embeddings(self) -> None:
        """EmbeddingsReplacedError if another process re-encoded the collection (read when the store changed)."""
        head = self.store.head()
        if head != self._checked_head:
            with self.store.read() as con:
                reembedding.check_embeddings(con, self._embeddings_id, self.folder)
            self._checked_head = head

    def update_manifest(self, values: Mapping[str, Any]) -> None:
        with self.lock:
            self.store.set_manifest(dict(values))
        self.manifest = self.store.manifest()

    def flush(self, lock_timeout: float | None = None) -> None:
        self.lock.acquire(timeout=lock_timeout)
        try:
            self.index.flush()
        finally:
            self.lock.release()

    def warm_up(self) -> None:
        """Map the store and vector index, and hold BM25 and facets in memory where they are
        small enough to build in a second or two (larger collections search from disk)."""
        self.store.use_memory_map()
        self.index.ensure_current()
        self.bm25.current(build=True)
        self.facets.current(build=True)

    def verify(self) -> dict[str, Any]:
        """SQLite's own integrity check of the store (the truth: it cannot be rebuilt from
        anything), then the derived vector index, repaired from the store when needed."""
        with self.store.read() as con:
            integrity = [r[0] for r in con.execute("PRAGMA quick_check")]
        if integrity != ["ok"]:  # nothing derived can be checked against a damaged truth
            return {"consistent": False, "store": integrity[:20], "repaired": [],
                    "problems": [f"the SQLite store is damaged: {'; '.join(integrity[:3])}"]}
        with self.lock:
            out = self.index.verify()
        out["store"] = "ok"
        return out

    def info(self) -> dict[str, Any]:
        assert self.manifest is not None
        return {
            "path": str(self.folder),
            "index_details": self.index.saved_details(),
            "size_bytes": self.store.size_on_disk(),
            "format_version": self.manifest.get("format_version"),
            "lexical_tokenizer": self.manifest.get("lexical_tokenizer"),
            **({"reindex_pending": waiting} if (waiting := reembedding.pending(self)) else {}),
        }

    @property
    def cache_path(self) -> Path:
        """Where the collection's embedding cache lives (beside the store)."""
        return self.folder / EMBEDDING_CACHE_FILE

    def close(self) -> None:
        """Bring the saved vector index up to date (best effort) and close the store."""
        if self.manifest is None:
            return
        try:
            if self.index.unsaved():
                self.flush(lock_timeout=1.0)
        except Exception as exc:  # closing must not lose the caller's real error
            logging.getLogger(__name__).warning("could not save the vector index of %s: %s", self.folder, exc)
        self.store.close()

    def drop(self) -> None:
        """Delete the collection's files (under the write lock), then the folder if nothing else is in it."""
        if self.manifest is None:
            return
        with self.lock:
            self.store.close()
            for pattern in (f"{DB_NAME}*", "vectors-*", "vectors.json", f"{EMBEDDING_CACHE_FILE}*"):
                for file in self.folder.glob(pattern):
                    file.unlink(missing_ok=True)
        (self.folder / "write.lock").unlink(missing_ok=True)
        self.manifest = None
        if not any(self.folder.iterdir()):
            self.folder.rmdir()

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The write lock, and a save of the vector index when it has fallen far behind."""
        self.lock.acquire()
        try:
            yield
            self.index.save_if_behind(self._index_save_every)
        finally:
            self.lock.release()

    def check_rows(self, rows: Sequence[DocumentRow]) -> None:
        """Nothing to check: SQLite stores any text and id."""

    def write(self, rows: Sequence[DocumentRow], *, replace: bool,
              files: Mapping[str, FileState] | None = None) -> None:
        ids = [r.id for r in rows]
        with self._writing(), self.store.write() as con:
            reembedding.check_embeddings(con, self._embeddings_id, self.folder)  # vectors of the model in use
            if replace:
                self.store.delete_documents(con, ids)
            else:
                existing = self.store.existing_ids(con, ids)
                if existing:
                    raise DuplicateIdError.for_ids(existing)
            self.store.insert_documents(con, rows)
            for source, state in (files or {}).items():
                if state.ids is not None:
                    stale = [d for d in self.store.source_document_ids(con, source) if d not in state.ids]
                    self.store.delete_documents(con, stale)
                self.store.record_source(con, source, state.digest)

    def delete(self, ids: Sequence[str] | None, where: Node | None) -> int:
        with self._writing(), self.store.write() as con:
            id_list = None if ids is None else list(ids)
            if where is not None:
                # Resolved inside the write transaction, so what is deleted is what matched.
                matching = self.store.filtered_document_ids(where, self._rowids_of(where))
                if id_list is not None:
                    wanted = set(id_list)
                    matching = [i for i in matching if i in wanted]
                id_list = matching
            assert id_list is not None
            return self.store.delete_documents(con, id_list)

    def delete_source(self, source: str) -> int:
        with self._writing(), self.store.write() as con:
            return self.store.delete_source(con, source)

    def set_files(self, hashes: Mapping[str, str]) -> None:
        with self._writing(), self.store.write() as con:
            for source, digest in hashes.items():
                self.store.record_source(con, source, digest)

    def update_metadata(self, metadatas: Mapping[str, dict[str, Any]]) -> int:
        with self._writing(), self.store.write() as con:
            cur = con.executemany("UPDATE documents SET metadata = ? WHERE id = ?",
                                  [(json.dumps(m, ensure_ascii=False), doc_id) for doc_id, m in metadatas.items()])
            return cur.rowcount

    # -- reading --------------------------------------------------------------------------
    def count(self) -> int:
        return self.store.document_count()

    def chunk_count(self) -> int:
        with self.store.read():
            return self.store.chunk_count()

    def files(self) -> dict[str, str]:
        return self.store.source_hashes()

    def sources_of(self, ids: Sequence[str]) -> dict[str, str | None]:
        return self.store.sources_of(ids)

    def documents(self, ids: Sequence[str] | None, where: Node | None, limit: int | None) -> list[Document]:
        if ids is None:
            return self.store.filtered_documents(where, limit, None if where is None else self._rowids_of(where))
        return [d for d in self.store.documents(list(ids)) if matches(where, d.metadata, d.text)][:limit]

    @staticmethod
    def _rowids_of(where: Node) -> tuple[str, tuple[Any, ...]]:
        """The metadata index's SELECT of the documents a filter matches (facet_index.py)."""
        compiled = compile_filter(where)
        return compiled.documents_sql, compiled.documents_params

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        return self.store.chunks(chunk_ids)

    def vectors(self, chunk_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.manifest is not None
        self._check_embeddings()
        return self.store.embeddings(np.asarray(chunk_ids, dtype=np.int64), int(self.manifest["dimension"]))

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        return self.store.chunk_ids_of(doc_ids)

    def export(self, batch: int = 1000) -> Iterator[list[DocumentRow]]:
        """Every document with its chunks and embeddings, in insertion order, read in one snapshot."""
        assert self.manifest is not None
        dim = int(self.manifest["dimension"])
        with self.store.read() as con:
            last = 0
            while True:
                docs = con.execute(
                    "SELECT rowid, id, text, metadata, source FROM documents WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (last, batch),
                ).fetchall()
                if not docs:
                    return
                rows = {r[0]: DocumentRow(r[1], r[2], json.loads(r[3]) if r[3] else {}, r[4]) for r in docs}
                marks = ",".join("?" * len(rows))
                for doc, position, start, end, blob in con.execute(
                    f"SELECT doc, position, start, end, embedding FROM chunks WHERE doc IN ({marks}) "
                    "ORDER BY doc, position",
                    list(rows),
                ):
                    vector = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
                    rows[doc].chunks.append(ChunkRow(position, start, end, vector))
                yield list(rows.values())
                last = docs[-1][0]

    # -- candidates -----------------------------------------------------------------------
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

    def dense_candidates(self, vectors: np.ndarray, n: int, scope: Scope) -> list[list[Candidate]]:
        assert isinstance(scope, LocalScope)
        self._check_embeddings()
        if scope.check is None:
            return self.index.candidates(vectors, n, scope.allow)
        compiled = scope.check
        return self.index.checked_candidates(vectors, n, scope.fetch,
                                             lambda ids: self.facet_index.kept(compiled, ids),
                                             lambda: self.facet_index.chunk_ids(compiled))

    def lexical_candidates(self, texts: Sequence[str], n: int, scope: Scope) -> list[list[Candidate]]:
        assert isinstance(scope, LocalScope)
        return [self._lexical(text, n, scope) for text in texts]

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

    def _lexical(self, text: str, n: int, scope: LocalScope) -> list[Candidate]:
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

    def term_statistics(self, terms: Sequence[str], chunk_id: int) -> TermStatistics:
        snapshot = self.bm25.current()
        if snapshot is not None:
            best = fts.tokens(self.store, np.array([chunk_id]))
            hit_terms = set(best[0][1].split()) if best else set()
            return TermStatistics(snapshot.term_frequencies(terms), snapshot.count, hit_terms)
        return TermStatistics(*self.lexical_index.term_statistics(terms, chunk_id))


__all__ = ["EMBEDDING_CACHE_FILE", "LocalEngine", "LocalScope"]
