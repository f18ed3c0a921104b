"""What the Milvus engine's helpers (re-encoding, scans) need of it, as a protocol: they take the
engine's parts through it and never import the engine (no import circle, no private names)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class MilvusTarget(Protocol):
    """The parts of a :class:`~semsearch.backends.milvus.engine.MilvusEngine` its helpers use."""

    client: Any
    name: str
    docs_name: str
    uri: str
    path: str
    consistency: str
    query_batch: int
    shards: int | None
    insert_batch: int

    @property
    def manifest(self) -> dict[str, Any] | None: ...

    def reload(self) -> None: ...

    def follow(self, manifest: dict[str, Any]) -> None: ...

    def chunk_count(self) -> int: ...

    def count_of(self, collection: str) -> int: ...

    def query_all(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]: ...
