"""Knowing that a collection's store is damaged, across processes, until it is repaired.

The mark is a small JSON file beside the store (``store-damaged.json``), never a row inside it:
the store is the thing that cannot be trusted. ``verify`` writes it when SQLite's integrity
check fails, and so does any read that SQLite answers with "database disk image is malformed"
(:func:`is_corruption`). While it is there, opening the collection warns, every write is refused
with :class:`~semsearch.errors.StoreDamagedError` naming the repair command, and ``info`` shows
it; ``repair`` removes it once the repaired store is in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ...errors import StoreDamagedError
from .schema import fsync_dir

MARK_NAME = "store-damaged.json"
REPAIR_COMMAND = "semsearch verify --repair"
# SQLite's primary result codes for a damaged file (the extended codes keep them in the low byte).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def is_corruption(exc: BaseException) -> bool:
    """Whether an sqlite3 error says the database file itself is damaged (not busy, not misused)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    message = str(exc).lower()
    return "malformed" in message or "not a database" in message


def roll_back_quietly(con: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any, after an error: on a damaged file the rollback
    can fail too, and the first error is the one worth reporting."""
    try:
        if con.in_transaction:
            con.execute("ROLLBACK")
    except sqlite3.DatabaseError:
        pass


def note_damage(folder: Path, exc: BaseException) -> None:
    """Mark the collection damaged and raise StoreDamagedError (from ``exc``) when ``exc`` says
    SQLite found the file damaged; anything else is left to propagate."""
    if is_corruption(exc):
        mark_damaged(folder, [f"a read or write failed: {exc}"], by="a read")
        raise damaged_error(folder, consequence="this operation met an unreadable part of it") from exc


def damage(folder: Path) -> dict[str, Any] | None:
    """What was recorded when the store was found damaged (``found_at``, ``by``, ``problems``),
    or None when it is not known to be damaged."""
    path = folder / MARK_NAME
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # a torn mark still means "damaged"
        return {"found_at": None, "by": "unknown", "problems": ["the damage record is unreadable"]}


def mark_damaged(folder: Path, problems: list[str], by: str) -> None:
    """Record that the store is damaged (atomically; an existing record is kept, it is older)."""
    path = folder / MARK_NAME
    if path.exists():
        return
    record = {"found_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "by": by, "problems": problems[:20]}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(folder)


def clear_damage(folder: Path) -> None:
    (folder / MARK_NAME).unlink(missing_ok=True)
    fsync_dir(folder)


def damaged_error(folder: Path, record: dict[str, Any] | None = None, *,
                  consequence: str = "writes are refused until it is repaired") -> StoreDamagedError:
    """The error for a collection whose store is damaged; ``consequence`` says what it stops."""
    record = record or damage(folder) or {}
    problems = record.get("problems") or []
    detail = f" ({problems[0]})" if problems else ""
    return StoreDamagedError(
        f"the store of collection {folder} is damaged{detail}; {consequence}. Repair it: {REPAIR_COMMAND} -c {folder} "
        "(Python: Collection.repair()) copies every readable document into a fresh store, lists what was lost and "
        "indexes lost documents again from their files"
    )


def damaged_warning(folder: Path, record: dict[str, Any]) -> str:
    """The warning every command prints while the store is known to be damaged."""
    when = f" (found by {record.get('by', 'a read')} at {record['found_at']})" if record.get("found_at") else ""
    return (f"the store of collection {folder} is damaged{when}: results may miss documents and writes are refused; "
            f"repair it with {REPAIR_COMMAND} -c {folder}")
