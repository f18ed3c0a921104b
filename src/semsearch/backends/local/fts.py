"""The FTS5 lexical index of a local collection: BM25 search and the token reads that the
BM25 arrays (:mod:`.bm25`) and adaptive fusion's term statistics are built from.

Rows hold each chunk's tokens as :func:`semsearch.lexical.index_text` made them, inserted with
their chunks and removed by trigger in the same transaction (:mod:`.schema`).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from .store import Store, batched


def search(store: Store, expression: str, limit: int, allow: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) of the best ``limit`` chunks for an FTS5 MATCH expression.

    Scores are BM25 (FTS5's, k1=1.2, b=0.75): higher is better. ``allow`` (chunk ids)
    restricts the chunks; it reaches SQLite as one JSON array parameter.
    """
    q = "SELECT f.rowid, -bm25(chunks_fts) AS s FROM chunks_fts f WHERE chunks_fts MATCH ?"
    params: list[Any] = [expression]
    if allow is not None:
        q += " AND f.rowid IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(np.asarray(allow).tolist()))
    q += " ORDER BY bm25(chunks_fts) LIMIT ?"
    params.append(int(limit))
    with store.read() as con:
        return [(int(r), float(s)) for r, s in con.execute(q, params)]


def tokens(store: Store, chunk_ids: np.ndarray) -> list[tuple[int, str]]:
    """(chunk id, indexed tokens) of the given chunks that still exist, by ascending id."""
    out: list[tuple[int, str]] = []
    with store.read() as con:
        for part in batched(chunk_ids.tolist(), 900):
            q = f"SELECT rowid, tokens FROM chunks_fts WHERE rowid IN ({','.join('?' * len(part))})"
            out.extend(con.execute(q, part))
    out.sort()
    return out

def token_batches(store: Store, batch: int = 65536) -> Generator[Any, None, None]:
    """The change-log head, then every chunk's (id, indexed tokens) by ascending id in lists
    of ``batch``: all read in one snapshot (close the iterator to stop early)."""
    with store.read() as con:
        yield store.head_in(con)
        cur = con.execute("SELECT rowid, tokens FROM chunks_fts ORDER BY rowid")
        try:
            while rows := cur.fetchmany(batch):
                yield rows
        finally:
            cur.close()


def document_frequencies(store: Store, terms: Sequence[str]) -> dict[str, int]:
    """How many chunks contain each term, from FTS5's own vocabulary (an ``fts5vocab`` table in
    the connection's temp schema); terms no chunk holds are left out."""
    store.con.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_vocab USING fts5vocab(main, 'chunks_fts', 'row')")
    frequencies: dict[str, int] = {}
    with store.read() as con:
        for part in batched(list(dict.fromkeys(terms)), 900):
            q = f"SELECT term, doc FROM temp.chunks_fts_vocab WHERE term IN ({','.join('?' * len(part))})"
            frequencies.update((str(t), int(n)) for t, n in con.execute(q, part))
    return frequencies


def term_statistics(store: Store, terms: Sequence[str], chunk_id: int | None) -> tuple[dict[str, int], int, set[str]]:
    """(chunks containing each term, number of chunks, the terms of chunk ``chunk_id``).

    What adaptive fusion needs to tell how much of a query a lexical hit matched: the
    document frequencies come from FTS5's own vocabulary, the chunk count from its totals
    (no count over the chunks table), the chunk's terms from its indexed tokens.
    """
    frequencies = document_frequencies(store, terms)
    with store.read() as con:
        total = fts_row_count(con)
        row = None if chunk_id is None else con.execute("SELECT tokens FROM chunks_fts WHERE rowid = ?",
                                                        (int(chunk_id),)).fetchone()
    return frequencies, total, set(row[0].split()) if row else set()


def fts_totals(con: Any) -> tuple[int, int]:
    """(rows, tokens) as FTS5's ``bm25()`` counts them: its averages record (two SQLite varints)."""
    row = con.execute("SELECT block FROM chunks_fts_data WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return 0, 0
    rows, at = _varint(row[0], 0)
    tokens, _ = _varint(row[0], at)
    return rows, tokens


def fts_row_count(con: Any) -> int:
    return fts_totals(con)[0]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """An SQLite varint (big-endian 7-bit groups, a full 9th byte) at ``at``: (value, next offset)."""
    value = 0
    for _ in range(8):
        byte = data[at]
        at += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at
    return (value << 8) | data[at], at + 1
