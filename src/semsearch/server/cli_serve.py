"""``semsearch serve``: check the bind is safe, open the collections, run uvicorn, announce it.

While it serves, each local collection's folder holds a ``server.json`` saying where it
listens (:mod:`.discovery`), so ``semsearch search`` on that folder can ask it; the file is
removed on a clean exit, and one left by a killed server is recognised as stale.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import SemsearchError
from .discovery import ServerAddress, connect_url, withdraw, write_address
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

    ``torch_threads`` (default 1) caps the threads torch's encoding may use: the server gets its
    parallelism from concurrent requests, and intra-op threads on a busy CPU stall (measured
    here: p50 of one query 9-35 ms with 1 thread, 0.2-2 s with 2 on an oversubscribed 2-core
    machine; see bench/RESULTS.md). ``None`` keeps the library defaults. FAISS keeps its default
    in the threads that search (see :func:`set_compute_threads`).

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
    if api_key is None:
        auth = "no API key (loopback only)"
    else:
        auth = "API key for writes" if public_reads else "API key required"
    served = ", ".join(app.state.semsearch.collections)
    announce(f"serving {served} on http://{shown}:{port}/ ({auth}); API docs at /docs")
    if llm is not None:
        announce(f"answering /ask with the language model at {llm.base}")
    if not is_loopback(host) and not cors_origins:
        announce("CORS is off: browsers on other sites cannot call this API (add --cors-origin to allow one)")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False,
                                           server_header=False, proxy_headers=False))
    state = app.state.semsearch
    announced: list[Path] = []
    threading.Thread(target=_announce_when_ready, args=(server, state, host, port, announced), daemon=True,
                     name="semsearch-announce").start()
    try:
        server.run()
    finally:
        for folder in announced:
            withdraw(folder, state.instance)


def _announce_when_ready(server: Any, state: Any, host: str, port: int, announced: list[Path]) -> None:
    """Once uvicorn listens and the models are warm, write server.json into each local collection's folder."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    state.ready.wait()
    url = connect_url(host, _bound_port(server, port))
    if url is None or state.warmup_error is not None:  # unreachable over loopback, or broken: searched locally
        return
    needs_key = state.api_key is not None and not state.public_reads
    for name, col in state.collections.items():
        if col.backend != "local":
            continue
        folder = Path(col.path)
        if write_address(folder, ServerAddress(url, name, os.getpid(), state.instance, needs_key)) is not None:
            announced.append(folder)


def _bound_port(server: Any, port: int) -> int:
    """The port uvicorn listens on (the one asked, or the one the OS chose for port 0)."""
    for listener in getattr(server, "servers", []) or []:
        for sock in getattr(listener, "sockets", []) or []:
            return int(sock.getsockname()[1])
    return port


def set_compute_threads(n: int) -> None:
    """Cap torch's intra-op threads at ``n`` for this process.

    FAISS is left alone on purpose: its OpenMP thread count is a per-thread setting (a search
    thread starts with the default whatever the main thread set), and a single-query FAISS
    search rounds scores differently with another thread count. Left at the default, the
    server's answers are those of ``semsearch search`` or a Python program, to the last bit.
    """
    if n < 1:
        raise SemsearchError(f"--torch-threads must be at least 1, got {n}")
    import torch

    torch.set_num_threads(n)


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
