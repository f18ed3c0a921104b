"""Index files on disk: written durably with a checksum taken while writing, verified before reading.

A save writes each file through :class:`SavedFiles`, which hashes the bytes as they go out
(xxh3-64, several GB/s: a 1.5 GB index adds a few hundred ms to opening, see bench/RESULTS.md),
fsyncs and renames the file into place, and records it as ``{"bytes": size, "xxh3_64": hex}``.
The save returns that record for every file it wrote, and also writes it next to the index
(``<index file>.checksums.json``), so an index can be verified whether or not its caller kept
the record. A load reads every file through :class:`CheckedFiles`, which refuses a file whose
size or digest differs from the record, or that the record does not list, with
:class:`~semsearch.errors.IndexFileCorruptError`.

Large files are verified once per file identity, not on every open: hashing a 1.5 GB index
would read all of it (into the process's resident memory, through the map) before a memory-mapped
index touches the few pages a query needs. A file's identity is (device, inode, size, mtime,
ctime); any write to the file, a truncation, a copy or a replacement changes it (ctime cannot be
set back). The saving process records the identity of what it just wrote and hashed; a load that
hashed a file in full reports its identity (:attr:`CheckedFiles.verified`) for its caller to
record; a load finding the recorded identity skips the hash. ``semsearch verify`` always hashes
everything (bit rot under an unchanged identity is what it is for).
"""

from __future__ import annotations

import io
import json
import mmap
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import xxhash

from ..errors import IndexFileCorruptError

ALGORITHM = "xxh3_64"
CHECKSUMS_SUFFIX = ".checksums.json"
_MMAP_STEP = 1 << 26  # hash a mapped file 64 MiB at a time (the hash releases the GIL per call)

#: What a save records for one file: {"bytes": size, "xxh3_64": 16 hex digits}.
FileDigest = dict[str, Any]


def side_file(path: Path, suffix: str) -> Path:
    """A side file of the index file ``path`` (``vectors-7.faiss.meta.json``...)."""
    return path.with_name(path.name + suffix)


