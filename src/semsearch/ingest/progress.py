"""Progress of an indexing run, for a person at a terminal, a log file, or a program.

The ingestion loop calls one small interface (:class:`IndexProgress`): ``start`` once the run
knows its work, ``batch_done`` after each committed batch, ``finish`` with the final report.
Three reporters implement it:

* :class:`BarProgress`: a rich progress bar on a terminal (chunks done / total, files, rate,
  time left), then the final line;
* :class:`LineProgress`: one plain line per batch (for logs and pipes), then the final line;
* :class:`JsonProgress`: one JSON object per line (``{"event": "start" | "batch" | "finish",
  ...}``, and with ``--watch`` ``"watching" | "sync" | "notice" | "stopped"``), for programs;
  the schema is in README.md.

:func:`summary_line` is the final line every human reporter ends with: what was added,
replaced, removed, left unchanged, skipped and resumed; :func:`sync_line` is a watch's line per
applied batch.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class IndexProgress(Protocol):
    """What an indexing loop tells whoever watches it. Counts in ``batch_done`` are increments."""

    def start(self, total_files: int, total_chunks: int, *, unchanged_files: int = 0, kept_documents: int = 0) -> None:
        """The run knows its work: files and chunks to write, after skipping unchanged files and
        the documents of changed files already stored as they are (committed by an interrupted
        earlier run, or unchanged rows of a changed file): ``kept_documents``."""

    def batch_done(self, files: int, chunks: int, encoded_chunks: int) -> None:
        """A batch was committed: ``files`` completed, ``chunks`` written, ``encoded_chunks`` of
        them computed by the model (the rest came from the embedding cache)."""

    def finish(self, report: Any) -> None:
        """The run ended; ``report`` is the :class:`~semsearch.IndexReport`."""


def report_counts(report: Any) -> dict[str, Any]:
    """The numbers of an IndexReport a person or program is told at the end."""
    return {
        "added": report.files_added,
        "replaced": report.files_replaced,
        "removed": report.files_removed,
        "unchanged": report.files_unchanged,
        "skipped": len(report.warnings),
        "resumed": int(getattr(report, "files_resumed", 0)),  # a watch's SyncReport has none
        "kept_documents": int(getattr(report, "documents_unchanged", 0)),
        "documents": report.documents,
        "chunks": report.chunks,
        "seconds": round(float(report.seconds), 3),
    }


def summary_line(report: Any, where: str | None = None) -> str:
    """One line: documents and chunks written, then files added / replaced / removed /
    unchanged / skipped / resumed."""
    c = report_counts(report)
    resumed = f"{c['resumed']} resumed" + (f" ({c['kept_documents']:,} documents kept)" if c["kept_documents"] else "")
    line = (
        f"indexed {c['documents']:,} document(s) in {c['chunks']:,} chunk(s) ({c['seconds']:.1f}s): files "
        f"{c['added']} added, {c['replaced']} replaced, {c['removed']} removed, {c['unchanged']} unchanged, "
        f"{c['skipped']} skipped, {resumed}"
    )
    return line + (f" -> {where}" if where else "")


def sync_line(report: Any) -> str:
    """One line per batch a folder watch applied, with the time of day."""
    c = report_counts(report)
    return (
        f"{time.strftime('%H:%M:%S')} synced: files {c['added']} added, {c['replaced']} replaced, "
        f"{c['removed']} removed, {c['skipped']} skipped; {c['documents']:,} document(s) in {c['chunks']:,} "
        f"chunk(s) ({c['seconds']:.1f}s)"
    )


def _rate(per_second: float) -> str:
    return f"{per_second:.1f}" if per_second < 10 else f"{per_second:,.0f}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _Counts:
    """Running totals and the rate shared by the reporters."""

    def __init__(self) -> None:
        self.total_files = self.total_chunks = 0
        self.files = self.chunks = self.encoded = 0
        self.started = time.monotonic()

    def begin(self, total_files: int, total_chunks: int) -> None:
        self.total_files, self.total_chunks = total_files, total_chunks
        self.started = time.monotonic()

    def add(self, files: int, chunks: int, encoded: int) -> None:
        self.files += files
        self.chunks += chunks
        self.encoded += encoded

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Chunks written per second since the start."""
        return self.chunks / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before anything was written)."""
        if self.chunks == 0 or self.rate == 0:
            return None
        return max(self.total_chunks - self.chunks, 0) / self.rate


class LineProgress:
    """One line per batch on ``stream`` (stderr by default), the final line on ``out``."""

    def __init__(self, stream: IO[str] | None = None, out: IO[str] | None = None, where: str | None = None) -> None:
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.where = where
        self.counts = _Counts()
        self.batches = 0

    def start(self, total_files: int, total_chunks: int, *, unchanged_files: int = 0, kept_documents: int = 0) -> None:
        self.counts.begin(total_files, total_chunks)
        extra = [f"{unchanged_files} unchanged file(s) skipped"] if unchanged_files else []
        if kept_documents:
            extra.append(f"{kept_documents:,} document(s) already stored as they are")
        tail = f" ({', '.join(extra)})" if extra else ""
        self._print(f"indexing {total_files:,} file(s), {total_chunks:,} chunk(s){tail}")

    def batch_done(self, files: int, chunks: int, encoded_chunks: int) -> None:
        c = self.counts
        c.add(files, chunks, encoded_chunks)
        self.batches += 1
        share = c.chunks / c.total_chunks if c.total_chunks else 1.0
        eta = c.eta
        left = f", ~{_duration(eta)} left" if eta is not None and c.chunks < c.total_chunks else ""
        self._print(
            f"batch {self.batches}: {c.files:,}/{c.total_files:,} files, {c.chunks:,}/{c.total_chunks:,} chunks "
            f"({share:.0%}), {_rate(c.rate)} chunks/s{left}"
        )

    def finish(self, report: Any) -> None:
        print(summary_line(report, self.where), file=self.out, flush=True)

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{_rate(speed)} chunks/s" if speed else "– chunks/s", style="progress.data.speed")


class BarProgress:
    """A rich progress bar on ``console`` (stderr), the final line on ``out`` (stdout)."""

    def __init__(self, console: Console | None = None, out: Console | None = None, where: str | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.out = out or Console()
        self.where = where
        self.counts = _Counts()
        self._progress: Progress | None = None
        self._task: Any = None

    def start(self, total_files: int, total_chunks: int, *, unchanged_files: int = 0, kept_documents: int = 0) -> None:
        self.counts.begin(total_files, total_chunks)
        self._progress = Progress(
            TextColumn("[bold]indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("chunks"),
            TextColumn("{task.fields[files]}"),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("index", total=total_chunks, files=f"{0}/{total_files} files")
        if kept_documents:
            self.console.print(
                f"{kept_documents:,} document(s) already stored as they are (an interrupted run resumes)",
                highlight=False)

    def batch_done(self, files: int, chunks: int, encoded_chunks: int) -> None:
        self.counts.add(files, chunks, encoded_chunks)
        if self._progress is not None:
            c = self.counts
            self._progress.update(self._task, completed=c.chunks, files=f"{c.files:,}/{c.total_files:,} files")

    def finish(self, report: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.out.print(summary_line(report, self.where), highlight=False, soft_wrap=True)


class JsonProgress:
    """Progress events as JSON Lines on ``stream`` (stdout by default), one object per line."""

    def __init__(self, stream: IO[str] | None = None, where: str | None = None) -> None:
        self.stream = stream or sys.stdout
        self.where = where
        self.counts = _Counts()

    def start(self, total_files: int, total_chunks: int, *, unchanged_files: int = 0, kept_documents: int = 0) -> None:
        self.counts.begin(total_files, total_chunks)
        self.emit("start", files=total_files, chunks=total_chunks, unchanged_files=unchanged_files,
                  kept_documents=kept_documents)

    def batch_done(self, files: int, chunks: int, encoded_chunks: int) -> None:
        c = self.counts
        c.add(files, chunks, encoded_chunks)
        eta = c.eta
        self.emit(
            "batch", files_done=c.files, files=c.total_files, chunks_done=c.chunks, chunks=c.total_chunks,
            encoded=c.encoded, chunks_per_second=round(c.rate, 1), elapsed_seconds=round(c.elapsed, 3),
            eta_seconds=None if eta is None else round(eta, 1),
        )

    def finish(self, report: Any) -> None:
        self.emit("finish", **report_counts(report), warnings=list(report.warnings), collection=self.where)

    def emit(self, event: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"event": event, **fields}) + "\n")
        self.stream.flush()


def choose_reporter(*, as_json: bool, progress: bool | None, where: str | None = None,
                    stderr: Console | None = None, stdout: Console | None = None) -> IndexProgress:
    """The reporter for a CLI run: JSON events with ``--json``; a bar on a terminal (or
    ``progress=True``); else one line per batch, or only the final line with ``progress=False``."""
    if as_json:
        return JsonProgress(where=where)
    err_console = stderr or Console(stderr=True)
    if progress or (progress is None and err_console.is_terminal):
        return BarProgress(err_console, stdout, where=where)
    if progress is False:
        return FinalLineOnly(where=where)
    return LineProgress(where=where)


class FinalLineOnly(LineProgress):
    """Nothing while running; the final line at the end (``--no-progress``)."""

    def _print(self, line: str) -> None:
        pass
