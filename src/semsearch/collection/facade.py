"""Collection: documents searchable by meaning, written once for every backend.

The facade checks input, chunks and encodes, runs the ranking stages and builds hits; where
the data lives is the engine's business (:mod:`semsearch.engine`: ``backends/local`` keeps
SQLite as the truth with a derived FAISS index; ``backends/milvus`` keeps it in Milvus).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack, overload

import numpy as np

from ..backends import open_engine
from ..engine import Engine
from ..errors import InvalidInputError, NotACollectionError
from ..filters import combine, parse_where, parse_where_document
from ..options import SEARCH
from ..types import Document, Hit, IndexReport, SearchArguments
from .exploring import Exploring
from .manifest import open_embedder, summary
from .pending import PendingEngine
from .reindexing import Reindexing
from .repairing import Repairing
from .searching import Searcher

if TYPE_CHECKING:
    from ..ingest.progress import IndexProgress

#: Filter-like arguments: a dict in the ``where`` language, or the same as a JSON string.
Where = dict[str, Any] | str | None


class Collection(Exploring, Reindexing, Repairing):
    """Documents, their chunks and embeddings, searchable by meaning.

    >>> col = Collection("./my-index")                       # doctest: +SKIP
    >>> col.add(["budget-friendly lodging by the coast"], ids=["h1"])   # doctest: +SKIP
    >>> col.search("affordable accommodation near the beach", k=3)      # doctest: +SKIP

    Args:
        path: the collection folder (created on first use unless ``create=False``); with
            ``backend="milvus"``, the collection's name (a path's last component).
        model: a sentence-transformers model name or path. ``None`` means the model the
            collection was built with, or all-MiniLM-L6-v2 for a new collection.
        backend: "local" (a folder: SQLite + FAISS) or "milvus" (``uri`` is a Milvus Lite file
            such as "./milvus.db" or a server "http://host:19530", with ``token``).
        create: create the collection when there is none.
        index: the vector index spec: "auto" (local default: exact below 100k vectors, then IVF
            tuned to recall@10 >= 0.95; "auto:2GB" adds a memory budget), a FAISS index_factory
            string ("Flat", "IVF4096,PQ48", "HNSW32", "SQ8", ...) or "binary". Another spec than
            an existing collection's rebuilds its index from the stored vectors.
        chunk_size: maximum tokens per chunk (default: what the model reads at once).
        chunk_overlap: tokens shared by consecutive chunks of a long document.
        precision, device, batch_size, engine: how to encode: "auto" precision is the fastest
            that agrees with fp32 ("fp32", "bf16", "fp16"); engine "auto" (OpenVINO on CPUs when
            it agrees with torch), "torch" or "openvino"; the best device and batch by default.
        lock_timeout: seconds to wait for another process's write before giving up (local).
        progress: show a progress bar while encoding (default: on a terminal, for 512+ chunks).
        index_save_every: save the local vector index after this many changes (default 200,000).
        embedding_cache: chunk embeddings kept in the folder's cache, so unchanged text is never
            encoded twice (0: no cache; local).
        dimensions: truncate a new collection's vectors to this many dimensions (Matryoshka models
            only, unless ``force_dimensions``); change an existing one's with :meth:`reindex`.
        backend_options: for Milvus, ``db_name``, ``insert_batch``, ``shards``, ``replicas`` and
            ``consistency`` (see :class:`semsearch.backends.milvus.engine.MilvusEngine`).

    Raises:
        NotACollectionError: the path holds something else, or nothing while ``create=False``.
        ModelMismatchError: ``model`` differs from the model the collection was built with.
        InvalidInputError: a bad option (index spec, chunk size, backend...).
    """

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
        index_save_every: int | None = None,
        embedding_cache: int = 1_000_000,
        dimensions: int | None = None,
        force_dimensions: bool = False,
        **backend_options: Any,
    ) -> None:
        if index_save_every is not None:
            backend_options["index_save_every"] = index_save_every
        self.backend = backend
        self._progress = progress
        self._chunker: Any = None
        #: Every door's search: encode, one engine call, the ranking stages, hits (:mod:`.searching`).
        self.searcher = Searcher(self)
        self._engine: Engine = open_engine(path, backend=backend, uri=uri, token=token, create=create,
                                           lock_timeout=lock_timeout, **backend_options)
        self._encoder = {"device": device, "precision": precision, "batch_size": batch_size, "engine": engine}
        try:
            self.embedder, self._engine = open_embedder(
                self.engine, model, index=index, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                encoder=self._encoder, dimensions=dimensions, force_dimensions=force_dimensions)
        except BaseException:
            self._engine.close()
            raise
        if isinstance(self.engine, PendingEngine):
            def reopen() -> Engine | None:  # another process or object may create it meanwhile
                try:
                    return open_engine(path, backend=backend, uri=uri, token=token, create=False,
                                       lock_timeout=lock_timeout, **backend_options)
                except NotACollectionError:
                    return None

            self.engine.reopen = reopen
        cache_path = self.engine.cache_path
        if embedding_cache > 0 and cache_path is not None:  # it creates nothing before the collection exists
            from ..embedding.caches import DiskEmbeddingCache
            self.embedder.cache = DiskEmbeddingCache(cache_path, max_entries=embedding_cache)

    @property
    def engine(self) -> Engine:
        """Where the data lives (:mod:`semsearch.engine`): the backend's engine once the collection
        exists, before that a :class:`~semsearch.collection.pending.PendingEngine` that creates it
        on the first write."""
        engine = self._engine
        if isinstance(engine, PendingEngine) and engine.created:
            self._engine = engine = engine.engine
        return engine

    @property
    def manifest(self) -> dict[str, Any]:
        """How the collection was built: model, dimension, prompts, chunking, index spec..."""
        assert self.engine.manifest is not None
        return self.engine.manifest

    @property
    def no_match_threshold(self) -> float:
        """Below this relevance a best hit does not answer the query ("no good match")."""
        from ..retrieval.calibration import NO_MATCH_THRESHOLD
        return NO_MATCH_THRESHOLD

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def path(self) -> Path | str:
        """The folder (local) or ``uri#name`` (Milvus)."""
        return self.engine.path

    @property
    def name(self) -> str:
        """The folder's or the Milvus collection's name."""
        return self.engine.name

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Collection({str(self.path)!r}, model={self.manifest['model']!r}, backend={self.backend!r})"

    def close(self) -> None:
        """Bring derived structures up to date (best effort) and release files and connections."""
        self.engine.close()
        if self.embedder.cache is not None:
            self.embedder.cache.close()

    def drop(self) -> None:
        """Delete the whole collection, every document and vector, and close it."""
        if self.embedder.cache is not None:
            self.embedder.cache.close()
        self.engine.drop()
        self.engine.close()

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
            DuplicateIdError: an id that already exists (use ``upsert``); nothing is added.
            InvalidInputError: empty text, mismatched lengths, bad metadata.
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
        """Add documents, replacing any that already have these ids (raises as :meth:`add`)."""
        if ids is None:
            raise InvalidInputError("upsert needs ids: they say which documents to replace")
        return self._write(documents, ids, metadatas, embeddings, sources, replace=True)

    def _write(self, documents: Any, ids: Any, metadatas: Any, embeddings: Any, sources: Any, *,
               replace: bool) -> list[str]:
        from .writing import write_documents
        return self._current_model(lambda: write_documents(
            self.engine, self.embedder, self.chunker, documents, ids, metadatas, embeddings, sources, replace=replace,
            progress=self._progress))

    def delete(self, ids: str | Sequence[str] | None = None, *, where: Where = None,
               where_document: Where = None) -> int:
        """Delete documents by id and/or every document matching a filter; returns how many.

        With both ids and a filter, only the listed documents that match are deleted. Unknown
        ids are ignored. Calling it with neither is an error (it never means "everything").

        Raises:
            InvalidInputError: no ids and no filter, or a malformed filter.
        """
        node = combine(parse_where(where), parse_where_document(where_document))
        if ids is None and node is None:
            raise InvalidInputError("delete needs ids or a where/where_document filter; nothing was deleted")
        id_list = None if ids is None else ([ids] if isinstance(ids, str) else list(ids))
        if id_list is not None and not id_list:
            return 0
        return self.engine.delete(id_list, node)

    def delete_source(self, source: str | os.PathLike[str]) -> int:
        """Delete every document indexed from a file (as ``index`` recorded it: the absolute
        path, whether or not the file still exists; or a source label given to ``add``).
        Returns how many documents there were."""
        raw = os.fspath(source)
        resolved = str(Path(raw).expanduser().resolve())
        n = self.engine.delete_source(raw)
        if resolved != raw:
            n += self.engine.delete_source(resolved)
        return n

    @property
    def chunker(self) -> Any:
        """Splits texts into chunks of at most ``chunk_size`` tokens (the model's tokenizer)."""
        if self._chunker is None:
            from ..ingest.chunking import Chunker

            self._chunker = Chunker(self.embedder.plain_tokenizer, int(self.manifest["chunk_size"]),
                                    int(self.manifest["chunk_overlap"]))
        return self._chunker

    def count(self) -> int:
        """Number of documents."""
        return self.engine.count()

    def get(self, ids: str | Sequence[str] | None = None, *, where: Where = None, where_document: Where = None,
            limit: int | None = None) -> list[Document]:
        """Documents by id (in the order asked; unknown ids are left out) and/or by filter.

        With only ``where``/``where_document`` it returns every matching document (at most
        ``limit``), in the order they were added. See :mod:`semsearch.filters` for the filter
        language.

        Raises:
            InvalidInputError: a malformed filter (the message names the offending part).
        """
        node = combine(parse_where(where), parse_where_document(where_document))
        id_list = None if ids is None else ([ids] if isinstance(ids, str) else list(ids))
        return self.engine.documents(id_list, node, limit)

    @overload  # a str is also a Sequence[str]: overloads match in order, so a str gets this one
    def search(self, query: str, k: int = 10,  # type: ignore[overload-overlap]
               **kw: Unpack[SearchArguments]) -> list[Hit]: ...
    @overload
    def search(self, query: Sequence[str], k: int = 10, **kw: Unpack[SearchArguments]) -> list[list[Hit]]: ...
    @overload
    def search(self, query: np.ndarray, k: int = 10, **kw: Unpack[SearchArguments]) -> list[Hit] | list[list[Hit]]: ...

    def search(
        self,
        query: str | Sequence[str] | np.ndarray,
        k: int = SEARCH["k"].default,
        *,
        where: Where = None,
        where_document: Where = None,
        mode: str | None = None,
        fusion: str = SEARCH["fusion"].default,
        alpha: float = SEARCH["alpha"].default,
        rrf_k: float = SEARCH["rrf_k"].default,
        candidates: int = SEARCH["candidates"].default,
        rerank: str | None = None,
        rerank_top: int = SEARCH["rerank_top"].default,
        threshold: float | str | None = None,
        mmr: float | None = None,
    ) -> list[Hit] | list[list[Hit]]:
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
                ``rerank_top`` candidates (at least k), and only those are returned.
            threshold: drop hits whose ``score`` is below it; ``"auto"`` is the calibrated "no good
                match" line (:attr:`no_match_threshold`), so no hits means nothing answers the query.
            mmr: maximal marginal relevance lambda in [0, 1] (1 = relevance only, lower =
                more diverse); reorders the candidates before the top k are taken.

        ``Hit.score`` is the calibrated relevance in [0, 1] in every mode (the same meaning for
        every query and collection; the cross-encoder's probability with ``rerank``), and hits
        are ordered by it; ``Hit.scores`` holds each stage's raw score and rank (``dense`` is
        the cosine, ``lexical`` BM25, ``hybrid`` the fused score, ``relevance``, ``rerank``).

        Raises:
            InvalidInputError: k < 1, an empty query, a bad option or filter.
            DimensionMismatchError: a query embedding of the wrong dimension.
        """
        results, single = self.searcher.search(
            query, k, where=where, where_document=where_document, mode=mode, fusion=fusion, alpha=alpha, rrf_k=rrf_k,
            candidates=candidates, rerank=rerank, rerank_top=rerank_top, threshold=threshold, mmr=mmr)
        return results[0] if single else results

    def index_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        options: Any = None,
        *,
        prune: bool = True,
        batch_chunks: int = 8192,
        progress: IndexProgress | None = None,
        commit_seconds: float | None = None,
    ) -> IndexReport:
        """Index files and folders (.txt .md .html .pdf .csv .jsonl).

        Unchanged files (same content hash) are skipped, changed ones replaced, and with
        ``prune`` documents of files that disappeared from an indexed folder are removed.
        Every file is loaded and checked before anything is written, so a malformed file
        stops the run with the collection as it was. Binary, undecodable and empty files are
        skipped with a warning. Encoding is committed in batches, also inside one large file,
        every ``commit_seconds`` (10) or ``batch_chunks`` chunks, whichever comes first: after an
        interruption, the same call resumes without encoding again what was committed. ``options``
        is an :class:`semsearch.ingest.LoadOptions`; ``progress`` (an
        :class:`semsearch.ingest.progress.IndexProgress`) is told the work and each batch; without
        it a bar is shown when the collection was opened with ``progress=True``.
        """
        from ..ingest.pipeline import COMMIT_SECONDS
        from .writing import index_files

        reporter = progress
        if reporter is None and self._progress:
            from ..ingest.progress import BarProgress
            reporter = BarProgress()
        report = self._current_model(lambda: index_files(
            self.engine, self.embedder, self.chunker, paths, options, prune=prune, batch_chunks=batch_chunks,
            commit_seconds=COMMIT_SECONDS if commit_seconds is None else commit_seconds, progress=reporter))
        if progress is None and reporter is not None:
            reporter.finish(report)
        return report

    def set_index(self, spec: str) -> None:
        """Change the vector index spec; rebuilt from the stored vectors (nothing is re-encoded).

        Raises:
            InvalidInputError: a spec this backend cannot build (nothing is changed).
            CollectionBusyError: another process kept the collection busy past lock_timeout.
        """
        self.engine.set_index(spec)

    def flush(self, lock_timeout: float | None = None) -> None:
        """Bring the vector index up to date with the stored vectors and save it.

        Raises:
            CollectionBusyError: another process is writing (waited ``lock_timeout`` seconds).
        """
        self.engine.flush(lock_timeout)

    def warm_up(self) -> None:
        """Load the model, the vector index and the lexical statistics now, so the first search
        is as fast as the next ones."""
        self.search(self.embedder.encode_queries(["warm up"])[0], k=1)
        self.engine.warm_up()

    def info(self) -> dict[str, Any]:
        """What the collection holds and how it was built (as it is now: after another process
        re-encoded or re-indexed it, as that process left it); ``query_path`` says whether a new
        process on this machine encodes queries on the light (torch-free) path or the full one, and why."""
        return self._current_model(self._info)

    def _info(self) -> dict[str, Any]:
        from ..ingest.pipeline import PARTIAL

        engine_info = self.engine.info()  # first: it follows what another process changed
        partial = sum(1 for d in self.engine.files().values() if d.startswith(PARTIAL))
        out = {"path": str(self.path), "backend": self.backend, "documents": self.engine.count(),
               "chunks": self.engine.chunk_count(), "partial_files": partial, **summary(self.manifest),
               **engine_info}
        details = out.get("index_details")
        if details and not details.get("note"):
            from ..index.spec import reduced_dimension

            if projected := reduced_dimension(str(details.get("type", ""))):  # searched as PCA projections
                details["projected_dimension"] = projected
        query_path = getattr(self.embedder, "query_path", None)
        if query_path is not None:  # light (torch-free) or full, and why: read, never measured here
            out["query_path"] = query_path()
        return out

    def record(self, values: Mapping[str, Any]) -> None:
        """Record extra keys in the collection's manifest (what an evaluation corpus was, how long it
        took to index...); ``info`` and ``manifest`` show them.

        Raises:
            CollectionBusyError: another process kept the collection busy past lock_timeout.
        """
        self.engine.update_manifest(values)


__all__ = ["Collection", "Document", "Hit", "IndexReport"]
