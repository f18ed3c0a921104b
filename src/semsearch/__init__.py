"""semsearch: semantic search over your documents, by meaning rather than keywords.

The public API: :class:`Collection` (and what it returns: :class:`Hit`, :class:`Document`,
:class:`IndexReport`), the encoder :class:`Embedder`, and every error semsearch raises.
"""

from __future__ import annotations

from .collection import Collection
from .embedding import DEFAULT_MODEL, Embedder
from .errors import (
    CollectionBusyError,
    ContextOverflowError,
    DimensionMismatchError,
    DuplicateIdError,
    EmbeddingsReplacedError,
    EmptyDocumentError,
    FilterError,
    IndexFileCorruptError,
    InvalidInputError,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    MigrationError,
    MilvusError,
    MissingPathError,
    ModelMismatchError,
    NotACollectionError,
    SemsearchError,
    UnknownDocumentError,
    UnreadableFileError,
    UnsupportedOptionError,
)
from .types import Document, Hit, IndexReport
from .version import __version__

__all__ = [
    "DEFAULT_MODEL",
    "Collection",
    "CollectionBusyError",
    "ContextOverflowError",
    "DimensionMismatchError",
    "Document",
    "DuplicateIdError",
    "Embedder",
    "EmbeddingsReplacedError",
    "EmptyDocumentError",
    "FilterError",
    "Hit",
    "IndexFileCorruptError",
    "IndexReport",
    "InvalidInputError",
    "MigrationError",
    "MilvusError",
    "LLMError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "MissingPathError",
    "ModelMismatchError",
    "NotACollectionError",
    "SemsearchError",
    "UnknownDocumentError",
    "UnreadableFileError",
    "UnsupportedOptionError",
    "__version__",
]
