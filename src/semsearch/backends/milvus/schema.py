"""How a semsearch collection is laid out in Milvus, and its index specs in Milvus' terms.

One semsearch collection ``NAME`` is three Milvus collections:

- ``NAME``: one row per chunk: ``pk`` (int64, assigned here), ``doc_id``, ``position``,
  ``chunk_start``/``chunk_end`` (character offsets in the document), ``text`` (the chunk,
  analysed for Milvus' BM25 function into ``sparse``), ``metadata`` (JSON, as given),
  ``facets`` (JSON, the filterable view, see :mod:`.filters`), ``source``, ``vector``.
  The semsearch manifest (model, dimension, chunking, index spec) is a collection property.
- ``NAME__docs``: one row per document (``doc_id`` primary key, full ``text``, ``metadata``,
  ``facets``, ``source``, ``added`` ns timestamp for insertion order).
- ``NAME__sources``: file path -> content hash, so ``index_files`` skips unchanged files.

Milvus requires a vector field in every collection; the two side collections carry a 2-d
placeholder vector that is never searched.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ...errors import InvalidInputError, NotACollectionError
from .client import with_retries

MANIFEST_PROPERTY = "semsearch.manifest"
#: Milvus' largest VARCHAR, in bytes.
MAX_VARCHAR = 65_535
PLACEHOLDER = [1.0, 0.0]
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,180}$")


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
        f"index {spec!r} has no Milvus equivalent; use Flat, auto, HNSW<M>, IVF<n>,Flat, IVF<n>,SQ8, SQ8 or "
        "IVF<n>,PQ<m>"
    )


def collection_name(path_or_name: str | os.PathLike[str]) -> str:
    """The Milvus collection name for a semsearch collection name or folder-like path.

    Raises:
        InvalidInputError: the last path component is not a valid Milvus name once ``-``/``.``
            are turned into ``_``.
    """
    name = re.sub(r"[-. ]", "_", Path(os.fspath(path_or_name)).name)
    if not NAME_RE.match(name):
        raise InvalidInputError(
            f"{os.fspath(path_or_name)!r} cannot name a Milvus collection; use letters, digits and _ (not starting "
            "with a digit)"
        )
    return name


def read_manifest(client: Any, name: str, uri: str) -> dict[str, Any]:
    """The semsearch manifest stored as a property of the chunk collection.

    Raises:
        NotACollectionError: a Milvus collection of that name that semsearch did not make.
    """
    props = client.describe_collection(name).get("properties") or {}
    raw = props.get(MANIFEST_PROPERTY)
    if not raw:
        raise NotACollectionError(
            f"Milvus collection {name!r} at {uri} was not made by semsearch (no manifest); choose another name"
        )
    return json.loads(raw)


def write_manifest(client: Any, name: str, manifest: dict[str, Any]) -> None:
    with_retries(lambda: client.alter_collection_properties(name, properties={MANIFEST_PROPERTY: json.dumps(manifest)}),
                 "record the manifest")


def create_collections(client: Any, name: str, manifest: dict[str, Any], shards: int | None) -> None:
    """Create the three Milvus collections of a new semsearch collection, the chunk collection
    (with its manifest) last: its presence marks a complete one."""
    from pymilvus import DataType, MilvusClient

    extra = {"num_shards": shards} if shards else {}
    for side, kind in ((f"{name}__docs", "docs"), (f"{name}__sources", "sources")):
        if client.has_collection(side):
            client.drop_collection(side)  # left over by a creation that crashed
        d = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        if kind == "docs":
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
        dip = client.prepare_index_params()
        dip.add_index("placeholder", index_type="FLAT", metric_type="IP")
        with_retries(partial(client.create_collection, side, schema=d, index_params=dip, consistency_level="Strong",
                             **extra), f"create {side}")
    create_chunk_collection(client, name, manifest, shards)


def create_chunk_collection(client: Any, name: str, manifest: dict[str, Any], shards: int | None) -> None:
    """Create the chunk collection ``name`` for vectors of ``manifest["dimension"]``, its index
    as ``manifest["index"]``, and record the manifest on it."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    idx = milvus_index(manifest["index"])
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
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=int(manifest["dimension"]))
    s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                            input_field_names=["text"], output_field_names=["sparse"]))
    ip = client.prepare_index_params()
    ip.add_index("vector", index_type=idx.index_type, metric_type="IP", params=idx.params)
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    extra = {"num_shards": shards} if shards else {}
    with_retries(lambda: client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong", **extra),
                 f"create {name}")
    write_manifest(client, name, manifest)
