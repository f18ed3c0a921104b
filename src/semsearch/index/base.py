"""The vector index interface: a derived, rebuildable cache of the store's embeddings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from .files import CheckedFiles, FileDigest, SavedFiles, read_checksums
from .spec import IndexSpec, reduced_dimension


class VectorIndex(ABC):
    """Inner-product search over int64-keyed vectors.

    Scores are similarities: higher is better. ``search`` pads missing results with id -1
    (FAISS's convention) only when fewer than k vectors (allowed ones, with ``allow``)
    exist; callers still drop -1 before anything reaches a user.

    Lifecycle, driven by the collection: ``make_index`` → (``train(sample)`` when
    ``needs_training`` and enough vectors exist) → ``add`` batches → ``tune`` (see
    tuning.py) → ``save``. ``wants_rebuild`` tells the collection, at flush time, that the
    index should be rebuilt from the store (it can now be trained, it was tuned for a much
    smaller collection, deletions piled up...).
    """

    spec: str  # what the user asked for ("auto", "IVF1024,Flat", ...)
    factory: str  # the concrete spec in use (auto resolves to one)
    spec_info: IndexSpec
    dim: int
    tuning: dict[str, Any] | None = None
    built_n: int = 0  # vectors when it was last trained/tuned
    trained_on: int = 0  # vectors its codebooks (centroids, PQ/SQ parameters) were trained on; 0: none
    note: str | None = None
    #: Read through a memory map of its file (pages come from the OS file cache as searches touch
    #: them): searchable, but ``add``, ``remove`` and ``train`` raise; load it unmapped to change it.
    mapped: bool = False
    #: Identities of the files this index's load verified by hashing (index/files.py), to record.
    verified_files: dict[str, list[int]] = {}  # noqa: RUF012 - replaced per instance, never mutated

    # -- data ---------------------------------------------------------------------------
    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add float32 vectors of shape (n, dim) under int64 ids that are not in the index."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k per query as (scores, ids), each of shape (n_queries, k).

        ``allow`` restricts results to those ids (pre-filtering, so k results come back
        whenever k allowed vectors exist).
        """

    @abstractmethod
    def __len__(self) -> int: ...

    # -- training and tuning ------------------------------------------------------------
    @property
    def needs_training(self) -> bool:
        """True while the index searches exactly because it has not been trained yet."""
        return False

    @property
    def min_train(self) -> int:
        """Vectors needed to train (0: no training)."""
        return self.spec_info.min_train

    def train(self, sample: np.ndarray) -> None:  # noqa: B027 - optional hook: most indexes need no training
        """Train on a sample of the collection's vectors (only called on an empty index)."""

    def tuning_ladder(self) -> list[int]:
        """Values of the search knob to try, smallest (fastest) first; empty when none."""
        return []

    def set_search_value(self, value: int) -> None:  # noqa: B027 - optional hook: exact indexes have no knob
        """Set the search knob (nprobe, efSearch, oversample)."""

    def wants_rebuild(self) -> str | None:
        """Why the index should be rebuilt from the store now, or None."""
        return None

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: Path) -> dict[str, FileDigest]:
        """Write the index to ``path`` (plus side files named ``path.*``), each file durably
        (temp file, fsync, rename) with a digest taken while writing.

        Returns ``{file name: {"bytes": size, "xxh3_64": hex}}`` for every file written; the
        same record is written last as ``path.checksums.json``. A caller that keeps the record
        (the collection's index metadata) passes it back to :func:`~semsearch.index.load_index`,
        which then trusts nothing on disk it did not write. The collection makes a save visible
        by renaming its metadata file afterwards, so a crash mid-save leaves the previous index
        in use.
        """
        saved = SavedFiles(path.parent)
        self._write_files(path, saved)
        return saved.finish(path)

    @classmethod
    def load(cls, path: Path, spec: str, dim: int, checksums: dict[str, FileDigest] | None = None) -> VectorIndex:
        """Read an index written by :meth:`save`, verifying every file first.

        ``checksums`` is the record :meth:`save` returned; without it, the record saved next to
        the index is used.

        Raises:
            IndexFileCorruptError: a file missing, of another size or digest than written, or
                not in the record (rebuild the index from the store).
        """
        files = CheckedFiles(path.parent, checksums if checksums is not None else read_checksums(path))
        return cls.read_files(path, spec, dim, files)

    @abstractmethod
    def _write_files(self, path: Path, saved: SavedFiles) -> None:
        """Write every file of the index through ``saved``."""

    @classmethod
    @abstractmethod
    def read_files(cls, path: Path, spec: str, dim: int, files: CheckedFiles) -> VectorIndex:
        """Read the index back, every file through ``files`` (which verifies it)."""

    def bytes_per_vector(self) -> float:
        """Approximate RAM per vector (codes, ids, graph links), for `semsearch info`."""
        return float("nan")

    def describe(self) -> dict[str, object]:
        """What `semsearch info` shows about the index."""
        out: dict[str, object] = {"spec": self.spec, "type": self.factory, "vectors": len(self)}
        # the dimension the index compares: a trained PCA projection's, else the vectors'
        out["dimension"] = (reduced_dimension(self.factory) if not self.note else 0) or self.dim
        bpv = self.bytes_per_vector()
        if bpv == bpv:  # not NaN
            out["bytes_per_vector"] = round(bpv, 1)
        if self.trained_on:
            out["trained_on"] = self.trained_on
        if self.tuning:
            out["tuning"] = self.tuning
            out["tuned_on"] = self.built_n  # the recall above was measured with this many vectors
        if self.note:
            out["note"] = self.note
        return out

    # -- helpers for implementations ------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"factory": self.factory, "tuning": self.tuning, "built_n": self.built_n, "note": self.note,
                "trained_on": self.trained_on}

    def _restore_state(self, state: dict[str, Any]) -> None:
        self.tuning = state.get("tuning")
        self.built_n = int(state.get("built_n", 0))
        self.note = state.get("note")
        # Files from before trained_on was kept: a trained index was trained on at most what it was built with.
        self.trained_on = int(state.get("trained_on", self.built_n if self.spec_info.min_train else 0))


def empty_result(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def topk_exact(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of queries over a (small) candidate set, padded with -1."""
    nq = len(queries)
    scores_out, ids_out = empty_result(nq, k)
    if len(ids) == 0:
        return scores_out, ids_out
    scores = queries @ vectors.T
    kk = min(k, len(ids))
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    part_scores = np.take_along_axis(scores, part, 1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    scores_out[:, :kk] = np.take_along_axis(part_scores, order, 1)
    ids_out[:, :kk] = ids[np.take_along_axis(part, order, 1)]
    return scores_out, ids_out
