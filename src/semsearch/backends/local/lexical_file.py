"""BM25 postings saved beside the store, so a new process scores a query from disk in milliseconds.

A cold process used to score BM25 with FTS5's ``bm25()``, which runs once per matching row: at a
million chunks a query's informative words match tens of thousands of rows (0.3-1.2 s), and the
in-memory arrays of :mod:`.bm25` (~1 ms a query) took a build of every token first. The same
arrays are now written to disk when a writer flushes (like the vector index) and memory-mapped by
readers: a query reads the posting lists of its own terms and nothing else.

Like the vector index, the files are a cache derived from the store, never the truth:

- ``lexical.json`` says which files hold the postings of which change (``seq``), with each file's
  size and xxh3 digest (hashed while written) and the identity of the file as written; a file
  whose identity changed is hashed again before use (:mod:`semsearch.index.files`);
- a reader catches up from the store's change log (added chunks tokenised, removed ones masked);
  the writer that saved the files pins the log (``changes_kept_from``) so it reaches back to them;
- anything missing, stale or damaged is ignored (FTS5 answers) and rebuilt by the next flush.

The terms are saved sorted (a term's id is its position), as one UTF-8 blob with offsets, so
looking one up is a binary search over the mapped blob: nothing is read at open but a small JSON.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...index.files import SavedFiles, digest_of, file_identity
from .schema import fsync_dir

log = logging.getLogger(__name__)

META = "lexical.json"
PREFIX = "lexical-"
PARTS = ("chunk_ids", "lengths", "indptr", "rows", "tf", "terms", "term_offsets")


class DiskVocab:
    """Term -> id of a saved snapshot (sorted terms, id = position), and terms added since.

    Append-only and shared by the snapshots derived from one another, like the dict it stands
    for in :class:`.bm25.Snapshot` (``get``, ``setdefault``, ``len``).
    """

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._blob = blob
        self._offsets = offsets
        self._saved = len(offsets) - 1
        self._added: dict[str, int] = {}

    def __len__(self) -> int:
        return self._saved + len(self._added)

    def _term(self, i: int) -> bytes:
        return self._blob[int(self._offsets[i]):int(self._offsets[i + 1])].tobytes()

    def _find(self, term: str) -> int | None:
        key = term.encode()
        lo, hi = 0, self._saved
        while lo < hi:
            mid = (lo + hi) // 2
            if self._term(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < self._saved and self._term(lo) == key else None

    def get(self, term: str, default: int | None = None) -> int | None:
        found = self._find(term)
        if found is not None:
            return found
        return self._added.get(term, default)

    def setdefault(self, term: str, default: int) -> int:
        found = self._find(term)
        return found if found is not None else self._added.setdefault(term, default)

    def items(self) -> Iterator[tuple[str, int]]:
        blob = self._blob.tobytes()
        offsets = np.asarray(self._offsets).tolist()
        for i in range(self._saved):
            yield blob[offsets[i]:offsets[i + 1]].decode(), i
        yield from self._added.items()


def sorted_terms(vocab: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UTF-8 blob, offsets, new id of every old id) of a vocabulary, terms sorted by code point
    (the order of their UTF-8 bytes, which is what :class:`DiskVocab` searches)."""
    pairs = sorted(vocab.items())
    encoded = [t.encode() for t, _ in pairs]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    new_id = np.empty(len(pairs), dtype=np.int64)
    new_id[np.array([i for _, i in pairs], dtype=np.int64)] = np.arange(len(pairs))
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets, new_id


def read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / META).read_text())
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def save(folder: Path, seq: int, arrays: dict[str, np.ndarray], count: int, total_tokens: float,
         tokenizer: str) -> dict[str, Any]:
    """Write the arrays of one snapshot durably, then ``lexical.json`` naming them (last), and
    remove the files of the snapshot saved before. Returns the metadata written."""
    for left in folder.glob(f"{PREFIX}*.tmp"):  # of a save killed half-way
        left.unlink(missing_ok=True)
    files = SavedFiles(folder)
    for part in PARTS:
        def write(stream: Any, array: np.ndarray = arrays[part]) -> None:
            np.save(stream, array)

        files.write(folder / f"{PREFIX}{seq}.{part}.npy", write)
    meta = {
        "seq": seq, "count": count, "total_tokens": total_tokens, "terms": len(arrays["term_offsets"]) - 1,
        "postings": len(arrays["rows"]), "tokenizer": tokenizer, "files": files.files,
        "verified": {name: file_identity(folder / name) for name in files.files},
    }
    write_meta(folder, meta)
    for old in folder.glob(f"{PREFIX}*.npy"):
        if old.name not in files.files:
            old.unlink(missing_ok=True)
    return meta


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    tmp = folder / (META + ".tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / META)
    fsync_dir(folder)


def load(folder: Path, meta: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, list[int]]]:
    """The arrays ``meta`` names (memory-mapped), and the identities of the files this
    call hashed in full (their recorded identity had changed: copied, restored...).

    Raises ValueError for a file that is missing, of another size or digest, or inconsistent."""
    seq = int(meta["seq"])
    arrays: dict[str, np.ndarray] = {}
    hashed: dict[str, list[int]] = {}
    for part in PARTS:
        name = f"{PREFIX}{seq}.{part}.npy"
        path = folder / name
        expected = meta["files"][name]
        identity = file_identity(path)  # FileNotFoundError is an OSError: the caller treats it as damage
        if identity[2] != expected["bytes"]:
            raise ValueError(f"{name} holds {identity[2]} bytes, {expected['bytes']} were written")
        if identity != meta.get("verified", {}).get(name):
            if digest_of(path) != expected:
                raise ValueError(f"{name} does not hold what was written (checksum)")
            hashed[name] = identity
        arrays[part] = np.load(path, mmap_mode="r")
    indptr, rows, ids = arrays["indptr"], arrays["rows"], arrays["chunk_ids"]
    if (len(rows) != len(arrays["tf"]) or int(indptr[-1]) != len(rows) or len(arrays["lengths"]) != len(ids)
            or len(ids) != meta["count"] or len(indptr) != len(arrays["term_offsets"])):
        raise ValueError("the saved lexical arrays disagree with one another")
    return arrays, hashed


def remove(folder: Path) -> None:
    """Forget the saved postings (the next flush writes new ones)."""
    (folder / META).unlink(missing_ok=True)
    for old in folder.glob(f"{PREFIX}*.npy"):
        old.unlink(missing_ok=True)
    fsync_dir(folder)


__all__ = ["DiskVocab", "META", "load", "read_meta", "remove", "save", "sorted_terms"]
