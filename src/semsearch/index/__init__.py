"""Vector indexes: the interface, the FAISS and binary implementations, and the factory.

Specs are FAISS ``index_factory`` strings ("Flat", "IVF1024,Flat", "IVF1024,PQ48", "HNSW32",
"HNSW32,SQ8", "SQ8", "PQ48", ...), "int8" (= "SQ8"), "binary" / "binary,SQ8" (sign-bit codes
with rescoring) and "auto" / "auto:<memory budget>" (chosen from the collection size, see
tuning.py).
"""

from __future__ import annotations

from pathlib import Path

from .base import VectorIndex
from .binary import BinaryIndex
from .faiss import FaissIndex
from .files import CheckedFiles, FileDigest, read_checksums, side_file
from .spec import IndexSpec, parse_spec
from .tuning import resolve_auto

DEFAULT_SPEC = "auto"


def resolve_spec(spec: str, dim: int, n: int) -> str:
    """The concrete spec an index of ``spec`` uses for n vectors ("auto" resolves by size)."""
    info = parse_spec(spec, dim)
    if info.kind == "auto":
        return resolve_auto(n, dim, info.memory_budget)
    return info.text


def make_index(spec: str, dim: int, n: int = 0) -> VectorIndex:
    """An empty index for ``spec``, sized for about n vectors (what "auto" resolves to).

    Raises:
        InvalidInputError: a spec semsearch cannot build, with the reason and a fix.
    """
    factory = resolve_spec(spec, dim, n)
    if parse_spec(factory, dim).kind == "binary":
        return BinaryIndex(spec, dim, factory=factory)
    return FaissIndex(spec, dim, factory=factory)


def load_index(
    path: Path, spec: str, dim: int, factory: str | None = None, checksums: dict[str, FileDigest] | None = None,
    *, identities: dict[str, list[int]] | None = None, mapped: bool = False,
) -> VectorIndex:
    """Read an index saved by :meth:`VectorIndex.save`, verifying every file against its digest.

    Args:
        factory: the concrete spec saved (read from the index's own metadata when None).
        checksums: the record ``save`` returned, kept by the caller; when None, the record
            saved next to the index (``path.checksums.json``) is used.
        identities: identities of files verified before (see :mod:`.files`): those unchanged
            are not hashed again. The index's ``verified_files`` lists the ones hashed now.
        mapped: memory-map the index file instead of reading it (FAISS indexes; see
            :attr:`VectorIndex.mapped`).

    Raises:
        IndexFileCorruptError: a file is missing, damaged, truncated or has no recorded digest;
            the index must be rebuilt from the store.
    """
    files = CheckedFiles(path.parent, checksums if checksums is not None else read_checksums(path), identities)
    factory = factory or files.read_json(side_file(path, ".meta.json")).get("factory", spec)
    if parse_spec(factory, dim).kind == "binary":
        index: VectorIndex = BinaryIndex.read_files(path, spec, dim, files)
    else:
        index = FaissIndex.read_files(path, spec, dim, files, mapped=mapped)
    index.verified_files = dict(files.verified)
    return index


__all__ = [
    "DEFAULT_SPEC", "BinaryIndex", "FaissIndex", "FileDigest", "IndexSpec", "VectorIndex", "load_index", "make_index",
    "parse_spec", "resolve_spec",
]
