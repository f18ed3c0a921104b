"""Talking to Milvus: retries on transient errors, paging through large reads, Milvus Lite.

Only idempotent calls go through :func:`with_retries` (upserts by primary key, deletes,
reads), so a retry after a lost acknowledgement cannot duplicate anything.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...errors import MilvusError, SemsearchError

log = logging.getLogger(__name__)

#: Milvus' largest ``limit`` (topk) for one search or query.
MAX_TOPK = 16_384


def is_transient(exc: BaseException) -> bool:
    """Whether an error from Milvus is worth retrying (server busy, rate-limited, restarting)."""
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpc comes with pymilvus
        grpc = None
    if grpc is not None and isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED)
    from pymilvus.exceptions import MilvusException

    if isinstance(exc, MilvusException):
        text = str(exc).lower()
        return exc.code == 8 or any(w in text for w in ("rate limit", "unavailable", "not ready", "timeout",
                                                        "deadline"))
    return isinstance(exc, (ConnectionError, TimeoutError))


def with_retries(call: Callable[[], Any], what: str, attempts: int = 6, base_delay: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run ``call``; on a transient error wait 0.2, 0.4, 0.8... s and try again.

    Raises:
        MilvusError: a permanent error, or a transient one that outlasted every attempt.
    """
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:  # classified below; semsearch's own errors pass through as they are
            if isinstance(exc, SemsearchError):
                raise
            if not is_transient(exc) or attempt == attempts - 1:
                raise MilvusError(f"Milvus failed to {what}: {_first_line(exc)}") from exc
            delay = base_delay * 2**attempt
            log.warning("Milvus could not %s (%s); retrying in %.1fs", what, _first_line(exc), delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def skip_per_character_check() -> None:
    """Switch off pymilvus' string check on the row path, which checks nothing and costs a third
    of an insert.

    For each VARCHAR value of a row (``MilvusClient.insert``/``upsert`` of dicts), pymilvus 3.0
    hands the single string to ``convert_to_str_array``, which loops over its *characters*,
    checking that each is a ``str`` no longer than the field's max length: ~50 µs per 400-character
    text, 30-40% of an ``add`` with given embeddings on Milvus Lite (bench/RESULTS.md, "Issue 11"),
    and no string can fail it. semsearch checks the real limits itself before writing
    (``MilvusEngine.check_rows``: text bytes, id length). The flag is a module constant of pymilvus
    (``entity_helper.CHECK_STR_ARRAY``); a pymilvus without it is left alone.
    """
    try:
        from pymilvus.client import entity_helper
    except ImportError:  # pragma: no cover - another pymilvus layout
        return
    if getattr(entity_helper, "CHECK_STR_ARRAY", None) is True:
        entity_helper.CHECK_STR_ARRAY = False


def connect(uri: str, token: str | None, db_name: str | None) -> Any:
    """A MilvusClient (the connection is retried on transient errors)."""
    from pymilvus import MilvusClient

    skip_per_character_check()

    kwargs: dict[str, Any] = {"uri": uri}
    if token:
        kwargs["token"] = token
    if db_name:
        kwargs["db_name"] = db_name
    return with_retries(lambda: MilvusClient(**kwargs), f"connect to {uri}")


def query_all(client: Any, collection: str, expr: str, fields: list[str], consistency: str,
              batch: int = 4000) -> Iterator[dict[str, Any]]:
    """Every row matching ``expr`` (Milvus caps one query at 16384 rows, so this pages).

    Pages come from pymilvus' query iterator: a plain ``query`` with ``limit`` returns *some*
    matching rows, not the lowest keys, so paging by "key > last" would skip rows.
    """
    it = with_retries(lambda: client.query_iterator(
        collection, batch_size=batch, filter=expr, output_fields=fields, consistency_level=consistency
    ), f"read {collection}")
    try:
        while True:
            rows = with_retries(it.next, f"read {collection}")
            if not rows:
                return
            yield from rows
    finally:
        it.close()


def new_pks(n: int) -> list[int]:
    """Random 63-bit keys: unique across processes and clients without a central counter."""
    raw = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(1)
    return [int(x) for x in raw]


def parts(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def release_lite(uri: str) -> None:
    """Stop the in-process Milvus Lite server of a ``.db`` file (tests and short-lived tools)."""
    if not str(uri).endswith(".db"):
        return
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(str(uri))
