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


class UnknownDocumentError(InvalidInputError):
    """A document id the collection does not hold (e.g. the document ``similar`` starts from)."""
