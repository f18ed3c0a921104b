"""What a collection records about how it was built, and the checks made when it is opened again.

The manifest (model, dimension, normalisation, prompts, chunking, index spec, version) is
stored by the engine with the data: a collection opened with another model or chunk size is a
clear error, never vectors that do not match.
"""

from __future__ import annotations

import time
from typing import Any

from ..embedding import DEFAULT_MODEL, Embedder, canonical_model_name
from ..engine import Engine
from ..errors import InvalidInputError, ModelMismatchError
from ..version import __version__


def model_keys(embedder: Embedder, chunk_size: int | None) -> dict[str, Any]:
    """What a manifest records about the model of ``embedder`` (loads it: the dimension is needed).

    Raises:
        InvalidInputError: a chunk size above what the model reads at once.
    """
    info = embedder.info()
    max_tokens = info.max_seq_length - 2  # room for [CLS] and [SEP]
    if chunk_size is not None and chunk_size > max_tokens:
        raise InvalidInputError(f"chunk_size {chunk_size} is more than {embedder.name} reads ({max_tokens} tokens); "
                                f"use at most {max_tokens}, or a model that reads more")
    return {
        "model": embedder.name,
        "dimension": info.dimension,
        "model_dimension": info.model_dimension,  # more than ``dimension`` when truncated (Matryoshka)
        "normalized": True,
        "similarity": "cosine",
        "prompts": info.prompts,
        "max_seq_length": info.max_seq_length,
    }


def new_manifest(
    embedder: Embedder, *, index: str, chunk_size: int | None, chunk_overlap: int | None
) -> dict[str, Any]:
    """The manifest of a new collection encoded by ``embedder`` (loads the model: the dimension is needed).

    Raises:
        InvalidInputError: a chunk size above what the model reads at once.
    """
    keys = model_keys(embedder, chunk_size)
    size = chunk_size or keys["max_seq_length"] - 2
    return {
        **keys,
        "chunk_size": size,
        "chunk_overlap": chunk_overlap if chunk_overlap is not None else size // 8,
        "index": index,
        "created_with": f"semsearch {__version__}",
        "created_at": time.time(),
    }


def check_reopen(manifest: dict[str, Any], where: object, *, model: str | None, chunk_size: int | None,
                 dimensions: int | None = None) -> None:
    """Refuse to open a collection with settings it was not built with.

    Raises:
        ModelMismatchError: another model or dimension than the collection's.
        InvalidInputError: another chunk size (:meth:`Collection.reindex` changes it).
    """
    recorded = manifest["model"]
    if model is not None and canonical_model_name(model) != recorded:
        raise ModelMismatchError(
            f"{where} was built with model {recorded!r} (dimension {manifest['dimension']}); you asked for "
            f"{canonical_model_name(model)!r}. Open it without a model to use {recorded!r}, re-encode it with "
            f"`semsearch reindex --model {model}` (Collection.reindex(model=...)), or index into a new collection"
        )
    if chunk_size is not None and chunk_size != manifest["chunk_size"]:
        raise InvalidInputError(
            f"{where} chunks at {manifest['chunk_size']} tokens, not {chunk_size}; open it without a chunk size, "
            f"re-chunk it with `semsearch reindex --chunk-size {chunk_size}` (Collection.reindex(chunk_size="
            f"{chunk_size}); local collections), or index into a new collection"
        )
    if dimensions is not None and dimensions != manifest["dimension"]:
        raise ModelMismatchError(
            f"{where} holds {manifest['dimension']}-dimensional vectors, not {dimensions}; re-encode it with "
            f"`semsearch reindex --dimensions {dimensions}` (Collection.reindex(dimensions={dimensions}))"
        )


def new_embedder(model: str, dimensions: int | None, force_dimensions: bool, encoder: dict[str, Any]) -> Embedder:
    """An embedder of ``model`` for a new embedding set, truncating to ``dimensions`` if the model allows.

    Raises:
        InvalidInputError: truncation the model was not trained for (see :func:`check_truncation`).
    """
    embedder = Embedder(model, dimensions=dimensions, **encoder)
    if dimensions is not None:
        from ..embedding.matryoshka import check_truncation

        check_truncation(embedder.name, dimensions, embedder.model_dimension, force=force_dimensions)
    return embedder


def collection_embedder(manifest: dict[str, Any], encoder: dict[str, Any]) -> Embedder:
    """The embedder of an existing collection, as its manifest records it (truncation included)."""
    dim = int(manifest["dimension"])
    truncated = dim if int(manifest.get("model_dimension", dim)) != dim else None
    return Embedder(manifest["model"], expect_dimension=dim, dimensions=truncated, **encoder)


def open_embedder(engine: Engine, model: str | None, *, index: str | None, chunk_size: int | None,
                  chunk_overlap: int | None, encoder: dict[str, Any], dimensions: int | None = None,
                  force_dimensions: bool = False) -> tuple[Embedder, Engine]:
    """The encoder of the collection behind ``engine``, and the engine to use.

    A new collection gets the manifest of ``model`` (default all-MiniLM-L6-v2, truncated to
    ``dimensions`` if given), checked in full (model, chunking, index spec) but not created: the
    engine returned is a :class:`~semsearch.collection.pending.PendingEngine` that creates it on the first
    write, so a run that fails before storing anything leaves nothing behind. A collection that
    exists but holds no document takes the settings asked for (it is made anew). An existing one
    is checked against the arguments (another ``index`` rebuilds its index from the stored vectors).

    Raises:
        ModelMismatchError, InvalidInputError: see :func:`check_reopen`, :func:`new_manifest`
            and :func:`new_embedder`.
    """
    if engine.manifest is not None and _asks_other_settings(engine.manifest, model, chunk_size, chunk_overlap,
                                                            dimensions) and engine.count() == 0:
        engine.drop()  # nothing is lost: it holds no document
    if engine.manifest is None:
        from ..ingest.chunking import check_chunking
        from .pending import PendingEngine

        embedder = new_embedder(model or DEFAULT_MODEL, dimensions, force_dimensions, encoder)
        manifest = new_manifest(embedder, index=index or engine.default_index, chunk_size=chunk_size,
                                chunk_overlap=chunk_overlap)
        check_chunking(manifest["chunk_size"], manifest["chunk_overlap"])
        engine.check_index(manifest["index"], int(manifest["dimension"]))
        return embedder, PendingEngine(engine, manifest)
    check_reopen(engine.manifest, engine.path, model=model, chunk_size=chunk_size, dimensions=dimensions)
    embedder = collection_embedder(engine.manifest, encoder)
    if index is not None and index != engine.manifest["index"]:
        engine.set_index(index)
    return embedder, engine


def _asks_other_settings(manifest: dict[str, Any], model: str | None, chunk_size: int | None,
                         chunk_overlap: int | None, dimensions: int | None) -> bool:
    return ((model is not None and canonical_model_name(model) != manifest["model"])
            or (chunk_size is not None and chunk_size != manifest["chunk_size"])
            or (chunk_overlap is not None and chunk_overlap != manifest["chunk_overlap"])
            or (dimensions is not None and dimensions != manifest["dimension"]))


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest that ``info`` shows."""
    keys = ("model", "dimension", "index", "chunk_size", "chunk_overlap", "prompts", "created_with")
    out = {key: manifest.get(key, {} if key == "prompts" else None) for key in keys}
    out["model_dimension"] = manifest.get("model_dimension", manifest["dimension"])
    if manifest.get("reembedded_at"):
        out["reembedded_at"] = manifest["reembedded_at"]
    return out
