"""The collection's write lock: one writing process at a time, readers never blocked.

An ``flock`` on ``write.lock`` is released by the kernel when its process dies, even by
``kill -9``, so a crashed writer never leaves a stale lock behind. The holder's pid is
written into the file so a waiting process can say who it is waiting for.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ...errors import CollectionBusyError, SemsearchError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: writes are refused with a clear error (see _acquire_file)
    fcntl = None  # type: ignore[assignment]


class WriteLock:
    """A re-entrant, inter-process and inter-thread exclusive lock on a collection folder."""

    def __init__(self, folder: Path, timeout: float) -> None:
        self.path = folder / "write.lock"
        self.timeout = timeout
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, timeout: float | None = None) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (default: the lock's own)."""
        timeout = self.timeout if timeout is None else timeout
        if not self._thread_lock.acquire(timeout=timeout if timeout >= 0 else -1):
            raise CollectionBusyError(
                f"collection {self.path.parent} is being written by another thread of this process; "
                f"waited {timeout:g}s"
            )
        if self._depth == 0:
            try:
                self._acquire_file(timeout)
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._thread_lock.release()

    def _acquire_file(self, timeout: float) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            # Writing without an inter-process lock could interleave two writers' changes; refuse.
            raise SemsearchError(
                "a local collection needs POSIX file locks (Linux, macOS, WSL) to keep writers apart; on Windows "
                "run semsearch under WSL, or use backend='milvus'"
            )
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_pid(fd)
                    os.close(fd)
                    who = f"process {holder}" if holder else "another process"
                    raise CollectionBusyError(
                        f"collection {self.path.parent} is in use by {who}, which is writing to it; "
                        f"waited {timeout:g}s. Retry when it has finished, or raise the wait "
                        "with lock_timeout= / --lock-timeout"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class ReadWriteLock:
    """Many concurrent readers or one writer, within a process (searches vs. index updates)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    def acquire_read(self) -> None:
        with self._cond:
            # Writers waiting go first, so a stream of searches cannot starve an update.
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()
