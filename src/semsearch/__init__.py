"""semsearch: semantic search over your documents, by meaning rather than keywords.

The public API: :class:`Collection` (and what it returns: :class:`Hit`, :class:`Document`,
:class:`IndexReport`), the encoder :class:`Embedder`, and every error semsearch raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    OptionRequiredError,
    SemsearchError,
    StoreDamagedError,
    StoreDamagedWarning,
    UnknownDocumentError,
    UnreadableFileError,
    UnsupportedOptionError,
)
from .types import Document, Hit, IndexReport
from .version import __version__

if TYPE_CHECKING:
    from .collection import Collection
    from .collection.milvus import MilvusCollection
    from .embedding import DEFAULT_MODEL, Embedder

# Imported on first use: they pull numpy and the storage and retrieval code (~0.5 s), which a
# command answered by a running server (cli/remote.py) or a --help never needs.
_LAZY = {"Collection": ".collection", "DEFAULT_MODEL": ".embedding", "Embedder": ".embedding",
         "MilvusCollection": ".collection.milvus"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

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
    "MilvusCollection",
    "MilvusError",
    "LLMError",
    "LLMTimeoutError",
    "LLMUnavailableError",
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
    "__version__",
]
