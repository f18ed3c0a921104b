"""The Milvus engine: a collection stored and searched in Milvus Lite (``./milvus.db``) or a cluster.

Layout in :mod:`.schema`. Writes: Milvus has no transaction across rows or collections, so
writes are ordered so that an acknowledged document is never absent: new chunks are written
first (with fresh primary keys), then the document row, and only then are the chunks of a
replaced version deleted. A crash in between leaves at worst an extra chunk of the same
document, which search ignores (one hit per document) and the next write of that document
removes. Every call uses consistency level Strong by default, so what ``add`` returned is
visible to the next search; Milvus acknowledges an insert once it is in its write-ahead log.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ...errors import DuplicateIdError, InvalidInputError, NotACollectionError
from ...filters import Node
from ...lexical import tokenize
from ...types import (
    Candidate,
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
from . import reembedding, scans
from .candidates import CHUNK_FIELDS, RecentChunks, bm25_search, dense_search, documents_containing, stored_chunk
from .client import connect, new_pks, parts, query_all, with_retries
from .filters import compile_filter, facets, id_list, string_literal
from .schema import (
    MAX_VARCHAR,
    PLACEHOLDER,
    collection_name,
    create_collections,
    milvus_index,
    read_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)

CONSISTENCY_LEVELS = ("Strong", "Bounded", "Session", "Eventually")


@dataclass(frozen=True)
class MilvusScope(Scope):
    """A filter as a Milvus boolean expression ("" for none)."""

    expr: str = ""


class MilvusEngine(scans.KeptByMilvus):
    """The :class:`semsearch.engine.Engine` of a Milvus collection.

    Args:
        name: the collection name (or a path: its last component, ``-``/``.`` -> ``_``).
        uri: ``"./milvus.db"`` (Milvus Lite, a local file) or ``"http://host:19530"``.
        token: ``"user:password"`` or an API key for a cluster.
        db_name: Milvus database (cluster only).
        insert_batch: rows per insert call (2000 rows of 384-d vectors is ~4 MB, under gRPC's 64 MB).
        shards: shards of a new collection (cluster; write throughput scales with them).
        replicas: in-memory replicas to load (cluster; read throughput and availability).
        consistency: "Strong" (default: a returned write is visible to the next search),
            "Bounded", "Session" or "Eventually" (faster reads on a cluster, may miss the latest writes).

    Raises:
        NotACollectionError: ``create`` is False and there is no such collection, or the name
            holds a Milvus collection semsearch did not make.
        MilvusError: Milvus cannot be reached or refused the schema.
    """

    default_index = "Flat"
    #: Rows per page when reading many rows back (get/delete by filter, migration).
    query_batch = 4000

    def __init__(self, name: str | os.PathLike[str], *, uri: str = "./milvus.db", token: str | None = None,
                 create: bool = True, db_name: str | None = None, insert_batch: int = 2000, shards: int | None = None,
                 replicas: int | None = None, consistency: str = "Strong") -> None:
        self.name = collection_name(name)
        self.uri = str(uri)
        self.path = f"{self.uri}#{self.name}"
        if consistency not in CONSISTENCY_LEVELS:
            raise InvalidInputError(f"consistency {consistency!r} is not one of {', '.join(CONSISTENCY_LEVELS)}")
        self.consistency = consistency
        self.insert_batch = insert_batch
        self.shards = shards
        self._replicas = replicas
        self.client = connect(self.uri, token, db_name)
        self.docs_name = f"{self.name}__docs"
        self.sources_name = f"{self.name}__sources"
        self.manifest: dict[str, Any] | None = None
        self.recent = RecentChunks()
        reembedding.recover(self.client, self.name)  # a swap of embedding sets a kill interrupted
        if self.client.has_collection(self.name):
            self.manifest = read_manifest(self.client, self.name, self.uri)
            for part in (self.name, self.docs_name, self.sources_name):
                # A reopened collection (or one after a server restart) is released until loaded.
                with_retries(partial(self.client.load_collection, part), f"load {part}")
            self._opened()
        elif not create:
            raise NotACollectionError(f"there is no semsearch collection {self.name!r} in Milvus at {self.uri}; "
                                      "check the name and uri")

    def _opened(self) -> None:
        assert self.manifest is not None
        if self._replicas:
            with_retries(lambda: self.client.load_collection(self.name, replica_number=self._replicas),
                         f"load {self._replicas} replicas")
        self.index = milvus_index(self.manifest["index"])

    # -- life cycle -----------------------------------------------------------------------
    def manifest_for(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return {**manifest, "format_version": 1, "backend": "milvus", "lexical": "milvus-bm25"}

    def create(self, manifest: dict[str, Any]) -> None:
        self.check_index(manifest["index"], int(manifest["dimension"]))
        self.manifest = self.manifest_for(manifest)
        create_collections(self.client, self.name, self.manifest, self.shards)
        self._opened()

    def check_index(self, spec: str, dimension: int) -> None:
        milvus_index(spec)

    def set_index(self, spec: str) -> None:
        """Rebuild the vector index as ``spec``: Milvus builds it from the stored vectors while
        the collection is released (searches fail meanwhile), then it is loaded again."""
        assert self.manifest is not None
        new = milvus_index(spec)
        with_retries(lambda: self.client.release_collection(self.name), "release the collection")
        try:
            with_retries(lambda: self.client.drop_index(self.name, "vector"), "drop the vector index")
            ip = self.client.prepare_index_params()
            ip.add_index("vector", index_type=new.index_type, metric_type="IP", params=new.params)
            with_retries(lambda: self.client.create_index(self.name, ip), "build the new vector index")
            self.manifest = {**self.manifest, "index": spec}
            write_manifest(self.client, self.name, self.manifest)
            self.index = new
        finally:
            with_retries(lambda: self.client.load_collection(self.name), "load the collection")

    def reembed(self, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *, batch: int = 4096,
                progress: Callable[[int, int], None] | None = None,
                split: Callable[[list[str]], list[list[tuple[int, int]]]] | None = None) -> reembedding.ReindexReport:
        """A new chunk collection, swapped in by renames (:mod:`.reembedding`); re-chunking is refused."""
        return reembedding.reembed(self, target, encode, batch=batch, progress=progress, split=split)

    def follow(self, manifest: dict[str, Any]) -> None:
        """Use the manifest another client wrote (same embedding set): its index spec's search
        parameters, and what ``info`` shows."""
        self.manifest = manifest
        self.index = milvus_index(manifest["index"])

    def reload(self) -> None:
        self.manifest = read_manifest(self.client, self.name, self.uri)
        with_retries(lambda: self.client.load_collection(self.name), f"load {self.name}")
        self._opened()

    def update_manifest(self, values: Mapping[str, Any]) -> None:
        assert self.manifest is not None
        self.manifest = {**self.manifest, **values}
        write_manifest(self.client, self.name, self.manifest)

    def flush(self, lock_timeout: float | None = None) -> None:
        """Ask Milvus to seal and persist what it holds (not needed for durability, see the module docstring)."""
        for name in (self.name, self.docs_name, self.sources_name):
            with_retries(partial(self.client.flush, name), f"flush {name}")

    def warm_up(self) -> None:
        """Nothing to load: Milvus keeps the collection loaded."""

    def verify(self) -> dict[str, Any]:
        """Every chunk must belong to a listed document; chunks left by a crash between a delete's
        two steps (see the module docstring) are removed. Milvus checks its own storage."""
        return scans.verify(self)

    def info(self) -> dict[str, Any]:
        """Raises EmbeddingsReplacedError when another client re-encoded the collection."""
        reembedding.check_current(self)  # what another client changed shows
        return {
            "backend": "milvus", "uri": self.uri, "name": self.name, "milvus_index": {
                "type": self.index.index_type, "params": self.index.params, "search": self.index.search_params},
            **({"reindex_pending": waiting} if (waiting := reembedding.pending(self)) else {}),
        }

    cache_path = None

    def close(self) -> None:
        """Close the connection (writes were acknowledged by Milvus when they returned)."""
        try:
            self.client.close()
        except Exception as exc:  # closing must not hide the caller's real error
            log.warning("closing the Milvus connection failed: %s", exc)

    def drop(self) -> None:
        """Delete the collection from Milvus, all three parts (and a new embedding set being made)."""
        for name in (self.name, self.docs_name, self.sources_name, reembedding.staging_name(self.name)):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    # -- writing --------------------------------------------------------------------------
    def check_rows(self, rows: Sequence[DocumentRow]) -> None:
        for row in rows:
            if len(row.text) * 4 > MAX_VARCHAR and len(row.text.encode("utf-8")) > MAX_VARCHAR:
                raise InvalidInputError(
                    f"document {row.id!r} is {len(row.text.encode('utf-8'))} bytes; Milvus stores at most "
                    f"{MAX_VARCHAR} per text field, so split it into several documents (index_files splits CSV/JSONL "
                    "records, not long files)"
                )
            if len(row.id.encode("utf-8")) > 4096:
                raise InvalidInputError(f"document id {row.id[:40]!r}... is longer than 4096 bytes; use a shorter id")
            if row.source and len(row.source.encode("utf-8")) > 4096:
                raise InvalidInputError(f"the source of {row.id!r} ({row.source[:40]!r}...) is longer than 4096 bytes; "
                                        "Milvus stores at most that, so use a shorter label or path")

    def write(self, rows: Sequence[DocumentRow], *, replace: bool,
              files: Mapping[str, FileState] | None = None) -> None:
        reembedding.check_current(self)  # the vectors are of the model in use
        if not replace:
            existing = list(self.sources_of([r.id for r in rows]))
            if existing:
                raise DuplicateIdError.for_ids(existing)
        self._write_rows(rows, replace=replace)
        for source, state in (files or {}).items():
            if state.ids is not None:
                # After the new version is written: a crash never leaves a listed document absent.
                listed = self.query_all(self.docs_name, f"source == {string_literal(source)}", ["doc_id"])
                stale = [d["doc_id"] for d in listed if d["doc_id"] not in state.ids]
                if stale:
                    self._delete_documents(stale)
        if files:
            self.set_files({source: state.digest for source, state in files.items()})

    def _write_rows(self, rows: Sequence[DocumentRow], *, replace: bool) -> None:
        self.recent.forget()
        old_pks = self._chunk_pks_of([r.id for r in rows]) if replace else []
        now = time.time_ns()
        chunk_rows: list[dict[str, Any]] = []
        doc_rows: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            f = facets(row.metadata)
            for pk, c in zip(new_pks(len(row.chunks)), row.chunks):
                chunk_rows.append({
                    "pk": pk, "doc_id": row.id, "position": int(c.position), "chunk_start": int(c.start),
                    "chunk_end": int(c.end), "text": row.text[c.start : c.end], "metadata": row.metadata, "facets": f,
                    "source": row.source or "", "vector": np.asarray(c.embedding, dtype=np.float32).tolist(),
                })
            doc_rows.append({"doc_id": row.id, "text": row.text, "metadata": row.metadata, "facets": f,
                             "source": row.source or "", "added": now + i, "placeholder": PLACEHOLDER})
        for part in parts(chunk_rows, self.insert_batch):
            with_retries(partial(self.client.upsert, self.name, part), f"write {len(part)} chunks to {self.name}")
        for part in parts(doc_rows, self.insert_batch):
            with_retries(partial(self.client.upsert, self.docs_name, part), f"write {len(part)} documents")
        if old_pks:
            for part in parts(old_pks, 5000):
                with_retries(partial(self.client.delete, self.name, ids=part), "delete replaced chunks")

    def delete(self, ids: Sequence[str] | None, where: Node | None) -> int:
        doc_ids = [d["doc_id"] for d in self._query_docs(None if ids is None else list(ids), where, ["doc_id"])]
        if doc_ids:
            self._delete_documents(doc_ids)
        return len(doc_ids)

    def _delete_documents(self, doc_ids: Sequence[str]) -> None:
        self.recent.forget()
        # Document rows first: a crash then leaves only chunks of a deleted document, which the
        # next write or delete of that id removes; never a listed document without its chunks.
        for part in parts(list(doc_ids), 1000):
            with_retries(partial(self.client.delete, self.docs_name, ids=part), "delete documents")
        for part in parts(list(doc_ids), 1000):
            with_retries(partial(self.client.delete, self.name, filter=f"doc_id in {id_list(part)}"), "delete chunks")

    def delete_source(self, source: str) -> int:
        ids = [d["doc_id"] for d in self.query_all(self.docs_name, f"source == {string_literal(source)}", ["doc_id"])]
        if ids:
            self._delete_documents(ids)
        with_retries(lambda: self.client.delete(self.sources_name, ids=[source]), "forget the source")
        return len(ids)

    def set_files(self, hashes: Mapping[str, str]) -> None:
        rows = [{"source": s, "digest": d, "placeholder": PLACEHOLDER} for s, d in hashes.items()]
        for part in parts(rows, 1000):
            with_retries(partial(self.client.upsert, self.sources_name, part), "record file hashes")

    def update_metadata(self, metadatas: Mapping[str, dict[str, Any]]) -> int:
        """Rows are upserted whole (Milvus has no partial update) with their own keys, vectors and
        insertion stamps, chunks first as in ``write``."""
        ids = list(metadatas)
        self.recent.forget()
        chunk_fields = ["pk", "doc_id", "position", "chunk_start", "chunk_end", "text", "source", "vector"]
        doc_fields = ["doc_id", "text", "source", "added"]
        for part in parts(ids, 500):
            chunks = list(self.query_all(self.name, f"doc_id in {id_list(part)}", chunk_fields))
            docs = self._query_docs(part, None, doc_fields)
            for rows, name, extra in ((chunks, self.name, {}), (docs, self.docs_name, {"placeholder": PLACEHOLDER})):
                new = [{**r, **extra, "metadata": metadatas[r["doc_id"]], "facets": facets(metadatas[r["doc_id"]])}
                       for r in rows]
                for batch in parts(new, self.insert_batch):
                    with_retries(partial(self.client.upsert, name, batch), f"update metadata in {name}")
        return len(self.sources_of(ids))

    # -- reading --------------------------------------------------------------------------
    def count_of(self, collection: str) -> int:
        res = with_retries(lambda: self.client.query(collection, filter="", output_fields=["count(*)"],
                                                     consistency_level=self.consistency), f"count {collection}")
        return int(res[0]["count(*)"])

    def count(self) -> int:
        return self.count_of(self.docs_name)

    def chunk_count(self) -> int:
        return self.count_of(self.name)

    def files(self) -> dict[str, str]:
        return {r["source"]: r["digest"] for r in self.query_all(self.sources_name, "", ["source", "digest"])}

    def sources_of(self, ids: Sequence[str]) -> dict[str, str | None]:
        return {d["doc_id"]: d["source"] or None for d in self._query_docs(list(ids), None, ["doc_id", "source"])}

    def documents(self, ids: Sequence[str] | None, where: Node | None, limit: int | None) -> list[Document]:
        fields = ["doc_id", "text", "metadata", "source", "added"]
        if ids is not None:
            found = {d["doc_id"]: d for d in self._query_docs(list(ids), where, fields)}
            rows = [found[i] for i in ids if i in found]
        else:
            rows = sorted(self._query_docs(None, where, fields), key=lambda d: d["added"])
        docs = [Document(d["doc_id"], d["text"], d["metadata"] or {}, d["source"] or None) for d in rows]
        return docs[:limit] if limit is not None else docs

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        out, missing = self.recent.take([int(i) for i in chunk_ids])  # what this thread's last search returned
        for part in parts(missing, 1000):
            rows = with_retries(partial(self.client.get, self.name, ids=part, output_fields=["pk", *CHUNK_FIELDS]),
                                "read chunks")
            out.update((int(r["pk"]), stored_chunk(r["pk"], r)) for r in rows)
        return out

    def vectors(self, chunk_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raises EmbeddingsReplacedError if another client re-encoded the collection (the stored
        vectors are then of another model and dimension)."""
        assert self.manifest is not None
        reembedding.check_current(self)
        ids: list[int] = []
        vecs: list[list[float]] = []
        for part in parts([int(i) for i in np.asarray(chunk_ids).tolist()], 1000):
            rows = with_retries(partial(self.client.get, self.name, ids=part, output_fields=["pk", "vector"]),
                                "read embeddings")
            for r in rows:
                ids.append(int(r["pk"]))
                vecs.append(r["vector"])
        dim = int(self.manifest["dimension"])
        return np.array(ids, dtype=np.int64), np.array(vecs, dtype=np.float32).reshape(len(ids), dim)

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        out: dict[str, list[tuple[int, int]]] = {}
        for part in parts(list(doc_ids), 1000):
            for r in self.query_all(self.name, f"doc_id in {id_list(part)}", ["pk", "doc_id", "position"]):
                out.setdefault(r["doc_id"], []).append((int(r["position"]), int(r["pk"])))
        return {d: [pk for _, pk in sorted(chunks)] for d, chunks in out.items()}

    def export(self, batch: int = 1000) -> Iterator[list[DocumentRow]]:
        """Raises EmbeddingsReplacedError (when the first batch is asked) if another client re-encoded it."""
        reembedding.check_current(self)
        yield from scans.export(self, batch)

    def _chunk_pks_of(self, doc_ids: Sequence[str]) -> list[int]:
        return [pk for pks in self.chunk_ids_of(doc_ids).values() for pk in pks]

    def _query_docs(self, ids: list[str] | None, node: Node | None, fields: list[str]) -> list[dict[str, Any]]:
        expr = self._expression(node)
        if ids is None:
            return list(self.query_all(self.docs_name, expr, fields))
        out: list[dict[str, Any]] = []
        for part in parts(ids, 1000):
            e = f"doc_id in {id_list(part)}" + (f" and {expr}" if expr else "")
            # At most len(part) rows match a primary-key list, so one plain query is exact.
            out.extend(with_retries(partial(self.client.query, self.docs_name, filter=e, output_fields=fields,
                                            limit=len(part), consistency_level=self.consistency), "read documents"))
        return out

    def query_all(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        return query_all(self.client, collection, expr, fields, self.consistency, self.query_batch)

    def _expression(self, node: Node | None) -> str:
        """The Milvus expression for a parsed filter ("" for none); text conditions resolved here."""
        return compile_filter(node, partial(documents_containing, self.query_all, self.docs_name))

    # -- the search path -----------------------------------------------------------------
    def retrieve(self, plan: RetrievalPlan) -> list[Retrieved]:
        """One search in as few round trips as Milvus allows: a check that the embedding set is
        still the one opened (the manifest), one vector search for every query and one BM25 search
        per query. The searches return their chunks' fields and, when the plan asks for them, their
        stored vectors, so nothing is read afterwards (bench/RESULTS.md, issue 24)."""
        n = plan.queries
        scope = self.scope(plan.where)
        if scope.empty or n == 0:
            return [Retrieved() for _ in range(n)]
        rows: dict[int, StoredChunk] = {}
        stored: dict[int, np.ndarray] = {}
        dense: list[list[Candidate]] = [[] for _ in range(n)]
        if plan.dense and plan.vectors is not None:
            reembedding.check_current(self)
            dense = dense_search(self.client, self.name, plan.vectors, plan.dense, scope.expr,
                                 self.index.search_params, self.consistency, rows,
                                 stored if plan.vectors_of == "all" else None)
        lexical: list[list[Candidate]] = [[] for _ in range(n)]
        if plan.lexical and plan.texts is not None:
            lexical = [bm25_search(self.client, self.name, text, plan.lexical, scope.expr, self.consistency, rows,
                                   stored if plan.vectors_of != "none" else None)
                       for text in plan.texts]
        self.recent.remember(rows)
        out = [Retrieved(dense[i], lexical[i]) for i in range(n)]
        for i, r in enumerate(out):  # every candidate's chunk came with the searches: the stages get them all
            r.chunks = {c: rows[c] for c in candidate_chunks(r, "all") if c in rows}
            if plan.statistics and plan.texts is not None:
                # BM25's best hit in the whole collection (a filter must not change a score). Milvus
                # does not expose per-term document frequencies: every term weighs the same (total
                # 0); the hit's terms come from its text, tokenized as locally.
                best = r.lexical[:1] if plan.where is None else bm25_search(
                    self.client, self.name, plan.texts[i], 1, "", self.consistency, rows)
                hit = rows.get(best[0].chunk_id) if best else None
                r.statistics = TermStatistics({}, 0, set(tokenize(hit.text)) if hit is not None else set())
        missing = [c for c in vectors_wanted(out, plan.vectors_of) if c not in stored]
        if missing:  # not expected (the searches returned them); read rather than rank without
            ids, vecs = self.vectors(np.asarray(missing, dtype=np.int64))
            stored.update(zip(ids.tolist(), vecs))
        for r in out:
            r.vectors = {c: stored[c] for c in candidate_chunks(r, plan.vectors_of) if c in stored}
        return out

    # -- candidates (the roles retrieve combines) ----------------------------------------
    def scope(self, where: Node | None) -> MilvusScope:
        expr = self._expression(where)
        return MilvusScope(empty=expr == "false", expr=expr)

    def dense_candidates(self, vectors: np.ndarray, n: int, scope: Scope) -> list[list[Candidate]]:
        """The n best documents per query vector, each through its best chunk, filter applied in Milvus."""
        assert isinstance(scope, MilvusScope)
        reembedding.check_current(self)
        found: dict[int, StoredChunk] = {}  # the hits' fields come with the search: no second round trip
        out = dense_search(self.client, self.name, vectors, n, scope.expr, self.index.search_params, self.consistency,
                           found)
        self.recent.remember(found)
        return out

    def lexical_candidates(self, texts: Sequence[str], n: int, scope: Scope) -> list[list[Candidate]]:
        """The n best documents per query by Milvus' BM25 function (Milvus' standard analyzer)."""
        assert isinstance(scope, MilvusScope)
        return [bm25_search(self.client, self.name, text, n, scope.expr, self.consistency) for text in texts]

    def term_statistics(self, terms: Sequence[str], chunk_id: int) -> TermStatistics:
        """Milvus does not expose per-term document frequencies, so every term weighs the same
        (total 0); the hit's terms come from its text, tokenized as locally."""
        chunk = self.chunks([int(chunk_id)]).get(int(chunk_id))
        return TermStatistics({}, 0, set(tokenize(chunk.text)) if chunk is not None else set())


__all__ = ["CONSISTENCY_LEVELS", "MilvusEngine", "MilvusScope"]
