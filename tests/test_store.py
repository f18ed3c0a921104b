"""The SQLite store: schema, change log, and what it refuses to open."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from semsearch.backends.local.store import Store
from semsearch.errors import NotACollectionError
from semsearch.types import ChunkRow, DocumentRow


def _doc(doc_id: str, n_chunks: int = 1, dim: int = 4) -> DocumentRow:
    text = " ".join(f"part{i}" for i in range(n_chunks))
    chunks = [ChunkRow(i, 0, len(text), np.full(dim, i + 1, dtype=np.float32)) for i in range(n_chunks)]
    return DocumentRow(doc_id, text, {"k": doc_id}, None, chunks)


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "c", create=True)
    yield s
    s.close()


def test_change_log_records_every_chunk_change(store):
    assert store.head() == 0
    with store.write() as con:
        store.insert_documents(con, [_doc("a", 2), _doc("b", 1)])
    first = store.changes_since(0)
    assert first.head == 3 and first.added.tolist() == [1, 2, 3] and first.removed.size == 0
    with store.write() as con:
        assert store.delete_documents(con, ["a", "missing"]) == 1
    later = store.changes_since(first.head)
    assert later.added.size == 0 and later.removed.tolist() == [1, 2]
    # Over the whole window an id added then removed is simply gone.
    net = store.changes_since(0)
    assert net.added.tolist() == [3]


def test_chunk_ids_are_never_reused(store):
    with store.write() as con:
        store.insert_documents(con, [_doc("a")])
        store.delete_documents(con, ["a"])
        store.insert_documents(con, [_doc("a")])
    assert store.changes_since(0).added.tolist() == [2]


def test_failed_transaction_leaves_nothing(store):
    with pytest.raises(sqlite3.IntegrityError):
        with store.write() as con:
            store.insert_documents(con, [_doc("a"), _doc("a")])
    assert store.document_count() == 0 and store.head() == 0


def test_truncating_the_log_raises_the_floor(store):
    with store.write() as con:
        store.insert_documents(con, [_doc("a"), _doc("b")])
    store.truncate_changes(2)
    assert store.changes_floor() == 2
    assert store.head() == 2  # the sequence keeps counting
    with store.write() as con:
        store.insert_documents(con, [_doc("c")])
    assert store.changes_since(2).added.tolist() == [3]


def test_embeddings_and_chunks_read_back(store):
    with store.write() as con:
        store.insert_documents(con, [_doc("a", 2)])
    ids, vectors = store.embeddings(np.array([2, 1, 99]), 4)
    assert sorted(ids.tolist()) == [1, 2] and vectors.shape == (2, 4)
    by_id = dict(zip(ids.tolist(), vectors.tolist()))
    assert by_id == {1: [1.0] * 4, 2: [2.0] * 4}  # chunk i of _doc holds the vector full of i + 1
    chunk = store.chunks([2])[2]
    assert (chunk.doc_id, chunk.position, chunk.metadata) == ("a", 1, {"k": "a"})
    head, *batches = list(store.all_embeddings(4, batch=1))
    assert head == 2 and [b[0].tolist() for b in batches] == [[1], [2]]
    assert [b[1].tolist() for b in batches] == [[[1.0] * 4], [[2.0] * 4]]


def test_refuses_folders_and_files_that_are_not_collections(tmp_path):
    with pytest.raises(NotACollectionError, match="no collection.sqlite3"):
        Store(tmp_path / "empty", create=False)
    other = tmp_path / "other"
    other.mkdir()
    con = sqlite3.connect(other / "collection.sqlite3")
    con.execute("CREATE TABLE t(x)")
    con.close()
    with pytest.raises(NotACollectionError, match="not a semsearch collection"):
        Store(other, create=False)


def test_database_is_in_wal_mode(store):
    assert store.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_every_connection_reads_through_a_memory_map_once_warm_and_a_reader_in_another_thread_sees_commits(store):
    """A warm process reads through SQLite's memory map (half the time per random row at 170k
    documents); a cold one does not (the map's fault-around would make a one-shot search's resident
    memory grow with the rows it touches). A commit made on one connection is seen by another
    thread's, which maps the same file."""
    import threading

    from semsearch.backends.local.store import MMAP_BYTES

    assert store.con.execute("PRAGMA mmap_size").fetchone()[0] == 0
    store.use_memory_map()
    assert MMAP_BYTES > 0 and store.con.execute("PRAGMA mmap_size").fetchone()[0] == MMAP_BYTES
    mapped: list = []
    probe = threading.Thread(target=lambda: mapped.append(store.con.execute("PRAGMA mmap_size").fetchone()[0]))
    probe.start()
    probe.join()
    assert mapped == [MMAP_BYTES]
    def count_in_a_new_thread() -> int:
        seen: list = []
        reader = threading.Thread(target=lambda: seen.append(store.con.execute("SELECT count(*) FROM documents")
                                                             .fetchone()[0]))
        reader.start()
        reader.join()
        return seen[0]

    before = count_in_a_new_thread()
    with store.write() as con:
        con.execute("INSERT INTO documents(id, text) VALUES ('mapped', 'read through the map')")
    assert count_in_a_new_thread() == before + 1
