"""``semsearch serve``: check the bind is safe, open the collections, run uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import SemsearchError
from .security import Limits, check_api_key, check_bind, is_loopback


def serve_collections(
    folders: Sequence[Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    public_reads: bool = False,
    cors_origins: Sequence[str] = (),
    rerankers: Sequence[str] = (),
    max_body_bytes: int | None = None,
    max_documents: int | None = None,
    max_k: int | None = None,
    torch_threads: int | None = 1,
    llm: Any = None,
    announce: Callable[[str], None] = print,
    watch: Sequence[Path] = (),
) -> None:
    """Serve these collection folders until interrupted.

    ``torch_threads`` (default 1) caps the threads each request's encoding and vector search
    may use: the server gets its parallelism from concurrent requests, and intra-op threads
    on a busy CPU stall (measured here: p50 of one query 9-35 ms with 1 thread, 0.2-2 s with 2
    on an oversubscribed 2-core machine; see bench/RESULTS.md). ``None`` keeps the library defaults.

    ``watch``: folders and files the first collection is kept in sync with while serving (see
    :class:`semsearch.ingest.watch.FolderWatcher`); each applied batch is announced.

    Raises:
        UnsafeBindError: a non-loopback ``host`` without an API key (checked before anything loads).
        SemsearchError: a folder that is not a collection, a bad option.
    """
    check_bind(host, api_key)
    check_api_key(api_key)
    if torch_threads is not None:
        set_compute_threads(torch_threads)
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the install
        raise SemsearchError("the server needs fastapi and uvicorn: pip install 'semsearch[server]'") from None
    from .app import create_app

    limits = Limits()
    overrides = {"max_body_bytes": max_body_bytes, "max_documents": max_documents, "max_k": max_k}
    limits = replace(limits, **{k: v for k, v in overrides.items() if v is not None})
    for name, value in vars(limits).items():
        if value < 1:
            raise SemsearchError(f"{name} must be at least 1, got {value}")
    app = create_app(
        list(folders), api_key=api_key, public_reads=public_reads, cors_origins=cors_origins,
        limits=limits, rerankers=rerankers, watch=watch, llm=llm,
    )
    if watch:
        _announce_watch(announce)
    shown = f"[{host}]" if ":" in host else host
    auth = "no API key (loopback only)" if api_key is None else ("API key for writes" if public_reads else "API key required")
    announce(f"serving {', '.join(app.state.semsearch.collections)} on http://{shown}:{port}/ ({auth}); API docs at /docs")
    if llm is not None:
        announce(f"answering /ask with the language model at {llm.base}")
    if not is_loopback(host) and not cors_origins:
        announce("CORS is off: browsers on other sites cannot call this API (add --cors-origin to allow one)")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, server_header=False, proxy_headers=False)


def set_compute_threads(n: int) -> None:
    """Cap torch's and FAISS's intra-op threads at ``n`` for this process."""
    if n < 1:
        raise SemsearchError(f"--torch-threads must be at least 1, got {n}")
    import faiss
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def _announce_watch(announce: Callable[[str], None]) -> None:
    """Show each batch the folder watch applies (it logs them on its own logger)."""
    import logging

    class Announce(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            announce(record.getMessage())

    logger = logging.getLogger("semsearch.ingest.watch")
    logger.setLevel(logging.INFO)
    logger.addHandler(Announce())
    logger.propagate = False
