"""Several processes on one collection: the write lock, live readers, and kill -9 mid-write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from semsearch import Collection, CollectionBusyError

WRITER = Path(__file__).with_name("writer_process.py")


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WRITER), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, **(env or {})},
    )


def created(path: Path) -> None:
    """An existing collection that holds no document (a collection is created by its first write)."""
    with Collection(path) as col:
        col.add(["a first document"], ids=["first"])
        col.delete("first")


class Lines:
    """Reads a child's stdout in a thread, so the test can wait for lines with a timeout."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            with self._cv:
                self.lines.append(line.strip())
                self._cv.notify_all()
        with self._cv:
            self.lines.append("<EOF>")
            self._cv.notify_all()

    def wait_for(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                if "<EOF>" in self.lines:
                    raise AssertionError(f"child ended before printing {prefix!r}: {self.lines}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {prefix!r}: {self.lines}")
                self._cv.wait(left)

    def acked(self) -> list[str]:
        with self._cv:
            return [i for line in self.lines if line.startswith("ACK ") for i in line[4:].split(",")]


def test_second_writer_gets_a_clear_in_use_error_then_can_wait(tmp_path, minilm_path):
    path = tmp_path / "c"
    created(path)
    holder = _start("hold-lock", str(path))
    try:
        lines = Lines(holder)
        lines.wait_for("LOCKED", timeout=60)
        col = Collection(path, lock_timeout=0.3)
        with pytest.raises(CollectionBusyError, match=rf"in use by process {holder.pid}"):
            col.add(["blocked write"], ids=["b"])
        assert col.count() == 0
        col.close()

        patient = Collection(path, lock_timeout=60)
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (patient.add(["waited for the lock"], ids=["w"]), done.set()))
        waiter.start()
        assert not done.wait(1.0)  # still waiting for the other process
        holder.stdin.write("release\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        waiter.join(timeout=60)
        assert done.is_set() and patient.count() == 1
        patient.close()
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_writer_is_released(tmp_path, minilm_path):
    path = tmp_path / "c"
    created(path)
    holder = _start("hold-lock", str(path))
    Lines(holder).wait_for("LOCKED", timeout=60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with Collection(path, lock_timeout=2) as col:
        col.add(["after the crash"], ids=["a"])
        assert col.count() == 1


def test_readers_in_another_process_keep_working_and_see_committed_data(tmp_path, minilm_path):
    path = tmp_path / "c"
    created(path)
    writer = _start("add", str(path), "0", "120", "10", env={"WRITER_SEARCH": "1"})
    lines = Lines(writer)
    try:
        lines.wait_for("READY")
        reader = Collection(path)
        last_count = 0
        while True:
            acked = lines.acked()
            hits = reader.search("harbor comet meadow", k=5)  # never fails while the writer writes
            assert len(hits) == min(5, max(reader.count(), len(hits)))
            count = reader.count()
            assert count >= last_count >= 0
            assert count >= len(acked)  # everything acknowledged is visible
            if acked:
                newest = acked[-1]
                assert reader.get(newest)[0].id == newest
                assert newest in {h.id for h in reader.search(reader.get(newest)[0].text, k=3)}
            last_count = count
            if "DONE" in lines.lines or "<EOF>" in lines.lines:
                break
            time.sleep(0.05)
        assert writer.wait(timeout=60) == 0
        assert reader.count() == 120
        assert reader.verify()["consistent"]
        reader.close()
    finally:
        writer.kill()


@pytest.mark.slow
def test_kill_9_at_random_points_loses_nothing_acknowledged(tmp_path, minilm_path):
    """Kill a real indexing process at random moments, repeatedly; every ack must survive."""
    path = tmp_path / "c"
    created(path)
    rng = random.Random(1234)
    acked_all: list[str] = []
    for round_ in range(5):
        start = round_ * 1_000_000
        # A small save_every makes index saves (and the log truncation) frequent, so kills
        # land inside them too, not only inside SQLite transactions.
        writer = _start("add", str(path), str(start), "100000", str(rng.choice([1, 5, 20])), "40")
        lines = Lines(writer)
        lines.wait_for("ACK")
        time.sleep(rng.uniform(0.0, 2.0))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        time.sleep(0.1)
        acked = lines.acked()
        acked_all.extend(acked)
        with Collection(path) as col:
            # Open, catch up, and check the index agrees with the store before any repair.
            col.engine.index.ensure_current()
            stored = col.engine.store.chunk_count()
            in_index = len(col.engine.index._index)
            assert in_index == stored, f"round {round_}: index {in_index} != store {stored}"
            found = {d.id for d in col.get(acked_all)}
            missing = [i for i in acked_all if i not in found]
            assert not missing, f"round {round_}: acknowledged but lost: {missing[:5]}"
            if acked:
                probe = col.get(acked[-1])[0]
                assert col.search(probe.text, k=1)[0].id == probe.id


def test_without_posix_file_locks_writes_are_refused_clearly(tmp_path, monkeypatch, minilm_path):
    """Issue 18, item 9: on Windows (no fcntl) the write lock used to do nothing at all."""
    from semsearch import Collection, SemsearchError
    from semsearch.backends.local import locking

    col = Collection(tmp_path / "c")
    col.add(["kept"], ids=["a"])
    monkeypatch.setattr(locking, "fcntl", None)
    with pytest.raises(SemsearchError, match="POSIX file locks.*WSL.*milvus"):
        col.add(["refused"], ids=["b"])
    monkeypatch.undo()
    assert [d.id for d in col.get()] == ["a"]
    col.close()
