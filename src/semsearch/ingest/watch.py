"""Keep a collection in sync with folders as their files change (``semsearch index --watch``).

The operating system reports changes (watchdog: inotify, FSEvents, ReadDirectoryChangesW);
this module decides when a change is ready and applies it through the collection's public
API, so every backend gets it:

* A file is applied once it has settled: no event for it and the same size and modification
  time for ``settle`` seconds, so a file still being written is never indexed half-written.
  Every settled file at a tick goes in one ``index_files`` call (new and changed files are
  written, unchanged ones skipped by content hash); deleted files go through ``delete_source``.
* A folder created or moved in is walked for its files (their own creation events may come
  before the folder is watched); a folder deleted or moved out removes the files known under it.
* A watched folder that disappears (moved away, unmounted) is left alone: its documents are
  kept, and events still arriving from it under its old name are dropped. When it is back, it is
  watched again and reconciled with what it holds now (files deleted meanwhile are removed).
* ``stop()`` (or the stop event) ends the loop between batches: everything applied is
  committed, changes not settled yet are picked up by the next run's first full sync.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import CollectionBusyError, InvalidInputError, MissingPathError, SemsearchError
from . import loaders
from .sync import PendingChange, SyncReport, WatchedCollection, WatchedRoot, log_sync

log = logging.getLogger(__name__)

SETTLE_SECONDS = 1.0
TICK_SECONDS = 0.25


class FolderWatcher:
    """Applies file changes under ``paths`` to ``collection`` while running.

    Args:
        collection: anything with ``index_files`` and ``delete_source`` (a local or Milvus collection).
        paths: folders (watched recursively) and files.
        options: how files are read (the same :class:`~semsearch.ingest.LoadOptions` as ``index_files``).
        prune: apply deletions (``False`` keeps the documents of deleted files).
        settle: seconds a file must stay unchanged before it is indexed.
        initial_sync: once the watch is in place (so nothing changed meanwhile is missed), run
            ``index_files(paths, prune=prune)``, or this callable instead (the CLI's run with progress).
        on_sync: called with a :class:`SyncReport` after each applied batch (default: logged at INFO).
        on_notice: called with a one-line message about the watch itself (a folder gone or back, an error).
        on_ready: called once the watch is in place and the initial sync done (``ready`` is set too).

    Raises:
        MissingPathError: a path that does not exist when the watch starts.
    """

    def __init__(
        self,
        collection: WatchedCollection,
        paths: Sequence[str | os.PathLike[str]],
        options: loaders.LoadOptions | None = None,
        *,
        prune: bool = True,
        settle: float = SETTLE_SECONDS,
        initial_sync: bool | Callable[[], object] = False,
        on_sync: Callable[[SyncReport], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.collection = collection
        self.options = options or loaders.LoadOptions()
        self.prune = prune
        self.settle = settle
        self.initial_sync = initial_sync
        self.on_ready = on_ready or (lambda: None)
        self.ready = threading.Event()
        self.applying = False  # a batch is being written
        self.on_sync = on_sync or log_sync
        self.on_notice = on_notice or (lambda message: log.warning("%s", message))
        self._wanted = {s.lower() for s in self.options.extensions} & loaders.SUPPORTED_SUFFIXES
        self.roots: list[WatchedRoot] = []
        for raw in paths:
            path = Path(raw).expanduser()
            if not path.exists():
                raise MissingPathError(f"{path}: no such file or folder; check the path")
            path = path.resolve()
            if path.is_dir():
                self.roots.append(WatchedRoot(path, path, None))
            else:
                loaders.discover([path], self.options)  # an unsupported file type is refused now
                self.roots.append(WatchedRoot(path, path.parent, path.name))
        self._lock = threading.Lock()
        self._pending: dict[Path, PendingChange] = {}
        self._new_folders: dict[Path, float] = {}
        self._gone_folders: list[Path] = []
        self._known: set[Path] = set()
        self._observer: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running -------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Watch until ``stop`` (or :meth:`stop`) is set; blocks. Applies batches as they settle."""
        stop = stop or self._stop
        self._start_observer()
        try:
            self._known = set(self._discover([r.path for r in self.roots]))
            if callable(self.initial_sync):
                self.initial_sync()
            elif self.initial_sync:
                self._full_sync()
            self.ready.set()
            self.on_ready()
            while not stop.wait(TICK_SECONDS) and not self._stop.is_set():
                self.tick()
        finally:
            self._stop_observer()
            left = len(self._pending) + len(self._new_folders)
            if left:
                self.on_notice(f"{left} change(s) had not settled yet; the next run picks them up")

    def start(self) -> None:
        """Run in a background thread (the server's)."""
        self._thread = threading.Thread(target=self._run_logged, name="semsearch-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch being applied; waits for the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception as exc:  # a background thread must say why it died
            log.exception("watching %s stopped: %s", ", ".join(str(r.path) for r in self.roots), type(exc).__name__)

    def _start_observer(self) -> None:
        try:
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - depends on the install
            raise SemsearchError("watching folders needs watchdog: pip install 'semsearch[watch]'") from None
        self._observer = Observer()
        self._observer.start()
        for root in self.roots:
            self._schedule(root)

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def _schedule(self, root: WatchedRoot) -> None:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Events(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._on_event(event)

        try:
            st = os.stat(root.folder)
            root.watch = self._observer.schedule(Events(), str(root.folder), recursive=root.only is None)
        except FileNotFoundError:
            root.away, root.watch, root.identity = True, None, None
            return
        except OSError as exc:
            raise SemsearchError(
                f"cannot watch {root.folder}: {exc}; on Linux, a large tree may need more inotify watches "
                "(sysctl fs.inotify.max_user_watches)"
            ) from None
        root.identity, root.away = (st.st_dev, st.st_ino), False

    def _unschedule(self, root: WatchedRoot) -> None:
        if root.watch is not None:
            try:
                self._observer.unschedule(root.watch)
            except (KeyError, ValueError, OSError):
                pass  # its emitter already stopped (the folder was deleted)
        root.watch, root.identity, root.away = None, None, True

    # -- events (observer thread) ----------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        now = time.monotonic()
        src = Path(os.fsdecode(event.src_path))
        dest = Path(os.fsdecode(event.dest_path)) if getattr(event, "dest_path", "") else None
        with self._lock:
            if event.is_directory:
                if kind == "created":
                    self._new_folders[src] = now
                elif kind in ("deleted", "moved"):
                    self._gone_folders.append(src)
                    if dest is not None:
                        self._new_folders[dest] = now
                return
            for path in (src, dest):
                if path is not None and self._is_wanted(path):
                    self._pending.setdefault(path, PendingChange(now)).last_event = now

    def _is_wanted(self, path: Path) -> bool:
        if path.suffix.lower() not in self._wanted:
            return False
        for root in self.roots:
            if root.holds(path):
                if root.only is not None:
                    return True
                return not any(part.startswith(".") for part in path.relative_to(root.folder).parts)
        return False

    # -- applying (loop thread) -------------------------------------------------------------
    def tick(self) -> SyncReport | None:
        """Check the watched folders, then apply every change that has settled; returns what it did."""
        now = time.monotonic()
        self._check_roots()
        with self._lock:
            new_folders = [p for p, t in self._new_folders.items() if now - t >= self.settle]
            for p in new_folders:
                del self._new_folders[p]
            gone_folders, self._gone_folders = self._gone_folders, []
        found = self._discover(new_folders)
        with self._lock:
            for path in found:
                self._pending.setdefault(path, PendingChange(now))
            for folder in gone_folders:
                for path in self._known:
                    if folder in path.parents:
                        self._pending.setdefault(path, PendingChange(now))
            ready = self._settled(now)
        if not ready:
            return None
        self.applying = True
        try:
            return self._apply(ready)
        finally:
            self.applying = False

    def _settled(self, now: float) -> list[Path]:
        """Paths whose file has not changed for ``settle`` seconds (called with the lock held)."""
        ready = []
        for path, p in list(self._pending.items()):
            if any(r.away and r.holds(path) for r in self.roots):
                del self._pending[path]  # its folder is gone: nothing about it can be trusted now
                continue
            try:
                st = os.stat(path)
                signature: tuple[int, int] | None = (st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None
            except OSError:
                signature = None
            if signature != p.signature or p.since == 0.0:
                p.signature, p.since = signature, now
            if now - max(p.last_event, p.since) >= self.settle:
                ready.append(path)
                del self._pending[path]
        return ready

    def _apply(self, ready: list[Path]) -> SyncReport:
        started = time.perf_counter()
        sync = SyncReport()
        present = [p for p in ready if p.is_file()]
        gone = [p for p in ready if not p.exists() and p in self._known]
        if present:
            self._index(present, sync)
        if self.prune:
            for path in gone:
                if self._retrying(path, partial(self.collection.delete_source, str(path))) is not None:
                    sync.files_removed += 1
                    sync.removed.append(str(path))
                    self._known.discard(path)
        sync.seconds = time.perf_counter() - started
        if sync.changed or sync.removed or sync.warnings:
            self.on_sync(sync)
        return sync

    def _index(self, files: list[Path], sync: SyncReport) -> None:
        try:
            report = self._retrying(files, lambda: self.collection.index_files(files, self.options, prune=False))
        except InvalidInputError:
            # One malformed file refuses the whole call (nothing written): apply the others one by one.
            if len(files) == 1:
                raise
            for file in files:
                try:
                    self._index([file], sync)
                except InvalidInputError as exc:
                    sync.warnings.append(f"{exc} (not indexed; fix the file and save it again)")
            return
        if report is None:
            return
        sync.add(report)
        sync.changed.extend(str(f) for f in files)
        self._known.update(files)

    def _retrying(self, what: Any, call: Callable[[], Any]) -> Any:
        """Run one write; a busy collection or a file gone meanwhile puts the work back for later."""
        try:
            return call()
        except (CollectionBusyError, MissingPathError) as exc:
            self.on_notice(f"will retry: {exc}")
            now = time.monotonic()
            with self._lock:
                for path in what if isinstance(what, list) else [what]:
                    self._pending.setdefault(path, PendingChange(now))
            return None

    def _check_roots(self) -> None:
        """Notice a watched folder that went away or came back (its inotify watch follows the
        moved folder under the old name, so it is dropped and made again)."""
        for root in self.roots:
            try:
                st = os.stat(root.folder)
                identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                identity = None
            if not root.away and identity != root.identity:
                self._unschedule(root)
                self.on_notice(f"{root.folder} is gone; its documents are kept until it comes back")
            if root.away and identity is not None:
                self._schedule(root)
                if not root.away:
                    self.on_notice(f"{root.folder} is back; bringing its documents up to date")
                    self._reconcile(root)

    def _reconcile(self, root: WatchedRoot) -> None:
        """After a folder came back: every file in it is checked, every file gone from it removed."""
        now = time.monotonic()
        found = set(self._discover([root.path]))
        with self._lock:
            for path in found | {p for p in self._known if root.holds(p)}:
                self._pending.setdefault(path, PendingChange(now))

    def _full_sync(self) -> None:
        started = time.perf_counter()
        present = [r.path for r in self.roots if r.path.exists()]
        sync = SyncReport()
        report = self._retrying([], lambda: self.collection.index_files(present, self.options, prune=self.prune))
        if report is not None:
            sync.add(report)
            sync.changed.extend(str(p) for p in present)
        sync.seconds = time.perf_counter() - started
        self.on_sync(sync)

    def _discover(self, paths: Iterable[Path]) -> list[Path]:
        found: list[Path] = []
        for path in paths:
            try:
                found.extend(f for f in loaders.discover([path], self.options) if self._is_wanted(f))
            except (MissingPathError, InvalidInputError, OSError):
                continue  # gone again meanwhile
        return found
