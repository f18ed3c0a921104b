"""The Milvus backend: the same collection on Milvus Lite (a local file) or a cluster.

``semsearch.Collection(name, backend="milvus", uri=...)`` is the way in; ``MilvusCollection``
stays for code written before the engine seam (it is that, with ``uri`` first).
"""

from __future__ import annotations

from typing import Any

from ...errors import MilvusError
from .client import release_lite, with_retries
from .schema import MilvusIndex, collection_name, milvus_index


def __getattr__(name: str) -> Any:
    # MilvusCollection is the facade itself; imported on first use so that opening the engine
    # (which the facade does) never imports the facade back.
    if name == "MilvusCollection":
        from .compat import MilvusCollection

        return MilvusCollection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MilvusCollection", "MilvusError", "MilvusIndex", "collection_name", "milvus_index", "release_lite",
           "with_retries"]
