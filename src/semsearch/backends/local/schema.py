"""The SQLite schema of a local collection: creating it atomically and upgrading older formats.

Every change to the chunks table is written to a change log (``changes``) by triggers in the
same transaction, so a derived vector index or BM25 can always be caught up: it remembers the
last change sequence number it contains and replays what came after.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ...lexical import index_text

DB_NAME = "collection.sqlite3"
#: SQLite's page size for new collections. A chunk row holds its float32 embedding (1.5 KB at 384
#: dimensions, 3 KB at 768): 4 KB pages hold two of the first (25% of the file empty) and one of
#: the second; 16 KB pages hold ten and five (5% empty). Existing collections keep theirs.
PAGE_SIZE = 16384
FORMAT_VERSION = 3  # 2: the lexical (FTS5) index of chunks; 3: the metadata index (facets)

# The lexical index: one row per chunk (rowid = chunk rowid) holding the chunk's tokens as
# made by semsearch.lexical (FTS5's ascii tokenizer then splits only on spaces).
# Rows are inserted with their chunks and removed by trigger, in the same transaction, so the
# store and its lexical index never disagree. (A contentless table would save the tokens' copy,
# ~370 bytes a chunk of msmarco, but SQLite before 3.43 deletes from one only given the exact
# tokens a row was inserted with: a tokenizer that changed meanwhile, with Python's Unicode
# tables, would leave the index damaged. Measured and left: bench/RESULTS.md, issue 25.)
_LEXICAL_SCHEMA = """
CREATE VIRTUAL TABLE chunks_fts USING fts5(tokens, tokenize = 'ascii');
CREATE TRIGGER chunks_removed_fts AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.rowid;
END;
"""

# One row per (key, kind, value, document); list elements are rows of their own.
_KIND = "CASE {v}.type WHEN 'text' THEN 0 WHEN 'true' THEN 2 WHEN 'false' THEN 2 ELSE 1 END"
_SCALARS = f"""
    SELECT j.key, {_KIND.format(v="j")}, j.value, {{doc}} FROM json_each({{metadata}}) j
     WHERE j.type IN ('text', 'integer', 'real', 'true', 'false')"""
_LIST_ELEMENTS = f"""
    SELECT j.key, {_KIND.format(v="e")}, e.value, {{doc}} FROM json_each({{metadata}}) j, json_each(j.value) e
     WHERE j.type = 'array' AND e.type IN ('text', 'integer', 'real', 'true', 'false')"""
_ELEMENTS = _SCALARS + "\n    UNION ALL" + _LIST_ELEMENTS
# Metadata JSON that SQLite cannot read (NaN or Infinity, which Python's json writes) gives no rows
# instead of failing the write: no SQL filter could read it either.
_SCALARS = _SCALARS.replace("json_each({metadata})", "json_each(iif(json_valid({metadata}), {metadata}, '{{}}'))")
_LIST_ELEMENTS = _LIST_ELEMENTS.replace("json_each({metadata})",
                                        "json_each(iif(json_valid({metadata}), {metadata}, '{{}}'))")
_ELEMENTS = _SCALARS + "\n    UNION ALL" + _LIST_ELEMENTS
# A document's rows are found again from its old metadata, through the primary key (no second
# index on doc: ~37 bytes a document); one simple SELECT each, which SQLite turns into lookups.
_REMOVE_OLD = "\n".join(
    "    DELETE FROM facets WHERE (key, kind, value, doc) IN ({});".format(
        part.format(doc="old.rowid", metadata="old.metadata"))
    for part in (_SCALARS, _LIST_ELEMENTS))

#: The metadata index (format 3, :mod:`.facet_index`): a typed key/value table kept by triggers in the
#: documents' transaction; :func:`fill_facets_statement` fills it for existing documents.
FACETS_SCHEMA = f"""
CREATE TABLE facets (
    key   TEXT NOT NULL,
    kind  INTEGER NOT NULL,
    value NOT NULL,
    doc   INTEGER NOT NULL,
    PRIMARY KEY (key, kind, value, doc)
) WITHOUT ROWID;
CREATE TRIGGER documents_added_facets AFTER INSERT ON documents BEGIN
    INSERT OR IGNORE INTO facets(key, kind, value, doc) {_ELEMENTS.format(doc="new.rowid", metadata="new.metadata")};
END;
CREATE TRIGGER documents_metadata_facets AFTER UPDATE OF metadata ON documents BEGIN
{_REMOVE_OLD}
    INSERT OR IGNORE INTO facets(key, kind, value, doc) {_ELEMENTS.format(doc="new.rowid", metadata="new.metadata")};
