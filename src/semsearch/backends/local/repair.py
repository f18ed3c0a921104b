"""Repairing a damaged local store: salvage into a fresh file, keep the damaged one aside, swap.

Under the write lock, with this process's connections closed:

1. every readable row is copied into ``collection.sqlite3.repairing`` (:mod:`.salvage`), which
   is fsynced;
2. the damaged file is kept as ``collection.sqlite3.damaged-<time>`` (a hard link, so no copy
   of a large file; a copy where links are not supported), with its WAL if one is left;
3. the derived vector index files are deleted (they describe the damaged store's rows and are
   rebuilt from the repaired one: deleting a cache is always safe);
4. the fresh file is renamed over ``collection.sqlite3`` (atomic), the directory fsynced, the
   damage mark removed.

A kill at any step leaves either the damaged store, still marked damaged (repair again), or
the repaired one. Other processes that have the collection open keep reading the file they
opened until they open it again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import StoreDamagedError, StoreDamagedWarning
from ...types import StoreSalvage
from .damage import clear_damage, damage, damaged_error, damaged_warning, mark_damaged
from .salvage import salvage
from .schema import DB_NAME, fsync_dir
from .store import Store

if TYPE_CHECKING:
    from .lexical_arrays import LexicalArrays
    from .locking import WriteLock
    from .vectors import DerivedIndex

DERIVED_FILES = ("vectors-*", "vectors.json", "lexical-*", "lexical.json")


def integrity_problems(path: Path) -> list[str]:
    """SQLite's quick check of a database file: [] when it is sound."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        found = [str(r[0]) for r in con.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    finally:
        con.close()
    return [] if found == ["ok"] else found


class StoreCare:
    """Checking and repairing a local store, and refusing writes while it is damaged (a mixin of
    :class:`.engine.LocalEngine`)."""

    folder: Path
    store: Store
    lock: WriteLock
    index: DerivedIndex
    bm25: LexicalArrays
    manifest: dict[str, Any] | None

    def reload(self) -> None:
        raise NotImplementedError  # the engine's: read the manifest and derived structures again

    def reopen_store(self) -> None:
        """Open the store file again (after :func:`repair_store` replaced it)."""
        self.store = Store(self.folder, create=False)
        self.reload()

    def warn_if_damaged(self) -> bool:
        """Warn (StoreDamagedWarning) when the store is known to be damaged; returns whether it is."""
        record = damage(self.folder)
        if record is not None:
            warnings.warn(damaged_warning(self.folder, record), StoreDamagedWarning, stacklevel=5)
        return record is not None

    def check_writable(self) -> None:
        """StoreDamagedError when the store is known to be damaged (until it is repaired)."""
        if (record := damage(self.folder)) is not None:
            raise damaged_error(self.folder, record)

    def verify(self) -> dict[str, Any]:
        """SQLite's quick check of the store (the truth: nothing rebuilds it), which marks a
        damaged store so; then, for a sound one, the derived vector index against it and the saved
        BM25 arrays against their checksums, each rebuilt and saved when it differs."""
        try:
            with self.store.read() as con:
                integrity = [r[0] for r in con.execute("PRAGMA quick_check")]
        except StoreDamagedError as exc:
            integrity = [f"the integrity check itself failed: {exc.__cause__ or exc}"]
        if integrity != ["ok"]:  # nothing derived can be checked against a damaged truth
            mark_damaged(self.folder, integrity, by="verify")
            return {"consistent": False, "store": integrity[:20], "repaired": [],
                    "problems": [f"the SQLite store is damaged: {'; '.join(integrity[:3])}"]}
        if (record := damage(self.folder)) is not None:  # marked by a failed read the check cannot see
            return {"consistent": False, "store": ["marked damaged by a failed read"], "repaired": [],
                    "problems": [damaged_warning(self.folder, record)]}
        with self.lock:
            out = self.index.verify()
            problems, repaired = self.bm25.verify()
        out["problems"] = [*out["problems"], *problems]
        out["repaired"] = [*out["repaired"], *repaired]
        out["consistent"] = out["consistent"] and not problems
        out["store"] = "ok"
        return out

    def repair(self, *, force: bool = False) -> StoreSalvage:
        """Copy every readable row of a damaged store into a fresh one swapped in atomically, the
        damaged file kept aside; the vector index is rebuilt (see the module docstring)."""
        return repair_store(self, force=force)


def repair_store(engine: StoreCare, *, force: bool = False) -> StoreSalvage:
    """Rebuild a damaged store from its readable rows (see the module docstring).

    A store that passes SQLite's check and is not marked damaged is left alone unless ``force``.

    Raises:
        CollectionBusyError: another process holds the write lock.
        NotACollectionError: the store is too damaged to say how the collection was built.
    """
    folder = engine.folder
    db = folder / DB_NAME
    with engine.lock:
        engine.store.close()
        marked = damage(folder)
        problems = integrity_problems(db)
        if not problems and marked is None and not force:
            engine.reopen_store()
            return StoreSalvage(repaired=False)
        if problems:
            mark_damaged(folder, problems, by="repair")
        fresh = folder / (DB_NAME + ".repairing")
        try:
            found = salvage(db, fresh, int(engine.manifest["dimension"]) if engine.manifest else 0)
        except BaseException:
            fresh.unlink(missing_ok=True)
            engine.reopen_store()
            raise
        aside = _keep_aside(db)
        for pattern in DERIVED_FILES:
            for file in folder.glob(pattern):
                file.unlink(missing_ok=True)
        for leftover in (Path(f"{db}-wal"), Path(f"{db}-shm")):
            leftover.unlink(missing_ok=True)
        os.replace(fresh, db)
        fsync_dir(folder)
        clear_damage(folder)
        engine.reopen_store()
    return StoreSalvage(
        repaired=True, problems=problems or list((marked or {}).get("problems", [])), documents=found.documents,
        chunks=found.chunks, to_encode=found.to_encode, lost=found.lost, damaged_copy=str(aside),
        source_hashes=found.source_hashes, notes=found.notes,
    )


def _keep_aside(db: Path) -> Path:
    """Keep the damaged file (and a WAL left beside it) under a dated name; returns that name."""
    aside = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    for src, dst in ((db, aside), (Path(f"{db}-wal"), Path(f"{aside}-wal"))):
        if not src.exists():
            continue
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # no hard links on this file system: a copy
            shutil.copy2(src, dst)
    fsync_dir(db.parent)
    return aside
