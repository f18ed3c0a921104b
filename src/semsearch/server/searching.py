"""POST .../search: checked on the event loop, answered by the batcher, serialised once.

The endpoint is ``async``: a request is parsed and checked on the event loop, handed to the
:class:`~semsearch.server.batching.SearchBatcher` (one hop to a worker thread, no thread-pool
hop), and its response is built as JSON bytes in the worker, straight from the hits: no
pydantic model of the response is built and validated (it is what ``response_model`` documents).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from fastapi.responses import Response

from ..collection import Collection
from ..types import Hit
from .batching import SearchBatcher, SearchJob


async def answer_search(
    batcher: SearchBatcher, collection: Collection, name: str, queries: Sequence[str], k: int, options: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    """The JSON response of a search (``options``: Collection.search keywords the request set).

    Raises:
        InvalidInputError: an empty query, a bad option or filter (before anything is queued).
        SemsearchError: what the search itself raised (e.g. CollectionBusyError).
    """
    started = time.perf_counter()
    texts, opts = collection.searcher.checked(queries, k, **options)

    line = collection.no_match_threshold

    def finish(hits: list[list[Hit]]) -> bytes:
        took = round((time.perf_counter() - started) * 1000, 3)
        results = [{"query": q, "hits": [hit_json(h) for h in hs], "no_good_match": not hs or hs[0].score < line}
                   for q, hs in zip(texts, hits)]
        return dumps({"collection": name, "results": results, "took_ms": took})

    body = await asyncio.wrap_future(batcher.submit(SearchJob(collection, texts, opts, finish)))
    return Response(body, media_type="application/json", headers=headers)


def hit_json(h: Hit) -> dict[str, Any]:
    """A hit as the API returns it: the fields of :class:`semsearch.Hit`, in its order."""
    return {"id": h.id, "score": h.score, "text": h.text, "metadata": h.metadata, "source": h.source,
            "chunk": h.chunk, "start": h.start, "end": h.end, "scores": h.scores}


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON (orjson when installed: ~5x faster on hits; the stdlib otherwise)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the install
        pass
    else:
        try:
            return orjson.dumps(payload)
        except TypeError:  # e.g. an integer beyond 64 bits in metadata: the stdlib takes it
            pass
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
