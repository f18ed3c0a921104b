"""``MilvusCollection``: the collection facade on the Milvus engine, under its pre-seam name
(``semsearch.MilvusCollection``; it was ``semsearch.backends.milvus.MilvusCollection``, which made the
storage package import the facade back)."""

from __future__ import annotations

import os
from typing import Any

from .facade import Collection


class MilvusCollection(Collection):
    """``Collection(name, model, backend="milvus", uri=uri, token=token, ...)``.

    Args:
        name: the collection name (or a path: its last component, ``-``/``.`` -> ``_``).
        uri: ``"./milvus.db"`` (Milvus Lite, a local file) or ``"http://host:19530"``.
        token: credentials for a cluster. Other arguments as for :class:`semsearch.Collection`.
    """

    def __init__(self, name: str | os.PathLike[str], model: str | None = None, *, uri: str = "./milvus.db",
                 token: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, model, backend="milvus", uri=uri, token=token, **kwargs)

