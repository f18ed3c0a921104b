"""Re-encoding a collection with another model or dimension: ``Collection.reindex``.

The facade chooses and checks the new model (its chunk length, its dimension against the
index spec, truncation only for Matryoshka models) and encodes; the engine stages the new
vectors, swaps them in atomically and rebuilds its index (:meth:`semsearch.engine.Engine.reembed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..embedding import canonical_model_name
from ..errors import EmbeddingsReplacedError, InvalidInputError
from ..types import ReindexReport
from .manifest import collection_embedder, model_keys, new_embedder

if TYPE_CHECKING:
    from ..embedding import Embedder
    from ..engine import Engine

T = TypeVar("T")


class Reindexing:
    """The part of :class:`semsearch.Collection` that changes its model (a mixin)."""

    embedder: Embedder
    _chunker: Any
    _encoder: dict[str, Any]

    @property
    def engine(self) -> Engine:
        raise NotImplementedError  # the facade's

    @property
    def manifest(self) -> dict[str, Any]:
        assert self.engine.manifest is not None
        return self.engine.manifest

    def reindex(
        self,
        model: str | None = None,
        *,
        dimensions: int | None = None,
        force_dimensions: bool = False,
        index: str | None = None,
        batch_chunks: int = 4096,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReindexReport:
        """Re-encode every chunk from its stored text with ``model`` (a name or a folder, e.g. one
        made by ``semsearch finetune``) and/or at ``dimensions``, and use it from then on.

        Chunks stay as they are (a model that reads fewer tokens than the collection's
        ``chunk_size`` is refused). The old vectors keep serving searches until every new one is
        encoded; then one atomic swap puts the new set, the manifest (model, dimension, prompts,
        max_seq_length) and a rebuilt index in place and removes the old vectors. A run that is
        interrupted (even by kill -9) leaves the old set in use and resumes where it stopped when
        called again with the same model and dimension. ``index`` changes the index spec at the
        same time. ``progress(done, total)`` is told the chunks encoded after each batch.

        Without ``model`` the collection's own model is re-encoded at ``dimensions``; without
        ``dimensions`` the model's full dimension is used. Returns what was done (``changed`` is
        False when the collection already holds those vectors; only ``index`` is then applied).

        Raises:
            InvalidInputError: nothing asked; a model that reads fewer tokens than ``chunk_size``;
                truncation of a model not trained for it (see ``force_dimensions``); an index spec
                the new dimension cannot take. Nothing is changed.
            CollectionBusyError: another process kept the collection busy, or re-encodes it too.
        """
        started = time.perf_counter()
        if model is None and dimensions is None and index is None:
            raise InvalidInputError("reindex needs a model, dimensions or an index spec; nothing was changed")
        m = self.manifest
        name = canonical_model_name(model) if model is not None else m["model"]
        if model is None and dimensions is None:  # only the index spec changes
            self.engine.set_index(index)  # type: ignore[arg-type]
            return ReindexReport(m["model"], int(m["dimension"]), index=str(index), changed=False,
                                 seconds=time.perf_counter() - started)
        embedder = new_embedder(name, dimensions, force_dimensions, self._encoder)
        keys = model_keys(embedder, int(m["chunk_size"]))
        spec = index or m["index"]
        if keys["model"] == m["model"] and keys["dimension"] == int(m["dimension"]):
            if index is not None and index != m["index"]:
                self.engine.set_index(index)
            return ReindexReport(keys["model"], keys["dimension"], chunks=self.engine.chunk_count(), index=spec,
                                 changed=False, seconds=time.perf_counter() - started)
        try:
            self.engine.check_index(spec, keys["dimension"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (the collection's index spec at the new dimension {keys['dimension']}; "
                                    "choose another with index=... / --index)") from None
        embedder.cache = self.embedder.cache  # its keys name the model and dimension: never mixed
        limit = keys["max_seq_length"] - 2
        truncated = 0

        def encode(texts: list[str]) -> np.ndarray:
            nonlocal truncated
            # Chunks were cut by the old model's tokenizer: count what the new one reads in full.
            truncated += sum(n > limit for n in embedder.count_tokens(texts))
            return embedder.encode_documents(texts)

        report = self.engine.reembed({**keys, "index": spec}, encode, batch=batch_chunks, progress=progress)
        self.embedder, self._chunker = embedder, None
        report.truncated_chunks, report.seconds = truncated, time.perf_counter() - started
        return report

    def reopen(self) -> None:
        """Read the collection again after another process re-encoded it: its manifest, index and model."""
        self.engine.reload()
        cache = self.embedder.cache
        self.embedder = collection_embedder(self.manifest, self._encoder)
        self.embedder.cache = cache
        self._chunker = None

    def _current_model(self, call: Callable[[], T]) -> T:
        """``call()``, once more with the new model if another process re-encoded the collection meanwhile."""
        try:
            return call()
        except EmbeddingsReplacedError:
            self.reopen()
            return call()


__all__ = ["Reindexing"]
