"""Storage backends: ``local`` (SQLite + FAISS in a folder) and ``milvus`` (Milvus Lite or a cluster).

:func:`open_collection` is the one place that chooses: callers get an object with the
:class:`semsearch.Collection` interface either way. pymilvus is imported only for ``milvus``
(``pip install semsearch[milvus]``).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInputError

BACKENDS = ("local", "milvus")
DEFAULT_MILVUS_URI = "./milvus.db"


def open_collection(
    path_or_name: str | os.PathLike[str],
    model: str | None = None,
    *,
    backend: str = "local",
    uri: str | None = None,
    token: str | None = None,
    **kwargs: Any,
) -> Any:
    """A collection on the chosen backend, with the same public methods on both.

    ``path_or_name`` is the folder for ``local`` and the collection name for ``milvus`` (a
    path's last component, ``-``/``.`` turned into ``_``). ``uri``: a Milvus Lite file
    (``./milvus.db``, the default) or a server (``http://host:19530``); ``token``: its credentials.

    Raises:
        InvalidInputError: an unknown backend, or ``uri``/``token`` given for ``local``.
        ImportError: ``milvus`` without pymilvus installed (the message says what to install).
    """
    if backend == "local":
        if uri is not None or token is not None:
            raise InvalidInputError("uri and token are for backend='milvus'; a local collection is a folder path")
        from ..collection import Collection

        return Collection(path_or_name, model, **kwargs)
    if backend == "milvus":
        try:
            from .milvus import MilvusCollection
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"backend='milvus' needs pymilvus and milvus-lite: pip install 'semsearch[milvus]' ({exc})") from exc
        return MilvusCollection(path_or_name, model, uri=uri or DEFAULT_MILVUS_URI, token=token, **kwargs)
    raise InvalidInputError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "DEFAULT_MILVUS_URI", "open_collection"]
