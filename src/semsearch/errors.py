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


class LLMError(SemsearchError):
    """The language model endpoint failed: it refused the request or answered something unusable."""


class LLMUnavailableError(LLMError):
    """The language model endpoint cannot be reached (nothing listening, DNS, TLS)."""


class LLMTimeoutError(LLMError):
    """The language model endpoint did not answer (or stopped streaming) within the timeout."""


class ContextOverflowError(LLMError):
    """The prompt does not fit the language model's context window, even with fewer passages."""
