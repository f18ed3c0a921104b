"""semsearch: semantic search over your documents, by meaning rather than keywords."""

from __future__ import annotations

__version__ = "0.1.0"

from .collection import Collection, Document, Hit, IndexReport  # noqa: E402
from .embedding import DEFAULT_MODEL, Embedder  # noqa: E402
from .filters import FilterError  # noqa: E402
from .errors import (  # noqa: E402
    CollectionBusyError,
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    MissingPathError,
    ModelMismatchError,
    NotACollectionError,
    SemsearchError,
    UnknownDocumentError,
)

__all__ = [
    "DEFAULT_MODEL",
    "Collection",
    "CollectionBusyError",
    "DimensionMismatchError",
    "Document",
    "DuplicateIdError",
    "Embedder",
    "FilterError",
    "Hit",
    "IndexReport",
    "InvalidInputError",
    "MissingPathError",
    "ModelMismatchError",
    "NotACollectionError",
    "SemsearchError",
    "UnknownDocumentError",
    "__version__",
]
