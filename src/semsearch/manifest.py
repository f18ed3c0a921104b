"""What a collection records about how it was built, and the checks made when it is opened again.

The manifest (model, dimension, normalisation, prompts, chunking, index spec, version) is
stored by the engine with the data: a collection opened with another model or chunk size is a
clear error, never vectors that do not match.
"""

from __future__ import annotations

import time
from typing import Any

from .embedding import DEFAULT_MODEL, Embedder, canonical_model_name
from .engine import Engine
from .errors import InvalidInputError, ModelMismatchError
from .version import __version__


def new_manifest(embedder: Embedder, *, index: str, chunk_size: int | None, chunk_overlap: int | None) -> dict[str, Any]:
    """The manifest of a new collection encoded by ``embedder`` (loads the model: the dimension is needed).

    Raises:
        InvalidInputError: a chunk size above what the model reads at once.
    """
    info = embedder.info()
    max_tokens = info.max_seq_length - 2  # room for [CLS] and [SEP]
    size = chunk_size or max_tokens
    if size > max_tokens:
        raise InvalidInputError(f"chunk_size {size} is more than {embedder.name} reads ({max_tokens} tokens); use at most {max_tokens}")
    return {
        "model": embedder.name,
        "dimension": info.dimension,
        "normalized": True,
        "similarity": "cosine",
        "prompts": info.prompts,
        "max_seq_length": info.max_seq_length,
        "chunk_size": size,
        "chunk_overlap": chunk_overlap if chunk_overlap is not None else size // 8,
        "index": index,
        "created_with": f"semsearch {__version__}",
        "created_at": time.time(),
    }


def check_reopen(manifest: dict[str, Any], where: object, *, model: str | None, chunk_size: int | None) -> None:
    """Refuse to open a collection with settings it was not built with.

    Raises:
        ModelMismatchError: another model than the collection's.
        InvalidInputError: another chunk size (re-chunking is not supported).
    """
    recorded = manifest["model"]
    if model is not None and canonical_model_name(model) != recorded:
        raise ModelMismatchError(
            f"{where} was built with model {recorded!r} (dimension {manifest['dimension']}); you asked for "
            f"{canonical_model_name(model)!r}. Open it without a model to use {recorded!r}, or index into a new "
            "collection to use the other model"
        )
    if chunk_size is not None and chunk_size != manifest["chunk_size"]:
        raise InvalidInputError(
            f"{where} chunks at {manifest['chunk_size']} tokens; re-chunking an existing collection "
            "is not supported, index into a new collection to change chunk_size"
        )


def open_embedder(engine: Engine, model: str | None, *, index: str | None, chunk_size: int | None,
                  chunk_overlap: int | None, encoder: dict[str, Any]) -> Embedder:
    """The encoder of the collection behind ``engine``: a new collection is created with the
    manifest of ``model`` (default all-MiniLM-L6-v2); an existing one is checked against the
    arguments (another ``index`` rebuilds its index from the stored vectors).

    Raises:
        ModelMismatchError, InvalidInputError: see :func:`check_reopen` and :func:`new_manifest`.
    """
    if engine.manifest is None:
        embedder = Embedder(model or DEFAULT_MODEL, **encoder)
        engine.create(new_manifest(embedder, index=index or engine.default_index, chunk_size=chunk_size,
                                   chunk_overlap=chunk_overlap))
        return embedder
    check_reopen(engine.manifest, engine.path, model=model, chunk_size=chunk_size)
    embedder = Embedder(engine.manifest["model"], expect_dimension=int(engine.manifest["dimension"]), **encoder)
    if index is not None and index != engine.manifest["index"]:
        engine.set_index(index)
    return embedder


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest that ``info`` shows."""
    keys = ("model", "dimension", "index", "chunk_size", "chunk_overlap", "prompts", "created_with")
    return {key: manifest.get(key, {} if key == "prompts" else None) for key in keys}
