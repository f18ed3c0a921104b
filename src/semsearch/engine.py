"""The engine interface: what a collection needs from wherever its data lives.

:class:`semsearch.Collection` is written once: it checks input, chunks, encodes, runs the
ranking stages and builds hits. Everything that depends on where documents, chunks and vectors
are kept goes through this small interface, implemented by ``backends/local`` (SQLite, the
truth, plus a derived FAISS index and BM25 arrays) and ``backends/milvus`` (Milvus Lite or a
cluster). A new backend is one package under ``backends/`` implementing it and one line in
:func:`semsearch.backends.open_engine`; the behavioural suite (tests/test_backends.py) then runs
every public method against it.

Filters arrive parsed (:mod:`semsearch.filters` nodes); each engine compiles them itself.
Documents are returned in the order asked (by id) or in insertion order (by filter). A search is
one :meth:`Engine.retrieve` call (a plan in, candidates with what the ranking stages read out),
then at most one :meth:`Engine.chunks` call for the hits' texts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .filters import Node
from .types import Document, DocumentRow, FileState, ReindexReport, RetrievalPlan, Retrieved, StoredChunk, StoreSalvage


class Engine(Protocol):
    """Storage and candidate retrieval for one collection."""

    @property
    def manifest(self) -> dict[str, Any] | None:
        """How the collection was built (model, dimension, prompts, chunking, index spec...),
        None until :meth:`create` for a collection that does not exist yet."""

    @property
    def path(self) -> Path | str:
        """Where the collection lives, for messages and ``info`` (a folder, or ``uri#name``)."""

    @property
    def cache_path(self) -> Path | None:
        """Where an embedding cache for this collection may live (None: no cache)."""

    #: Its short name (the folder's or the Milvus collection's).
    name: str
    #: The index spec a new collection gets when none is asked for.
    default_index: str

    # -- life cycle -----------------------------------------------------------------------
    def manifest_for(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest a collection created with ``manifest`` records (the engine adds its own keys)."""

    def create(self, manifest: dict[str, Any]) -> None:
        """Create the collection with this manifest (stored as :meth:`manifest_for` makes it)."""

    def check_index(self, spec: str, dimension: int) -> None:
        """Raise InvalidInputError for an index spec this engine cannot build."""

    def set_index(self, spec: str) -> None:
        """Change the index spec of an existing collection (rebuilt from stored vectors)."""

    def update_manifest(self, values: Mapping[str, Any]) -> None:
        """Record extra keys in the manifest (e.g. what an evaluation corpus was)."""

    def reembed(self, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *, batch: int = 4096,
                progress: Callable[[int, int], None] | None = None,
                split: Callable[[list[str]], list[list[tuple[int, int]]]] | None = None) -> ReindexReport:
        """Replace every chunk's embedding by ``encode(chunk texts)`` and the manifest's model keys
        by ``target`` (model, dimension, model_dimension, prompts, max_seq_length; optionally index).

        The old embeddings serve searches until the new set is complete; the swap is atomic (a kill
        leaves the old set or the new one, never a mix), batches already encoded by an interrupted
        run for the same model and dimension are kept, chunks written meanwhile are encoded too,
        the derived index is rebuilt and the old vectors removed. ``progress(done, total)`` after
        each batch. Other processes that opened the collection before the swap then get
        EmbeddingsReplacedError.

        With ``split`` (texts -> each text's chunk offsets) every document is cut again from its
        stored text and ``target`` carries the new chunk_size and chunk_overlap: the chunk rows
        are replaced too, under the same guarantees, and ``progress`` counts documents. An engine
        that cannot do this raises InvalidInputError before changing anything.
        """

    def reload(self) -> None:
        """Read the manifest and derived structures again (after EmbeddingsReplacedError)."""

    def flush(self, lock_timeout: float | None = None) -> None:
        """Make derived structures current and persistent (durability never depends on it)."""

    def warm_up(self) -> None:
        """Load what the first search would otherwise wait for (indexes, lexical statistics)."""

    def verify(self) -> dict[str, Any]:
        """Check the derived structures against the stored data (repairing what it can)."""

    def repair(self, *, force: bool = False) -> StoreSalvage:
        """Rebuild a damaged store from every readable row, reporting what was lost (or say
        there is nothing to repair: ``repaired`` False). Raises InvalidInputError where the
        engine's storage repairs itself."""

    def check_writable(self) -> None:
        """Raise StoreDamagedError when writes must wait for a repair."""

    def info(self) -> dict[str, Any]:
        """Engine-specific facts for ``Collection.info`` (index details, size, where it lives)."""

    def close(self) -> None:
        """Release connections and files; the collection object is unusable afterwards."""

    def drop(self) -> None:
        """Delete the whole collection (documents, vectors, everything); then close."""

    # -- writing --------------------------------------------------------------------------
    def check_rows(self, rows: Sequence[DocumentRow]) -> None:
        """Raise InvalidInputError for rows this engine cannot store (before anything is encoded)."""

    def write(
        self, rows: Sequence[DocumentRow], *, replace: bool, files: Mapping[str, FileState] | None = None
    ) -> None:
        """Store documents whose chunks carry embeddings. Durable when it returns.

        Without ``replace`` an id that exists raises DuplicateIdError and nothing is written;
        with it, documents with these ids are replaced. ``files`` (source path -> state)
        records indexed files' hashes; for a state with ``ids`` (the file is complete) the
        source's documents not among them are removed. Atomic where the engine can be.
        """

    def delete(self, ids: Sequence[str] | None, where: Node | None) -> int:
        """Delete the documents with these ids that match ``where`` (either may be None, not
        both); returns how many existed."""

    def delete_source(self, source: str) -> int:
        """Delete every document indexed from this file and forget its hash; returns how many."""

    def set_files(self, hashes: Mapping[str, str]) -> None:
        """Record file hashes (source path -> content hash) without touching documents."""

    def update_metadata(self, metadatas: Mapping[str, dict[str, Any]]) -> int:
        """Replace the metadata of existing documents (id -> new metadata), leaving text, chunks,
        vectors and insertion order as they are; returns how many documents were updated."""

    # -- reading --------------------------------------------------------------------------
    def count(self) -> int:
        """Number of documents."""

    def chunk_count(self) -> int:
        """Number of chunks (= vectors)."""

    def files(self) -> dict[str, str]:
        """Source path -> content hash of every indexed file."""

    def sources_of(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Id -> source of those of ``ids`` that exist."""

    def documents(self, ids: Sequence[str] | None, where: Node | None, limit: int | None) -> list[Document]:
        """Documents by id (in the order asked, unknown ids left out) and/or matching
        ``where`` (insertion order), at most ``limit``."""

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        """The given chunks that still exist, with their text and document."""

    def vectors(self, chunk_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 vectors) of the given chunks that still exist."""

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        """The chunk ids of each given document that exists, in position order."""

    def export(self, batch: int) -> Iterator[list[DocumentRow]]:
        """Every document with its chunks and stored embeddings, in insertion order, in batches."""

    # -- the search path -----------------------------------------------------------------
    def retrieve(self, plan: RetrievalPlan) -> list[Retrieved]:
        """Everything one search needs, in one call: per query, the dense and lexical candidates
        (each document once, through its best chunk; the true top-n among the documents matching
        ``plan.where``) and what ``plan`` asks about them (term statistics, stored vectors, chunks).
        One entry per query; empty lists when nothing matches the filter.

        Raises:
            FilterError: a filter this engine cannot evaluate.
            EmbeddingsReplacedError: another process re-encoded the collection since it was opened.
        """


__all__ = ["Engine"]
