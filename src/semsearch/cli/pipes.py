"""Output for a pipe or a log as well as for a terminal: tables at their full width, and progress
lines while a long step runs.

A terminal gets tables fitted to its width and progress bars. Piped, rich would cut a table at
80 columns (model names became "defau…") and a command that searches for minutes would print
nothing until the end; here a piped table is printed at the width it needs, and
:class:`Heartbeat` prints each step as it starts and, every ``every`` seconds, the step still
running and for how long.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console, RenderableType
from rich.measure import Measurement

#: Seconds between two lines about a step that is still running.
HEARTBEAT_SECONDS = 10.0


def print_table(console: Console, table: RenderableType) -> None:
    """``table`` on ``console``: fitted to a terminal, at its full natural width anywhere else."""
    if console.is_terminal:
        console.print(table)
        return
    needed = Measurement.get(console, console.options.update_width(1 << 16), table).maximum
    # Console.print never renders wider than the console: a console as wide as the table writes it.
    wide = Console(file=console.file, width=max(needed, console.width), color_system=None, highlight=False,
                   emoji=False)
    wide.print(table)


class Heartbeat:
    """Lines on ``console`` about the step under way: each step as it starts (:meth:`step`), and
    every ``every`` seconds (from a background thread, only when ``ticks``) that it still runs.
    Use it as a context manager; nothing is printed when ``enabled`` is False."""

    def __init__(self, console: Console, *, enabled: bool = True, ticks: bool = True,
                 every: float = HEARTBEAT_SECONDS) -> None:
        self.console = console
        self.enabled = enabled
        self.ticks = ticks and enabled
        self.every = every
        self._step: str | None = None
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self, text: str) -> None:
        """A new step starts: say so, and time it from now."""
        with self._lock:
            self._step, self._started = text, time.monotonic()
        if self.enabled:
            self.console.print(f"{text} ...", highlight=False, soft_wrap=True)

    def tick(self) -> None:
        """Say which step is still running and for how long (the background thread calls it)."""
        with self._lock:
            text, started = self._step, self._started
        if self.enabled and text is not None:
            self.console.print(f"{text}: still running, {time.monotonic() - started:.0f}s so far", highlight=False,
                               soft_wrap=True)

    def done(self) -> None:
        """The current step ended: no more lines about it."""
        with self._lock:
            self._step = None

    def __enter__(self) -> Heartbeat:
        if self.ticks:
            self._thread = threading.Thread(target=self._beat, name="semsearch-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.tick()
