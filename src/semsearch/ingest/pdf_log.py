"""pypdf's own log messages, kept for semsearch's warning about the file being read.

pypdf reports what it repaired or could not read ("invalid pdf header", "EOF marker not found",
"Ignoring wrong pointing object") through the ``logging`` module, under the ``pypdf`` logger.
With no logging configured, Python's last-resort handler wrote them to stderr as bare lines,
ahead of and apart from semsearch's one-line warning about that file. While semsearch reads a
PDF, :func:`collected` keeps the messages of that thread in a list instead, for the caller to
put in the file's warning; messages pypdf logs for any other code go on to the root logger's
handlers as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_install_lock = threading.Lock()


class _Collector(logging.Handler):
    """On the ``pypdf`` logger (which then stops propagating): a record of a thread that is reading a
    PDF for semsearch goes to that read's list; any other goes on to the root logger, as propagation would."""

    def __init__(self, forward: bool) -> None:
        super().__init__(logging.NOTSET)
        self.reads = threading.local()
        self.forward = forward

    def emit(self, record: logging.LogRecord) -> None:
        sink: list[str] | None = getattr(self.reads, "sink", None)
        if sink is not None:
            if record.levelno >= logging.WARNING:
                sink.append(record.getMessage())
        elif self.forward:
            logging.getLogger().handle(record)


def _collector() -> _Collector:
    logger = logging.getLogger("pypdf")
    with _install_lock:
        for handler in logger.handlers:
            if isinstance(handler, _Collector):
                return handler
        handler = _Collector(forward=logger.propagate)
        logger.addHandler(handler)
        logger.propagate = False
        return handler


@contextmanager
def collected() -> Iterator[list[str]]:
    """The warnings and errors pypdf logs in this thread inside the block (each once, in order),
    instead of on stderr."""
    handler = _collector()
    messages: list[str] = []
    outer = getattr(handler.reads, "sink", None)
    handler.reads.sink = messages
    try:
        yield messages
    finally:
        handler.reads.sink = outer
        messages[:] = list(dict.fromkeys(messages))
