"""Re-encoding a Milvus collection with another model: a new chunk collection, swapped in by renames.

Milvus cannot add a vector field to a collection (Milvus Lite 3.2 answers UNIMPLEMENTED to
``add_collection_field``) and has no transaction, so the new set is a second chunk collection,
``NAME__reembed``, with the new dimension and index: every chunk row is copied into it with its
new vector, in batches (a killed run resumes: rows already there are skipped). Its manifest
property says which model and dimension it is for, and ``complete`` once every chunk is in it
(after a last pass that copies rows written or changed meanwhile and drops rows deleted
meanwhile). Then: ``NAME`` -> ``NAME__retired``, ``NAME__reembed`` -> ``NAME``, drop
``NAME__retired``. Each rename is atomic; a kill between the two leaves no ``NAME``, which
:func:`recover` (run whenever the collection is opened) resolves: a complete new set is renamed
into place, else the retired one back. The documents and sources collections do not change.

Milvus has no lock across clients: a write by another client between the last pass and the
first rename is not in the new set (``verify`` then finds its document without chunks only if
it was new; run reindex while nothing else writes). Clients that opened the collection before
the swap get EmbeddingsReplacedError on their next write or search (the facade reopens).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

from ...errors import EmbeddingsReplacedError, InvalidInputError
from ...types import ReindexReport
from .client import parts, query_all, with_retries
from .schema import MANIFEST_PROPERTY, create_chunk_collection, write_manifest
from .target import MilvusTarget

IDENTITY = ("model", "dimension", "model_dimension")
ROW_FIELDS = ["pk", "doc_id", "position", "chunk_start", "chunk_end", "text", "metadata", "facets", "source"]
EMBEDDINGS_ID = "embeddings_id"


def staging_name(name: str) -> str:
    return f"{name}__reembed"


def retired_name(name: str) -> str:
    return f"{name}__retired"


def _manifest_of(client: Any, name: str) -> dict[str, Any]:
    props = client.describe_collection(name).get("properties") or {}
    return json.loads(props.get(MANIFEST_PROPERTY) or "{}")


def recover(client: Any, name: str) -> None:
    """Finish or undo a swap a kill interrupted (see the module docstring); nothing to do otherwise."""
    new, old = staging_name(name), retired_name(name)
    if not client.has_collection(name):
        if client.has_collection(new) and _manifest_of(client, new).get("reembedding", {}).get("complete"):
            with_retries(lambda: client.rename_collection(new, name), "rename the new embedding set into place")
            write_manifest(client, name, {k: v for k, v in _manifest_of(client, name).items() if k != "reembedding"})
        elif client.has_collection(old):
            with_retries(lambda: client.rename_collection(old, name), "put the old embedding set back")
    if client.has_collection(name) and client.has_collection(old):
        with_retries(lambda: client.drop_collection(old), "drop the old embedding set")


def pending(engine: MilvusTarget) -> dict[str, Any] | None:
    """The target of an interrupted re-encoding, with how many chunks are staged; None if there is none."""
    new = staging_name(engine.name)
    if not engine.client.has_collection(new):
        return None
    staged = _manifest_of(engine.client, new).get("reembedding", {})
    return {**{k: staged.get(k) for k in IDENTITY}, "staged_chunks": engine.count_of(new)}


def check_current(engine: MilvusTarget) -> None:
    """EmbeddingsReplacedError when the collection was re-encoded since ``engine`` read its manifest;
    any other change another client made to it (its index spec...) is followed."""
    assert engine.manifest is not None
    current = with_retries(lambda: _manifest_of(engine.client, engine.name), "read the manifest")
    if current.get(EMBEDDINGS_ID) != engine.manifest.get(EMBEDDINGS_ID):
        raise EmbeddingsReplacedError(
            f"{engine.path} was re-encoded with {current.get('model')!r} (dimension {current.get('dimension')}) by "
            "another client since this one opened it; open the collection again to use the new model"
        )
    if current != engine.manifest:
        engine.follow(current)


def rechunking_refused(engine: MilvusTarget, target: Mapping[str, Any]) -> InvalidInputError:
    """The error for a re-encoding that must also cut the documents again, which Milvus collections do not
    support: a new chunk set with new primary keys per document has no safe resumable swap here."""
    assert engine.manifest is not None
    model, size = target["model"], target["chunk_size"]
    return InvalidInputError(
        f"{engine.path} chunks at {engine.manifest['chunk_size']} tokens and re-encoding it with {model!r} needs "
        f"chunks of at most {size}; re-chunking a Milvus collection is not supported, nothing was changed. Copy it "
        f"to a folder (`semsearch migrate {engine.name} DIR --src-uri {engine.uri}`), run `semsearch reindex "
        f"--model {model} -c DIR` there and copy it back (`semsearch migrate DIR NEW_NAME --dst-uri "
        f"{engine.uri}`), or index the documents again into a new collection with --model {model}"
    )


def reembed(engine: MilvusTarget, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *,
            batch: int = 4096, progress: Callable[[int, int], None] | None = None,
            split: Callable[[list[str]], list[list[tuple[int, int]]]] | None = None) -> ReindexReport:
    """Copy every chunk into a new chunk collection with ``encode``'s vectors, then swap (module docstring).

    Raises:
        InvalidInputError: ``split`` asks to cut the documents again (see :func:`rechunking_refused`).
    """
    if split is not None:
        raise rechunking_refused(engine, target)
    assert engine.manifest is not None
    client, name, new = engine.client, engine.name, staging_name(engine.name)
    dim = int(target["dimension"])
    wanted = {k: target.get(k) for k in IDENTITY}
    manifest = {k: v for k, v in {**engine.manifest, **dict(target)}.items() if k != "reembedding"}
    if client.has_collection(new):
        staged = _manifest_of(client, new).get("reembedding", {})
        if {k: staged.get(k) for k in IDENTITY} != wanted:
            with_retries(lambda: client.drop_collection(new), "drop a new set staged for another model")
    if not client.has_collection(new):
        create_chunk_collection(client, new, {**manifest, "reembedding": {**wanted, "complete": False}}, engine.shards)
    with_retries(lambda: client.load_collection(new), f"load {new}")
    have = {int(r["pk"]) for r in query_all(client, new, "", ["pk"], engine.consistency, engine.query_batch)}
    total = engine.chunk_count()
    report = ReindexReport(model=str(target["model"]), dimension=dim, chunks=total, resumed=len(have),
                           index=str(target.get("index") or engine.manifest["index"]))
    done = len(have)
    if progress is not None:
        progress(done, total)
    pending: list[dict[str, Any]] = []
    for row in query_all(client, name, "", ROW_FIELDS, engine.consistency, engine.query_batch):
        if int(row["pk"]) in have:
            continue
        pending.append(row)
        if len(pending) >= batch:
            report.encoded += _copy(engine, new, pending, encode, dim)
            done, pending = min(total, done + len(pending)), []
            if progress is not None:
                progress(done, total)
    if pending:
        report.encoded += _copy(engine, new, pending, encode, dim)
        if progress is not None:
            progress(min(total, done + len(pending)), total)
    report.encoded += _catch_up(engine, new, encode, dim)
    final = {**manifest, EMBEDDINGS_ID: uuid.uuid4().hex, "reembedded_at": time.time()}
    with_retries(lambda: client.flush(new), f"flush {new}")
    write_manifest(client, new, {**final, "reembedding": {**wanted, "complete": True}})  # the commit point
    _swap(client, name)
    write_manifest(client, name, final)
    engine.reload()
    report.chunks = engine.chunk_count()
    return report


def _copy(engine: MilvusTarget, new: str, rows: list[dict[str, Any]], encode: Callable[[list[str]], np.ndarray],
          dim: int) -> int:
    vectors = np.asarray(encode([r["text"] for r in rows]), dtype=np.float32)
    if vectors.shape != (len(rows), dim):
        raise InvalidInputError(f"the new model gave vectors of shape {vectors.shape}, expected ({len(rows)}, {dim})")
    out = [{**{k: r[k] for k in ROW_FIELDS}, "vector": v.tolist()} for r, v in zip(rows, vectors)]
    for part in parts(out, engine.insert_batch):
        with_retries(partial(engine.client.upsert, new, part), f"write {len(part)} re-encoded chunks")
    return len(rows)


def _catch_up(engine: MilvusTarget, new: str, encode: Callable[[list[str]], np.ndarray], dim: int) -> int:
    """Make the new set hold exactly the chunks the old one holds now: rows written or whose metadata
    changed meanwhile are copied again, rows deleted meanwhile dropped. Returns how many were encoded."""
    fields = [f for f in ROW_FIELDS if f != "text"]

    def key(r: dict[str, Any]) -> str:
        return json.dumps([r[f] for f in fields], sort_keys=True, default=str)

    old = {int(r["pk"]): key(r) for r in query_all(engine.client, engine.name, "", fields, engine.consistency,
                                                    engine.query_batch)}
    now = {
        int(r["pk"]): key(r) for r in query_all(engine.client, new, "", fields, engine.consistency, engine.query_batch)
    }
    gone = [pk for pk in now if pk not in old]
    for part in parts(gone, 5000):
        with_retries(partial(engine.client.delete, new, ids=part), "drop chunks deleted meanwhile")
    stale = [pk for pk, k in old.items() if now.get(pk) != k]
    encoded = 0
    for part in parts(stale, 1000):
        rows = with_retries(partial(engine.client.get, engine.name, ids=part, output_fields=ROW_FIELDS),
                            "read chunks written meanwhile")
        if rows:
            encoded += _copy(engine, new, list(rows), encode, dim)
    return encoded


def _swap(client: Any, name: str) -> None:
    old, new = retired_name(name), staging_name(name)
    with_retries(lambda: client.rename_collection(name, old), "retire the old embedding set")
    with_retries(lambda: client.rename_collection(new, name), "rename the new embedding set into place")
    with_retries(lambda: client.drop_collection(old), "drop the old embedding set")
