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
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DuplicateIdError, NotACollectionError
from ...filters import Node, matches
from ...index import DEFAULT_SPEC
from ...lexical import TOKENIZER_VERSION, tokenize
from ...types import (
    Candidate,
    ChunkRow,
    Document,
    DocumentRow,
    FileState,
    RetrievalPlan,
    Retrieved,
    Scope,
    StoredChunk,
    TermStatistics,
)
from ..retrieval import candidate_chunks, vectors_wanted
from . import rechunking, reembedding
from .candidates import LocalScope, Retrievers
from .damage import damage
from .facet_index import compile_filter
from .facets import MemoryFacets
from .lexical_arrays import LexicalArrays
from .locking import WriteLock
from .repair import StoreCare
from .schema import DB_NAME, FORMAT_VERSION, migrate, needs_migration
from .store import Store
from .vectors import DerivedIndex, check_spec

EMBEDDING_CACHE_FILE = "embedding_cache.sqlite"


class LocalEngine(StoreCare):
    """The :class:`semsearch.engine.Engine` of a collection folder (``verify``, ``repair``: :mod:`.repair`).

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
        if not self.warn_if_damaged() and needs_migration(manifest, TOKENIZER_VERSION):
            with self.lock, self.store.write() as con:
                # Read again under the lock: another process may have migrated meanwhile.
                current = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM manifest")}
                migrate(con, TOKENIZER_VERSION, int(current.get("format_version", 1)), current.get("lexical_tokenizer"))
                self.store.set_manifest({"format_version": FORMAT_VERSION, "lexical_tokenizer": TOKENIZER_VERSION}, con)
        self._opened()

    def _opened(self) -> None:
        self.manifest = self.store.manifest()
        self._embeddings_id = self.manifest.get(reembedding.EMBEDDINGS_ID)
        self._seen = threading.local()  # per thread (one SQLite connection each): the data_version checked
        self.index = DerivedIndex(self.folder, self.store, int(self.manifest["dimension"]), self.manifest["index"],
                                  self.lock)
        # BM25 from the arrays a writer saved (mapped), or built in memory once FTS5 has spent as
        # long as building them would take (lexical_arrays.py).
        self.bm25 = LexicalArrays(self.store, self.lock)
        # This process changed the collection: its close saves the BM25 arrays.
        self._wrote = getattr(self, "_wrote", False)
        self.facets = MemoryFacets(self.store)
        self.retrievers = Retrievers(self.store, self.index, self.bm25, self.facets)
        self.facet_index, self.lexical_index = self.retrievers.facet_index, self.retrievers.lexical_index

    # -- life cycle -----------------------------------------------------------------------
    def manifest_for(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return {**manifest, "format_version": FORMAT_VERSION, "lexical_tokenizer": TOKENIZER_VERSION}

    def create(self, manifest: dict[str, Any]) -> None:
        self.check_index(manifest["index"], int(manifest["dimension"]))
        self.store = Store(self.folder, create=True)
        self.lock = WriteLock(self.folder, self._lock_timeout)
        with self.lock:
            if not self.store.manifest():  # another process may have created it meanwhile
                self.store.set_manifest(self.manifest_for(manifest))
        self._opened()

    def check_index(self, spec: str, dimension: int) -> None:
        check_spec(spec, dimension)

    def set_index(self, spec: str) -> None:
        """Crash-safe: the manifest change commits first; an index file of the old spec is then
        treated as stale and rebuilt from the store, so a kill leaves the old spec or the new one."""
        assert self.manifest is not None
        self.check_index(spec, int(self.manifest["dimension"]))
        self.check_writable()
        with self.lock:
            self.store.set_manifest({"index": spec})
            self.manifest = self.store.manifest()
            self.index.set_spec(spec)

    def reembed(self, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *, batch: int = 4096,
                progress: Callable[[int, int], None] | None = None,
                split: rechunking.Split | None = None) -> reembedding.ReindexReport:
        """A staged set swapped in by one transaction (:mod:`.reembedding`; re-chunked: :mod:`.rechunking`)."""
        self.check_writable()
        self._wrote = True
        return rechunking.reembed(self, target, encode, batch=batch, progress=progress, split=split)

    def reload(self) -> None:
        self._opened()

    def _check_current(self) -> None:
        """Follow what another process (or another collection object) changed since this thread last
        looked: EmbeddingsReplacedError if it re-encoded the collection (the facade then reopens); its
        index spec (the index it rebuilt is loaded) and the rest of its manifest otherwise. One cheap
        call when nothing changed (the store's data_version); a failed check is made again next time."""
        version = self.store.data_version()
        if version == getattr(self._seen, "version", None):
            return
        with self.store.read() as con:
            reembedding.check_embeddings(con, self._embeddings_id, self.folder)
            manifest = self.store.manifest()
        if manifest["index"] != self.index.spec:
            self.index.follow_spec(manifest["index"])
        self.manifest = manifest
        self._seen.version = version

    def update_manifest(self, values: Mapping[str, Any]) -> None:
        self.check_writable()
        with self.lock:
            self.store.set_manifest(dict(values))
        self.manifest = self.store.manifest()

    def flush(self, lock_timeout: float | None = None, lexical: bool = True) -> None:
        """Save the vector index and (``lexical``) the BM25 arrays where they are behind the store."""
        self.check_writable()  # saving the index also trims the store's change log
        self.lock.acquire(timeout=lock_timeout)
        try:
            if lexical:  # first: it pins the change log where its arrays are, before the index trims it
                self.bm25.save()
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

    def info(self) -> dict[str, Any]:
        """Raises EmbeddingsReplacedError when another process re-encoded the collection."""
        assert self.manifest is not None
        self._check_current()
        return {
            "path": str(self.folder),
            "index_details": self.index.saved_details(),
            "lexical_details": self.bm25.saved_details(),
            "size_bytes": self.store.size_on_disk(),
            "format_version": self.manifest.get("format_version"),
            "lexical_tokenizer": self.manifest.get("lexical_tokenizer"),
            **({"reindex_pending": waiting} if (waiting := reembedding.pending(self)) else {}),
            **({"store_damaged": record} if (record := damage(self.folder)) is not None else {}),
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
            # A process that only searched saves no BM25 arrays (a build at 1M chunks takes a minute).
            wrote = self._wrote
            if (self.index.unsaved() or (wrote and self.bm25.unsaved())) and damage(self.folder) is None:
                self.flush(lock_timeout=1.0, lexical=wrote)
        except Exception as exc:  # closing must not lose the caller's real error
            logging.getLogger(__name__).warning("could not save the vector index or BM25 arrays of %s: %s",
                                                self.folder, exc)
        self.store.close()

    def drop(self) -> None:
        """Delete the collection's files (under the write lock), then the folder if nothing else is in it."""
        if self.manifest is None:
            return
        with self.lock:
            self.store.close()
            for pattern in (f"{DB_NAME}*", "vectors-*", "vectors.json", f"{EMBEDDING_CACHE_FILE}*", "lexical-*",
                            "lexical.json*"):
                for file in self.folder.glob(pattern):
                    file.unlink(missing_ok=True)
        (self.folder / "write.lock").unlink(missing_ok=True)
        self.manifest = None
        if not any(self.folder.iterdir()):
            self.folder.rmdir()

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The write lock, and a save of the vector index when it has fallen far behind
        (StoreDamagedError, nothing written, when the store is known to be damaged)."""
        self.check_writable()
        self.lock.acquire()
        try:
            self._wrote = True
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
                matching = [d.id for d in self.facet_index.documents(compile_filter(where))]
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
            return self.facet_index.documents(None if where is None else compile_filter(where), limit)
        return [d for d in self.store.documents(list(ids)) if matches(where, d.metadata, d.text)][:limit]

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        return self.store.chunks(chunk_ids)

    def vectors(self, chunk_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.manifest is not None
        self._check_current()
        return self.store.embeddings(np.asarray(chunk_ids, dtype=np.int64), int(self.manifest["dimension"]))

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        return self.store.chunk_ids_of(doc_ids)

    def export(self, batch: int = 1000) -> Iterator[list[DocumentRow]]:
        """Every document with its chunks and embeddings, in insertion order, read in one snapshot.
        Raises EmbeddingsReplacedError (when the first batch is asked) if another process re-encoded it."""
        assert self.manifest is not None
        self._check_current()
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

    # -- the search path -----------------------------------------------------------------
    def retrieve(self, plan: RetrievalPlan) -> list[Retrieved]:
        """One search's candidates and what the stages read, from one read of each structure: the
        filter resolved once, the vector index and BM25 searched for every query, then the asked
        vectors and chunks of all queries' candidates in one store read each."""
        n = plan.queries
        self._check_current()
        scope = self.scope(plan.where)
        if scope.empty or n == 0:
            return [Retrieved() for _ in range(n)]
        none: list[list[Candidate]] = [[] for _ in range(n)]
        dense = self.dense_candidates(plan.vectors, plan.dense, scope) if plan.dense and plan.vectors is not None \
            else none
        lexical = self.lexical_candidates(plan.texts, plan.lexical, scope) if plan.lexical and plan.texts is not None \
            else none
        out = [Retrieved(dense[i], lexical[i]) for i in range(n)]
        if plan.statistics and plan.texts is not None:
            for text, r in zip(plan.texts, out):
                # BM25's best hit in the whole collection, not in the filtered set: a document's
                # score must not depend on which others a filter removed.
                if text:
                    best = (r.lexical[0].chunk_id if r.lexical else None) if plan.where is None \
                        else self.retrievers.best_chunk(text)
                    r.statistics = self.term_statistics(tokenize(text), best)
        wanted = vectors_wanted(out, plan.vectors_of)
        if wanted:
            ids, vecs = self.vectors(np.fromiter(wanted, dtype=np.int64, count=len(wanted)))
            found = dict(zip(ids.tolist(), vecs))
            for r in out:
                r.vectors = {c: found[c] for c in candidate_chunks(r, plan.vectors_of) if c in found}
        if plan.chunks:
            chunks = self.chunks(sorted({c for r in out for c in candidate_chunks(r, "all")}))
            for r in out:
                r.chunks = {c: chunks[c] for c in candidate_chunks(r, "all") if c in chunks}
        return out

    # -- candidates (the roles retrieve combines) ----------------------------------------
    def scope(self, where: Node | None) -> LocalScope:
        return self.retrievers.scope(where)

    def dense_candidates(self, vectors: np.ndarray, n: int, scope: Scope) -> list[list[Candidate]]:
        assert isinstance(scope, LocalScope)
        self._check_current()
        return self.retrievers.dense(vectors, n, scope)

    def lexical_candidates(self, texts: Sequence[str], n: int, scope: Scope) -> list[list[Candidate]]:
        assert isinstance(scope, LocalScope)
        return [self.retrievers.lexical(text, n, scope) for text in texts]

    def term_statistics(self, terms: Sequence[str], chunk_id: int | None) -> TermStatistics:
        """The terms' chunk frequencies and the terms of chunk ``chunk_id`` (none for None)."""
        return self.retrievers.term_statistics(terms, chunk_id)


__all__ = ["EMBEDDING_CACHE_FILE", "LocalEngine", "LocalScope"]
