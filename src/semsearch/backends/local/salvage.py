"""Copying every readable row of a damaged store into a fresh one, and saying what was lost.

SQLite's own ``.recover`` lives in the ``sqlite3`` command-line shell (and a C extension
Python's ``sqlite3`` module does not ship), so it is not on a fresh machine with only Python;
this does the same job through plain SQL, which any SQLite answers:

- **Rows by rowid ranges.** Each table is read in blocks of rowids; a block that fails
  ("database disk image is malformed", or text that is no longer UTF-8) is split in two until
  the failing rowids are isolated, so every row on a readable page is kept, whatever page
  next to it was destroyed.
- **Rows checked.** A row read back must make sense: metadata that parses, a vector of the
  collection's dimension with finite values, chunk offsets inside their document's text.
- **What was lost, from the indexes.** The table's own indexes are separate B-trees, usually
  on other pages: the unique index on document ids gives the id (and the source index the
  file) of a document whose row is unreadable; the index on chunks' documents tells which
  surviving documents lost a chunk. A document whose row survived but whose chunks did not
  keeps its text, so the collection can encode it again.

The fresh store has the current schema; documents and chunks keep their rowids (vector ids),
the lexical index is rebuilt from the surviving text and the sequence counters never go back,
so no id is ever reused.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...lexical import index_text
from ...types import LostDocument
from .schema import create_database_file

BLOCK = 512  # rowids per query; a failing block is bisected down to single rows
PENDING_REINDEX = "reembedding"  # manifest key of an interrupted reindex (its staged vectors are not copied)


@dataclass
class Readable:
    """The rows of one table that could be read (rowid first), and the rowid ranges that could not."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    unreadable: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Salvaged:
    """What :func:`salvage` copied and what it found missing."""

    manifest: dict[str, Any]
    documents: int
    chunks: int
    lost: list[LostDocument]
    to_encode: list[str]
    source_hashes: dict[str, str]
    notes: list[str]


def readable_rows(con: sqlite3.Connection, table: str, columns: str, upper: int | None) -> Readable:
    """Every readable row of ``table`` (``rowid, columns``), ascending.

    With ``upper`` (the highest rowid there can be) rowids 1..upper are read in blocks, a
    failing block bisected down to single rowids. Without it the table is read from both
    ends until each scan fails; rows between the two failures are lost.
    """
    found = Readable()
    query = f"SELECT rowid, {columns} FROM {table} WHERE rowid BETWEEN ? AND ? ORDER BY rowid"

    def visit(lo: int, hi: int) -> None:
        try:
            found.rows.extend(con.execute(query, (lo, hi)).fetchall())
            return
        except sqlite3.DatabaseError:
            if lo == hi:
                if found.unreadable and found.unreadable[-1][1] == lo - 1:
                    found.unreadable[-1] = (found.unreadable[-1][0], lo)
                else:
                    found.unreadable.append((lo, lo))
                return
        mid = (lo + hi) // 2
        visit(lo, mid)
        visit(mid + 1, hi)

    if upper is not None:
        for lo in range(1, upper + 1, BLOCK):
            visit(lo, min(upper, lo + BLOCK - 1))
        return found
    forward = list(_until_error(con, f"SELECT rowid, {columns} FROM {table} ORDER BY rowid"))
    backward = list(_until_error(con, f"SELECT rowid, {columns} FROM {table} ORDER BY rowid DESC"))
    seen = {r[0] for r in forward}
    found.rows = forward + sorted((r for r in backward if r[0] not in seen), key=lambda r: r[0])
    if backward and forward and backward[-1][0] > forward[-1][0] + 1:
        found.unreadable.append((forward[-1][0] + 1, backward[-1][0] - 1))
    return found


def _until_error(con: sqlite3.Connection, sql: str) -> Iterator[tuple[Any, ...]]:
    """The rows of a query until it fails (a scan walking into a damaged page)."""
    try:
        cur = con.execute(sql)
        while True:
            row = cur.fetchone()
            if row is None:
                return
            yield row
    except sqlite3.DatabaseError:
        return


