"""The collection interface on Milvus: a Milvus Lite file (``uri="./milvus.db"``) or a cluster.

One semsearch collection ``NAME`` is three Milvus collections:

- ``NAME``: one row per chunk: ``pk`` (int64, assigned here), ``doc_id``, ``position``,
  ``chunk_start``/``chunk_end`` (character offsets in the document), ``text`` (the chunk,
  analysed for Milvus' BM25 function into ``sparse``), ``metadata`` (JSON, as given),
  ``facets`` (JSON, the filterable view, see :mod:`.milvus_filters`), ``source``, ``vector``.
  The semsearch manifest (model, dimension, chunking, index spec) is a collection property.
- ``NAME__docs``: one row per document (``doc_id`` primary key, full ``text``, ``metadata``,
  ``facets``, ``source``, ``added`` ns timestamp for insertion order).
- ``NAME__sources``: file path -> content hash, so ``index_files`` skips unchanged files.

Milvus requires a vector field in every collection; the two side collections carry a 2-d
placeholder vector that is never searched.

Writes: Milvus has no transaction across rows or collections, so writes are ordered so that
an acknowledged document is never absent: new chunks are written first (with fresh primary
keys), then the document row, and only then are the chunks of a replaced version deleted. A
crash in between leaves at worst an extra chunk of the same document, which search ignores
(one hit per document) and the next write of that document removes. Every call uses
consistency level Strong, so what ``add`` returned is visible to the next search; Milvus
acknowledges an insert once it is in its write-ahead log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..collection import Collection, Document, Hit, IndexReport, document_rows
from ..embedding import DEFAULT_MODEL, Embedder, canonical_model_name
from ..errors import InvalidInputError, ModelMismatchError, NotACollectionError, SemsearchError
from ..filters import Contains, Node, combine, parse_where, parse_where_document
from ..retrieval import Candidate
from ..store import ChunkRow, DocumentRow, StoredChunk
from .milvus_filters import compile_filter, facets, id_list, string_literal

log = logging.getLogger(__name__)

MANIFEST_PROPERTY = "semsearch.manifest"
#: Milvus' largest VARCHAR, in bytes.
MAX_VARCHAR = 65_535
#: Milvus' largest ``limit`` (topk) for one search or query.
MAX_TOPK = 16_384
PLACEHOLDER = [1.0, 0.0]
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,180}$")


class MilvusError(SemsearchError):
    """Milvus refused or failed an operation (after retries); the message says which."""


# -- index specs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MilvusIndex:
    """A Milvus vector index: type, build params and the search params that go with it."""

    index_type: str
    params: dict[str, Any]
    search_params: dict[str, Any]


def milvus_index(spec: str) -> MilvusIndex:
    """Translate semsearch's FAISS-style index spec to a Milvus index (metric IP).

    "Flat" -> FLAT, "auto" -> AUTOINDEX, "IVF{n},Flat" -> IVF_FLAT nlist=n, "IVF{n},SQ8" or
    "SQ8" -> IVF_SQ8, "IVF{n},PQ{m}" -> IVF_PQ m, "HNSW{M}" -> HNSW M (efConstruction 200).

    Raises:
        InvalidInputError: a spec with no Milvus equivalent (the message lists those that have one).
    """
    s = spec.strip()
    if s.lower() == "flat":
        return MilvusIndex("FLAT", {}, {})
    if s.lower() in ("auto", "autoindex"):
        return MilvusIndex("AUTOINDEX", {}, {})
    m = re.fullmatch(r"HNSW(\d+)(?:,Flat)?", s)
    if m:
        return MilvusIndex("HNSW", {"M": int(m.group(1)), "efConstruction": 200}, {"ef": 64})
    m = re.fullmatch(r"IVF(\d+),Flat", s)
    if m:
        nlist = int(m.group(1))
        return MilvusIndex("IVF_FLAT", {"nlist": nlist}, {"nprobe": max(1, min(nlist, 16))})
    m = re.fullmatch(r"(?:IVF(\d+),)?SQ8", s)
    if m:
        nlist = int(m.group(1) or 128)
        return MilvusIndex("IVF_SQ8", {"nlist": nlist}, {"nprobe": max(1, min(nlist, 16))})
    m = re.fullmatch(r"IVF(\d+),PQ(\d+)(?:x(\d+))?", s)
    if m:
        nlist = int(m.group(1))
        return MilvusIndex("IVF_PQ", {"nlist": nlist, "m": int(m.group(2)), "nbits": int(m.group(3) or 8)},
                           {"nprobe": max(1, min(nlist, 16))})
    raise InvalidInputError(
        f"index {spec!r} has no Milvus equivalent; use Flat, auto, HNSW<M>, IVF<n>,Flat, IVF<n>,SQ8, SQ8 or IVF<n>,PQ<m>"
    )


# -- retries ---------------------------------------------------------------------------------
def is_transient(exc: BaseException) -> bool:
    """Whether an error from Milvus is worth retrying (server busy, rate-limited, restarting)."""
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpc comes with pymilvus
        grpc = None
    if grpc is not None and isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)
    from pymilvus.exceptions import MilvusException

    if isinstance(exc, MilvusException):
        text = str(exc).lower()
        return exc.code == 8 or any(w in text for w in ("rate limit", "unavailable", "not ready", "timeout", "deadline"))
    return isinstance(exc, (ConnectionError, TimeoutError))


def with_retries(call: Callable[[], Any], what: str, attempts: int = 6, base_delay: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run ``call``; on a transient error wait 0.2, 0.4, 0.8... s and try again.

    Only idempotent calls go through here (upserts by primary key, deletes, reads), so a
    retry after a lost acknowledgement cannot duplicate anything.

    Raises:
        MilvusError: a permanent error, or a transient one that outlasted every attempt.
    """
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:  # classified below; anything else is re-raised as is
            if isinstance(exc, SemsearchError):
                raise
            if not is_transient(exc) or attempt == attempts - 1:
                raise MilvusError(f"Milvus failed to {what}: {_first_line(exc)}") from exc
            delay = base_delay * 2**attempt
            log.warning("Milvus could not %s (%s); retrying in %.1fs", what, _first_line(exc), delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _new_pks(n: int) -> list[int]:
    # Random 63-bit keys: unique across processes and clients without a central counter.
    raw = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(1)
    return [int(x) for x in raw]


def collection_name(path_or_name: str | os.PathLike[str]) -> str:
    """The Milvus collection name for a semsearch collection name or folder-like path.

    Raises:
        InvalidInputError: the last path component is not a valid Milvus name once ``-``/``.``
            are turned into ``_``.
    """
    name = re.sub(r"[-. ]", "_", Path(os.fspath(path_or_name)).name)
    if not NAME_RE.match(name):
        raise InvalidInputError(
            f"{os.fspath(path_or_name)!r} cannot name a Milvus collection; use letters, digits and _ (not starting with a digit)"
        )
    return name


# -- the collection ----------------------------------------------------------------------------
class MilvusCollection:
    """The :class:`semsearch.Collection` interface, stored and searched in Milvus.

    Args:
        name: the collection name (or a path: its last component, ``-``/``.`` -> ``_``).
        model: sentence-transformers model; ``None`` = the one the collection was built with.
        uri: ``"./milvus.db"`` (Milvus Lite, a local file) or ``"http://host:19530"``.
        token: ``"user:password"`` or an API key for a cluster.
        db_name: Milvus database (cluster only).
        insert_batch: rows per insert call (throughput vs. request size; 2000 rows of 384-d
            vectors is ~4 MB, well under gRPC's 64 MB).
        shards: shards of a new collection (cluster; write throughput scales with them).
        replicas: in-memory replicas to load (cluster; read throughput and availability).
        consistency: "Strong" (default: a returned write is visible to the next search),
            "Bounded" or "Eventually" (faster reads on a cluster, may miss the latest writes).
        Other arguments as for :class:`semsearch.Collection`.

    Raises:
        NotACollectionError: ``create=False`` and there is no such collection.
        ModelMismatchError: ``model`` differs from the model the collection was built with.
        MilvusError: Milvus cannot be reached or refused the schema.
    """

    backend = "milvus"
    #: Rows per page when reading many rows back (get/delete by filter, migration).
    query_batch = 4000

    def __init__(
        self,
        name: str | os.PathLike[str],
        model: str | None = None,
        *,
        uri: str = "./milvus.db",
        token: str | None = None,
        db_name: str | None = None,
        create: bool = True,
        index: str | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        precision: str = "auto",
        device: str | None = None,
        batch_size: int | None = None,
        engine: str = "auto",
        progress: bool | None = None,
        insert_batch: int = 2000,
        shards: int | None = None,
        replicas: int | None = None,
        consistency: str = "Strong",
        lock_timeout: float | None = None,  # accepted for interface parity; Milvus serialises writes itself
    ) -> None:
        from pymilvus import MilvusClient

        self.name = collection_name(name)
        self.uri = str(uri)
        #: Where it lives, for messages (``Collection.path`` is a folder; this is not).
        self.path = f"{self.uri}#{self.name}"
        self._progress = progress
        self._insert_batch = insert_batch
        if consistency not in ("Strong", "Bounded", "Session", "Eventually"):
            raise InvalidInputError(f"consistency {consistency!r} is not one of Strong, Bounded, Session, Eventually")
        self.consistency = consistency
        self._chunker = None
        kwargs: dict[str, Any] = {"uri": self.uri}
        if token:
            kwargs["token"] = token
        if db_name:
            kwargs["db_name"] = db_name
        self.client = with_retries(lambda: MilvusClient(**kwargs), f"connect to {self.uri}")
        self.docs_name = f"{self.name}__docs"
        self.sources_name = f"{self.name}__sources"
        exists = self.client.has_collection(self.name)
        if exists:
            self.manifest = self._read_manifest()
            for part in (self.name, self.docs_name, self.sources_name):
                # A reopened collection (or one after a server restart) is released until loaded.
                with_retries(lambda p=part: self.client.load_collection(p), f"load {part}")
            recorded = self.manifest["model"]
            if model is not None and canonical_model_name(model) != recorded:
                raise ModelMismatchError(
                    f"Milvus collection {self.name!r} was built with model {recorded!r} (dimension "
                    f"{self.manifest['dimension']}); you asked for {canonical_model_name(model)!r}. Open it without a "
                    "model, or use another collection name for the other model"
                )
            if index is not None and index != self.manifest["index"]:
                raise InvalidInputError(
                    f"Milvus collection {self.name!r} uses index {self.manifest['index']!r}; changing it to {index!r} is not supported"
                )
            if chunk_size is not None and chunk_size != self.manifest["chunk_size"]:
                raise InvalidInputError(
                    f"Milvus collection {self.name!r} chunks at {self.manifest['chunk_size']} tokens; index into a new collection to change it"
                )
            self.embedder = Embedder(recorded, device=device, precision=precision, batch_size=batch_size, engine=engine)
        else:
            if not create:
                raise NotACollectionError(
                    f"there is no semsearch collection {self.name!r} in Milvus at {self.uri}; check the name and uri"
                )
            self.embedder = Embedder(model or DEFAULT_MODEL, device=device, precision=precision, batch_size=batch_size, engine=engine)
            info = self.embedder.info()
            max_tokens = info.max_seq_length - 2
            size = chunk_size or max_tokens
            if size > max_tokens:
                raise InvalidInputError(
                    f"chunk_size {size} is more than {self.embedder.name} reads ({max_tokens} tokens); use at most {max_tokens}"
                )
            spec = index or "Flat"
            milvus_index(spec)  # reject a bad spec before creating anything
            self.manifest = {
                "format_version": 1,
                "backend": "milvus",
                "model": self.embedder.name,
                "dimension": info.dimension,
                "normalized": True,
                "similarity": "cosine",
                "prompts": info.prompts,
                "max_seq_length": info.max_seq_length,
                "chunk_size": size,
                "chunk_overlap": chunk_overlap if chunk_overlap is not None else size // 8,
                "index": spec,
                "lexical": "milvus-bm25",
                "created_with": f"semsearch {__version__}",
                "created_at": time.time(),
            }
            self._create(shards)
        if replicas:
            with_retries(lambda: self.client.load_collection(self.name, replica_number=replicas), f"load {replicas} replicas")
        self.dimension = int(self.manifest["dimension"])
        self.index = milvus_index(self.manifest["index"])
        self.store = MilvusChunkReader(self)

    # -- schema ------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any]:
        props = self.client.describe_collection(self.name).get("properties") or {}
        raw = props.get(MANIFEST_PROPERTY)
        if not raw:
            raise NotACollectionError(
                f"Milvus collection {self.name!r} at {self.uri} was not made by semsearch (no manifest); choose another name"
            )
        return json.loads(raw)

    def _create(self, shards: int | None) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        idx = milvus_index(self.manifest["index"])
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("pk", DataType.INT64, is_primary=True)
        s.add_field("doc_id", DataType.VARCHAR, max_length=4096)
        s.add_field("position", DataType.INT64)
        s.add_field("chunk_start", DataType.INT64)
        s.add_field("chunk_end", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("metadata", DataType.JSON)
        s.add_field("facets", DataType.JSON)
        s.add_field("source", DataType.VARCHAR, max_length=4096)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=int(self.manifest["dimension"]))
        s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                input_field_names=["text"], output_field_names=["sparse"]))
        ip = self.client.prepare_index_params()
        ip.add_index("vector", index_type=idx.index_type, metric_type="IP", params=idx.params)
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        extra = {"num_shards": shards} if shards else {}
        # Side collections first: the chunk collection (with its manifest) marks a complete one.
        for side, fields in ((self.docs_name, "docs"), (self.sources_name, "sources")):
            if self.client.has_collection(side):
                self.client.drop_collection(side)  # left over by a creation that crashed
            d = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            if fields == "docs":
                d.add_field("doc_id", DataType.VARCHAR, max_length=4096, is_primary=True)
                d.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
                d.add_field("metadata", DataType.JSON)
                d.add_field("facets", DataType.JSON)
                d.add_field("source", DataType.VARCHAR, max_length=4096)
                d.add_field("added", DataType.INT64)
            else:
                d.add_field("source", DataType.VARCHAR, max_length=4096, is_primary=True)
                d.add_field("digest", DataType.VARCHAR, max_length=256)
            d.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)
            dip = self.client.prepare_index_params()
            dip.add_index("placeholder", index_type="FLAT", metric_type="IP")
            with_retries(lambda: self.client.create_collection(side, schema=d, index_params=dip,
                                                               consistency_level="Strong", **extra), f"create {side}")
        with_retries(lambda: self.client.create_collection(self.name, schema=s, index_params=ip,
                                                           consistency_level="Strong", **extra), f"create {self.name}")
        with_retries(lambda: self.client.alter_collection_properties(
            self.name, properties={MANIFEST_PROPERTY: json.dumps(self.manifest)}), "record the manifest")

    # -- context management ------------------------------------------------------------
    def __enter__(self) -> MilvusCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MilvusCollection({self.name!r}, uri={self.uri!r}, model={self.manifest['model']!r})"

    def close(self) -> None:
        """Close the connection (writes were acknowledged by Milvus when they returned)."""
        try:
            self.client.close()
        except Exception as exc:  # closing must not hide the caller's real error
            log.warning("closing the Milvus connection failed: %s", exc)

    def flush(self, lock_timeout: float | None = None) -> None:
        """Ask Milvus to seal and persist what it holds (not needed for durability, see the module docstring)."""
        for name in (self.name, self.docs_name, self.sources_name):
            with_retries(lambda n=name: self.client.flush(n), f"flush {name}")

    def drop(self) -> None:
        """Delete the collection from Milvus, all three parts."""
        for name in (self.name, self.docs_name, self.sources_name):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    # -- shared pieces of the local collection (same validation, chunking, encoding) -----
    _check_embeddings = Collection._check_embeddings
    _chunk_and_encode = Collection._chunk_and_encode
    _encode_chunks = Collection._encode_chunks
    chunker = Collection.chunker

    def _progress_bar(self, total: int, label: str, outer: Callable[[int], None] | None) -> Any:
        """A rich progress bar over Milvus writes (yields an advance callback, or ``outer``/None)."""
        from contextlib import contextmanager

        @contextmanager
        def bar():
            show = self._progress if self._progress is not None else (sys.stderr.isatty() and total >= 512)
            if outer is not None or not show:
                yield outer
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                transient=True,
            ) as p:
                task = p.add_task(label, total=total)
                yield lambda k: p.advance(task, k)

        return bar()

    # -- writing -----------------------------------------------------------------------
    def add(
        self,
        documents: str | Sequence[str],
        ids: str | Sequence[str] | None = None,
        metadatas: dict[str, Any] | Sequence[dict[str, Any] | None] | None = None,
        embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
        sources: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Add new documents; returns their ids once Milvus acknowledged every row.

        Raises:
            InvalidInputError: as :meth:`semsearch.Collection.add` (an id that exists, empty
                text, ...), or a document longer than Milvus' 64 KiB VARCHAR.
            MilvusError: Milvus failed (after retries on transient errors).
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

    def _write(self, documents: Any, ids: Any, metadatas: Any, embeddings: Any, sources: Any, *, replace: bool) -> list[str]:
        rows = document_rows(documents, ids, metadatas, sources)
        if not rows:
            return []
        n, id_list_ = len(rows), [r.id for r in rows]
        self._check_sizes(rows)
        if not replace:
            existing = self._existing_ids(id_list_)
            if existing:
                raise InvalidInputError(
                    f"{len(existing)} id(s) already exist in the collection (first: {existing[0]!r}); "
                    "use upsert to replace them, or choose new ids"
                )
        if embeddings is not None:
            vectors = self._check_embeddings(embeddings, n)
            for row, vec in zip(rows, vectors):
                row.chunks = [ChunkRow(0, 0, len(row.text), vec)]
        else:
            self._chunk_and_encode(rows)
        self.write_rows(rows, replace=replace)
        return id_list_

    def _check_sizes(self, rows: Sequence[DocumentRow]) -> None:
        for row in rows:
            if len(row.text) * 4 > MAX_VARCHAR and len(row.text.encode("utf-8")) > MAX_VARCHAR:
                raise InvalidInputError(
                    f"document {row.id!r} is {len(row.text.encode('utf-8'))} bytes; Milvus stores at most {MAX_VARCHAR} "
                    "per text field, so split it into several documents (index_files splits CSV/JSONL records, not long files)"
                )
            if len(row.id.encode("utf-8")) > 4096:
                raise InvalidInputError(f"document id {row.id[:40]!r}... is longer than 4096 bytes; use a shorter id")

    def write_rows(self, rows: Sequence[DocumentRow], *, replace: bool, progress: Callable[[int], None] | None = None) -> None:
        """Store documents whose chunks already carry embeddings (used by add, upsert, migrate).

        With ``replace`` the previous chunks of these ids are removed after the new ones are
        stored (see the module docstring for why in that order).
        """
        old_pks = self._chunk_pks_of([r.id for r in rows]) if replace else []
        now = time.time_ns()
        chunk_rows: list[dict[str, Any]] = []
        doc_rows: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            f = facets(row.metadata)
            pks = _new_pks(len(row.chunks))
            for pk, c in zip(pks, row.chunks):
                chunk_rows.append({
                    "pk": pk, "doc_id": row.id, "position": int(c.position), "chunk_start": int(c.start),
                    "chunk_end": int(c.end), "text": row.text[c.start : c.end], "metadata": row.metadata, "facets": f,
                    "source": row.source or "", "vector": np.asarray(c.embedding, dtype=np.float32).tolist(),
                })
            doc_rows.append({"doc_id": row.id, "text": row.text, "metadata": row.metadata, "facets": f,
                             "source": row.source or "", "added": now + i, "placeholder": PLACEHOLDER})
        with self._progress_bar(len(chunk_rows), "writing to Milvus", progress) as advance:
            for part in _parts(chunk_rows, self._insert_batch):
                with_retries(lambda p=part: self.client.upsert(self.name, p), f"write {len(part)} chunks to {self.name}")
                if advance:
                    advance(len(part))
        for part in _parts(doc_rows, self._insert_batch):
            with_retries(lambda p=part: self.client.upsert(self.docs_name, p), f"write {len(part)} documents")
        if old_pks:
            self._delete_chunk_pks(old_pks)

    def delete(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        where: dict[str, Any] | str | None = None,
        where_document: dict[str, Any] | str | None = None,
    ) -> int:
        """Delete documents by id and/or filter; returns how many existed. Neither is an error."""
        node = combine(parse_where(where), parse_where_document(where_document))
        if ids is None and node is None:
            raise InvalidInputError("delete needs ids or a where/where_document filter; nothing was deleted")
        wanted = None if ids is None else ([ids] if isinstance(ids, str) else list(ids))
        if wanted is not None and not wanted:
            return 0
        doc_ids = [d["doc_id"] for d in self._query_docs(wanted, node, ["doc_id"])]
        if not doc_ids:
            return 0
        self._delete_documents(doc_ids)
        return len(doc_ids)

    def _delete_documents(self, doc_ids: Sequence[str]) -> None:
        # Document rows first: a crash then leaves only chunks of a deleted document, which the
        # next write or delete of that id removes; never a listed document without its chunks.
        for part in _parts(list(doc_ids), 1000):
            with_retries(lambda p=part: self.client.delete(self.docs_name, ids=p), "delete documents")
        for part in _parts(list(doc_ids), 1000):
            with_retries(lambda p=part: self.client.delete(self.name, filter=f"doc_id in {id_list(p)}"), "delete chunks")

    def _delete_chunk_pks(self, pks: Sequence[int]) -> None:
        for part in _parts(list(pks), 5000):
            with_retries(lambda p=part: self.client.delete(self.name, ids=p), "delete replaced chunks")

    def delete_source(self, source: str | os.PathLike[str]) -> int:
        """Delete every document indexed from a file; returns how many there were."""
        path = str(Path(source).expanduser().resolve()) if Path(source).expanduser().exists() else str(source)
        ids = [d["doc_id"] for d in self._query_all(self.docs_name, f"source == {string_literal(path)}", ["doc_id"])]
        if ids:
            self._delete_documents(ids)
        with_retries(lambda: self.client.delete(self.sources_name, ids=[path]), "forget the source")
        return len(ids)

    # -- reading -----------------------------------------------------------------------
    def count(self) -> int:
        """Number of documents."""
        res = with_retries(lambda: self.client.query(self.docs_name, filter="", output_fields=["count(*)"],
                                                     consistency_level=self.consistency), "count documents")
        return int(res[0]["count(*)"])

    def chunk_count(self) -> int:
        res = with_retries(lambda: self.client.query(self.name, filter="", output_fields=["count(*)"],
                                                     consistency_level=self.consistency), "count chunks")
        return int(res[0]["count(*)"])

    def get(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        where: dict[str, Any] | str | None = None,
        where_document: dict[str, Any] | str | None = None,
        limit: int | None = None,
    ) -> list[Document]:
        """Documents by id (in the order asked; unknown ids left out) and/or by filter (in insertion order)."""
        node = combine(parse_where(where), parse_where_document(where_document))
        fields = ["doc_id", "text", "metadata", "source", "added"]
        if ids is not None:
            wanted = [ids] if isinstance(ids, str) else list(ids)
            found = {d["doc_id"]: d for d in self._query_docs(wanted, node, fields)}
            rows = [found[i] for i in wanted if i in found]
        else:
            rows = sorted(self._query_docs(None, node, fields), key=lambda d: d["added"])
        docs = [Document(d["doc_id"], d["text"], d["metadata"] or {}, d["source"] or None) for d in rows]
        return docs[:limit] if limit is not None else docs

    def _existing_ids(self, ids: Sequence[str]) -> list[str]:
        return [d["doc_id"] for d in self._query_docs(list(ids), None, ["doc_id"])]

    def _chunk_pks_of(self, doc_ids: Sequence[str]) -> list[int]:
        out: list[int] = []
        for part in _parts(list(doc_ids), 1000):
            out.extend(r["pk"] for r in self._query_all(self.name, f"doc_id in {id_list(part)}", ["pk"]))
        return out

    def _query_docs(self, ids: list[str] | None, node: Node | None, fields: list[str]) -> list[dict[str, Any]]:
        expr = self.filter_expression(node)
        if ids is None:
            return list(self._query_all(self.docs_name, expr, fields))
        out: list[dict[str, Any]] = []
        for part in _parts(ids, 1000):
            e = f"doc_id in {id_list(part)}" + (f" and {expr}" if expr else "")
            # At most len(part) rows match a primary-key list, so one plain query is exact.
            out.extend(with_retries(lambda e=e, n=len(part): self.client.query(
                self.docs_name, filter=e, output_fields=fields, limit=n, consistency_level=self.consistency), "read documents"))
        return out

    def _query_all(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr`` (Milvus caps one query at 16384 rows, so this pages).

        Pages come from pymilvus' query iterator: a plain ``query`` with ``limit`` returns
        *some* matching rows, not the lowest keys, so paging by "key > last" would skip rows.
        """
        it = with_retries(lambda: self.client.query_iterator(
            collection, batch_size=self.query_batch, filter=expr, output_fields=fields, consistency_level=self.consistency), f"read {collection}")
        try:
            while True:
                rows = with_retries(it.next, f"read {collection}")
                if not rows:
                    return
                yield from rows
        finally:
            it.close()

    def filter_expression(self, node: Node | None) -> str:
        """The Milvus expression for a parsed filter ("" for none); text conditions resolved here."""
        return compile_filter(node, self._documents_containing)

    def _documents_containing(self, cond: Contains) -> set[str]:
        # ``like`` narrows the candidates (its % and _ are wildcards in Milvus Lite, so it can
        # only over-match); the exact substring test is done here on the returned text.
        if "\n" in cond.text or "\r" in cond.text:
            pattern = ""  # cannot be written in a like pattern; scan every document instead
        else:
            pattern = f"text like {string_literal('%' + cond.text + '%')}"
        return {r["doc_id"] for r in self._query_all(self.docs_name, pattern, ["doc_id", "text"]) if cond.text in r["text"]}

    def source_hashes(self) -> dict[str, str]:
        """File path -> content hash of every indexed file."""
        return {r["source"]: r["digest"] for r in self._query_all(self.sources_name, "", ["source", "digest"])}

    def record_sources(self, hashes: dict[str, str]) -> None:
        rows = [{"source": s, "digest": d, "placeholder": PLACEHOLDER} for s, d in hashes.items()]
        for part in _parts(rows, 1000):
            with_retries(lambda p=part: self.client.upsert(self.sources_name, p), "record file hashes")

    # -- searching ---------------------------------------------------------------------
    def search(self, query: Any, k: int = 10, **options: Any) -> Any:
        """Same arguments and results as :meth:`semsearch.Collection.search`.

        Dense candidates come from Milvus (its vector index, filter applied inside Milvus);
        lexical ones from Milvus' BM25 function (Milvus' standard analyzer, not the local
        any-script tokenizer); fusion, reranking, threshold and MMR run here, exactly as locally.
        """
        from ..retrieval.search import SearchOptions

        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"k must be a whole number of at least 1, got {k!r}")
        texts: list[str] | None = None
        if isinstance(query, np.ndarray):
            single = query.ndim == 1
            vectors: np.ndarray | None = Collection._check_query_vectors(self, query)  # type: ignore[arg-type]
        else:
            single = isinstance(query, str)
            texts = [query] if single else list(query)
            if not texts:
                raise InvalidInputError("no queries given; pass a string or a list of strings")
            for i, q in enumerate(texts):
                if not isinstance(q, str) or not q.strip():
                    raise InvalidInputError(f"query {i} is empty; give some text to search for")
            vectors = None
        defaults = {"where": None, "where_document": None, "mode": None, "fusion": "adaptive", "alpha": 0.7,
                    "rrf_k": 60.0, "candidates": 100, "rerank": None, "rerank_top": 50, "threshold": None, "mmr": None}
        unknown = set(options) - set(defaults)
        if unknown:
            raise InvalidInputError(f"unknown search option(s): {', '.join(sorted(unknown))}")
        opts = SearchOptions.checked(k=int(k), has_text=texts is not None, **{**defaults, **options})
        if vectors is None and opts.mode != "lexical":
            vectors = self.embedder.encode_queries(texts)
        results = run_milvus_search(self, texts, vectors, opts)
        return results[0] if single else results

    def dense_candidates(self, vectors: np.ndarray, n: int, expr: str) -> list[list[Candidate]]:
        """The n best documents per query vector, each through its best chunk, filter applied in Milvus."""
        fetch = min(MAX_TOPK, max(n, 10))
        pending = list(range(len(vectors)))
        out: list[list[Candidate]] = [[] for _ in range(len(vectors))]
        params = {"metric_type": "IP", "params": self.index.search_params}
        while pending:
            res = with_retries(lambda: self.client.search(
                self.name, data=[vectors[i].tolist() for i in pending], anns_field="vector", limit=fetch,
                filter=expr, search_params=params, output_fields=["doc_id"], consistency_level=self.consistency), "search")
            again = []
            for qi, hits in zip(pending, res):
                found = _best_per_document(hits, n)
                out[qi] = found
                if len(found) < n and len(hits) >= fetch and fetch < MAX_TOPK:
                    again.append(qi)  # chunks of a few documents crowded the others out
            pending = again
            fetch = min(MAX_TOPK, fetch * 4)
        return out

    def lexical_candidates(self, text: str, n: int, expr: str) -> list[Candidate]:
        """The n best documents for a query by Milvus' BM25 (each through its best chunk)."""
        fetch = min(MAX_TOPK, n * 2)
        while True:
            res = with_retries(lambda: self.client.search(
                self.name, data=[text], anns_field="sparse", limit=fetch, filter=expr,
                search_params={"metric_type": "BM25"}, output_fields=["doc_id"], consistency_level=self.consistency), "search BM25")
            hits = list(res[0])
            # Milvus Lite reports BM25 as a negated distance; a cluster as the (positive) score.
            if any(h["distance"] < 0 for h in hits):
                hits = [dict(h, distance=-h["distance"]) for h in hits]
            found = _best_per_document(hits, n)
            if len(found) >= n or len(hits) < fetch or fetch >= MAX_TOPK:
                return found
            fetch = min(MAX_TOPK, fetch * 4)

    # -- ingestion from files ----------------------------------------------------------
    def index_files(self, paths: Iterable[str | os.PathLike[str]], options: Any = None, *, prune: bool = True,
                    batch_chunks: int = 8192) -> IndexReport:
        """Index files and folders, as :meth:`semsearch.Collection.index_files`."""
        from ..ingest import loaders
        from ..ingest.plan import chunk_pending, load_changed_files

        started = time.perf_counter()
        options = options or loaders.LoadOptions()
        path_list = [Path(p).expanduser() for p in paths]
        report = IndexReport()
        known = self.source_hashes()
        files, pending = load_changed_files(path_list, options, known, report, check=self._check_sizes)
        self._check_unique_ids(pending)
        chunk_pending(self.chunker, pending)
        total = sum(len(r.chunks) for _, _, rows in pending for r in rows)
        with self._progress_bar(total, f"indexing {len(pending)} file(s)", None) as advance:
            batch: list[tuple[str, str, list[DocumentRow]]] = []
            size = 0
            for item in pending + [None]:  # type: ignore[list-item]
                if item is not None:
                    batch.append(item)
                    size += sum(len(r.chunks) for r in item[2])
                if batch and (item is None or size >= batch_chunks):
                    self._commit_files(batch, known, report, advance)
                    batch, size = [], 0
        if prune:
            seen = {str(f) for f in files}
            for folder in (p.resolve() for p in path_list if p.is_dir()):
                prefix = str(folder) + os.sep
                for source in [s for s in known if s.startswith(prefix) and s not in seen]:
                    self.delete_source(source)
                    report.files_removed += 1
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
        replaced = {key for key, _, _ in pending}
        for d in self._query_docs(list(owner), None, ["doc_id", "source"]):
            if d["source"] not in replaced:
                raise InvalidInputError(
                    f"document id {d['doc_id']!r} from {owner[d['doc_id']]} already exists, indexed from "
                    f"{d['source'] or 'the API'}; ids must be unique across files (set --id-field, or remove the other document)"
                )

    def _commit_files(self, batch: list[tuple[str, str, list[DocumentRow]]], known: dict[str, str],
                      report: IndexReport, advance: Callable[[int], None] | None) -> None:
        rows = [row for _, _, rs in batch for row in rs]
        self._encode_chunks(rows)
        if advance:
            advance(sum(len(r.chunks) for r in rows))
        # Documents of a changed file that the new version no longer has go first; the rest
        # are replaced in place (new chunks written before the old ones are removed).
        for key, _, file_rows in batch:
            if key in known:
                keep = {r.id for r in file_rows}
                old = [d["doc_id"] for d in self._query_all(self.docs_name, f"source == {string_literal(key)}", ["doc_id"])]
                stale = [d for d in old if d not in keep]
                if stale:
                    self._delete_documents(stale)
        self.write_rows(rows, replace=True, progress=lambda _n: None)
        self.record_sources({key: digest for key, digest, _ in batch})
        for key, _, file_rows in batch:
            if key in known:
                report.files_replaced += 1
            else:
                report.files_added += 1
            report.documents += len(file_rows)
            report.chunks += sum(len(r.chunks) for r in file_rows)

    # -- description -------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What the collection holds and how it was built (plus where it lives in Milvus)."""
        m = self.manifest
        return {
            "backend": "milvus",
            "uri": self.uri,
            "name": self.name,
            "documents": self.count(),
            "chunks": self.chunk_count(),
            "model": m["model"],
            "dimension": m["dimension"],
            "index": m["index"],
            "milvus_index": {"type": self.index.index_type, "params": self.index.params, "search": self.index.search_params},
            "chunk_size": m["chunk_size"],
            "chunk_overlap": m["chunk_overlap"],
            "prompts": m.get("prompts", {}),
            "created_with": m.get("created_with"),
            "lexical_tokenizer": m.get("lexical"),
        }

    def verify(self) -> dict[str, Any]:
        """Counts of documents and chunks; ``consistent`` when every chunk belongs to a listed document."""
        docs = {d["doc_id"] for d in self._query_all(self.docs_name, "", ["doc_id"])}
        chunk_docs = {r["doc_id"] for r in self._query_all(self.name, "", ["doc_id"])}
        return {"documents": len(docs), "chunks": self.chunk_count(), "consistent": chunk_docs <= docs}

    # -- bulk export (migration) -------------------------------------------------------
    def export_rows(self, batch: int = 1000) -> Iterator[list[DocumentRow]]:
        """Every document with its chunks and stored embeddings, in batches (no encoding)."""
        fields = ["doc_id", "text", "metadata", "source", "added"]
        docs = sorted(self._query_all(self.docs_name, "", fields), key=lambda d: d["added"])
        for part in _parts(docs, batch):
            rows = {d["doc_id"]: DocumentRow(d["doc_id"], d["text"], d["metadata"] or {}, d["source"] or None) for d in part}
            chunks = self._query_all(self.name, f"doc_id in {id_list(list(rows))}",
                                     ["doc_id", "position", "chunk_start", "chunk_end", "vector"])
            for c in sorted(chunks, key=lambda c: (c["doc_id"], c["position"])):
                rows[c["doc_id"]].chunks.append(
                    ChunkRow(c["position"], c["chunk_start"], c["chunk_end"], np.asarray(c["vector"], dtype=np.float32)))
            yield list(rows.values())


class MilvusChunkReader:
    """The two reads the shared search stages need (hits, reranking, MMR), served from Milvus.

    Named ``store`` on the collection so :mod:`semsearch.retrieval` stages run unchanged.
    """

    def __init__(self, col: MilvusCollection) -> None:
        self.col = col

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        out: dict[int, StoredChunk] = {}
        fields = ["pk", "doc_id", "text", "metadata", "source", "position", "chunk_start", "chunk_end"]
        for part in _parts([int(i) for i in chunk_ids], 1000):
            rows = with_retries(lambda p=part: self.col.client.get(self.col.name, ids=p, output_fields=fields), "read chunks")
            for r in rows:
                out[int(r["pk"])] = StoredChunk(int(r["pk"]), r["doc_id"], r["text"], r["metadata"] or {},
                                                r["source"] or None, int(r["position"]), int(r["chunk_start"]), int(r["chunk_end"]))
        return out

    def lexical_term_statistics(self, terms: Sequence[str], chunk_id: int) -> tuple[dict[str, int], int, set[str]]:
        """What adaptive fusion reads to tell how much of the query BM25's best hit matched.

        Milvus does not expose per-term document frequencies, so every term weighs the same
        (no frequencies, total 0); the hit's terms come from its text, tokenized as locally.
        """
        from ..retrieval.lexical import tokenize

        chunk = self.chunks([int(chunk_id)]).get(int(chunk_id))
        return {}, 0, set(tokenize(chunk.text)) if chunk is not None else set()

    def embeddings(self, chunk_ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        ids: list[int] = []
        vecs: list[list[float]] = []
        for part in _parts([int(i) for i in np.asarray(chunk_ids).tolist()], 1000):
            rows = with_retries(lambda p=part: self.col.client.get(self.col.name, ids=p, output_fields=["pk", "vector"]),
                                "read embeddings")
            for r in rows:
                ids.append(int(r["pk"]))
                vecs.append(r["vector"])
        return np.array(ids, dtype=np.int64), np.array(vecs, dtype=np.float32).reshape(len(ids), dim)


def run_milvus_search(col: MilvusCollection, texts: list[str] | None, vectors: np.ndarray | None, opts: Any) -> list[list[Hit]]:
    """The local search pipeline with Milvus as the candidate source (see :func:`semsearch.retrieval.search.run_search`)."""
    from ..retrieval.search import rank_candidates

    n_queries = len(texts) if texts is not None else len(vectors)  # type: ignore[arg-type]
    expr = col.filter_expression(opts.filter)
    if expr == "false":
        return [[] for _ in range(n_queries)]
    pool = max(opts.candidates, opts.k, opts.rerank_top if opts.rerank else 0)
    dense = col.dense_candidates(vectors, pool, expr) if opts.mode != "lexical" else [[] for _ in range(n_queries)]
    lexical = [col.lexical_candidates(t, pool, expr) for t in texts] if opts.mode != "dense" else [[] for _ in range(n_queries)]
    return rank_candidates(col, texts, dense, lexical, opts)


def _best_per_document(hits: Iterable[dict[str, Any]], n: int) -> list[Candidate]:
    seen: set[str] = set()
    found: list[Candidate] = []
    for h in hits:
        doc = h["entity"]["doc_id"]
        if doc in seen:
            continue
        seen.add(doc)
        found.append(Candidate(doc, int(h["id"] if "id" in h else h["pk"]), float(h["distance"])))
        if len(found) == n:
            break
    return found


def _parts(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def release_lite(uri: str) -> None:
    """Stop the in-process Milvus Lite server of a ``.db`` file (tests and short-lived tools)."""
    if not str(uri).endswith(".db"):
        return
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(str(uri))


__all__ = ["MilvusCollection", "MilvusError", "MilvusIndex", "collection_name", "milvus_index", "release_lite",
           "with_retries"]
