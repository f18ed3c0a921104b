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
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        batch_chunks: int = 4096,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReindexReport:
        """Re-encode every chunk from its stored text with ``model`` (a name or a folder, e.g. one
        made by ``semsearch finetune``) and/or at ``dimensions``, and use it from then on.

        Chunks stay as they are unless the new model reads fewer tokens than the collection's
        ``chunk_size`` (e.g. one fine-tuned with a shorter max_seq_length): then every document
        is cut again from its stored text into chunks of what the model reads (the overlap scaled
        alike), and the report says so (``rechunked``). ``chunk_size`` / ``chunk_overlap`` ask for
        another chunking outright, with or without another model. The old vectors (and chunks)
        keep serving searches until every new one is encoded; then one atomic swap puts the new
        set, the manifest (model, dimension, prompts, max_seq_length, chunking) and a rebuilt index
        in place and removes the old set. A run that is interrupted (even by kill -9) leaves the
        old set in use and resumes where it stopped when called again with the same target.
        ``index`` changes the index spec at the same time. ``progress(done, total)`` is told the
        chunks encoded after each batch (documents, when re-chunking).

        Without ``model`` the collection's own model is re-encoded at ``dimensions``; without
        ``dimensions`` the model's full dimension is used (the current one, when only the chunking
        changes). Returns what was done (``changed`` is False when the collection already holds
        those vectors; only ``index`` is then applied).

        Raises:
            InvalidInputError: nothing asked; a ``chunk_size`` above what the model reads, or a bad
                ``chunk_overlap``; truncation of a model not trained for it (see ``force_dimensions``);
                an index spec the new dimension cannot take; re-chunking on an engine that cannot
                (Milvus). Nothing is changed.
            CollectionBusyError: another process kept the collection busy, or re-encodes it too.
        """
        started = time.perf_counter()
        if model is None and dimensions is None and index is None and chunk_size is None and chunk_overlap is None:
            raise InvalidInputError("reindex needs a model, dimensions, a chunk size or an index spec; "
                                    "nothing was changed")
        m = self.manifest
        if model is None and dimensions is None and chunk_size is None and chunk_overlap is None:
            self.engine.set_index(index)  # type: ignore[arg-type]  # only the index spec changes
            return ReindexReport(m["model"], int(m["dimension"]), index=str(index), changed=False,
                                 seconds=time.perf_counter() - started)
        if model is None and dimensions is None and int(m.get("model_dimension", m["dimension"])) != m["dimension"]:
            dimensions = int(m["dimension"])  # only the chunking changes: keep the truncation
        embedder = new_embedder(canonical_model_name(model) if model is not None else m["model"], dimensions,
                                force_dimensions, self._encoder)
        chunker = self._new_chunker(embedder, chunk_size, chunk_overlap)
        keys = model_keys(embedder, chunker.chunk_size)
        spec = index or m["index"]
        rechunk = (chunker.chunk_size, chunker.overlap) != (m["chunk_size"], m["chunk_overlap"])
        if not rechunk and (keys["model"], keys["dimension"]) == (m["model"], int(m["dimension"])):
            if index is not None and index != m["index"]:
                self.engine.set_index(index)
            return ReindexReport(keys["model"], keys["dimension"], chunks=self.engine.chunk_count(), index=spec,
                                 changed=False, seconds=time.perf_counter() - started, chunk_size=m["chunk_size"])
        try:
            self.engine.check_index(spec, keys["dimension"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (the collection's index spec at the new dimension {keys['dimension']}; "
                                    "choose another with index=... / --index)") from None
        embedder.cache = self.embedder.cache  # its keys name the model and dimension: never mixed
        if rechunk:
            target = {**keys, "index": spec, "chunk_size": chunker.chunk_size, "chunk_overlap": chunker.overlap}
            report = self.engine.reembed(target, embedder.encode_documents, batch=batch_chunks, progress=progress,
                                         split=lambda texts: [[(c.start, c.end) for c in chunks]
                                                              for chunks in chunker.split_many(texts)])
        else:
            report = self._reembed(embedder, {**keys, "index": spec}, keys["max_seq_length"] - 2, batch_chunks,
                                   progress)
        self.embedder, self._chunker = embedder, chunker
        report.seconds = time.perf_counter() - started
        return report

    def _new_chunker(self, embedder: Embedder, chunk_size: int | None, chunk_overlap: int | None) -> Any:
        """The chunker of the new set: the asked chunking, else the collection's, cut down to what
        ``embedder`` reads (the overlap in proportion). Raises InvalidInputError for a bad one."""
        from ..ingest.chunking import Chunker

        m = self.manifest
        old_size, old_overlap = int(m["chunk_size"]), int(m["chunk_overlap"])
        size = chunk_size if chunk_size is not None else min(old_size, embedder.info().max_seq_length - 2)
        if chunk_overlap is not None:
            overlap = chunk_overlap
        else:  # shorter chunks share proportionally less; longer ones keep the overlap they had
            overlap = old_overlap * size // old_size if size < old_size else old_overlap
        model_keys(embedder, size)  # a size above what the model reads: the clear error
        return Chunker(embedder.plain_tokenizer, size, overlap)

    def _reembed(self, embedder: Embedder, target: dict[str, Any], limit: int, batch: int,
                 progress: Callable[[int, int], None] | None) -> ReindexReport:
        """New vectors for the chunks as they are, counting those longer than ``limit`` tokens."""
        truncated = 0

        def encode(texts: list[str]) -> np.ndarray:
            nonlocal truncated
            # Chunks were cut by the old model's tokenizer: count what the new one reads in full.
            truncated += sum(n > limit for n in embedder.count_tokens(texts))
            return embedder.encode_documents(texts)

        report = self.engine.reembed(target, encode, batch=batch, progress=progress)
        report.truncated_chunks, report.chunk_size = truncated, int(self.manifest["chunk_size"])
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
