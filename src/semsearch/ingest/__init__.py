"""Ingestion: find files, load them into Records, split texts into token-bounded Chunks."""

from __future__ import annotations

from semsearch.ingest.chunking import MIN_CHUNK_SIZE, Chunk, Chunker
from semsearch.ingest.loaders import (
    LOADERS,
    SUPPORTED_SUFFIXES,
    EmptyDocumentError,
    LoadOptions,
    Record,
    UnreadableFileError,
    discover,
    file_hash,
    load_file,
)
from semsearch.ingest.stdlib import stdlib_docstrings

__all__ = [
    "LOADERS",
    "MIN_CHUNK_SIZE",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "Chunker",
    "EmptyDocumentError",
    "LoadOptions",
    "Record",
    "UnreadableFileError",
    "discover",
    "file_hash",
    "load_file",
    "stdlib_docstrings",
]
