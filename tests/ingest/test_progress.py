"""Progress of an indexing run: a bar on a terminal, a line per batch elsewhere, JSON for programs."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from semsearch import IndexReport
from semsearch.ingest import progress as p


@pytest.fixture()
def clock(monkeypatch):
    """A clock the test moves: rates and times left become exact."""
    now = [1000.0]
    monkeypatch.setattr(p.time, "monotonic", lambda: now[0])
    return now


def a_report(**kw) -> IndexReport:
    report = IndexReport(files_added=2, files_replaced=1, files_unchanged=4, files_removed=1, documents=3,
                         chunks=100, warnings=["x.txt: binary file; skipped"], seconds=40.0)
    for key, value in kw.items():
        setattr(report, key, value)
    return report


def run(reporter, clock) -> None:
    reporter.start(3, 100, unchanged_files=4)
    clock[0] += 10
    reporter.batch_done(1, 25, 20)  # 2.5 chunks/s: 75 left take 30 s
    clock[0] += 30
    reporter.batch_done(2, 75, 75)
    reporter.finish(a_report())


def test_lines_say_files_chunks_rate_and_time_left_then_the_summary(clock):
    err, out = io.StringIO(), io.StringIO()
    run(p.LineProgress(err, out, where="/c"), clock)
    lines = err.getvalue().splitlines()
    assert lines == [
        "indexing 3 file(s), 100 chunk(s) (4 unchanged file(s) skipped)",
        "batch 1: 1/3 files, 25/100 chunks (25%), 2.5 chunks/s, ~30s left",
        "batch 2: 3/3 files, 100/100 chunks (100%), 2.5 chunks/s",
    ]
    assert out.getvalue() == (
        "indexed 3 document(s) in 100 chunk(s) (40.0s): files 2 added, 1 replaced, 1 removed, 4 unchanged, "
        "1 skipped, 0 resumed -> /c\n"
    )


def test_the_summary_counts_a_resumed_run():
    line = p.summary_line(a_report(files_resumed=1, documents_unchanged=5000))
    assert line.endswith("1 skipped, 1 resumed (5,000 documents kept)")


def test_json_events_one_object_per_line_with_cumulative_counts(clock):
    stream = io.StringIO()
    run(p.JsonProgress(stream, where="/c"), clock)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["start", "batch", "batch", "finish"]
    assert events[0] == {"event": "start", "files": 3, "chunks": 100, "unchanged_files": 4, "kept_documents": 0}
    first, last = events[1], events[2]
    assert (first["files_done"], first["chunks_done"], first["encoded"], first["eta_seconds"]) == (1, 25, 20, 30.0)
    assert first["chunks_per_second"] == 2.5 and first["elapsed_seconds"] == 10.0
    assert (last["files_done"], last["chunks_done"], last["encoded"], last["eta_seconds"]) == (3, 100, 95, 0.0)
    finish = events[3]
    assert {k: finish[k] for k in ("added", "replaced", "removed", "unchanged", "skipped", "resumed")} == {
        "added": 2, "replaced": 1, "removed": 1, "unchanged": 4, "skipped": 1, "resumed": 0,
    }
    assert finish["warnings"] == ["x.txt: binary file; skipped"] and finish["collection"] == "/c"


def test_a_bar_on_a_terminal_shows_counts_rate_and_time_left(clock):
    term = io.StringIO()
    console = Console(file=term, force_terminal=True, width=160, color_system=None)
    out = io.StringIO()
    reporter = p.BarProgress(console, Console(file=out, width=200), where="/c")
    reporter.start(3, 100)
    clock[0] += 10
    reporter.batch_done(1, 25, 25)
    reporter._progress.refresh()
    shown = term.getvalue()
    assert "25/100" in shown and "1/3 files" in shown and "chunks/s" in shown and "left" in shown
    reporter.finish(a_report())
    assert "files 2 added, 1 replaced, 1 removed" in out.getvalue()


def test_the_reporter_follows_the_output():
    terminal = Console(file=io.StringIO(), force_terminal=True)
    pipe = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(p.choose_reporter(as_json=True, progress=None, stderr=terminal), p.JsonProgress)
    assert isinstance(p.choose_reporter(as_json=False, progress=None, stderr=terminal), p.BarProgress)
    assert isinstance(p.choose_reporter(as_json=False, progress=None, stderr=pipe), p.LineProgress)
    assert isinstance(p.choose_reporter(as_json=False, progress=True, stderr=pipe), p.BarProgress)
    quiet = p.choose_reporter(as_json=False, progress=False, stderr=terminal)
    assert isinstance(quiet, p.FinalLineOnly)


def test_only_the_final_line_without_progress(clock, capsys):
    run(p.FinalLineOnly(where="/c"), clock)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("indexed 3 document(s)")
