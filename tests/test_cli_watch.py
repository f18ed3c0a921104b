"""`semsearch index` progress output (--json, lines) and `--watch` as a real process stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semsearch import Collection
from semsearch.cli import app
from semsearch.index import load_index

pytest.importorskip("watchdog", reason="the watch extra (pip install 'semsearch[watch]')")

runner = CliRunner()


@pytest.fixture()
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "beach.txt").write_text("Budget-friendly lodging by the coast, five minutes from the sand.")
    (folder / "bank.md").write_text("# Rates\n\nThe central bank raised interest rates by a quarter point.")
    (folder / "sports.csv").write_text("id,text\nm1,The striker scored twice in the final\nm2,The goalkeeper saved a "
                                       "penalty\n")
    (folder / "blank.md").write_text("  \n")
    return folder


def test_json_progress_is_one_object_per_line_ending_with_what_was_done(tmp_path, docs, minilm_path):
    r = runner.invoke(app, ["index", str(docs), "--json", "-c", str(tmp_path / "col")])
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]  # nothing else on stdout
    finish = events[-1]
    assert finish["event"] == "finish"
    assert (finish["added"], finish["replaced"], finish["removed"], finish["skipped"],
            finish["documents"]) == (3, 0, 0, 1, 4)
    assert "blank.md" in finish["warnings"][0]
    (docs / "beach.txt").write_text("A mountain cabin with a wood stove.")
    (docs / "bank.md").unlink()
    result = runner.invoke(app, ["index", str(docs), "--json", "-c", str(tmp_path / "col")])
    finish = json.loads(result.stdout.splitlines()[-1])
    assert (finish["added"], finish["replaced"], finish["removed"], finish["unchanged"]) == (0, 1, 1, 1)


@pytest.fixture()
def index_files_with_progress(monkeypatch):
    """Collection.index_files as it will be with the progress hook: start, one batch per file, then the run."""
    real = Collection.index_files

    def index_files(self, paths, options=None, *, prune=True, progress=None, **kw):
        files = sorted(p for path in paths for p in Path(path).rglob("*") if p.is_file())
        if progress is not None:
            progress.start(len(files), 10 * len(files), unchanged_files=0)
            for _ in files:
                progress.batch_done(1, 10, 10)
        return real(self, paths, options, prune=prune, **kw)

    monkeypatch.setattr(Collection, "index_files", index_files)


def test_the_reporter_reaches_index_files_when_it_takes_progress(tmp_path, docs, minilm_path,
                                                                 index_files_with_progress):
    r = runner.invoke(app, ["index", str(docs), "--json", "-c", str(tmp_path / "col")])
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["event"] for e in events] == ["start", "batch", "batch", "batch", "batch", "finish"]
    assert events[-2]["files_done"] == 4 and events[-2]["chunks_done"] == 40
    r = runner.invoke(app, ["index", str(docs), "-c", str(tmp_path / "col2")])  # not a terminal: a line per batch
    assert r.exit_code == 0, r.output
    batch_lines = [line for line in r.stderr.splitlines() if line.startswith("batch ")]
    assert len(batch_lines) == 4 and batch_lines[-1].startswith("batch 4: 4/4 files, 40/40 chunks (100%)")
    assert "files 3 added, 0 replaced, 0 removed, 0 unchanged, 1 skipped, 0 resumed" in " ".join(r.stdout.split())


# -- a real `semsearch index --watch` process ------------------------------------------------------


class Watching:
    """A `semsearch index PATH --watch --json` process and the events it prints."""

    def __init__(self, docs: Path, col: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "semsearch.cli", "index", str(docs), "--watch", "--json", "--settle", "0.3",
             "-c", str(col)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def wait_event(self, predicate, bound: float) -> dict:
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(f"exited with {self.proc.returncode}: {self.proc.stderr.read()}") from None
                continue
            self.seen.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"no such event within {bound}s; saw {self.seen}")

    def interrupt(self, times: int = 1) -> int:
        for _ in range(times):
            self.proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
        rc = self.proc.wait(timeout=120)
        time.sleep(0.2)  # the reader thread takes the last lines
        while not self.events.empty():
            self.seen.append(self.events.get())
        return rc


def consistent_and_saved(col_path: Path) -> Collection:
    col = Collection(col_path, create=False)
    assert col.verify()["consistent"]
    meta = json.loads((col_path / "vectors.json").read_text())
    assert len(load_index(col_path / meta["file"], meta["spec"], col.dimension)) == meta["count"]  # saved and sound
    return col


def test_ctrl_c_stops_a_watch_cleanly_with_every_applied_change_committed(tmp_path, docs, minilm_path):
    w = Watching(docs, tmp_path / "col")
    try:
        w.wait_event(lambda e: e["event"] == "watching", bound=180)
        assert next(e for e in w.seen if e["event"] == "finish")["added"] == 3  # the first full run
        (docs / "harbour.md").write_text("Harbour fees are paid at the port office.")
        started = time.monotonic()
        sync = w.wait_event(lambda e: e["event"] == "sync", bound=60)
        assert sync["added"] == 1 and sync["changed_paths"][0].endswith("harbour.md")
        assert time.monotonic() - started < 30
        rc = w.interrupt()
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    assert rc == 0
    assert w.seen[-1]["event"] == "stopped"
    col = consistent_and_saved(tmp_path / "col")
    assert col.search("where do I pay port charges", k=1)[0].source.endswith("harbour.md")
    col.close()


def test_ctrl_c_during_a_batch_keeps_it_whole_or_not_at_all(tmp_path, docs, minilm_path):
    w = Watching(docs, tmp_path / "col")
    rows = [{"_id": f"r{i}", "text": f"Ferry timetable entry {i}: the boat leaves at {i % 24}:00."}
            for i in range(1500)]
    try:
        w.wait_event(lambda e: e["event"] == "watching", bound=180)
        export = tmp_path / "export.part"
        export.write_text("".join(json.dumps(r) + "\n" for r in rows))
        export.rename(docs / "export.jsonl")
        time.sleep(1.0)  # settled by now: the batch is being encoded
        rc = w.interrupt(times=2)  # the second Ctrl-C interrupts the batch itself
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    assert rc in (0, 130)
    col = consistent_and_saved(tmp_path / "col")
    ferries = [d for d in col.get() if d.source and d.source.endswith("export.jsonl")]
    assert len(ferries) in (0, len(rows))  # one file is one transaction: never a part of it
    col.close()
