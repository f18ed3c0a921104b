"""Binary quantization with rescoring, as sentence-transformers' quantization guide describes.

Each vector is kept as its sign bits (``ubinary``: 1 bit per dimension, 48 bytes at 384
dimensions, 32x smaller than float32). A search takes the ``oversample · k`` nearest codes
by Hamming distance (FAISS ``IndexBinaryFlat``) and rescores them:

* "binary": float query · the candidates' ±1 codes (the guide's rescoring; nothing else kept);
* "binary,SQ8": float query · the candidates' int8 codes (per-dimension ranges calibrated on
  the first vectors added), 1 + 8 bits per dimension in RAM and on disk.

No float copy of the vectors is kept: the store keeps float32 for rebuilding.
``oversample`` is the search knob that tuning raises to reach the target recall.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from ..errors import InvalidInputError
from .base import VectorIndex, empty_result
from .faiss import RETUNE_GROWTH, RETUNE_MIN, SMALL_ALLOW, SMALL_ALLOW_FRACTION, WRITE_BLOCK
from .files import CheckedFiles, SavedFiles, side_file
from .filtering import id_selector, sorted_ids
from .spec import parse_spec

DEFAULT_OVERSAMPLE = 4
_QUERY_BLOCK = 256


class BinaryIndex(VectorIndex):
    """Sign-bit codes searched by Hamming distance, rescored with the float query."""

    def __init__(self, spec: str, dim: int, *, factory: str | None = None) -> None:
        self.spec = spec
        self.dim = dim
        self.factory = factory or spec
        self.spec_info = parse_spec(self.factory, dim)
        if self.spec_info.kind != "binary":
            raise InvalidInputError(f"BinaryIndex needs 'binary' or 'binary,SQ8', got {self.factory!r}")
        self.tuning = None
        self.built_n = 0
        self.note = None
        self.int8 = self.factory == "binary,SQ8"
        self.search_value = DEFAULT_OVERSAMPLE
        self._codes = faiss.IndexBinaryFlat(dim)
        self._ids = np.empty(0, dtype=np.int64)
        self._sq = np.empty((0, dim), dtype=np.uint8)
        self._vmin: np.ndarray | None = None
        self._vscale: np.ndarray | None = None

    # -- codes ----------------------------------------------------------------------------
    def _calibrate(self, sample: np.ndarray) -> None:
        lo, hi = sample.min(axis=0), sample.max(axis=0)
        self.trained_on = len(sample)
        self._vmin = lo.astype(np.float32)
        self._vscale = np.maximum(hi - lo, 1e-6).astype(np.float32) / 255.0

    def _encode_int8(self, vectors: np.ndarray) -> np.ndarray:
        assert self._vmin is not None and self._vscale is not None
        return np.clip(np.rint((vectors - self._vmin) / self._vscale), 0, 255).astype(np.uint8)

    def _decode_int8(self, codes: np.ndarray) -> np.ndarray:
        assert self._vmin is not None and self._vscale is not None  # int8 codes exist only after _calibrate
        return codes.astype(np.float32) * self._vscale + self._vmin

    def _bits(self) -> np.ndarray:
        n = int(self._codes.ntotal)
        if n == 0:
            return np.empty((0, self.dim // 8), dtype=np.uint8)
        return faiss.rev_swig_ptr(self._codes.xb.data(), n * self._codes.code_size).reshape(n, -1)

    def train(self, sample: np.ndarray) -> None:
        if self.int8 and len(sample):
            self._calibrate(np.asarray(sample, dtype=np.float32))

    # -- data -----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidInputError(f"vectors have shape {vectors.shape}; the index holds dimension {self.dim}")
        ids = np.asarray(ids, dtype=np.int64)
        if np.any(np.diff(ids) <= 0) or (len(self._ids) and ids[0] <= self._ids[-1]):
            # Chunk ids only grow, so this is rare: keep positions sorted by id anyway.
            self._rebuild_sorted(ids, vectors)
            return
        self._codes.add(np.packbits(vectors > 0, axis=1))
        self._ids = np.concatenate([self._ids, ids])
        if self.int8:
            if self._vmin is None:
                self._calibrate(vectors)
            self._sq = np.concatenate([self._sq, self._encode_int8(vectors)])

    def _rebuild_sorted(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        bits = np.concatenate([self._bits(), np.packbits(vectors > 0, axis=1)])
        all_ids = np.concatenate([self._ids, ids])
        if self.int8 and self._vmin is None:
            self._calibrate(vectors)
        sq = np.concatenate([self._sq, self._encode_int8(vectors)]) if self.int8 else self._sq
        order = np.argsort(all_ids, kind="stable")
        self._codes = faiss.IndexBinaryFlat(self.dim)
        self._codes.add(np.ascontiguousarray(bits[order]))
        self._ids = all_ids[order]
        if self.int8:
            self._sq = sq[order]

    def remove(self, ids: np.ndarray) -> int:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        _, pos = self._positions(ids)
        if len(pos) == 0:
            return 0
        self._codes.remove_ids(faiss.IDSelectorBatch(pos))
        self._ids = np.delete(self._ids, pos)
        if self.int8:
            self._sq = np.delete(self._sq, pos, axis=0)
        return len(pos)

    def __len__(self) -> int:
        return int(self._codes.ntotal)

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(self._ids) == 0 or len(ids) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        found = self._ids[pos] == ids
        return ids[found], pos[found]

    # -- search ---------------------------------------------------------------------------
    def tuning_ladder(self) -> list[int]:
        return [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]

    def set_search_value(self, value: int) -> None:
        self.search_value = int(value)

    def wants_rebuild(self) -> str | None:
        n = len(self)
        if n >= max(RETUNE_MIN, RETUNE_GROWTH * self.built_n):
            return f"tuned for {self.built_n:,} vectors, the collection now holds {n:,}"
        return None

    def _rescore(self, queries: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Scores of each query against its candidate positions (nq, c)."""
        if self.int8:
            vectors = self._decode_int8(self._sq[pos])  # (nq, c, dim)
        else:
            vectors = np.unpackbits(self._bits()[pos], axis=-1, count=self.dim).astype(np.float32) * 2.0 - 1.0
        return np.einsum("qd,qcd->qc", queries, vectors)

    def search(
        self, queries: np.ndarray, k: int, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidInputError(f"queries have shape {queries.shape}; the index holds dimension {self.dim}")
        nq, total = len(queries), len(self)
        scores_out, ids_out = empty_result(nq, k)
        if total == 0 or k < 1:
            return scores_out, ids_out
        selector = None
        if allow is not None:
            _, allowed_pos = self._positions(sorted_ids(allow))
            if len(allowed_pos) == 0:
                return scores_out, ids_out
            if len(allowed_pos) <= max(SMALL_ALLOW, SMALL_ALLOW_FRACTION * total):
                return self._search_positions(queries, k, allowed_pos)
            selector = id_selector(allowed_pos)
        fetch = min(total, max(k, k * self.search_value))
        for start in range(0, nq, _QUERY_BLOCK):
            q = queries[start : start + _QUERY_BLOCK]
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
            _, pos = self._codes.search(np.packbits(q > 0, axis=1), fetch, params=params)
            valid = pos >= 0
            safe = np.where(valid, pos, 0)
            scores = np.where(valid, self._rescore(q, safe), -np.inf)
            kk = min(k, fetch)
            top = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
            top_scores = np.take_along_axis(scores, top, 1)
            top_pos = np.take_along_axis(safe, top, 1)
            scores_out[start : start + len(q), :kk] = top_scores
            ids_out[start : start + len(q), :kk] = np.where(np.isfinite(top_scores), self._ids[top_pos], -1)
        return scores_out, ids_out

    def _search_positions(self, queries: np.ndarray, k: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rescore every allowed vector (a small allow-list): exact over the codes kept."""
        from .base import topk_exact

        if self.int8:
            vectors = self._decode_int8(self._sq[pos])
        else:
            vectors = np.unpackbits(self._bits()[pos], axis=-1, count=self.dim).astype(np.float32) * 2.0 - 1.0
        return topk_exact(queries, self._ids[pos], vectors, k)

    # -- size and persistence -------------------------------------------------------------
    def bytes_per_vector(self) -> float:
        return self.dim / 8 + 8 + (self.dim if self.int8 else 0)

    def _write_files(self, path: Path, saved: SavedFiles) -> None:
        saved.write_json(side_file(path, ".meta.json"), {**self._state(), "search_value": self.search_value})
        saved.write(side_file(path, ".ids.npy"), lambda stream: np.save(stream, self._ids))
        sq, ranges = side_file(path, ".sq8.npy"), side_file(path, ".sq8range.npy")
        vmin, vscale = self._vmin, self._vscale
        if self.int8 and vmin is not None and vscale is not None:
            saved.write(sq, lambda stream: np.save(stream, self._sq))
            saved.write(ranges, lambda stream: np.save(stream, np.stack([vmin, vscale])))
        else:
            sq.unlink(missing_ok=True)
            ranges.unlink(missing_ok=True)
        saved.write(path, lambda stream: faiss.write_index_binary(self._codes,
                                                                  faiss.PyCallbackIOWriter(stream.write, WRITE_BLOCK)))

    @classmethod
    def read_files(cls, path: Path, spec: str, dim: int, files: CheckedFiles) -> BinaryIndex:
        state = files.read_json(side_file(path, ".meta.json"))
        self = cls(spec, dim, factory=state.get("factory", spec))
        self._restore_state(state)
        self.search_value = int(state.get("search_value", DEFAULT_OVERSAMPLE))
        with files.verified_path(path) as name:
            codes = faiss.read_index_binary(name)
        if codes.d != dim:
            raise InvalidInputError(f"{path} holds dimension {codes.d}, expected {dim}")
        self._ids = files.read_npy(side_file(path, ".ids.npy"))
        sq = side_file(path, ".sq8.npy")
        if files.has(sq.name):
            self._sq = files.read_npy(sq)
            self._vmin, self._vscale = files.read_npy(side_file(path, ".sq8range.npy"))
        if len(self._ids) != codes.ntotal:
            raise InvalidInputError(f"{path}: {codes.ntotal} codes but {len(self._ids)} ids")
        self._codes = codes
        return self
