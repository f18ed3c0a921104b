"""Errors semsearch raises: each message names the problem and the fix."""

from __future__ import annotations


class SemsearchError(Exception):
    """Base class of every error semsearch raises on purpose."""


class InvalidInputError(SemsearchError, ValueError):
    """Bad input from the caller (empty text, wrong dimension, k <= 0, a malformed file...)."""


class DuplicateIdError(InvalidInputError):
    """A document id given to ``add`` already exists in the collection (``upsert`` replaces it)."""


class MissingPathError(InvalidInputError, FileNotFoundError):
    """A path given to index does not exist."""


class NotACollectionError(SemsearchError):
    """A folder exists but does not hold a semsearch collection."""


class ModelMismatchError(SemsearchError):
    """The collection was built with another model or dimension than the one asked for."""


class CollectionBusyError(SemsearchError):
    """Another process holds the collection's write lock for longer than we were willing to wait."""


class DimensionMismatchError(InvalidInputError):
    """Precomputed embeddings do not have the collection's dimension."""


class IndexFileCorruptError(SemsearchError):
    """A saved vector index file differs from what was written (damaged, truncated, missing or
    unverifiable). The index is a cache derived from the store: the collection rebuilds it.

    Attributes:
        path: the file that failed.
        reason: what was wrong with it (checksum mismatch, size, missing, no checksum recorded).
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"vector index file {self.path} cannot be used: {reason}. The index is derived from the "
                         "store: opening the collection rebuilds it from there")
