"""FAISS vector indexes named by ``index_factory`` strings, inner-product metric.

How each family keeps our int64 ids and handles deletes and filters:

* IVF ("IVF1024,Flat", "IVF1024,PQ48", "IVF1024,SQ8", "OPQ48,IVF1024,PQ48"): FAISS IVF
  stores ids natively and removes them; filters go through ``SearchParametersIVF(sel=...)``.
* exhaustive codes ("Flat", "SQ8", "SQ4", "PQ48"...) and HNSW ("HNSW32", "HNSW32,SQ8"):
  wrapped in ``IndexIDMap`` (one int64 per vector; ids are added in increasing order, so
  id → position is a binary search). HNSW cannot remove vectors, so removed ids become
  tombstones filtered out by an ID selector, and the index asks to be rebuilt from the store
  when tombstones exceed 20% of it.
* Until a trainable spec has enough vectors (39 per IVF centroid, 39·256 for PQ codebooks,
  one for scalar quantizer ranges) the index is an exact ``Flat`` one with a note; the
  collection trains and rebuilds it at the next flush once the collection is large enough.

Filtered search (``allow``) scores the allowed vectors the index holds, through a bitmap selector (filtering.py),
and never loses results: exhaustive types (Flat, SQ8) scan only the allowed vectors (exact with Flat); IVF and HNSW
search small allow-lists exhaustively (every IVF list; HNSW vectors from its storage) and larger ones with the knob
raised for the filter's selectivity; a query short of k is retried wider, then exhaustively. Mapped: never changes.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from ..errors import InvalidInputError
from .base import VectorIndex, empty_result, topk_exact
from .files import CheckedFiles, SavedFiles, side_file
from .filtering import filtered_value, id_selector, search_parameters, search_post_filtered, sorted_ids
from .projection import QueryShift
from .spec import parse_spec
from .tuning import auto_redecision, no_polysemous_training, stale_codebooks

# Allow-lists up to this many ids (or 2% of the index) are searched exactly.
SMALL_ALLOW = 4096
SMALL_ALLOW_FRACTION = 0.02
TOMBSTONE_REBUILD_FRACTION = 0.2
DEFAULT_NPROBE = 16
DEFAULT_EF_SEARCH = 64
HNSW_EF_CONSTRUCTION = 40  # FAISS's default, so "HNSW32" means the same as in raw FAISS
RETUNE_GROWTH = 2.0
RETUNE_MIN = 1_000  # an index built (untuned) while nearly empty is tuned once it holds this many
HNSW_REGRAPH_GROWTH = 0.25
HNSW_REGRAPH_MIN = 1_000  # a graph grown from empty is rebuilt (and tuned) once it holds this many
WRITE_BLOCK = 1 << 22  # bytes FAISS passes to the hashing stream per call while saving


class FaissIndex(VectorIndex):
    """A FAISS index for one factory string (see the module docstring for the families)."""

    def __init__(self, spec: str, dim: int, *, factory: str | None = None) -> None:
        self.spec = spec
        self.dim = dim
        self.factory = factory or spec
        self.spec_info = parse_spec(self.factory, dim)
        if self.spec_info.kind in ("auto", "binary"):
            raise InvalidInputError(f"FaissIndex needs a FAISS spec, got {self.factory!r}")
        self.tuning = None
        self.built_n = 0
        self.note = None
        self._tombstones = np.empty(0, dtype=np.int64)
        self._tomb_selector: faiss.IDSelector | None = None
        self._params_cache: dict[tuple[int, int], faiss.SearchParameters] = {}
        self._ascending = True  # ids added in increasing order: id -> position is a binary search
        self._order: np.ndarray | None = None  # cached argsort of the id map otherwise
        self._shifted = QueryShift(lambda: self._index)  # PCA-first specs: queries shifted by the mean (projection.py)
        self._trained = self.spec_info.min_train == 0
        self.search_value = {"ivf": min(DEFAULT_NPROBE, self.spec_info.nlist), "hnsw": DEFAULT_EF_SEARCH}.get(
            self.spec_info.kind
        )
        if self._trained:
            self._index = self._new_index()
        else:
            self._index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
            self.note = self._untrained_note(0)
        self._apply_search_value()

    # -- construction -------------------------------------------------------------------
    @property
    def _kind(self) -> str:
        return self.spec_info.kind if self._trained else "flat"

    def _new_index(self) -> faiss.Index:
        if self.spec_info.kind == "ivf":
            index = faiss.index_factory(self.dim, self.factory, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.index_factory(self.dim, f"IDMap,{self.factory}", faiss.METRIC_INNER_PRODUCT)
            if self.spec_info.kind == "hnsw":
                faiss.downcast_index(index.index).hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        no_polysemous_training(index)
        return index

    def _untrained_note(self, n: int) -> str:
        return (
            f"{self.factory} needs {self.spec_info.min_train:,} vectors to train (has {n:,}); "
            "searching exactly until then, trained at the flush after the collection is large enough"
        )

    @property
    def needs_training(self) -> bool:
        return not self._trained

    def train(self, sample: np.ndarray) -> None:
        if self._trained or len(self) > 0:
            return
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if len(sample) < max(1, self.spec_info.min_train):
            self.note = self._untrained_note(len(sample))
            return
        index = self._new_index()
        index.train(sample)
        self._index, self._trained, self.note, self.trained_on = index, True, None, len(sample)
        self._apply_search_value()

    # -- the search knob ------------------------------------------------------------------
    def tuning_ladder(self) -> list[int]:
        kind = self._kind
        if kind == "ivf":
            nlist = self.spec_info.nlist
            ladder = sorted(
                {min(nlist, v) for v in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)}
            )
            return ladder + ([nlist] if ladder[-1] < nlist else [])
        if kind == "hnsw":
            return [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
        return []

    def set_search_value(self, value: int) -> None:
        self.search_value = int(value)
        self._apply_search_value()

    def _apply_search_value(self) -> None:
        kind = self._kind
        if kind == "ivf":
            faiss.extract_index_ivf(self._index).nprobe = int(self.search_value or 1)
        elif kind == "hnsw":
            faiss.downcast_index(self._index.index).hnsw.efSearch = int(self.search_value or DEFAULT_EF_SEARCH)

    def wants_rebuild(self) -> str | None:
        n = len(self)
        if not self._trained and n >= max(1, self.spec_info.min_train):
            return f"{self.factory} can be trained now that the collection holds {n:,} vectors"
        if len(self._tombstones) > TOMBSTONE_REBUILD_FRACTION * max(n, 1):
            return f"{len(self._tombstones):,} deleted vectors are still in the HNSW graph"
        if self._kind == "hnsw" and int(self._index.ntotal) >= max(
            HNSW_REGRAPH_MIN, (1 + HNSW_REGRAPH_GROWTH) * self.built_n
        ):
            # Each FAISS add() call after the first makes the graph worse (see build_from_store):
            # once a quarter more vectors arrived in later calls, the graph is rebuilt in one call.
            return f"{int(self._index.ntotal) - self.built_n:,} vectors were added to the HNSW graph after it was built"
        if self._trained and self.spec_info.search_param and n >= max(RETUNE_MIN, RETUNE_GROWTH * self.built_n):
            return f"tuned for {self.built_n:,} vectors, the collection now holds {n:,}"
        if self._trained and self.spec_info.min_train:  # types without a knob (SQ8, PQ48) too
            stale = stale_codebooks(n, self.trained_on, self.spec_info.min_train)
            if stale:
                return stale
        asked = parse_spec(self.spec, self.dim)
        if asked.kind == "auto":
            return auto_redecision(
                asked.memory_budget, self.factory, n, self.dim, self.built_n, self.bytes_per_vector()
            )
        return None

    # -- data -----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if self.mapped:  # FAISS would abort the process, not raise, resizing a mapped vector
            raise RuntimeError("a memory-mapped index cannot change; load it unmapped first")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidInputError(f"vectors have shape {vectors.shape}; the index holds dimension {self.dim}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self._kind != "ivf" and self._ascending:
            current = self._id_map()
            if np.any(np.diff(ids) <= 0) or (len(current) and ids[0] <= current[-1]):
                self._ascending = False
        self._index.add_with_ids(vectors, ids)
        self._order = None

    def remove(self, ids: np.ndarray) -> int:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if len(ids) == 0:
            return 0
        if self.mapped:
            raise RuntimeError("a memory-mapped index cannot change; load it unmapped first")
        if self._kind == "hnsw":
            present = self._present(ids)
            fresh = np.setdiff1d(present, self._tombstones, assume_unique=True)
            self._tombstones = np.union1d(self._tombstones, fresh)
            self._tomb_selector = None
            self._params_cache.clear()
            return len(fresh)
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        self._order = None
        return removed

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._tombstones)

    def _id_map(self) -> np.ndarray:
        """The IDMap's ids by position, as a view (no copy)."""
        n = int(self._index.ntotal)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        return faiss.rev_swig_ptr(self._index.id_map.data(), n)

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids present, their positions) for an IDMap-wrapped index."""
        id_map = self._id_map()
        if len(id_map) == 0 or len(ids) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if self._ascending:
            pos = np.minimum(np.searchsorted(id_map, ids), len(id_map) - 1)
            found = id_map[pos] == ids
            return ids[found], pos[found]
        if self._order is None:
            self._order = np.argsort(id_map, kind="stable")
        order = self._order
        sorted_ids = id_map[order]
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(id_map) - 1)
        found = sorted_ids[pos] == ids
        return ids[found], order[pos[found]]

    def _present(self, ids: np.ndarray) -> np.ndarray:
        return self._positions(ids)[0]

    # -- search ---------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidInputError(f"queries have shape {queries.shape}; the index holds dimension {self.dim}")
        original, queries = queries, self._shifted(queries)
        nq = len(queries)
        if allow is None and k >= 1 and not len(self._tombstones):
            # The common case, kept lean (a few µs over raw FAISS): one C++ call into arrays
            # we allocate, and one vectorised look at the k-th column, since FAISS puts any
            # -1 padding at the end of a row. Only a short row takes the slow path.
            scores = np.empty((nq, k), dtype=np.float32)
            ids = np.empty((nq, k), dtype=np.int64)
            self._index.search_c(nq, faiss.swig_ptr(queries), k, faiss.swig_ptr(scores), faiss.swig_ptr(ids), None)
            if nq == 0 or ids[:, k - 1].min() >= 0:
                return scores, ids
            total = len(self)
            if total == 0:
                return empty_result(nq, k)
            return self._fill_short_rows(queries, k, scores, ids, total, None, None)
        total = len(self)
        if total == 0 or k < 1:
            return empty_result(nq, max(k, 0))
        kind = self._kind
        if allow is None:
            # Tombstones (HNSW deletes) are excluded by a selector built once per tombstone set.
            scores, ids = self._search_with(queries, k, self._not_tombstoned(), self.search_value)
            available = total
            selector = None
        else:
            allow = sorted_ids(allow)
            if len(self._tombstones):
                allow = allow[~np.isin(allow, self._tombstones)]
            exhaustive = kind == "flat" and self._supports_selector()
            if not exhaustive and len(allow) <= max(SMALL_ALLOW, SMALL_ALLOW_FRACTION * total):
                allow = allow if kind == "ivf" else self._present(allow)
                return self._search_subset(original, k, allow) if len(allow) else empty_result(nq, k)
            if len(allow) == 0:
                return empty_result(nq, k)
            # Ids the index does not hold (a write raced the filter) only cost a wider search.
            available = min(len(allow), total)
            if not self._supports_selector():
                return search_post_filtered(self._index, queries, k, allow)
            selector = id_selector(allow)
            value = filtered_value(kind, self.search_value, self.spec_info.nlist, available / total, k)
            scores, ids = self._search_with(queries, k, selector, value)
        return self._fill_short_rows(queries, k, scores, ids, available, selector, allow)

    def _not_tombstoned(self) -> faiss.IDSelector:
        """A selector excluding the tombstones, cached until they change."""
        if self._tomb_selector is None:
            batch = faiss.IDSelectorBatch(self._tombstones)
            self._tomb_selector = faiss.IDSelectorNot(batch)
            self._tomb_selector.referenced = batch  # keep the wrapped selector alive
        return self._tomb_selector

    def _supports_selector(self) -> bool:
        # Some exhaustive code indexes (IndexPQ, ...) reject search parameters in FAISS.
        if self._kind in ("ivf", "hnsw"):
            return True
        inner = faiss.downcast_index(self._index.index)
        return isinstance(inner, (faiss.IndexFlat, faiss.IndexScalarQuantizer))

    def _search_with(
        self, queries: np.ndarray, k: int, selector: faiss.IDSelector | None, value: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search with a selector and knob value; parameters for the tombstone selector (the
        one reused on every call) are built once per value and cached."""
        reusable = selector is not None and selector is self._tomb_selector
        key = (int(value or 0), int(k))
        params = self._params_cache.get(key) if reusable else None
        if params is None:
            params = search_parameters(self._index, self._kind, k, selector, value)
            if reusable:
                self._params_cache[key] = params
        return self._index.search(queries, k, params=params)

    def _search_subset(self, queries: np.ndarray, k: int, allow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over a few allowed ids: scores from the index's own codes."""
        if self._kind == "ivf":
            return self._search_with(self._shifted(queries), k, id_selector(allow), self.spec_info.nlist)
        ids, pos = self._positions(allow)
        vectors = self._index.index.reconstruct_batch(pos)
        return topk_exact(queries, ids, vectors, k)

    def _fill_short_rows(
        self, queries: np.ndarray, k: int, scores: np.ndarray, ids: np.ndarray, available: int,
        selector: faiss.IDSelector | None, allow: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate search can come back short (-1) although k vectors exist: widen it."""
        want = min(k, available)
        short = np.flatnonzero((ids >= 0).sum(axis=1) < want)
        if len(short) == 0:
            return scores, ids
        kind = self._kind
        if kind == "hnsw" and selector is None:
            selector = self._not_tombstoned() if len(self._tombstones) else None
        value = self.search_value or 1
        limit = self.spec_info.nlist if kind == "ivf" else 4096
        while len(short) and kind in ("ivf", "hnsw") and value < limit:
            value = min(limit, value * 4)
            s2, i2 = self._search_with(queries[short], k, selector, value)
            scores[short], ids[short] = s2, i2
            short = short[(i2 >= 0).sum(axis=1) < want]
        if len(short) and kind == "hnsw":
            # Last resort: exact over everything allowed, scored from the index's codes.
            candidates = allow if allow is not None else np.setdiff1d(self._id_map(), self._tombstones)
            s2, i2 = self._search_subset(queries[short], k, candidates)
            scores[short], ids[short] = s2, i2
        return scores, ids

    # -- size and persistence -------------------------------------------------------------
    def describe(self) -> dict[str, object]:
        if not self._trained:
            self.note = self._untrained_note(len(self))
        return super().describe()

    def bytes_per_vector(self) -> float:
        n = int(self._index.ntotal)
        if n == 0:
            return float("nan")
        kind = self._kind
        if kind == "ivf":
            ivf = faiss.extract_index_ivf(self._index)
            return ivf.code_size + 8 + ivf.nlist * ivf.d * 4 / n  # centroids live in the (projected) space
        inner = faiss.downcast_index(self._index.index)
        if kind == "hnsw":
            storage = faiss.downcast_index(inner.storage)
            links = inner.hnsw.neighbors.size() * 4 + n * (8 + 4)  # neighbours, offsets, levels
            return storage.sa_code_size() + 8 + links / n
        return inner.sa_code_size() + 8

    def _write_files(self, path: Path, saved: SavedFiles) -> None:
        saved.write_json(
            side_file(path, ".meta.json"),
            {**self._state(), "trained": self._trained, "search_value": self.search_value},
        )
        tomb = side_file(path, ".tombstones.npy")
        if len(self._tombstones):
            saved.write(tomb, lambda stream: np.save(stream, self._tombstones))
        else:
            tomb.unlink(missing_ok=True)  # an earlier save under this name had some
        # FAISS hands the serialized index to the stream in blocks, so it is hashed as it is written.
        saved.write(
            path, lambda stream: faiss.write_index(self._index, faiss.PyCallbackIOWriter(stream.write, WRITE_BLOCK))
        )

    @classmethod
    def read_files(cls, path: Path, spec: str, dim: int, files: CheckedFiles, mapped: bool = False) -> FaissIndex:
        state = files.read_json(side_file(path, ".meta.json"))
        with files.verified_path(path) as name:  # mapped: codes, lists and links read through the map
            index = faiss.read_index(name, (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mapped else 0)
        if index.d != dim:
            raise InvalidInputError(f"{path} holds dimension {index.d}, expected {dim}")
        self = cls(spec, dim, factory=state.get("factory", spec))
        self._restore_state(state)
        self._trained = bool(state.get("trained", True))
        self._index = index
        self.mapped = mapped
        self.search_value = state.get("search_value", self.search_value)
        tomb = side_file(path, ".tombstones.npy")
        if files.has(tomb.name):
            self._tombstones = files.read_npy(tomb)
            self._tomb_selector = None
        if self._kind != "ivf":
            id_map = self._id_map()
            self._ascending = not (len(id_map) > 1 and bool(np.any(np.diff(id_map) <= 0)))
        self._apply_search_value()
        return self