class _HashingWriter:
    """A write-only binary stream that hashes and counts what passes through to ``raw``."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hasher = xxhash.xxh3_64()
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.hasher.update(view)
        self.size += view.nbytes
        self.raw.write(view)
        return view.nbytes

    def flush(self) -> None:
        self.raw.flush()

    def digest(self) -> FileDigest:
        return {"bytes": self.size, ALGORITHM: self.hasher.hexdigest()}


def file_identity(path: Path | int) -> list[int]:
    """(device, inode, size, mtime ns, ctime ns) of a file (a path or an open descriptor)."""
    st = os.fstat(path) if isinstance(path, int) else os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def digest_of(path: Path) -> FileDigest:
    """The digest of a file as it is on disk (memory-mapped: no copy into Python)."""
    with open(path, "rb") as f:
        return _digest_of_open(f)


def _digest_of_open(f: BinaryIO) -> FileDigest:
    size = os.fstat(f.fileno()).st_size
    hasher = xxhash.xxh3_64()
    if size:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            if hasattr(mapped, "madvise"):
                mapped.madvise(mmap.MADV_SEQUENTIAL)
            view = memoryview(mapped)
            try:
                for start in range(0, size, _MMAP_STEP):
                    hasher.update(view[start : start + _MMAP_STEP])
            finally:
                view.release()
    return {"bytes": size, ALGORITHM: hasher.hexdigest()}


class SavedFiles:
    """The files one save writes: each durably (temp file, fsync, rename) with its digest."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, FileDigest] = {}

    def write(self, path: Path, write: Callable[[Any], None]) -> None:
        """Call ``write(stream)`` with a binary stream into a temp file, then move it to ``path``."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as raw:
            stream = _HashingWriter(raw)
            write(stream)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
        self.files[path.name] = stream.digest()

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        self.write(path, lambda stream: stream.write(json.dumps(data).encode()))

    def finish(self, index_path: Path) -> dict[str, FileDigest]:
        """Write the record next to the index (last, so it never lists a file not yet in place)."""
        record = {"algorithm": ALGORITHM, "files": self.files}
        body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        tmp = side_file(index_path, CHECKSUMS_SUFFIX + ".tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, side_file(index_path, CHECKSUMS_SUFFIX))
        return dict(self.files)


def read_checksums(index_path: Path) -> dict[str, FileDigest]:
    """The record a save wrote next to ``index_path``.

    Raises:
        IndexFileCorruptError: no record (an index saved before checksums existed, or a save
            that did not finish), or one that cannot be read.
    """
    path = side_file(index_path, CHECKSUMS_SUFFIX)
    try:
        record = json.loads(path.read_bytes())
        files = record["files"]
        if record["algorithm"] != ALGORITHM or not isinstance(files, dict):
            raise ValueError(f"unknown checksum algorithm {record['algorithm']!r}")
    except FileNotFoundError:
        raise IndexFileCorruptError(index_path, "no checksum record; it was saved by an older semsearch or not saved "
                                                "completely") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise IndexFileCorruptError(path, f"checksum record unreadable ({exc})") from None
    return files


class CheckedFiles:
    """Reads the files of one saved index, each verified against its recorded digest first.

    ``identities`` (file name -> :func:`file_identity`) lists large files verified before: one
    whose identity is unchanged is not hashed again. ``verified`` collects the identities of the
    large files this reader hashed in full, for the caller to record.
    """

    def __init__(self, folder: Path, checksums: dict[str, FileDigest],
                 identities: dict[str, list[int]] | None = None) -> None:
        self.folder = folder
        self.checksums = checksums
        self.identities = identities or {}
        self.verified: dict[str, list[int]] = {}

    def has(self, name: str) -> bool:
        """Whether the save recorded a file of this name (optional side files)."""
        return name in self.checksums

    def _expected(self, path: Path) -> FileDigest:
        expected = self.checksums.get(path.name)
        if not isinstance(expected, dict) or ALGORITHM not in expected or "bytes" not in expected:
            raise IndexFileCorruptError(path, "no checksum recorded for this file")
        return expected

    def _check(self, path: Path, expected: FileDigest, actual: FileDigest) -> None:
        if actual["bytes"] != expected["bytes"]:
            raise IndexFileCorruptError(path, f"{actual['bytes']:,} bytes where {expected['bytes']:,} were written")
        if actual[ALGORITHM] != expected[ALGORITHM]:
            raise IndexFileCorruptError(
                path, f"checksum mismatch ({ALGORITHM} {actual[ALGORITHM]}, written as {expected[ALGORITHM]})"
            )

    def read_bytes(self, path: Path) -> bytes:
        """The verified content of a (small) file."""
        expected = self._expected(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IndexFileCorruptError(path, "missing") from None
        self._check(path, expected, {"bytes": len(data), ALGORITHM: xxhash.xxh3_64_hexdigest(data)})
        return data

    def read_json(self, path: Path) -> dict[str, Any]:
        return json.loads(self.read_bytes(path))

    def read_npy(self, path: Path) -> Any:
        import numpy as np

        return np.load(io.BytesIO(self.read_bytes(path)), allow_pickle=False)

    @contextmanager
    def verified_path(self, path: Path) -> Iterator[str]:
        """Verify a (large) file in place, then let the caller read it by name.

        The file is hashed through a memory map (no copy), unless its identity is one recorded as
        verified, and kept open meanwhile; after the caller's read, the name must still lead to
        that same file (saves replace files by renaming, never in place), so what was read is
        what was verified.
        """
        expected = self._expected(path)
        if not path.exists():
            raise IndexFileCorruptError(path, "missing")
        with open(path, "rb") as f:
            identity = file_identity(f.fileno())
            if identity[2] != expected["bytes"]:
                raise IndexFileCorruptError(path, f"{identity[2]:,} bytes where {expected['bytes']:,} were written")
            if self.identities.get(path.name) != identity:
                self._check(path, expected, _digest_of_open(f))
                self.verified[path.name] = identity
            before = os.fstat(f.fileno())
            yield str(path)
            try:
                after = os.stat(path)
            except FileNotFoundError:
                after = None
            if after is None or (after.st_ino, after.st_dev) != (before.st_ino, before.st_dev):
                raise IndexFileCorruptError(path, "replaced by another save while it was being read")


def verify_files(index_path: Path, checksums: dict[str, FileDigest] | None = None) -> list[IndexFileCorruptError]:
    """Check every file of a saved index against its record without loading it (for ``verify``).

    Returns one error per file that is missing, truncated or damaged (empty when all are sound);
    without ``checksums`` the record saved next to the index is used (its absence is an error).
    """
    try:
        record = checksums if checksums is not None else read_checksums(index_path)
    except IndexFileCorruptError as exc:
        return [exc]
    files = CheckedFiles(index_path.parent, record)
    problems = []
    for name in record:
        try:
            with files.verified_path(index_path.parent / name):
                pass
        except IndexFileCorruptError as exc:
            problems.append(exc)
    return problems
