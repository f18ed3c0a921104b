"""Whole-collection reads of a Milvus collection (the export for migration, the consistency check),
and what a local store has to do itself that Milvus does on its own (repair)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np

from ...errors import InvalidInputError
from ...types import ChunkRow, DocumentRow, StoreSalvage
from .client import parts, with_retries
from .filters import id_list
from .target import MilvusTarget


class KeptByMilvus:
    """What a local store needs and Milvus does itself: repair, and refusing writes to a damaged store."""

    name: str

    def repair(self, *, force: bool = False) -> StoreSalvage:
        """Milvus keeps and repairs its own storage: nothing for semsearch to rebuild.

        Raises:
            InvalidInputError: always.
        """
        raise InvalidInputError(f"collection {self.name} lives in Milvus, which keeps and repairs its own storage; "
                                "semsearch verify checks its documents and chunks against each other")

    def check_writable(self) -> None:
        """Writes are never refused for damage here: Milvus keeps its own storage sound."""


def export(engine: MilvusTarget, batch: int = 1000) -> Iterator[list[DocumentRow]]:
    """Every document with its chunks and stored vectors, in insertion order, in batches."""
    fields = ["doc_id", "text", "metadata", "source", "added"]
    docs = sorted(engine.query_all(engine.docs_name, "", fields), key=lambda d: d["added"])
    for part in parts(docs, batch):
        rows = {
            d["doc_id"]: DocumentRow(d["doc_id"], d["text"], d["metadata"] or {}, d["source"] or None) for d in part
        }
        chunks = engine.query_all(engine.name, f"doc_id in {id_list(list(rows))}",
                                   ["doc_id", "position", "chunk_start", "chunk_end", "vector"])
        for c in sorted(chunks, key=lambda c: (c["doc_id"], c["position"])):
            rows[c["doc_id"]].chunks.append(
                ChunkRow(c["position"], c["chunk_start"], c["chunk_end"], np.asarray(c["vector"], dtype=np.float32)))
        yield list(rows.values())


def verify(engine: MilvusTarget) -> dict[str, Any]:
    """Every chunk must belong to a listed document; chunks of unlisted ones (an interrupted delete) are removed."""
    docs = {d["doc_id"] for d in engine.query_all(engine.docs_name, "", ["doc_id"])}
    orphans = {r["doc_id"] for r in engine.query_all(engine.name, "", ["doc_id"])} - docs
    problems, repaired = [], []
    if orphans:
        problems.append(f"chunks of {len(orphans)} document(s) that are not listed (an interrupted delete)")
        for part in parts(sorted(orphans), 1000):
            with_retries(partial(engine.client.delete, engine.name, filter=f"doc_id in {id_list(part)}"),
                         "delete chunks")
        repaired.append(f"removed the chunks of {len(orphans)} unlisted document(s)")
    return {"documents": len(docs), "chunks": engine.chunk_count(), "consistent": not problems, "problems": problems,
            "repaired": repaired, "store": "ok"}
