"""BM25 arrays saved beside the store (lexical_file.py): a writer's close saves them, a new process
maps them and scores exactly as FTS5, catches up what other writers added since, and a damaged,
stale or missing file is never used (FTS5 answers and the next flush saves new ones)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsearch import Collection
from semsearch.backends.local import bm25, lexical_arrays, lexical_file
from test_bm25_memory import add_docs, assert_same_as_fts5, queries


@pytest.fixture()
def path(tmp_path, tiny_model_dir):
    path = tmp_path / "c"
    with Collection(path, model=str(tiny_model_dir), chunk_size=16, chunk_overlap=0) as col:
        add_docs(col, np.random.default_rng(0), 0, 300)
    return path


def saved_seq(path) -> int:
    return json.loads((path / lexical_file.META).read_text())["seq"]


def test_a_writers_close_saves_them_and_a_new_process_maps_them(path, monkeypatch):
    meta = json.loads((path / lexical_file.META).read_text())
    assert meta["count"] >= 300 and meta["postings"] > meta["count"]
    monkeypatch.setattr(bm25, "build", None)  # a reader of saved arrays builds nothing
    with Collection(path, create=False) as col:
        snap = col.engine.bm25.current(build=False)
        assert snap is not None and snap.seq == col.engine.store.head()
        assert snap.postings == meta["postings"] and snap.resident_postings == 0  # all mapped
        assert isinstance(snap.vocab, lexical_file.DiskVocab)
        assert assert_same_as_fts5(col, queries(np.random.default_rng(1))) > 100
        hits = col.search("w3 w5", k=5, mode="lexical")
        assert len(hits) == 5


def test_a_reader_catches_up_what_writers_added_and_deleted_since(path, tiny_model_dir):
    before = saved_seq(path)
    with Collection(path, create=False) as writer:  # fewer changes than SAVE_BEHIND: not saved again
        add_docs(writer, np.random.default_rng(2), 1000, 20)
        writer.delete([f"d{i}" for i in range(10)])
        writer.upsert(["w1 w2 straße fresh"], ids=["d50"], embeddings=np.ones((1, writer.dimension)))
    assert saved_seq(path) == before
    with Collection(path, create=False) as col:
        assert col.engine.store.changes_floor() <= before  # the log still reaches back to the arrays
        snap = col.engine.bm25.current(build=False)
        assert snap is not None and snap.seq == col.engine.store.head() > before
        assert assert_same_as_fts5(col, [*queries(np.random.default_rng(3)), "fresh straße"]) > 100
        assert col.search("fresh", k=1, mode="lexical")[0].id == "d50"
        assert "d3" not in {h.id for h in col.search("w1 w2 w3", k=50, mode="lexical")}


def test_enough_changes_save_them_again_and_the_log_is_then_trimmed(path, monkeypatch):
    monkeypatch.setattr(lexical_arrays, "SAVE_BEHIND", 10)
    before = saved_seq(path)
    with Collection(path, create=False) as col:
        add_docs(col, np.random.default_rng(4), 2000, 30)
        col.delete([f"d{i}" for i in range(100, 200)])
    after = saved_seq(path)
    assert after > before
    assert len(list(path.glob("lexical-*.npy"))) == len(lexical_file.PARTS)  # the old files are gone
    with Collection(path, create=False) as col:
        assert col.engine.store.changes_floor() == after  # vectors and BM25 saved at the same point
        assert assert_same_as_fts5(col, queries(np.random.default_rng(5))) > 100


def test_a_damaged_file_is_never_used_and_verify_saves_it_again(path):
    rows = next(path.glob("lexical-*.rows.npy"))
    data = bytearray(rows.read_bytes())
    data[-5] ^= 0xFF  # same size, another identity: hashed before use, and refused
    rows.write_bytes(bytes(data))
    with Collection(path, create=False) as col:
        expected = col.search("w3 w7", k=5, mode="lexical")
        assert col.engine.bm25.current(build=False) is None  # FTS5 answered
        found = col.verify()
        assert any("checksum" in p for p in found["problems"]) and found["repaired"]
    with Collection(path, create=False) as col:
        snap = col.engine.bm25.current(build=False)
        assert snap is not None and snap.resident_postings == 0
        again = col.search("w3 w7", k=5, mode="lexical")
        assert [(h.id, round(h.score, 9)) for h in again] == [(h.id, round(h.score, 9)) for h in expected]


def test_a_reader_never_saves_and_missing_arrays_leave_fts5_answering(path):
    lexical_file.remove(path)
    with Collection(path, create=False) as col:
        assert col.engine.bm25.current(build=False) is None
        assert col.search("w3", k=3, mode="lexical")
    assert not (path / lexical_file.META).exists()  # a process that only searched saved nothing
    with Collection(path, create=False) as col:
        col.flush()  # an explicit flush (or any writer's close) saves them
    assert (path / lexical_file.META).exists()


def test_a_saved_state_the_log_no_longer_leads_from_is_not_used(path):
    with Collection(path, create=False) as col:
        store = col.engine.store
        store.keep_changes_from(store.head())
        add_docs(col, np.random.default_rng(6), 3000, 5)
        store.keep_changes_from(store.head())
        store.truncate_changes(store.head())  # as a re-encode does: the log restarts past the arrays
        assert store.changes_floor() > saved_seq(path)
        col.engine.bm25 = lexical_arrays.LexicalArrays(store, col.engine.lock)  # a new process's view
        col.engine.retrievers.bm25 = col.engine.bm25
        assert col.engine.bm25.current(build=False) is None
        assert col.search("w3", k=3, mode="lexical")


def test_a_term_lookup_in_the_saved_vocabulary(tmp_path):
    terms = sorted(["a", "b", "é", "東京", "zz", "straße"])
    blob, offsets, new_id = lexical_file.sorted_terms({t: i for i, t in enumerate(reversed(terms))})
    vocab = lexical_file.DiskVocab(blob, offsets)
    assert [vocab.get(t) for t in terms] == list(range(len(terms)))
    assert vocab.get("missing") is None and len(vocab) == len(terms)
    assert vocab.setdefault("new", len(vocab)) == len(terms) and vocab.get("new") == len(terms)
    assert dict(vocab.items()) == {**{t: i for i, t in enumerate(terms)}, "new": len(terms)}
    assert new_id.tolist() == [terms.index(t) for t in reversed(terms)]


def test_a_save_stopped_half_way_leaves_the_previous_arrays_in_use(path, monkeypatch):
    """Files first (each fsynced and renamed into place), lexical.json last: a save killed between
    them leaves the metadata naming the previous, complete files."""
    from semsearch.index import files

    before = json.loads((path / lexical_file.META).read_text())
    written = []
    real_write = files.SavedFiles.write

    def dies_on_the_fourth(self, target, write):
        if len(written) == 3:
            raise KeyboardInterrupt  # as a kill would stop it (nothing after runs)
        written.append(target)
        real_write(self, target, write)

    monkeypatch.setattr(lexical_arrays, "SAVE_BEHIND", 1)
    with Collection(path, create=False) as col:
        add_docs(col, np.random.default_rng(11), 5000, 5)
        monkeypatch.setattr(files.SavedFiles, "write", dies_on_the_fourth)
        with pytest.raises(KeyboardInterrupt):
            col.flush()
        monkeypatch.setattr(files.SavedFiles, "write", real_write)
        assert json.loads((path / lexical_file.META).read_text()) == before
        (path / "lexical-stray.rows.npy.tmp").write_bytes(b"half")  # what a kill mid-file leaves
    with Collection(path, create=False) as col:  # its close saved them
        snap = col.engine.bm25.current(build=False)
        assert snap is not None and snap.seq == col.engine.store.head() and snap.resident_postings == 0
        assert assert_same_as_fts5(col, queries(np.random.default_rng(12))) > 100
    assert not list(path.glob("lexical-*.tmp"))
    assert len(list(path.glob("lexical-*.npy"))) == len(lexical_file.PARTS)


def test_a_reader_follows_a_writer_that_saved_new_arrays_and_trimmed_the_log(path, monkeypatch):
    """A reader holding the old arrays mapped while another writer saves new ones (and removes the
    old files, and trims the change log past them) answers from the new ones."""
    monkeypatch.setattr(lexical_arrays, "SAVE_BEHIND", 10)
    with Collection(path, create=False) as reader:
        old = reader.engine.bm25.current(build=False)
        assert old is not None and old.resident_postings == 0
        reader.search("w3", k=3, mode="lexical")
        with Collection(path, create=False) as writer:
            writer.add(["a unique zebra w3"], ids=["zebra"], embeddings=np.ones((1, writer.dimension)))
            add_docs(writer, np.random.default_rng(13), 7000, 20)
            writer.delete(["d7"])
        assert reader.engine.store.changes_floor() > old.seq  # the reader cannot catch up from the log
        assert not list(path.glob(f"lexical-{old.seq}.*"))  # and its files are gone (still mapped)
        assert reader.search("zebra", k=1, mode="lexical")[0].id == "zebra"
        now = reader.engine.bm25.current(build=False)
        assert now.seq == reader.engine.store.head() and now.resident_postings == 0  # the new files, mapped
        assert "d7" not in {h.id for h in reader.search("w1 w2 w3", k=100, mode="lexical")}
        assert assert_same_as_fts5(reader, queries(np.random.default_rng(14))) > 100


def test_a_reader_that_found_none_maps_the_arrays_a_writer_saves_later(path):
    """A long-running reader (a server) opened before any arrays existed picks them up once a writer
    saves them, instead of staying on FTS5 until it restarts."""
    lexical_file.remove(path)
    with Collection(path, create=False) as reader:
        assert reader.search("w3", k=3, mode="lexical")
        assert reader.engine.bm25.current(build=False) is None  # none saved: FTS5 answers
        with Collection(path, create=False) as writer:
            writer.add(["a unique zebra w3"], ids=["zebra"], embeddings=np.ones((1, writer.dimension)))
        assert (path / lexical_file.META).exists()
        assert reader.search("zebra", k=1, mode="lexical")[0].id == "zebra"
        snap = reader.engine.bm25.current(build=False)
        assert snap is not None and snap.seq == reader.engine.store.head() and snap.resident_postings == 0
