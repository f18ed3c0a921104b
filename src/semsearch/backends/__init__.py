"""Storage backends behind the engine interface (:mod:`semsearch.engine`).

- ``local`` (:mod:`.local`): a folder with SQLite + a derived FAISS index; the default.
- ``milvus`` (:mod:`.milvus`): Milvus Lite (``uri="./milvus.db"``) or a cluster
  (``uri="http://host:19530"``); needs ``pip install 'semsearch[milvus]'``.

:func:`open_engine` is the one place that chooses; a new backend is a package here and a
branch there. pymilvus is imported only when ``milvus`` is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..errors import InvalidInputError

BACKENDS = ("local", "milvus")
DEFAULT_MILVUS_URI = "./milvus.db"


def open_engine(
    location: str | os.PathLike[str],
    *,
    backend: str = "local",
    uri: str | None = None,
    token: str | None = None,
    create: bool = True,
    lock_timeout: float = 60.0,
    **options: Any,
) -> Engine:
    """The engine holding the collection at ``location`` (a folder for ``local``, a name for ``milvus``).

    Nothing is created yet: a new collection's engine has ``manifest is None`` until
    ``create(manifest)``. ``options`` are backend-specific (``index_save_every`` for local;
    ``db_name``, ``insert_batch``, ``shards``, ``replicas``, ``consistency`` for Milvus).

    Raises:
        InvalidInputError: an unknown backend, ``uri``/``token`` given for ``local``, or options
            the backend does not take.
        NotACollectionError: nothing there and ``create`` is False, or something that is not a collection.
        ImportError: ``milvus`` without pymilvus installed (the message says what to install).
    """
    if backend == "local":
        if uri is not None or token is not None:
            raise InvalidInputError("uri and token are for backend='milvus'; a local collection is a folder path")
        unknown = set(options) - {"index_save_every"}
        if unknown:
            raise InvalidInputError(f"option(s) {', '.join(sorted(unknown))} are for backend='milvus', not a local "
                                    "collection")
        from .local import LocalEngine

        return LocalEngine(Path(location), create=create, lock_timeout=lock_timeout, **options)
    if backend == "milvus":
        unknown = set(options) - {"db_name", "insert_batch", "shards", "replicas", "consistency"}
        if unknown:
            raise InvalidInputError(f"option(s) {', '.join(sorted(unknown))} are not Milvus options")
        try:
            from .milvus.engine import MilvusEngine
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("backend='milvus' needs pymilvus and milvus-lite: pip install 'semsearch[milvus]' "
                              f"({exc})") from exc
        return MilvusEngine(location, uri=uri or DEFAULT_MILVUS_URI, token=token, create=create, **options)
    raise InvalidInputError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "DEFAULT_MILVUS_URI", "open_engine"]
