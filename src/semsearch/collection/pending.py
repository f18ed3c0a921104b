"""A collection that does not exist yet: created by its first write, never by a failed first run.

``Collection(path)`` on an empty folder (or a new Milvus name) used to create the collection at
once, with the model, chunking and index the call named. A first ``semsearch index`` that then
failed (a chunk size too small, a mistyped path, a wrong ``--text-column``) left an empty
collection behind with those settings locked in, and every later run was refused. Here the
facade holds the engine of a collection that does not exist yet behind :class:`PendingEngine`:
it keeps the manifest the collection will be created with, answers every read as an empty
collection does, and creates the collection on the first write that stores something. If
another process (or another object) creates the collection meanwhile, it is adopted: reads see
its documents, and a collection made with another model raises EmbeddingsReplacedError, on which
the facade reopens itself with that model. Once the collection exists it only delegates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Engine
from ..errors import EmbeddingsReplacedError
from ..filters import Node
from ..types import (
    Document,
    DocumentRow,
    FileState,
    ReindexReport,
    RetrievalPlan,
    Retrieved,
    StoredChunk,
    StoreSalvage,
)


class PendingEngine:
    """An :class:`~semsearch.engine.Engine` whose collection is created by the first write.

    ``manifest`` is the manifest it will be created with (changed in place by ``set_index`` or
    ``update_manifest`` until then). ``created`` tells whether the collection exists now.
    """

    def __init__(self, engine: Engine, manifest: dict[str, Any],
                 reopen: Callable[[], Engine | None] | None = None) -> None:
        self.engine = engine
        self.pending: dict[str, Any] | None = engine.manifest_for(manifest)
        self.name = engine.name
        self.default_index = engine.default_index
        #: Opens the collection if it exists by now (None if not): how a collection another
        #: process created meanwhile is found.
        self.reopen = reopen
        self._lock = threading.Lock()  # a watcher thread may write while another thread reads

    @property
    def created(self) -> bool:
        return self.pending is None

    def create_now(self) -> Engine:
        """Create the collection (if it is not yet) and return the real engine.

        Raises:
            EmbeddingsReplacedError: another process created it meanwhile with another model.
        """
        with self._lock:
            if self.pending is not None:
                wanted = self.pending
                self.engine.create(wanted)  # keeps the manifest of a collection created meanwhile
                self.pending = None
                self._check_made(wanted)
        return self.engine

    def _exists(self) -> bool:
        """Whether the collection exists now; one that another process created is adopted."""
        if self.pending is None:
            return True
        with self._lock:
            if self.pending is None:
                return True
            engine = self.reopen() if self.reopen is not None else None
            if engine is None:
                return False
            wanted = self.pending
            self.engine.close()
            self.engine = engine
            self.pending = None
            self._check_made(wanted)
            return True

    def _check_made(self, wanted: dict[str, Any]) -> None:
        made = self.engine.manifest or {}
        if (made.get("model"), made.get("dimension")) != (wanted["model"], wanted["dimension"]):
            raise EmbeddingsReplacedError(
                f"{self.engine.path} was created meanwhile with model {made.get('model')!r} (dimension "
                f"{made.get('dimension')}), not {wanted['model']!r}")

    @property
    def manifest(self) -> dict[str, Any] | None:
        return self.pending if self.pending is not None else self.engine.manifest

    @property
    def path(self) -> Path | str:
        return self.engine.path

    @property
    def cache_path(self) -> Path | None:
        return self.engine.cache_path

    # -- life cycle -----------------------------------------------------------------------
    def manifest_for(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return self.engine.manifest_for(manifest)

    def create(self, manifest: dict[str, Any]) -> None:
        self.pending = self.engine.manifest_for(manifest)
        self.create_now()

    def check_index(self, spec: str, dimension: int) -> None:
        self.engine.check_index(spec, dimension)

    def set_index(self, spec: str) -> None:
        if self.pending is None:
            return self.engine.set_index(spec)
        self.engine.check_index(spec, int(self.pending["dimension"]))
        self.pending["index"] = spec

    def update_manifest(self, values: Mapping[str, Any]) -> None:
        if self.pending is None:
            return self.engine.update_manifest(values)
        self.pending.update(values)

    def reembed(self, target: Mapping[str, Any], encode: Callable[[list[str]], np.ndarray], *, batch: int = 4096,
                progress: Callable[[int, int], None] | None = None,
                split: Callable[[list[str]], list[list[tuple[int, int]]]] | None = None) -> ReindexReport:
        return self.create_now().reembed(target, encode, batch=batch, progress=progress, split=split)

    def reload(self) -> None:
        if self.pending is None:
            self.engine.reload()

    def flush(self, lock_timeout: float | None = None) -> None:
        if self.pending is None:
            self.engine.flush(lock_timeout)

    def warm_up(self) -> None:
        if self.pending is None:
            self.engine.warm_up()

    def verify(self) -> dict[str, Any]:
        if self._exists():
            return self.engine.verify()
        return {"consistent": True, "problems": [], "repaired": [], "chunks": 0, "store": "ok"}

    def repair(self, *, force: bool = False) -> StoreSalvage:
        if self._exists():
            return self.engine.repair(force=force)
        return StoreSalvage(repaired=False)

    def check_writable(self) -> None:
        if self._exists():
            self.engine.check_writable()

    def info(self) -> dict[str, Any]:
        if self._exists():
            return self.engine.info()
        return {"path": str(self.engine.path), "index_details": None, "size_bytes": 0}

    def close(self) -> None:
        self.engine.close()

    def drop(self) -> None:
        if self.pending is None:
            self.engine.drop()

    # -- writing --------------------------------------------------------------------------
    def check_rows(self, rows: Sequence[DocumentRow]) -> None:
        self.engine.check_rows(rows)

    def write(self, rows: Sequence[DocumentRow], *, replace: bool,
              files: Mapping[str, FileState] | None = None) -> None:
        if rows or files:
            self.create_now().write(rows, replace=replace, files=files)

    def delete(self, ids: Sequence[str] | None, where: Node | None) -> int:
        return self.engine.delete(ids, where) if self._exists() else 0

    def delete_source(self, source: str) -> int:
        return self.engine.delete_source(source) if self._exists() else 0

    def set_files(self, hashes: Mapping[str, str]) -> None:
        if hashes:
            self.create_now().set_files(hashes)

    def update_metadata(self, metadatas: Mapping[str, dict[str, Any]]) -> int:
        return self.engine.update_metadata(metadatas) if self._exists() else 0

    # -- reading: an empty collection until created ----------------------------------------
    def count(self) -> int:
        return self.engine.count() if self._exists() else 0

    def chunk_count(self) -> int:
        return self.engine.chunk_count() if self._exists() else 0

    def files(self) -> dict[str, str]:
        return self.engine.files() if self._exists() else {}

    def sources_of(self, ids: Sequence[str]) -> dict[str, str | None]:
        return self.engine.sources_of(ids) if self._exists() else {}

    def documents(self, ids: Sequence[str] | None, where: Node | None, limit: int | None) -> list[Document]:
        return self.engine.documents(ids, where, limit) if self._exists() else []

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        return self.engine.chunks(chunk_ids) if self._exists() else {}

    def vectors(self, chunk_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dimension = int((self.pending or self.engine.manifest or {})["dimension"])
        if self._exists():
            return self.engine.vectors(chunk_ids)
        return np.empty(0, dtype=np.int64), np.empty((0, dimension), dtype=np.float32)

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        return self.engine.chunk_ids_of(doc_ids) if self._exists() else {}

    def export(self, batch: int) -> Iterator[list[DocumentRow]]:
        return self.engine.export(batch) if self._exists() else iter(())

    def retrieve(self, plan: RetrievalPlan) -> list[Retrieved]:
        if self._exists():
            return self.engine.retrieve(plan)
        return [Retrieved() for _ in range(plan.queries)]


__all__ = ["PendingEngine"]
