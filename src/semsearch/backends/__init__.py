"""Storage backends other than the embedded SQLite + FAISS one.

``milvus``: the same collection interface on Milvus (Milvus Lite file or a cluster), for
corpora that outgrow one machine. Import it lazily: pymilvus is an optional dependency
(``pip install semsearch[milvus]``).
"""

from __future__ import annotations

BACKENDS = ("local", "milvus")

__all__ = ["BACKENDS"]
