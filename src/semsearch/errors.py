"""Every error semsearch raises on purpose, in one place; each message names the problem and the fix.

All of them are exported from :mod:`semsearch`. The HTTP API maps them to status codes
(server/app.py): ``DuplicateIdError`` 409, other ``InvalidInputError`` 422,
``CollectionBusyError`` 503, ``NotACollectionError`` 404.
"""

from __future__ import annotations


class SemsearchError(Exception):
    """Base class of every error semsearch raises on purpose."""


class InvalidInputError(SemsearchError, ValueError):
    """Bad input from the caller (empty text, wrong dimension, k <= 0, a malformed file...)."""


class DuplicateIdError(InvalidInputError):
    """A document id given to ``add`` already exists in the collection (``upsert`` replaces it)."""

    @classmethod
    def for_ids(cls, existing: list[str]) -> DuplicateIdError:
        """The error for ``add`` of ids that exist: the same message on every backend."""
        return cls(
            f"{len(existing)} id(s) already exist in the collection (first: {existing[0]!r}); "
            "use upsert to replace them, or choose new ids"
        )


class UnknownDocumentError(InvalidInputError):
    """A document id the collection does not hold (e.g. the document ``similar`` starts from)."""


class DimensionMismatchError(InvalidInputError):
    """Embeddings (of documents or queries) do not have the collection's dimension."""


class FilterError(InvalidInputError):
    """A ``where`` / ``where_document`` filter that cannot be understood."""


class MissingPathError(InvalidInputError, FileNotFoundError):
    """A path given to index does not exist."""


class UnreadableFileError(InvalidInputError):
    """A file that is binary, undecodable or otherwise not text (skipped with a warning when indexing a folder)."""


class EmptyDocumentError(InvalidInputError):
    """A file or record with no text to index."""


class UnsupportedOptionError(InvalidInputError):
    """A request asks for something this server does not offer (e.g. rerank without a reranker)."""


class OptionRequiredError(InvalidInputError):
    """Input that only an explicit option allows (e.g. an output folder that exists: ``overwrite``).

    ``str()`` names the option as a Python keyword (``overwrite=True``); a door that spells
    options otherwise shows :meth:`naming` (the command line: ``--overwrite``).
    """

    def __init__(self, template: str, option: str) -> None:
        self.template = template
        self.option = option
        super().__init__(template.replace("{option}", f"{option}=True"))

    def naming(self, spelled: str) -> str:
        """The message with the option spelled as the caller's door spells it."""
        return self.template.replace("{option}", spelled)


class NotACollectionError(SemsearchError):
    """A folder (or Milvus name) exists but does not hold a semsearch collection, or holds none yet."""


class ModelMismatchError(SemsearchError):
    """The collection was built with another model or dimension than the one asked for."""


class EmbeddingsReplacedError(ModelMismatchError):
    """Another process re-encoded the collection with another model (``reindex --model``) since this
    one opened it; :class:`semsearch.Collection` reopens itself with the new model and retries."""


class CollectionBusyError(SemsearchError):
    """Another process holds the collection's write lock for longer than we were willing to wait."""


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


class StoreDamagedError(SemsearchError):
    """The collection's SQLite store is damaged (found by ``verify`` or by a read): writes are
    refused until ``semsearch verify --repair`` (``Collection.repair()``) has rebuilt it from
    every readable row; reads go on, with a warning, and may miss the unreadable documents."""


class StoreDamagedWarning(UserWarning):
    """Issued when a collection whose store is known to be damaged is opened (see StoreDamagedError)."""


class LLMError(SemsearchError):
    """The language model endpoint failed: it refused the request or answered something unusable."""


class LLMUnavailableError(LLMError):
    """The language model endpoint cannot be reached (nothing listening, DNS, TLS)."""


class LLMTimeoutError(LLMError):
    """The language model endpoint did not answer (or stopped streaming) within the timeout."""


class ContextOverflowError(LLMError):
    """The prompt does not fit the language model's context window, even with fewer passages."""


class MilvusError(SemsearchError):
    """Milvus refused or failed an operation (after retries); the message says which."""


class MigrationError(SemsearchError):
    """A copy between collections finished but the target does not hold what the source does."""


__all__ = [
    "CollectionBusyError",
    "ContextOverflowError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmbeddingsReplacedError",
    "EmptyDocumentError",
    "FilterError",
    "IndexFileCorruptError",
    "InvalidInputError",
    "LLMError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "MigrationError",
    "MilvusError",
    "MissingPathError",
    "ModelMismatchError",
    "NotACollectionError",
    "OptionRequiredError",
    "SemsearchError",
    "StoreDamagedError",
    "StoreDamagedWarning",
    "UnknownDocumentError",
    "UnreadableFileError",
    "UnsupportedOptionError",
]
