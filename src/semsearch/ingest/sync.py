"""What a folder watch keeps and reports: the report of one applied batch, the files waiting to
settle, and the watched roots (:mod:`.watch` does the watching)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("semsearch.ingest.watch")


def log_sync(report: SyncReport) -> None:
    from .progress import sync_line

    log.info("%s", sync_line(report))
    for warning in report.warnings:
        log.warning("%s", warning)


class WatchedCollection(Protocol):
    """What the watcher needs of a collection (both backends have it)."""

    def index_files(self, paths: Iterable[str | os.PathLike[str]], options: Any = None, *,
                    prune: bool = True) -> Any: ...

    def delete_source(self, source: str | os.PathLike[str]) -> int: ...


@dataclass
class SyncReport:
    """What one applied batch did (the fields of :class:`~semsearch.IndexReport`, plus the paths)."""

    files_added: int = 0
    files_replaced: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    documents: int = 0
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def add(self, report: Any) -> None:
        for name in ("files_added", "files_replaced", "files_unchanged", "files_removed", "documents", "chunks"):
            setattr(self, name, getattr(self, name) + int(getattr(report, name, 0)))
        self.warnings.extend(getattr(report, "warnings", []))


@dataclass
class PendingChange:
    last_event: float
    signature: tuple[int, int] | None = None  # (size, mtime_ns); None: the file is not there
    since: float = 0.0  # when the signature last changed


@dataclass
class WatchedRoot:
    """A watched path: a folder (recursive), or one file (its folder is watched, the file kept)."""

    path: Path
    folder: Path
    only: str | None  # the file's name when a single file is watched
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the folder being watched
    watch: Any = None
    away: bool = False

    def holds(self, path: Path) -> bool:
        if self.only is not None:
            return path.parent == self.folder and path.name == self.only
        return path == self.folder or self.folder in path.parents
