"""Collection: a folder of documents searchable by meaning.

The SQLite store is the truth; the vector index is a cache derived from it, caught up from
the store's change log whenever it is behind (after a crash, or after another process wrote).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from . import __version__
from .embedding import DEFAULT_MODEL, Embedder, canonical_model_name
from .embedding_cache import CACHE_FILE as EMBEDDING_CACHE_FILE
from .embedding_cache import DiskEmbeddingCache
from .errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    ModelMismatchError,
    NotACollectionError,
)
from .index import DEFAULT_SPEC, VectorIndex, load_index, make_index
from .locking import ReadWriteLock, WriteLock
from .retrieval.bm25 import MemoryBM25
from .retrieval.lexical import TOKENIZER_VERSION
from .store import DB_NAME, FORMAT_VERSION, ChunkRow, DocumentRow, Store, validate_metadata

log = logging.getLogger(__name__)

INDEX_META = "vectors.json"
#: A filter matching at most this many chunks is searched by scoring them all exactly.
EXACT_SCAN_LIMIT = 20_000


@dataclass
class Hit:
    """One search result. ``score`` is a similarity: higher is better, always."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    source: str | None
    chunk: int = 0
    start: int = 0
    end: int = 0
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Document:
    """A stored document, as ``get`` returns it."""

    id: str
    text: str
    metadata: dict[str, Any]
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexReport:
    """What ``index_files`` did."""

    files_added: int = 0
    files_replaced: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    documents: int = 0
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Collection:
    """Documents, their chunks and embeddings in one folder, searchable by meaning.

    >>> col = Collection("./my-index")                       # doctest: +SKIP
    >>> col.add(["budget-friendly lodging by the coast"], ids=["h1"])   # doctest: +SKIP
    >>> col.search("affordable accommodation near the beach", k=3)      # doctest: +SKIP

    Args:
        path: the collection folder (created on first use unless ``create=False``).
        model: a sentence-transformers model name or path. ``None`` means the model the
            collection was built with, or all-MiniLM-L6-v2 for a new collection.
        create: create the collection when the folder does not hold one.
        index: the vector index spec: "auto" (default for new collections: exact search below
            100k vectors, then IVF tuned to recall@10 >= 0.95; "auto:2GB" adds a memory budget),
            a FAISS index_factory string ("Flat", "IVF4096,Flat", "IVF4096,PQ48", "HNSW32",
            "SQ8"/"int8", ...) or "binary" / "binary,SQ8". Giving another spec than an
            existing collection's rebuilds its index from the stored vectors (no re-encoding).
        chunk_size: maximum tokens per chunk (default: what the model reads at once).
        chunk_overlap: tokens shared by consecutive chunks of a long document.
        precision: "auto" (the fastest that agrees with fp32: bf16 where the CPU or GPU
            computes it natively), "fp32", "bf16" or "fp16".
        engine: "auto" (OpenVINO on CPUs when it is installed and agrees with torch, else
            torch), "torch" or "openvino".
        device: "cpu", "cuda", ... (default: the best available).
        lock_timeout: seconds to wait for another process's write before giving up.
        progress: show a progress bar while encoding (default: on a terminal, for 512+ chunks).
        backend: "local" (this folder: SQLite + FAISS) or "milvus"; with "milvus", ``path`` names
            the collection and ``uri`` is a Milvus Lite file ("./milvus.db") or a server
            ("http://host:19530", with ``token``): the object returned has the same methods.
        embedding_cache: how many chunk embeddings to keep in the folder's embedding cache, so
            re-indexing unchanged text does not encode it again (0 turns the cache off).

    Raises:
        NotACollectionError: the folder exists but holds something else, or ``create=False``.
        ModelMismatchError: ``model`` differs from the model the collection was built with.
    """

    def __new__(
        cls, path: str | os.PathLike[str], model: str | None = None, *, backend: str = "local",
        uri: str | None = None, token: str | None = None, **kwargs: Any,
    ) -> Any:
        # backend="milvus" gives the same interface on Milvus (Lite or a cluster); see backends/.
        if backend != "local" or uri is not None or token is not None:
            from .backends import open_collection

            return open_collection(path, model, backend=backend, uri=uri, token=token, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: str | None = None,
        *,
        backend: str = "local",
        uri: str | None = None,
        token: str | None = None,
        create: bool = True,
        index: str | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        precision: str = "auto",
        device: str | None = None,
        batch_size: int | None = None,
        engine: str = "auto",
        lock_timeout: float = 60.0,
        progress: bool | None = None,
        index_save_every: int = 200_000,
        embedding_cache: int = 1_000_000,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if self.path.exists() and not self.path.is_dir():
            raise NotACollectionError(f"{self.path} is a file, not a collection folder; give a folder path")
        db = self.path / DB_NAME
        if not db.exists() and not create:
            raise NotACollectionError(
                f"{self.path} is not a semsearch collection (no {DB_NAME}); check the path, "
                "or index documents into it to create one"
            )
        if not db.exists() and self.path.exists() and any(self.path.iterdir()):
            if not any(p.name.startswith(DB_NAME) for p in self.path.iterdir()):
                raise NotACollectionError(
                    f"{self.path} is a non-empty folder that is not a semsearch collection; "
                    "choose an empty or new folder for a collection"
                )
        self._progress = progress
        self._index_save_every = index_save_every
        self._lock = WriteLock(self.path, lock_timeout) if self.path.exists() else None
        self._index: VectorIndex | None = None
        self._index_seq = 0
        self._index_saved_seq = 0
        self._index_lock = ReadWriteLock()
        self._chunker = None
        change_index_to = None

        if db.exists():
            self.store = Store(self.path, create=False)
            self.manifest = self.store.manifest()
            if not self.manifest:
                raise NotACollectionError(f"{self.path} holds an empty collection database; delete the folder and index again")
            recorded = self.manifest["model"]
            if model is not None and canonical_model_name(model) != recorded:
                raise ModelMismatchError(
                    f"{self.path} was built with model {recorded!r} (dimension {self.manifest['dimension']}); "
                    f"you asked for {canonical_model_name(model)!r}. Open it without a model to use "
                    f"{recorded!r}, or index into a new collection to use the other model"
                )
            if self.manifest.get("format_version", 0) > FORMAT_VERSION:
                raise NotACollectionError(
                    f"{self.path} was written by a newer semsearch (format {self.manifest['format_version']}); upgrade semsearch"
                )
            self._migrate()
            self.embedder = Embedder(
                recorded, device=device, precision=precision, batch_size=batch_size, engine=engine,
                expect_dimension=int(self.manifest["dimension"]),
            )
            change_index_to = index if index is not None and index != self.manifest["index"] else None
        else:
            self.embedder = Embedder(model or DEFAULT_MODEL, device=device, precision=precision, batch_size=batch_size,
                                     engine=engine)
            info = self.embedder.info()  # loads the model: a new collection must know its dimension
            max_tokens = info.max_seq_length - 2  # room for [CLS] and [SEP]
            size = chunk_size or max_tokens
            if size > max_tokens:
                raise InvalidInputError(
                    f"chunk_size {size} is more than {self.embedder.name} reads ({max_tokens} tokens); use at most {max_tokens}"
                )
            manifest = {
                "format_version": FORMAT_VERSION,
                "model": self.embedder.name,
                "dimension": info.dimension,
                "normalized": True,
                "similarity": "cosine",
                "prompts": info.prompts,
                "max_seq_length": info.max_seq_length,
                "chunk_size": size,
                "chunk_overlap": chunk_overlap if chunk_overlap is not None else size // 8,
                "index": index or DEFAULT_SPEC,
                "lexical_tokenizer": TOKENIZER_VERSION,
                "created_with": f"semsearch {__version__}",
                "created_at": time.time(),
            }
            make_index(manifest["index"], manifest["dimension"])  # reject a bad spec before creating anything
            self.store = Store(self.path, create=True)
            self._lock = WriteLock(self.path, lock_timeout)
            with self._lock:
                if not self.store.manifest():  # another process may have created it meanwhile
                    self.store.set_manifest(manifest)
            self.manifest = self.store.manifest()
        self.dimension = int(self.manifest["dimension"])
        # BM25 in memory once FTS5 has spent as long as building it would take (retrieval/bm25.py).
        self.lexical = MemoryBM25(self.store)
        if embedding_cache > 0:
            self.embedder.cache = DiskEmbeddingCache(self.path / EMBEDDING_CACHE_FILE, max_entries=embedding_cache)
        if db.exists() and change_index_to is not None:
            self.set_index(change_index_to)
        if chunk_size is not None and chunk_size != self.manifest["chunk_size"] and db.exists():
            raise InvalidInputError(
                f"{self.path} chunks at {self.manifest['chunk_size']} tokens; re-chunking an existing collection "
                "is not supported, index into a new collection to change chunk_size"
            )

    def _migrate(self) -> None:
        """Upgrade an older collection's format in place (one transaction, under the write lock)."""
        if self.manifest.get("format_version", 1) >= FORMAT_VERSION and self.manifest.get("lexical_tokenizer") == TOKENIZER_VERSION:
            return
        assert self._lock is not None
        with self._lock:
            if self.store.migrate(TOKENIZER_VERSION):
                log.info("upgraded %s to collection format %d", self.path, FORMAT_VERSION)
        self.manifest = self.store.manifest()

    # -- context management ------------------------------------------------------------
    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Collection({str(self.path)!r}, model={self.manifest['model']!r})"

    def close(self) -> None:
        """Bring the saved vector index up to date (best effort) and release resources."""
        try:
            if self.store.head() > self._index_saved_seq_on_disk():
                self.flush(lock_timeout=1.0)
        except Exception as exc:  # closing must not lose the caller's real error
            log.warning("could not save the vector index of %s: %s", self.path, exc)
        self.store.close()
        if self.embedder.cache is not None:
            self.embedder.cache.close()

    # -- writing -----------------------------------------------------------------------
    def add(
        self,
        documents: str | Sequence[str],
        ids: str | Sequence[str] | None = None,
        metadatas: dict[str, Any] | Sequence[dict[str, Any] | None] | None = None,
        embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
        sources: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Add new documents; returns their ids. Durable once it returns.

        Long documents are split into chunks. With ``embeddings`` (one per document, of the
        collection's dimension) nothing is encoded and documents are not chunked.

        Raises:
            InvalidInputError: empty text, an id that already exists (use ``upsert``),
                mismatched lengths, bad metadata.
            DimensionMismatchError: embeddings of another dimension.
            CollectionBusyError: another process kept the collection busy past lock_timeout.
        """
        return self._write(documents, ids, metadatas, embeddings, sources, replace=False)

    def upsert(
        self,
        documents: str | Sequence[str],
        ids: str | Sequence[str],
        metadatas: dict[str, Any] | Sequence[dict[str, Any] | None] | None = None,
        embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
        sources: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Add documents, replacing any that already have these ids."""
        if ids is None:
            raise InvalidInputError("upsert needs ids: they say which documents to replace")
        return self._write(documents, ids, metadatas, embeddings, sources, replace=True)

    def delete(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        where: dict[str, Any] | str | None = None,
        where_document: dict[str, Any] | str | None = None,
    ) -> int:
        """Delete documents by id and/or every document matching a filter; returns how many.

        With both ids and a filter, only the listed documents that match are deleted. Unknown
        ids are ignored. Calling it with neither is an error (it never means "everything").

        Raises:
            InvalidInputError: no ids and no filter, or a malformed filter.
        """
        from .filters import combine, parse_where, parse_where_document

        node = combine(parse_where(where), parse_where_document(where_document))
        if ids is None and node is None:
            raise InvalidInputError("delete needs ids or a where/where_document filter; nothing was deleted")
        id_list = None if ids is None else ([ids] if isinstance(ids, str) else list(ids))
        if id_list is not None and not id_list:
            return 0
        with self._writing():
            with self.store.write() as con:
                if node is not None:
                    # Resolved inside the write transaction, so what is deleted is what matched.
                    matching = self.store.filtered_document_ids(node)
                    if id_list is not None:
                        wanted = set(id_list)
                        matching = [i for i in matching if i in wanted]
                    id_list = matching
                n = self.store.delete_documents(con, id_list)
        return n

    def delete_source(self, source: str | os.PathLike[str]) -> int:
        """Delete every document indexed from a file; returns how many there were."""
        path = str(Path(source).expanduser().resolve()) if Path(source).expanduser().exists() else str(source)
        with self._writing():
            with self.store.write() as con:
                n = self.store.delete_source(con, path)
        return n

    def _write(
        self,
        documents: str | Sequence[str],
        ids: str | Sequence[str] | None,
        metadatas: Any,
        embeddings: Any,
        sources: Sequence[str | None] | None,
        *,
        replace: bool,
    ) -> list[str]:
        rows = document_rows(documents, ids, metadatas, sources)
        if not rows:
            return []
        n, id_list = len(rows), [r.id for r in rows]
        if embeddings is not None:
            vectors = self._check_embeddings(embeddings, n)
            for row, vec in zip(rows, vectors):
                row.chunks = [ChunkRow(0, 0, len(row.text), vec)]
        else:
            self._chunk_and_encode(rows)
        if not replace:
            # Checked before taking the lock too, so a duplicate fails fast without waiting.
            self._reject_existing(self.store.con, id_list)
        with self._writing():
            with self.store.write() as con:
                if replace:
                    self.store.delete_documents(con, id_list)
                else:
                    self._reject_existing(con, id_list)
                self.store.insert_documents(con, rows)
        return id_list

    def _reject_existing(self, con: Any, ids: Sequence[str]) -> None:
        existing = self.store.existing_ids(con, ids)
        if existing:
            raise DuplicateIdError(
                f"{len(existing)} id(s) already exist in the collection (first: {existing[0]!r}); "
                "use upsert to replace them, or choose new ids"
            )

    def _check_embeddings(self, embeddings: Any, n: int) -> np.ndarray:
        vectors = np.asarray(embeddings, dtype=np.float32)
        if vectors.ndim == 1 and n == 1:
            vectors = vectors[None, :]
        if vectors.ndim != 2 or vectors.shape[0] != n:
            raise InvalidInputError(f"got {n} documents but embeddings of shape {vectors.shape}; give one row per document")
        if vectors.shape[1] != self.dimension:
            raise DimensionMismatchError(
                f"embeddings have dimension {vectors.shape[1]} but the collection holds dimension {self.dimension} "
                f"({self.manifest['model']}); encode with that model or use another collection"
            )
        if not np.all(np.isfinite(vectors)):
            raise InvalidInputError("embeddings contain NaN or infinite values; check how they were computed")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise InvalidInputError("an embedding is all zeros; it has no direction to search by")
        return vectors / norms

    @property
    def chunker(self) -> Any:
        if self._chunker is None:
            from .ingest.chunking import Chunker

            self._chunker = Chunker(
                self.embedder.plain_tokenizer, int(self.manifest["chunk_size"]), int(self.manifest["chunk_overlap"])
            )
        return self._chunker

    def _chunk_and_encode(self, rows: list[DocumentRow]) -> None:
        pieces = self.chunker.split_many([r.text for r in rows])
        for row, chunks in zip(rows, pieces):
            row.chunks = [ChunkRow(c.position, c.start, c.end, None) for c in chunks]  # type: ignore[arg-type]
        self._encode_chunks(rows)

    def _encode_chunks(self, rows: list[DocumentRow]) -> None:
        """Fill in the embedding of every chunk of these rows, in one batched call."""
        texts = [row.text[c.start : c.end] for row in rows for c in row.chunks]
        show = self._progress if self._progress is not None else (sys.stderr.isatty() and len(texts) >= 512)
        vectors = self.embedder.encode_documents(texts, show_progress=show)
        i = 0
        for row in rows:
            for c in row.chunks:
                c.embedding = vectors[i]
                i += 1

    class _WritingContext:
        def __init__(self, col: Collection) -> None:
            self.col = col

        def __enter__(self) -> None:
            self.col._lock.acquire()

        def __exit__(self, *exc: object) -> None:
            try:
                col = self.col
                if col._index is not None and col.store.head() - col._index_saved_seq >= col._index_save_every:
                    # Searches in other threads read the index: change it only under the index write lock.
                    col._index_lock.acquire_write()
                    try:
                        col._sync_index()
                    finally:
                        col._index_lock.release_write()
                    col._rebuild_if_wanted()
                    col._index_lock.acquire_write()
                    try:
                        col._save_index()
                    finally:
                        col._index_lock.release_write()
            finally:
                self.col._lock.release()

    def _writing(self) -> Collection._WritingContext:
        assert self._lock is not None
        return Collection._WritingContext(self)

    # -- reading -----------------------------------------------------------------------
    def count(self) -> int:
        """Number of documents."""
        return self.store.document_count()

    def get(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        where: dict[str, Any] | str | None = None,
        where_document: dict[str, Any] | str | None = None,
        limit: int | None = None,
    ) -> list[Document]:
        """Documents by id (in the order asked; unknown ids are left out) and/or by filter.

        With only ``where``/``where_document`` it returns every matching document (at most
        ``limit``), in the order they were added. See :mod:`semsearch.filters` for the filter
        language.

        Raises:
            InvalidInputError: a malformed filter (the message names the offending part).
        """
        from .filters import combine, matches, parse_where, parse_where_document

        node = combine(parse_where(where), parse_where_document(where_document))
        if ids is None:
            docs = self.store.filtered_documents(node, limit)
        else:
            ids = [ids] if isinstance(ids, str) else list(ids)
            docs = [d for d in self.store.documents(ids) if matches(node, d.metadata, d.text)][:limit]
        return [Document(d.id, d.text, d.metadata, d.source) for d in docs]

    @overload
    def search(self, query: str, k: int = 10, **options: Any) -> list[Hit]: ...
    @overload
    def search(self, query: Sequence[str], k: int = 10, **options: Any) -> list[list[Hit]]: ...
    @overload
    def search(self, query: np.ndarray, k: int = 10, **options: Any) -> list[Hit] | list[list[Hit]]: ...

    def search(
        self,
        query: Any,
        k: int = 10,
        *,
        where: dict[str, Any] | str | None = None,
        where_document: dict[str, Any] | str | None = None,
        mode: str | None = None,
        fusion: str = "adaptive",
        alpha: float = 0.7,
        rrf_k: float = 60.0,
        candidates: int = 100,
        rerank: str | None = None,
        rerank_top: int = 50,
        threshold: float | None = None,
        mmr: float | None = None,
    ) -> Any:
        """The k documents that best answer the query.

        A string gives a list of hits; a list of strings gives one list per query, encoded
        and searched as one batch. A 1-D (2-D) array is searched as one (several) query
        embeddings (dense mode only). Each document appears once, with its best chunk.

        Args:
            where: metadata filter, e.g. ``{"topic": "ml", "year": {"$gte": 2020}}``
                (see :mod:`semsearch.filters`); the hits are the true top-k among matches.
            where_document: document-text filter, e.g. ``{"$contains": "FAISS"}``.
            mode: "dense" (by meaning), "lexical" (BM25 on words) or "hybrid" (both, fused).
                Default: "hybrid" for text queries, "dense" for embeddings.
            fusion: how hybrid fuses: "adaptive" (default; weighs each retriever per query
                by how confident it is), "rrf" (reciprocal rank fusion with ``rrf_k``) or
                "weighted" (min-max normalised scores, dense weight ``alpha``).
            candidates: how many documents each retriever contributes to fusion/reranking.
            rerank: a CrossEncoder model name or path; its score orders the top
                ``rerank_top`` candidates.
            threshold: drop hits whose final ``score`` is below it.
            mmr: maximal marginal relevance lambda in [0, 1] (1 = relevance only, lower =
                more diverse); reorders the candidates before the top k are taken.

        ``Hit.score`` is the last stage's score (cosine, BM25, fused, or cross-encoder);
        ``Hit.scores`` holds each stage's score and rank, e.g. ``dense``, ``dense_rank``,
        ``lexical``, ``lexical_rank``, ``hybrid``, ``rerank``.

        Raises:
            InvalidInputError: k < 1, an empty query, a bad option or filter, or a query
                embedding of the wrong dimension.
        """
        from .retrieval.search import SearchOptions, run_search

        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"k must be a whole number of at least 1, got {k!r}")
        texts: list[str] | None = None
        if isinstance(query, np.ndarray):
            single = query.ndim == 1
            vectors: np.ndarray | None = self._check_query_vectors(query)
        else:
            single = isinstance(query, str)
            texts = [query] if single else list(query)
            if not texts:
                raise InvalidInputError("no queries given; pass a string or a list of strings")
            for i, q in enumerate(texts):
                if not isinstance(q, str) or not q.strip():
                    raise InvalidInputError(f"query {i} is empty; give some text to search for")
            vectors = None
        options = SearchOptions.checked(
            k=int(k), where=where, where_document=where_document, mode=mode, has_text=texts is not None,
            fusion=fusion, alpha=alpha, rrf_k=rrf_k, candidates=candidates, rerank=rerank,
            rerank_top=rerank_top, threshold=threshold, mmr=mmr,
        )
        if vectors is None and options.mode != "lexical":
            vectors = self.embedder.encode_queries(texts)
        results = run_search(self, texts, vectors, options)
        return results[0] if single else results

    def _check_query_vectors(self, query: np.ndarray) -> np.ndarray:
        vectors = np.atleast_2d(np.asarray(query, dtype=np.float32))
        if vectors.shape[1] != self.dimension:
            raise DimensionMismatchError(
                f"query embedding has dimension {vectors.shape[1]} but the collection holds dimension {self.dimension}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _dense_candidates(self, vectors: np.ndarray, n: int, allow: np.ndarray | None) -> list[list[Any]]:
        """The n best documents per query vector (each through its best chunk), exact among ``allow``."""
        from .retrieval import Candidate

        self._ensure_index_current()
        self._index_lock.acquire_read()
        try:
            index = self._index
            assert index is not None
            total = len(index) if allow is None else len(allow)
            if total == 0:
                return [[] for _ in range(len(vectors))]
            if allow is not None and len(allow) <= EXACT_SCAN_LIMIT:
                # A small filtered subset: score all of it exactly, straight from the store.
                ids, embs = self.store.embeddings(allow, self.dimension)
                sims = vectors @ embs.T
                order = np.argsort(-sims, axis=1, kind="stable")
                scores, ids = np.take_along_axis(sims, order, axis=1), ids[order]
                fetch = total
            else:
                # Most documents are one chunk; fetch more only when chunks of one document crowd out others.
                fetch = min(total, n)
                scores, ids = index.search(vectors, fetch, allow=allow)
            while True:
                chunk_docs = self.store.chunk_documents(np.unique(ids[ids >= 0]).tolist())
                results = []
                for srow, irow in zip(scores.tolist(), ids.tolist()):
                    seen: set[str] = set()
                    found = []
                    for score, cid in zip(srow, irow):
                        doc = chunk_docs.get(cid)
                        if cid < 0 or doc is None or doc in seen:
                            continue
                        seen.add(doc)
                        found.append(Candidate(doc, cid, float(score)))
                        if len(found) == n:
                            break
                    results.append(found)
                if fetch >= total or all(len(r) >= n for r in results):
                    return results
                fetch = min(total, fetch * 4)
                scores, ids = index.search(vectors, fetch, allow=allow)
        finally:
            self._index_lock.release_read()

    # -- the derived vector index ------------------------------------------------------
    def _index_meta_path(self) -> Path:
        return self.path / INDEX_META

    def _index_saved_seq_on_disk(self) -> int:
        try:
            return int(json.loads(self._index_meta_path().read_text())["seq"])
        except (OSError, ValueError, KeyError):
            return -1

    def _ensure_index_current(self) -> None:
        if self._index is not None and self._index_seq == self.store.head():
            return
        self._index_lock.acquire_write()
        try:
            self._sync_index()
        finally:
            self._index_lock.release_write()

    def _sync_index(self) -> None:
        """Load, catch up or rebuild the vector index so it holds exactly the store's chunks."""
        if self._index is None or self._index_seq < self.store.changes_floor():
            self._load_index()
        if self._index_seq < self.store.head():
            changes = self.store.changes_since(self._index_seq)
            assert self._index is not None
            self._index.remove(changes.removed)
            ids, vectors = self.store.embeddings(changes.added, self.dimension)
            self._index.add(ids, vectors)
            self._index_seq = changes.head

    def _load_index(self) -> None:
        # Another process may have changed the index spec since we opened the collection.
        self.manifest = self.store.manifest()
        spec = self.manifest["index"]
        meta_path = self._index_meta_path()
        floor = self.store.changes_floor()
        try:
            meta = json.loads(meta_path.read_text())
            if meta["spec"] != spec or meta["dim"] != self.dimension or meta["seq"] < floor or meta["seq"] > self.store.head():
                raise ValueError("stale or foreign index file")
            self._index = load_index(self.path / meta["file"], spec, self.dimension, meta.get("factory"))
            self._index_seq = self._index_saved_seq = int(meta["seq"])
            if len(self._index) != meta["count"]:
                raise ValueError("index file does not hold what its metadata says")
        except FileNotFoundError:
            self._rebuild_index()
        except Exception as exc:  # any damage to a derived cache is repaired from the store
            if meta_path.exists():
                log.warning("rebuilding the vector index of %s from the store (%s)", self.path, exc)
            self._rebuild_index()

    def _rebuild_index(self) -> None:
        from .index.build import build_from_store

        index, head = build_from_store(self.store, self.manifest["index"], self.dimension)
        self._index, self._index_seq, self._index_saved_seq = index, head, -1

    def _rebuild_if_wanted(self) -> None:
        """Rebuild from the store when the index asks (trainable now, grown 2x, tombstones...).

        Called with the collection's write lock held (nothing changes the store meanwhile);
        searches keep using the old index until the new one is swapped in.
        """
        assert self._index is not None
        reason = self._index.wants_rebuild()
        if not reason:
            return
        from .index.build import build_from_store

        log.info("rebuilding the vector index of %s: %s", self.path, reason)
        index, head = build_from_store(self.store, self.manifest["index"], self.dimension)
        self._index_lock.acquire_write()
        try:
            self._index, self._index_seq, self._index_saved_seq = index, head, -1
            self._sync_index()
        finally:
            self._index_lock.release_write()

    def set_index(self, spec: str) -> None:
        """Change the index spec; rebuilds the index from the stored vectors (no re-encoding).

        Crash-safe: the manifest change commits first; an index file of the old spec is then
        treated as stale and rebuilt from the store on next use, so a kill at any point
        leaves either the old spec or the new one, never a mix.

        Raises:
            InvalidInputError: a spec semsearch cannot build (nothing is changed).
            CollectionBusyError: another process kept the collection busy past lock_timeout.
        """
        from .index import parse_spec
        from .index.build import build_from_store

        parse_spec(spec, self.dimension)
        make_index(spec, self.dimension)  # reject a bad spec before changing anything
        assert self._lock is not None
        with self._lock:
            self.store.set_manifest({"index": spec})
            self.manifest = self.store.manifest()
            index, head = build_from_store(self.store, spec, self.dimension)
            self._index_lock.acquire_write()
            try:
                self._index, self._index_seq, self._index_saved_seq = index, head, -1
                self._sync_index()
                self._save_index()
            finally:
                self._index_lock.release_write()

    def _save_index(self) -> None:
        """Write the index (atomically) and forget the change-log entries it contains.

        Called with the collection's write lock held, after catching up, so the saved
        index is never behind one already on disk.
        """
        assert self._index is not None
        seq = self._index_seq
        name = f"vectors-{seq}.faiss"
        self._index.save(self.path / name)
        meta = {
            "spec": self._index.spec, "factory": self._index.factory, "dim": self.dimension, "seq": seq,
            "file": name, "count": len(self._index), "describe": self._index.describe(),
            "file_bytes": sum(p.stat().st_size for p in self.path.glob(f"{name}*") if not p.name.endswith(".tmp")),
        }
        tmp = self._index_meta_path().with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._index_meta_path())
        from .store import _fsync_dir

        _fsync_dir(self.path)
        for old in self.path.glob("vectors-*.faiss*"):
            if not old.name.startswith(name):  # keep this index's own side files (name.meta.json...)
                old.unlink(missing_ok=True)
        self.store.truncate_changes(seq)
        self._index_saved_seq = seq

    def flush(self, lock_timeout: float | None = None) -> None:
        """Bring the vector index up to date with the store and save it to disk.

        Raises:
            CollectionBusyError: another process is writing (waited ``lock_timeout`` seconds).
        """
        assert self._lock is not None
        self._lock.acquire(timeout=lock_timeout)
        try:
            self._index_lock.acquire_write()
            try:
                self._sync_index()
            finally:
                self._index_lock.release_write()
            self._rebuild_if_wanted()
            self._index_lock.acquire_write()
            try:
                if self._index_saved_seq != self._index_seq or self._index_saved_seq_on_disk() != self._index_seq:
                    self._save_index()
            finally:
                self._index_lock.release_write()
        finally:
            self._lock.release()

    def _saved_index_details(self) -> dict[str, Any]:
        """The saved index's description (type, bytes per vector, tuning), without loading it."""
        try:
            meta = json.loads(self._index_meta_path().read_text())
        except (OSError, ValueError):
            return {}
        details = dict(meta.get("describe", {}))
        if meta.get("count"):
            details["file_bytes_per_vector"] = round(meta.get("file_bytes", 0) / meta["count"], 1)
        return details

    def verify(self) -> dict[str, Any]:
        """Check that the vector index holds exactly the store's chunks; repairs it if not."""
        self._ensure_index_current()
        with self.store.read():
            count = self.store.chunk_count()
        assert self._index is not None
        ok = len(self._index) == count
        if not ok:
            self._index_lock.acquire_write()
            try:
                self._rebuild_index()
            finally:
                self._index_lock.release_write()
        return {"chunks": count, "vectors": len(self._index), "consistent": ok}

    # -- ingestion from files ----------------------------------------------------------
    def index_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        options: Any = None,
        *,
        prune: bool = True,
        batch_chunks: int = 8192,
    ) -> IndexReport:
        """Index files and folders (.txt .md .html .pdf .csv .jsonl).

        Unchanged files (same content hash) are skipped, changed ones replaced, and with
        ``prune`` documents of files that disappeared from an indexed folder are removed.
        Every file is loaded and checked before anything is written, so a malformed file
        stops the run with the collection as it was. Binary, undecodable and empty files
        are skipped with a warning. Files are committed in batches: after a crash, running
        the same command again finishes the job.
        """
        from .ingest import loaders
        from .ingest.plan import chunk_pending, load_changed_files

        started = time.perf_counter()
        options = options or loaders.LoadOptions()
        path_list = [Path(p).expanduser() for p in paths]
        report = IndexReport()
        known = self.store.source_hashes()
        files, pending = load_changed_files(path_list, options, known, report)
        self._check_unique_ids(pending)

        seen = {str(f) for f in files}
        gone: list[str] = []
        if prune:
            for folder in (p.resolve() for p in path_list if p.is_dir()):
                prefix = str(folder) + os.sep
                gone.extend(s for s in self.store.document_ids_for_source_prefix(prefix) if s not in seen)

        # Chunk everything first (fast), then encode and commit whole files in batches.
        chunk_pending(self.chunker, pending)
        batch: list[tuple[str, str, list[DocumentRow]]] = []
        size = 0
        for item in pending:
            batch.append(item)
            size += sum(len(r.chunks) for r in item[2])
            if size >= batch_chunks:
                self._commit_files(batch, known, report)
                batch, size = [], 0
        if batch:
            self._commit_files(batch, known, report)
        if gone:
            with self._writing():
                with self.store.write() as con:
                    for source in gone:
                        self.store.delete_source(con, source)
            report.files_removed = len(gone)
        report.seconds = time.perf_counter() - started
        return report

    def _check_unique_ids(self, pending: list[tuple[str, str, list[DocumentRow]]]) -> None:
        owner: dict[str, str] = {}
        for key, _, rows in pending:
            for row in rows:
                if row.id in owner:
                    other = owner[row.id]
                    where = "twice in" if other == key else f"in both {other} and"
                    raise InvalidInputError(f"document id {row.id!r} appears {where} {key}; ids must be unique")
                owner[row.id] = key
        if not owner:
            return
        with self.store.read() as con:
            replaced = {key for key, _, _ in pending}
            for part_start in range(0, len(owner), 900):
                part = list(owner)[part_start : part_start + 900]
                q = f"SELECT id, source FROM documents WHERE id IN ({','.join('?' * len(part))})"
                for doc_id, source in con.execute(q, part):
                    if source not in replaced:
                        raise InvalidInputError(
                            f"document id {doc_id!r} from {owner[doc_id]} already exists, indexed from {source or 'the API'}; "
                            "ids must be unique across files (set --id-field, or remove the other document)"
                        )

    def _commit_files(
        self,
        batch: list[tuple[str, str, list[DocumentRow]]],
        known: dict[str, str],
        report: IndexReport,
    ) -> None:
        self._encode_chunks([row for _, _, rs in batch for row in rs])
        with self._writing():
            with self.store.write() as con:
                for key, digest, file_rows in batch:
                    if key in known:
                        self.store.delete_source(con, key)
                    self.store.insert_documents(con, file_rows)
                    self.store.record_source(con, key, digest)
        for key, _, file_rows in batch:
            if key in known:
                report.files_replaced += 1
            else:
                report.files_added += 1
            report.documents += len(file_rows)
            report.chunks += sum(len(r.chunks) for r in file_rows)

    # -- description -------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What the collection holds and how it was built."""
        with self.store.read():
            documents = self.store.document_count()
            chunks = self.store.chunk_count()
        m = self.manifest
        return {
            "path": str(self.path),
            "documents": documents,
            "chunks": chunks,
            "model": m["model"],
            "dimension": m["dimension"],
            "index": m["index"],
            "index_details": self._saved_index_details(),
            "chunk_size": m["chunk_size"],
            "chunk_overlap": m["chunk_overlap"],
            "prompts": m.get("prompts", {}),
            "size_bytes": self.store.size_on_disk(),
            "created_with": m.get("created_with"),
            "format_version": m.get("format_version"),
            "lexical_tokenizer": m.get("lexical_tokenizer"),
        }


def document_rows(documents: Any, ids: Any, metadatas: Any, sources: Any) -> list[DocumentRow]:
    """Checked rows (no chunks yet) for add/upsert, shared by every backend.

    Raises:
        InvalidInputError: mismatched lengths, a non-text or empty document, bad ids or metadata.
    """
    docs = _as_list(documents, "documents")
    n = len(docs)
    id_list = _check_ids(ids, n)
    metas = _check_metadatas(metadatas, n)
    srcs = list(sources) if sources is not None else [None] * n
    if len(srcs) != n:
        raise InvalidInputError(f"got {n} documents but {len(srcs)} sources; give one source per document")
    for i, text in enumerate(docs):
        if not isinstance(text, str):
            raise InvalidInputError(f"document {i} (id {id_list[i]!r}) is a {type(text).__name__}, not text")
        if not text.strip():
            raise InvalidInputError(
                f"document {i} (id {id_list[i]!r}) is empty or whitespace only; give it text or leave it out"
            )
    return [DocumentRow(id_list[i], docs[i], metas[i], srcs[i]) for i in range(n)]


def _as_list(values: Any, name: str) -> list[Any]:
    if isinstance(values, str):
        return [values]
    if values is None:
        raise InvalidInputError(f"{name} is None; pass a string or a list of strings")
    return list(values)


def _check_ids(ids: Any, n: int) -> list[str]:
    if ids is None:
        return [uuid.uuid4().hex for _ in range(n)]
    id_list = [ids] if isinstance(ids, str) else list(ids)
    if len(id_list) != n:
        raise InvalidInputError(f"got {n} documents but {len(id_list)} ids; give one id per document")
    for i, doc_id in enumerate(id_list):
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidInputError(f"id {i} is {doc_id!r}; ids must be non-empty strings")
    if len(set(id_list)) != n:
        seen: set[str] = set()
        dup = next(x for x in id_list if x in seen or seen.add(x))  # type: ignore[func-returns-value]
        raise InvalidInputError(f"id {dup!r} is given twice; ids must be unique")
    return id_list


def _check_metadatas(metadatas: Any, n: int) -> list[dict[str, Any]]:
    if metadatas is None:
        return [{} for _ in range(n)]
    metas = [metadatas] if isinstance(metadatas, dict) else list(metadatas)
    if len(metas) != n:
        raise InvalidInputError(f"got {n} documents but {len(metas)} metadatas; give one per document (or None)")
    return [validate_metadata(m, f"metadata of document {i}") for i, m in enumerate(metas)]