def index_entries(con: sqlite3.Connection, table: str, index: str, column: str) -> list[tuple[Any, int]]:
    """(column value, rowid) of every readable entry of one of ``table``'s indexes (read from the
    index alone: it is a B-tree of its own, often whole when the table's pages are not)."""
    exists = _until_error(con, f"SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = '{index}'")
    if not list(exists):
        return []
    forward = list(_until_error(con, f"SELECT {column}, rowid FROM {table} INDEXED BY {index} ORDER BY {column}"))
    backward = list(_until_error(con, f"SELECT {column}, rowid FROM {table} INDEXED BY {index} ORDER BY {column} DESC"))
    return list(dict.fromkeys(forward + backward))


def highest_rowid(con: sqlite3.Connection, table: str) -> int | None:
    """The highest rowid ``table`` ever had (its AUTOINCREMENT counter, else its last row), or None."""
    for sql in (f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'", f"SELECT max(rowid) FROM {table}"):
        try:
            row = con.execute(sql).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None and row[0] is not None:
            return int(row[0])
    return None


def salvage(damaged: Path, fresh: Path, dimension: int) -> Salvaged:
    """Copy every readable, sound row of the store ``damaged`` into a new store file ``fresh``.

    Raises:
        NotACollectionError: not even the manifest (how the collection was built) can be read.
    """
    from ...errors import NotACollectionError

    con = sqlite3.connect(damaged, isolation_level=None)
    try:
        manifest_rows = readable_rows(con, "manifest", "key, value", None)
        manifest = {}
        for _, key, value in manifest_rows.rows:
            try:
                manifest[key] = json.loads(value)
            except (TypeError, ValueError):
                continue
        if "model" not in manifest or "dimension" not in manifest:
            raise NotACollectionError(
                f"{damaged} is too damaged to repair: how the collection was built (its manifest) cannot be read; "
                "restore it from a backup or index the documents into a new collection")
        found = _read_store(con, dimension)
    finally:
        con.close()
    notes = []
    if manifest.pop(PENDING_REINDEX, None) is not None:
        notes.append("an interrupted reindex was dropped: run the same reindex command again")
    _write_store(fresh, manifest, found)
    lost = found.lost_documents()
    lost_files = {d.source for d in lost if d.source}
    return Salvaged(manifest=manifest, documents=len(found.documents), chunks=len(found.chunks), lost=lost,
                    to_encode=found.to_encode(), notes=notes,
                    source_hashes={p: h for p, h in found.sources.items() if p in lost_files})


@dataclass
class _Found:
    """The sound rows read from a damaged store, and the evidence of what it held."""

    documents: dict[int, tuple[str, str, str, str | None]]  # rowid -> id, text, metadata, source
    chunks: dict[int, tuple[int, int, int, int, bytes]]  # rowid -> doc, position, start, end, embedding
    sources: dict[str, str]  # path -> content hash
    sequences: dict[str, int]
    ids_by_row: dict[int, str]  # from the unique index on document ids
    sources_by_row: dict[int, str]  # from the index on document sources
    chunks_by_doc: dict[int, set[int]]  # from the index on chunks' documents
    unreadable_documents: list[tuple[int, int]]

    def lost_documents(self) -> list[LostDocument]:
        known = set(self.ids_by_row) | set(self.chunks_by_doc) | {c[0] for c in self.chunks.values()}
        rows = sorted(r for r in known if r not in self.documents)
        return [LostDocument(self.ids_by_row.get(r), self.sources_by_row.get(r), r) for r in rows]

    def to_encode(self) -> list[str]:
        """Ids of surviving documents that lost a chunk: encoded again from their text."""
        have: dict[int, list[tuple[int, int, int]]] = {}
        for doc, position, start, end, _ in self.chunks.values():
            have.setdefault(doc, []).append((position, start, end))
        out = []
        for rowid, (doc_id, text, _, _) in self.documents.items():
            parts = sorted(have.get(rowid, []))
            expected = self.chunks_by_doc.get(rowid, set())
            whole = (bool(parts) and [p[0] for p in parts] == list(range(len(parts)))
                     and not text[: parts[0][1]].strip() and not text[max(p[2] for p in parts):].strip()
                     and expected <= {c for c, v in self.chunks.items() if v[0] == rowid})
            if not whole:
                out.append(doc_id)
        return out


def _read_store(con: sqlite3.Connection, dimension: int) -> _Found:
    docs = readable_rows(con, "documents", "id, text, metadata, source", highest_rowid(con, "documents"))
    documents = {r[0]: (r[1], r[2], r[3], r[4]) for r in docs.rows if _sound_document(r)}
    chunk_rows = readable_rows(con, "chunks", "doc, position, start, end, embedding", highest_rowid(con, "chunks"))
    chunks = {r[0]: tuple(r[1:]) for r in chunk_rows.rows if _sound_chunk(r, documents, dimension)}
    sources = {r[1]: r[2] for r in readable_rows(con, "sources", "path, content_hash", None).rows
               if isinstance(r[1], str) and isinstance(r[2], str)}
    sequences = {}
    for name in ("documents", "chunks", "changes"):
        top = highest_rowid(con, name)
        if top is not None:
            sequences[name] = top
    chunks_by_doc: dict[int, set[int]] = {}
    for doc, rowid in index_entries(con, "chunks", "chunks_doc", "doc"):
        chunks_by_doc.setdefault(int(doc), set()).add(int(rowid))
    return _Found(
        documents=documents, chunks=chunks, sources=sources, sequences=sequences,  # type: ignore[arg-type]
        ids_by_row={int(r): i for i, r in index_entries(con, "documents", "sqlite_autoindex_documents_1", "id")
                    if isinstance(i, str)},
        sources_by_row={int(r): s for s, r in index_entries(con, "documents", "documents_source", "source")
                        if isinstance(s, str)},
        chunks_by_doc=chunks_by_doc, unreadable_documents=docs.unreadable,
    )


def _sound_document(row: tuple[Any, ...]) -> bool:
    _, doc_id, text, metadata, source = row
    if not (isinstance(doc_id, str) and doc_id and isinstance(text, str) and isinstance(metadata, str)):
        return False
    if source is not None and not isinstance(source, str):
        return False
    try:
        return isinstance(json.loads(metadata), dict)
    except ValueError:
        return False


def _sound_chunk(row: tuple[Any, ...], documents: dict[int, tuple[str, str, str, str | None]], dimension: int) -> bool:
    _, doc, position, start, end, blob = row
    if doc not in documents or not all(isinstance(v, int) for v in (position, start, end)):
        return False
    if not isinstance(blob, bytes) or len(blob) != 4 * dimension:
        return False
    if not 0 <= start <= end <= len(documents[doc][1]):
        return False
    return bool(np.all(np.isfinite(np.frombuffer(blob, dtype=np.float32))))


def _write_store(path: Path, manifest: dict[str, Any], found: _Found) -> None:
    """The fresh store: the current schema, the sound rows with their rowids, a rebuilt lexical index."""
    create_database_file(path)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("BEGIN")
        con.executemany("INSERT INTO manifest(key, value) VALUES (?, ?)",
                        [(k, json.dumps(v)) for k, v in manifest.items()])
        con.executemany("INSERT INTO documents(rowid, id, text, metadata, source) VALUES (?, ?, ?, ?, ?)",
                        [(r, *v) for r, v in sorted(found.documents.items())])
        lost_files = {d.source for d in found.lost_documents() if d.source}
        # A file that lost documents is read again by the next `index` (its hash is forgotten).
        con.executemany("INSERT INTO sources(path, content_hash, indexed_at) VALUES (?, ?, 0)",
                        [(p, h) for p, h in sorted(found.sources.items()) if p not in lost_files])
        for part in _batches(sorted(found.chunks.items()), 4096):
            con.executemany("INSERT INTO chunks(rowid, doc, position, start, end, embedding) VALUES (?, ?, ?, ?, ?, ?)",
                            [(r, *v) for r, v in part])
            con.executemany("INSERT INTO chunks_fts(rowid, tokens) VALUES (?, ?)",
                            [(r, index_text(found.documents[v[0]][1][v[2] : v[3]])) for r, v in part])
        for name, top in found.sequences.items():  # ids are never reused, even those of lost rows
            if not con.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (top, name)).rowcount:
                con.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", (name, top))
        con.execute("COMMIT")
        problems = con.execute("PRAGMA integrity_check").fetchall()
        if problems != [("ok",)]:  # pragma: no cover - a fresh file written by SQLite itself
            raise sqlite3.DatabaseError(f"the repaired store fails its own check: {problems[:3]}")
    finally:
        con.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
