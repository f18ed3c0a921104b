"""The index command's run: progress reporting, and ``--watch`` (keeping folders in sync until Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import err, out


def index_with_progress(col: Any, paths: list[Path], options: Any, *, prune: bool, reporter: Any,
                        batch_chunks: int = 8192) -> Any:
    """``col.index_files`` reporting to ``reporter`` (its ``start`` and ``batch_done``); returns
    the IndexReport (the caller ends with ``reporter.finish(report)``)."""
    return col.index_files(paths, options, prune=prune, progress=reporter, batch_chunks=batch_chunks)


def watch(col: Any, paths: list[Path], options: Any, *, prune: bool, settle: float, as_json: bool,
          first: Callable[[], object]) -> None:
    """Run ``first`` (the full indexing run) once the watch is in place, then apply changes under
    ``paths`` to ``col`` until Ctrl-C or SIGTERM: the first signal lets the batch being applied
    finish, a second one during a batch interrupts it (its transaction is rolled back)."""
    from ..ingest.progress import report_counts, sync_line
    from ..ingest.watch import FolderWatcher

    def emit(event: str, **fields: Any) -> None:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()

    def on_sync(report: Any) -> None:
        if as_json:
            emit("sync", **report_counts(report), changed_paths=report.changed, removed_paths=report.removed,
                 warnings=report.warnings)
            return
        for w in report.warnings:
            err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
        out.print(sync_line(report), highlight=False, soft_wrap=True)

    def on_notice(message: str) -> None:
        if as_json:
            emit("notice", message=message)
        else:
            err.print(message, highlight=False, soft_wrap=True)

    stop = threading.Event()
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            if watcher.applying:
                raise KeyboardInterrupt  # the second Ctrl-C: the batch's transaction is rolled back
            return
        stop.set()
        if watcher.applying:
            # Written straight to the file descriptor: a signal handler must not re-enter a buffered stream.
            message = "stopping once the batch being applied is committed (Ctrl-C again to interrupt it)"
            line = json.dumps({"event": "notice", "message": message}) if as_json else message
            try:
                os.write((sys.stdout if as_json else sys.stderr).fileno(), (line + "\n").encode())
            except (OSError, ValueError):  # no file descriptor (an embedded or test console)
                pass

    def on_ready() -> None:
        # Until now (the first full run) Ctrl-C interrupts at once, as without --watch.
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
        roots = [str(r.path) for r in watcher.roots]
        if as_json:
            emit("watching", paths=roots, settle_seconds=settle)
        else:
            err.print(f"watching {', '.join(roots)} for changes (Ctrl-C to stop)", highlight=False, soft_wrap=True)

    watcher = FolderWatcher(col, paths, options, prune=prune, settle=settle, initial_sync=first, on_sync=on_sync,
                            on_notice=on_notice, on_ready=on_ready)
    try:
        watcher.run(stop)
        col.flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        emit("stopped", collection=str(col.path))
    else:
        err.print(f"stopped watching; every change applied is committed -> {col.path}", highlight=False, soft_wrap=True)