END;
CREATE TRIGGER documents_removed_facets AFTER DELETE ON documents BEGIN
{_REMOVE_OLD}
END;
"""

#: How many documents and chunks there are, kept by triggers (format 3): a count(*) reads a whole
#: index (tens of MB at a million documents), and a search plans its filter by these two numbers.
TALLIES_SCHEMA = """
CREATE TABLE tallies (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER documents_counted AFTER INSERT ON documents BEGIN
    UPDATE tallies SET n = n + 1 WHERE name = 'documents';
END;
CREATE TRIGGER documents_uncounted AFTER DELETE ON documents BEGIN
    UPDATE tallies SET n = n - 1 WHERE name = 'documents';
END;
CREATE TRIGGER chunks_counted AFTER INSERT ON chunks BEGIN
    UPDATE tallies SET n = n + 1 WHERE name = 'chunks';
END;
CREATE TRIGGER chunks_uncounted AFTER DELETE ON chunks BEGIN
    UPDATE tallies SET n = n - 1 WHERE name = 'chunks';
END;
"""
FILL_TALLIES = ("INSERT INTO tallies(name, n) SELECT 'documents', count(*) FROM documents "
                "UNION ALL SELECT 'chunks', count(*) FROM chunks")


def fill_facets_statement() -> str:
    """The statement filling ``facets`` from every stored document (a migration runs it once)."""
    elements = _ELEMENTS.format(doc="d.rowid", metadata="d.metadata")
    elements = elements.replace("FROM json_each(", "FROM documents d, json_each(")
    return f"INSERT OR IGNORE INTO facets(key, kind, value, doc) {elements}"


_SCHEMA = """
CREATE TABLE manifest (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE documents (
    rowid    INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    text     TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    source   TEXT
);
CREATE INDEX documents_source ON documents(source);
-- Chunk rowids are the vector ids. AUTOINCREMENT guarantees an id is never reused, which is
-- what makes replaying the change log into a vector index unambiguous.
CREATE TABLE chunks (
    rowid     INTEGER PRIMARY KEY AUTOINCREMENT,
    doc       INTEGER NOT NULL REFERENCES documents(rowid),
    position  INTEGER NOT NULL,
    start     INTEGER NOT NULL,
    end       INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc);
CREATE TABLE changes (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk INTEGER NOT NULL,
    op    INTEGER NOT NULL  -- 1 = added, 0 = removed
);
CREATE TRIGGER chunks_added AFTER INSERT ON chunks BEGIN
    INSERT INTO changes(chunk, op) VALUES (new.rowid, 1);
END;
CREATE TRIGGER chunks_removed AFTER DELETE ON chunks BEGIN
    INSERT INTO changes(chunk, op) VALUES (old.rowid, 0);
END;
-- Files indexed from disk, so re-indexing skips those whose content did not change.
CREATE TABLE sources (
    path         TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    indexed_at   REAL NOT NULL
);
""" + _LEXICAL_SCHEMA + FACETS_SCHEMA + TALLIES_SCHEMA



def create_database(folder: Path) -> None:
    """Create the collection database in ``folder``.

    The schema is built in a temporary file renamed into place, so a crash during creation
    never leaves a half-made database that looks like a collection.
    """
    path = folder / DB_NAME
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".creating")
    create_database_file(tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(folder)


def create_database_file(path: Path) -> None:
    """Write an empty database of the current schema (WAL mode) to ``path``, replacing any file there."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before the first table: it is fixed from then on
        con.executescript("BEGIN;" + _SCHEMA + FILL_TALLIES + ";COMMIT;")
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def needs_migration(manifest: dict, tokenizer_version: str) -> bool:
    """Whether a collection with this manifest must be upgraded before use."""
    return manifest.get("format_version", 1) < FORMAT_VERSION or manifest.get("lexical_tokenizer") != tokenizer_version


def migrate(con: sqlite3.Connection, tokenizer_version: str, format_version: int,
            lexical_tokenizer: str | None) -> None:
    """Bring an older collection to this format, inside the caller's write transaction.

    Format 1 had no lexical index: the FTS5 table is created and filled from the stored
    documents; a lexical index built by another tokenizer version is rebuilt the same way.
    Format 2 had no metadata index: the facets table and its triggers are created and filled
    from the documents' metadata (one pass over the documents, once), and the tallies counted. The caller holds the
    collection's write lock and records the new format in the manifest.
    """
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    if format_version < 2 or lexical_tokenizer != tokenizer_version or "chunks_fts" not in tables:
        _rebuild_lexical(con, tables)
    if "facets" not in tables:
        for statement in _split_sql(FACETS_SCHEMA):
            con.execute(statement)
        con.execute(fill_facets_statement())
    if "tallies" not in tables:
        for statement in _split_sql(TALLIES_SCHEMA):
            con.execute(statement)
        con.execute(FILL_TALLIES)


def _rebuild_lexical(con: sqlite3.Connection, tables: set[str]) -> None:
    if "chunks_fts" in tables:
        con.execute("DELETE FROM chunks_fts")
    else:
        for statement in _split_sql(_LEXICAL_SCHEMA):
            con.execute(statement)
    cur = con.execute(
        "SELECT c.rowid, substr(d.text, c.start + 1, c.end - c.start) FROM chunks c JOIN documents d ON d.rowid = c.doc"
    )
    while rows := cur.fetchmany(4096):
        con.executemany("INSERT INTO chunks_fts(rowid, tokens) VALUES (?, ?)", [(r, index_text(t)) for r, t in rows])


def _split_sql(script: str) -> list[str]:
    """Statements of a schema script (triggers kept whole), for running inside a transaction."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and (not text.upper().startswith("CREATE TRIGGER") or text.upper().endswith("END;")):
            statements.append(text)
            current = []
    return statements


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


