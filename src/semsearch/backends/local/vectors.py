"""The vector index of a local collection: a cache derived from the store, never the truth.

It records the last store change it contains (``seq``), is saved atomically (temp file, fsync,
rename) with a small JSON file saying which index file holds what, and is caught up from the
store's change log, or rebuilt from the stored vectors, whenever it is behind, missing or
damaged. Searches read it under a shared lock; the exclusive lock is held only while the index
in memory changes (what changes is read from disk before), and saving holds only the shared
one, so a search never waits for disk I/O.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...index import VectorIndex, build, load_index, make_index, parse_spec
from ...index.files import file_identity
from ...index.spec import reduced_dimension
from ...types import Candidate
from .locking import ReadWriteLock, WriteLock
from .rescoring import RESCORE_OVERSAMPLING, exact_cosines
from .schema import fsync_dir
from .store import Store

log = logging.getLogger(__name__)

INDEX_META = "vectors.json"
#: Allow-lists of at most this many chunks are scored exactly from the store's vectors in a cold
#: process (index mapped, store read without a map), instead of through the index's map. A warm
#: process scores them through the map, whose pages it keeps (165 -> ~15 ms at 1M documents, 1%).
EXACT_FROM_STORE_MAX = 20_000


class DerivedIndex:
    """The FAISS (or binary) index of one collection folder, kept in step with its store.

    Methods that change what the index holds must be called with the collection's write lock
    held (the store does not change meanwhile); searches need no lock of the caller.
    """

    def __init__(self, folder: Path, store: Store, dimension: int, spec: str, lock: WriteLock | None = None) -> None:
        self.folder = folder
        self.write_lock = lock or WriteLock(folder, 60.0)  # the collection's, taken only to record verified files
        self.store = store
        self.dimension = dimension
        self.spec = spec
        self._index: VectorIndex | None = None
        self._seq = 0
        self._saved_seq = 0
        self._lock = ReadWriteLock()  # searches share it; changing the index in memory takes it alone
        self._updating = threading.RLock()  # one thread loads, catches up or swaps the index at a time

    @property
    def meta_path(self) -> Path:
        return self.folder / INDEX_META

    def saved_seq_on_disk(self) -> int:
        """The change sequence number the saved index file holds (-1 if none is readable)."""
        try:
            return int(json.loads(self.meta_path.read_text())["seq"])
        except (OSError, ValueError, KeyError):
            return -1

    # -- keeping it current --------------------------------------------------------------
    def ensure_current(self) -> None:
        """Load, catch up or rebuild the index so it holds exactly the store's chunks.

        The index file and the store's vectors are read before the exclusive lock is taken;
        it is held only while the index in memory changes, so searches that need nothing new
        go on meanwhile. One thread catches up at a time (``_updating``).
        """
        if self._index is not None and self._seq == self.store.head():
            return
        with self._updating:
            if self._index is None or self._seq < self.store.changes_floor():
                self._install(*self._loaded())
            self._catch_up()

    def follow_spec(self, spec: str) -> None:
        """Use ``spec``, the spec another process rebuilt the index as (the store's manifest says so):
        its saved index is loaded, or the index is rebuilt from the store."""
        with self._updating:
            if spec != self.spec:
                self._install(*self._loaded())  # _loaded reads the spec from the store

    def _install(self, index: VectorIndex, seq: int, saved_seq: int, spec: str | None = None) -> None:
        self._lock.acquire_write()
        try:
            self._index, self._seq, self._saved_seq = index, seq, saved_seq
            self.spec = spec or self.spec
        finally:
            self._lock.release_write()

    def _catch_up(self) -> None:
        """Apply the store's changes after the index's seq (``_updating`` held)."""
        if self._seq >= self.store.head():
            return
        if self._index is not None and self._index.mapped:
            # A mapped index cannot change: read the current file into memory and catch that up.
            self._install(*self._loaded(mapped=False))
            if self._seq >= self.store.head():
                return
        changes = self.store.changes_since(self._seq)
        ids, vectors = self.store.embeddings(changes.added, self.dimension)
        self._lock.acquire_write()
        try:
            assert self._index is not None
            self._index.remove(changes.removed)
            self._index.add(ids, vectors)
            self._seq = changes.head
        finally:
            self._lock.release_write()

    def _loaded(self, mapped: bool = True) -> tuple[VectorIndex, int, int]:
        """The saved index if it is usable (memory-mapped if ``mapped``), else one rebuilt from the
        store: (index, seq, saved seq)."""
        # Another process may have changed the index spec since this one opened the collection.
        self.spec = self.store.manifest()["index"]
        floor = self.store.changes_floor()
        try:
            meta = json.loads(self.meta_path.read_text())
            if (
                meta["spec"] != self.spec
                or meta["dim"] != self.dimension
                or not floor <= meta["seq"] <= self.store.head()
            ):
                raise ValueError("stale or foreign index file")
            index = load_index(self.folder / meta["file"], self.spec, self.dimension, meta.get("factory"),
                               checksums=meta.get("files"), identities=meta.get("verified"), mapped=mapped)
            if len(index) != meta["count"]:
                raise ValueError("index file does not hold what its metadata says")
            if index.verified_files:
                self._record_verified(meta["file"], index.verified_files)
            return index, int(meta["seq"]), int(meta["seq"])
        except FileNotFoundError:
            pass
        except Exception as exc:  # any damage to a derived cache is repaired from the store
            if self.meta_path.exists():
                log.warning("rebuilding the vector index of %s from the store (%s)", self.folder, exc)
        index, head = build.build_from_store(self.store, self.spec, self.dimension)
        return index, head, -1

    def _record_verified(self, name: str, identities: dict[str, list[int]]) -> None:
        """Remember files this process hashed in full, so the next opens skip the hash (best
        effort: only when the write lock is free at once, and the metadata still names the file)."""
        lock = self.write_lock
        try:
            lock.acquire(timeout=0.0)
        except Exception:
            return  # a writer is busy; a later open records it
        try:
            meta = json.loads(self.meta_path.read_text())
            if meta.get("file") != name:
                return
            meta["verified"] = {**meta.get("verified", {}), **identities}
            self._write_meta(meta)
        except (OSError, ValueError):
            pass  # a read-only folder: verified again next time
        finally:
            lock.release()

    def _write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.meta_path)
        fsync_dir(self.folder)

    def _swap_in_rebuilt(self, spec: str) -> None:
        """Build a new index from the store and swap it in; searches use the old one meanwhile."""
        index, head = build.build_from_store(self.store, spec, self.dimension)
        with self._updating:
            self._install(index, head, -1, spec)
            if self._seq < self.store.changes_floor():  # a save elsewhere forgot changes after the build
                self._install(*self._loaded())
            self._catch_up()

    def _rebuild_if_wanted(self) -> None:
        """Rebuild when the index asks (trainable now, grown 2x, tombstones...)."""
        assert self._index is not None
        reason = self._index.wants_rebuild()
        if reason:
            log.info("rebuilding the vector index of %s: %s", self.folder, reason)
            self._swap_in_rebuilt(self.spec)

    def set_spec(self, spec: str) -> None:
        """Rebuild as ``spec`` (the manifest already says so) and save. Write lock held."""
        parse_spec(spec, self.dimension)
        self._swap_in_rebuilt(spec)
        self._save()

    def unsaved(self) -> bool:
        """Whether the file on disk holds less than the store (or a damaged index was rebuilt)."""
        return self.store.head() > self.saved_seq_on_disk() or (
            self._index is not None and self._saved_seq != self._seq
        )

    def save_if_behind(self, every: int) -> None:
        """Catch up and save when at least ``every`` changes are not in the saved file. Write lock held."""
        if self._index is not None and self.store.head() - self._saved_seq >= every:
            self.flush()

    def flush(self) -> None:
        """Catch up, rebuild if the index wants it, and save when the file is behind. Write lock held."""
        self.ensure_current()
        self._rebuild_if_wanted()
        if self._saved_seq != self._seq or self.saved_seq_on_disk() != self._seq:
            self._save()

    def _save(self) -> None:
        """Write the index (atomically) and forget the change-log entries it contains.

        Only the shared lock is held while writing: searches go on, and nothing can change
        the index meanwhile (changing it takes the exclusive lock).
        """
        self._lock.acquire_read()
        try:
            assert self._index is not None
            seq = self._seq
            name = f"vectors-{seq}.faiss"
            files = self._index.save(self.folder / name)  # every file written, with its size and xxh3 digest
            meta = {
                "spec": self._index.spec, "factory": self._index.factory, "dim": self.dimension, "seq": seq,
                "file": name, "count": len(self._index), "describe": self._index.describe(), "files": files,
                "file_bytes": sum(f["bytes"] for f in files.values()),
                # hashed while written: the next opens need not hash them again (index/files.py)
                "verified": {n: file_identity(self.folder / n) for n in files},
            }
        finally:
            self._lock.release_read()
        self._write_meta(meta)
        for old in self.folder.glob("vectors-*.faiss*"):
            if not old.name.startswith(name):  # keep this index's own side files (name.meta.json...)
                old.unlink(missing_ok=True)
        self.store.truncate_changes(seq)
        self._saved_seq = seq

    def verify(self) -> dict[str, Any]:
        """Check the saved index files against their checksums and the index against the store;
        rebuild and save what is damaged or behind. Returns what was found and what was repaired."""
        from ...index.files import verify_files

        found: list[str] = []
        try:
            meta = json.loads(self.meta_path.read_text())
            found += [str(e) for e in verify_files(self.folder / meta["file"], meta.get("files"))]
        except FileNotFoundError:
            pass  # not saved yet: derived, it is built from the store when first needed
        except (OSError, ValueError, KeyError) as exc:
            found.append(f"{self.meta_path.name} cannot be read ({exc})")
        self.ensure_current()
        with self.store.read():
            count = self.store.chunk_count()
        assert self._index is not None
        if len(self._index) != count:
            found.append(f"the loaded index holds {len(self._index)} vectors for {count} chunks")
            self._swap_in_rebuilt(self.spec)
        repaired = []
        if found:  # save even when the index in memory was fine and only the file is damaged
            self._save()
            repaired.append(f"vector index rebuilt from the store and saved ({len(self._index)} vectors)")
        return {"chunks": count, "vectors": len(self._index), "consistent": not found, "problems": found,
                "repaired": repaired}

    def saved_details(self) -> dict[str, Any]:
        """The saved index's description (type, bytes per vector, tuning), without loading it."""
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return {}
        details = dict(meta.get("describe", {}))
        if meta.get("count"):
            details["file_bytes_per_vector"] = round(meta.get("file_bytes", 0) / meta["count"], 1)
        return details

    # -- searching ------------------------------------------------------------------------
    def candidates(self, vectors: np.ndarray, n: int, allow: np.ndarray | None) -> list[list[Candidate]]:
        """The n best documents per query vector (each through its best chunk) among ``allow``
        (ascending chunk ids; None: all), as exact as the index is (see :mod:`semsearch.index.faiss`)."""
        self.ensure_current()
        if (allow is not None and len(allow) <= EXACT_FROM_STORE_MAX and self._index is not None
                and self._index.mapped and not self.store.memory_mapped):
            return self._exact_from_store(vectors, n, allow)
        self._lock.acquire_read()
        try:
            index = self._index
            assert index is not None
            total = len(index) if allow is None else len(allow)
            if total == 0:
                return [[] for _ in range(len(vectors))]
            # Filtered or not, chunks are scored from the vectors the index holds in memory (the
            # index searches an allow-list among them, exhaustively when it is small). Most
            # documents are one chunk; fetch more only when chunks of one document crowd out others.
            # A PCA index ranks by projections: it fetches more, and the exact cosines pick the n.
            rescore = RESCORE_OVERSAMPLING if reduced_dimension(getattr(index, "factory", "")) else 1
            want = n * rescore
            fetch = min(total, want)
            scores, ids = index.search(vectors, fetch, allow=allow)
            while True:
                chunk_docs = self.store.chunk_documents(np.unique(ids[ids >= 0]).tolist())
                results = [best_per_document(s, i, chunk_docs, want) for s, i in zip(scores.tolist(), ids.tolist())]
                if fetch >= total or all(len(r) >= want for r in results):
                    if rescore > 1:
                        return [r[:n] for r in exact_cosines(self.store, vectors, results, self.dimension)]
                    return results
                fetch = min(total, fetch * 4)
                scores, ids = index.search(vectors, fetch, allow=allow)
        finally:
            self._lock.release_read()

    def _exact_from_store(self, vectors: np.ndarray, n: int, allow: np.ndarray) -> list[list[Candidate]]:
        """The exact n best documents among a few allowed chunks, scored from the store's float32
        vectors: a mapped index would bring the pages around every allowed vector into the
        process's resident memory (the kernel's fault-around); the store reads just those rows."""
        ids, stored = self.store.embeddings(np.asarray(allow, dtype=np.int64), self.dimension)
        if len(ids) == 0:
            return [[] for _ in range(len(vectors))]
        scores = np.asarray(vectors, dtype=np.float32) @ stored.T
        order = np.argsort(-scores, axis=1, kind="stable")
        head = min(len(ids), 4 * n)  # most documents are one chunk: look up the documents of the best few
        while True:
            top = order[:, :head]
            chunk_docs = self.store.chunk_documents(np.unique(ids[top]).tolist())
            results = [best_per_document(np.take(row, o).tolist(), ids[o].tolist(), chunk_docs, n)
                       for row, o in zip(scores, top)]
            if head >= len(ids) or all(len(r) >= n for r in results):
                return results
            head = min(len(ids), head * 4)

    def checked_candidates(self, vectors: np.ndarray, n: int, fetch: Callable[[int], int],
                           keep: Callable[[np.ndarray], np.ndarray],
                           allow_list: Callable[[], np.ndarray]) -> list[list[Candidate]]:
        """The n best documents per query vector among the chunks ``keep`` accepts, for a filter
        too large to list: ``fetch(wanted)`` unfiltered candidates are searched and those ``keep``
        returns (ids in, kept ids out) retained, four times more while a query is short; once that
        would reach the whole index, the filter's ``allow_list()`` is searched instead."""
        self.ensure_current()
        rescore = RESCORE_OVERSAMPLING if reduced_dimension(getattr(self._index, "factory", "")) else 1
        want = n * rescore
        k = fetch(want)
        while True:
            self._lock.acquire_read()
            try:
                index = self._index
                assert index is not None
                total = len(index)
                if k < total:
                    scores, ids = index.search(vectors, k)
            finally:
                self._lock.release_read()
            if k >= total:
                return self.candidates(vectors, n, allow_list())
            allowed = keep(np.unique(ids[ids >= 0]))
            chunk_docs = self.store.chunk_documents(allowed.tolist())  # only kept chunks name a document
            results = [best_per_document(s, i, chunk_docs, want) for s, i in zip(scores.tolist(), ids.tolist())]
            if all(len(r) >= want for r in results):
                if rescore > 1:
                    return [r[:n] for r in exact_cosines(self.store, vectors, results, self.dimension)]
                return results
            k *= 4

    def __len__(self) -> int:
        return 0 if self._index is None else len(self._index)


def best_per_document(scores: list[float], chunk_ids: list[int], chunk_docs: dict[int, str], n: int) -> list[Candidate]:
    """The first ``n`` documents of a ranked chunk list, each through its best chunk (deleted chunks skipped)."""
    seen: set[str] = set()
    found: list[Candidate] = []
    for score, cid in zip(scores, chunk_ids):
        doc = chunk_docs.get(cid)
        if cid < 0 or doc is None or doc in seen:
            continue
        seen.add(doc)
        found.append(Candidate(doc, cid, float(score)))
        if len(found) == n:
            break
    return found


def check_spec(spec: str, dimension: int) -> None:
    """Raise InvalidInputError for a spec that cannot be built at this dimension."""
    parse_spec(spec, dimension)
    make_index(spec, dimension)
