"""The systems bench/bench_scale.py compares at scale: build, a cold filtered dense query, warm p50.

Each system gets the same documents (scale_data.batches: text, vector, ``cat``/``num``), the same
filters translated to its own language, the same query vectors, k = 10, inner product:

* semsearch: ``Collection`` with default settings (the collection bench_scale.py built).
* LanceDB (embedded, on disk): one table; an IVF_PQ vector index (LanceDB's default ANN index,
  its default partitions and sub-vectors), a BITMAP index on ``cat`` and a BTREE on ``num``;
  queries with ``prefilter=True`` (the filter is applied before the k nearest are taken).
* Chroma's PersistentClient: its HNSW index (space "ip"), metadata filters as given.
* Qdrant's local mode (``QdrantClient(path=...)``): dot product; it keeps every point in memory.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import scale_data

K = 10
BATCH = 5000


def _p50(run: Callable[[list[float], dict[str, Any] | None], Any], vectors: Sequence[list[float]],
         filters: Sequence[dict[str, Any] | None], names: Sequence[str]) -> dict[str, float]:
    out = {}
    for name, flt in zip(names, filters):
        for v in vectors[:3]:  # warm what this filter uses
            run(v, flt)
        times = []
        for v in vectors:
            started = time.perf_counter()
            run(v, flt)
            times.append((time.perf_counter() - started) * 1000)
        out[name] = round(statistics.median(times), 2)
    return out


class Semsearch:
    @staticmethod
    def cold_query(path: str, vector: list[float], flt: dict[str, Any] | None) -> list[str]:
        from semsearch import Collection

        with Collection(path, create=False) as col:
            return [h.id for h in col.search(np.asarray(vector, dtype=np.float32), k=K, mode="dense", where=flt)]

    @staticmethod
    def warm_p50(path: Path, vectors: Sequence[list[float]], filters: Sequence[dict[str, Any] | None],
                 names: Sequence[str]) -> dict[str, float]:
        from semsearch import Collection

        with Collection(path, create=False) as col:
            col.warm_up()
            return _p50(lambda v, f: col.search(np.asarray(v, dtype=np.float32), k=K, mode="dense", where=f),
                        vectors, filters, names)


def _lance_where(flt: dict[str, Any] | None) -> str | None:
    if flt is None:
        return None
    (key, cond), = flt.items()
    if not isinstance(cond, dict):
        return f"{key} = '{cond}'"
    (op, value), = cond.items()
    if op == "$in":
        return f"{key} IN ({', '.join(repr(v) for v in value)})"
    return f"{key} {dict([('$lt', '<'), ('$lte', '<='), ('$gt', '>'), ('$gte', '>=')])[op]} {value}"


class LanceDB:
    @staticmethod
    def build(path: Path, n: int) -> None:
        import lancedb
        import pyarrow as pa

        db = lancedb.connect(str(path))
        table = None
        for kw in scale_data.batches(n):
            batch = pa.table({
                "id": kw["ids"], "text": kw["documents"],
                "cat": [m["cat"] for m in kw["metadatas"]], "num": [m["num"] for m in kw["metadatas"]],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(kw["embeddings"].reshape(-1)), scale_data.DIM),
            })
            if table is None:
                table = db.create_table("docs", batch)
            else:
                table.add(batch)
        assert table is not None
        table.create_index(metric="dot", vector_column_name="vector", index_type="IVF_PQ")
        table.create_scalar_index("cat", index_type="BITMAP")
        table.create_scalar_index("num", index_type="BTREE")

    @staticmethod
    def _search(table: Any, vector: list[float], flt: dict[str, Any] | None) -> list[str]:
        query = table.search(vector).metric("dot").limit(K).select(["id"])
        where = _lance_where(flt)
        if where is not None:
            query = query.where(where, prefilter=True)
        return query.to_arrow()["id"].to_pylist()

    @classmethod
    def cold_query(cls, path: str, vector: list[float], flt: dict[str, Any] | None) -> list[str]:
        import lancedb

        return cls._search(lancedb.connect(path).open_table("docs"), vector, flt)

    @classmethod
    def warm_p50(cls, path: Path, vectors: Sequence[list[float]], filters: Sequence[dict[str, Any] | None],
                 names: Sequence[str]) -> dict[str, float]:
        import lancedb

        table = lancedb.connect(str(path)).open_table("docs")
        return _p50(lambda v, f: cls._search(table, v, f), vectors, filters, names)


class Chroma:
    @staticmethod
    def build(path: Path, n: int) -> None:
        import chromadb

        client = chromadb.PersistentClient(str(path))
        col = client.get_or_create_collection("docs", metadata={"hnsw:space": "ip"}, embedding_function=None)
        step = min(BATCH, client.get_max_batch_size())
        for kw in scale_data.batches(n):
            for a in range(0, len(kw["ids"]), step):
                col.add(ids=kw["ids"][a:a + step], embeddings=kw["embeddings"][a:a + step],
                        metadatas=kw["metadatas"][a:a + step], documents=kw["documents"][a:a + step])

    @staticmethod
    def _search(col: Any, vector: list[float], flt: dict[str, Any] | None) -> list[str]:
        return col.query(query_embeddings=[vector], n_results=K, where=flt, include=[])["ids"][0]

    @classmethod
    def cold_query(cls, path: str, vector: list[float], flt: dict[str, Any] | None) -> list[str]:
        import chromadb

        return cls._search(chromadb.PersistentClient(path).get_collection("docs"), vector, flt)

    @classmethod
    def warm_p50(cls, path: Path, vectors: Sequence[list[float]], filters: Sequence[dict[str, Any] | None],
                 names: Sequence[str]) -> dict[str, float]:
        import chromadb

        col = chromadb.PersistentClient(str(path)).get_collection("docs")
        return _p50(lambda v, f: cls._search(col, v, f), vectors, filters, names)


def _qdrant_filter(flt: dict[str, Any] | None) -> Any:
    from qdrant_client import models

    if flt is None:
        return None
    (key, cond), = flt.items()
    if not isinstance(cond, dict):
        return models.Filter(must=[models.FieldCondition(key=key, match=models.MatchValue(value=cond))])
    (op, value), = cond.items()
    if op == "$in":
        return models.Filter(must=[models.FieldCondition(key=key, match=models.MatchAny(any=value))])
    return models.Filter(must=[models.FieldCondition(key=key, range=models.Range(**{op[1:]: value}))])


class Qdrant:
    @staticmethod
    def build(path: Path, n: int) -> None:
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(path))
        client.create_collection("docs", vectors_config=models.VectorParams(size=scale_data.DIM,
                                                                            distance=models.Distance.DOT))
        for kw in scale_data.batches(n):
            start = int(kw["ids"][0][1:])
            client.upload_collection("docs", vectors=kw["embeddings"], ids=list(range(start, start + len(kw["ids"]))),
                                     payload=[{**m, "id": i, "text": t} for m, i, t in
                                              zip(kw["metadatas"], kw["ids"], kw["documents"])])
        client.close()

    @staticmethod
    def _search(client: Any, vector: list[float], flt: dict[str, Any] | None) -> list[Any]:
        points = client.query_points("docs", query=vector, query_filter=_qdrant_filter(flt), limit=K).points
        return [p.id for p in points]

    @classmethod
    def cold_query(cls, path: str, vector: list[float], flt: dict[str, Any] | None) -> list[Any]:
        from qdrant_client import QdrantClient

        return cls._search(QdrantClient(path=path), vector, flt)

    @classmethod
    def warm_p50(cls, path: Path, vectors: Sequence[list[float]], filters: Sequence[dict[str, Any] | None],
                 names: Sequence[str]) -> dict[str, float]:
        from qdrant_client import QdrantClient

        client = QdrantClient(path=str(path))
        return _p50(lambda v, f: cls._search(client, v, f), vectors, filters, names)


SYSTEMS: dict[str, Any] = {"semsearch": Semsearch, "lancedb": LanceDB, "chroma": Chroma, "qdrant": Qdrant}
