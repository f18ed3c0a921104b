"""The Milvus backend: the same collection on Milvus Lite (a local file) or a cluster.

``semsearch.Collection(name, backend="milvus", uri=...)`` is the way in (``semsearch.MilvusCollection``
is that, with ``uri`` first, for code written before the engine seam).
"""

from __future__ import annotations

from ...errors import MilvusError
from .client import release_lite, with_retries
from .schema import MilvusIndex, collection_name, milvus_index

__all__ = ["MilvusError", "MilvusIndex", "collection_name", "milvus_index", "release_lite",
           "with_retries"]
