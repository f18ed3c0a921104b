"""Folder watching with a real watcher (watchdog) on temporary folders and the real model."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch.ingest.watch import FolderWatcher

pytest.importorskip("watchdog", reason="the watch extra (pip install 'semsearch[watch]')")

SETTLE = 0.3
BOUND = 15.0  # seconds a change may take to be searchable (settle + batch + encoding, on a busy CI machine)


def wait_for(predicate, what: str, bound: float = BOUND) -> float:
    """Seconds until ``predicate()`` holds; fails after ``bound``."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {bound}s: {what}")


def texts(col: Collection) -> dict[str, str]:
    """{source relative to the folder holding the watched ``docs``: text} of every document."""
    return {Path(d.source).relative_to(col.base).as_posix(): d.text.strip() for d in col.get()}


@pytest.fixture()
def watched(tmp_path, minilm_path):
    """A folder ``w/docs`` watched into a fresh collection; yields (folder, collection, watcher)."""
    root = tmp_path / "w"
    docs = root / "docs"
    docs.mkdir(parents=True)
    col = Collection(tmp_path / "col")
    col.base = root.resolve()  # sources are resolved paths
    started: list[FolderWatcher] = []
    syncs, notices = [], []

    def start(paths=None, settle=SETTLE, **kw) -> FolderWatcher:
        watcher = FolderWatcher(col, paths or [docs], settle=settle, on_sync=syncs.append, on_notice=notices.append,
                                **kw)
        watcher.syncs, watcher.notices = syncs, notices
        watcher.start()
        started.append(watcher)
        assert watcher.ready.wait(30)
        return watcher

    yield docs, col, start
    for watcher in started:
        watcher.stop(timeout=30)
        assert not watcher._thread.is_alive()
    assert col.verify()["consistent"]
    col.close()


def test_create_modify_delete_and_rename_are_applied_within_seconds(watched):
    docs, col, start = watched
    watcher = start()
    (docs / "a.md").write_text("Budget lodging by the coast.")
    took = [wait_for(lambda: texts(col).get("docs/a.md") == "Budget lodging by the coast.", "created file indexed")]
    (docs / "a.md").write_text("A mountain cabin with a wood stove.")
    took.append(wait_for(lambda: texts(col).get("docs/a.md") == "A mountain cabin with a wood stove.",
                         "change applied"))
    assert col.search("cosy hut in the mountains", k=1)[0].source.endswith("a.md")
    (docs / "a.md").rename(docs / "b.md")
    took.append(wait_for(lambda: set(texts(col)) == {"docs/b.md"}, "rename applied"))
    (docs / "b.md").unlink()
    took.append(wait_for(lambda: texts(col) == {}, "deletion applied"))
    assert all(t < BOUND for t in took)
    assert sum(s.files_added for s in watcher.syncs) == 2 and sum(s.files_removed for s in watcher.syncs) == 2


def test_a_file_being_written_is_indexed_only_once_complete(watched):
    docs, col, start = watched
    # Pieces 0.1 s apart against a settle time 15 times longer: a loaded machine that stalls this
    # writing thread for 0.3 s (the other tests' settle time) must not make the file look complete.
    start(settle=1.5)
    lines = [f"Line {i} of a long report about tide tables and harbour fees." for i in range(30)]
    seen: list[dict[str, str]] = []
    done = threading.Event()

    def observe():
        while not done.is_set():
            seen.append(texts(col))
            time.sleep(0.02)

    observer = threading.Thread(target=observe)
    observer.start()
    with open(docs / "report.txt", "w") as f:  # written over ~3 s, in pieces closer than the settle time
        for line in lines:
            f.write(line + "\n")
            f.flush()
            time.sleep(0.1)
    complete = "\n".join(lines)
    wait_for(lambda: texts(col).get("docs/report.txt") == complete, "the complete file indexed")
    done.set()
    observer.join()
    partial = [s["docs/report.txt"] for s in seen if "docs/report.txt" in s and s["docs/report.txt"] != complete]
    assert partial == []  # never searchable half-written


def test_a_folder_moved_away_keeps_its_documents_and_is_reconciled_when_back(watched):
    docs, col, start = watched
    (docs / "keep.md").write_text("Stays the same.")
    (docs / "edit.md").write_text("Before the edit.")
    (docs / "drop.md").write_text("Deleted while away.")
    col.index_files([docs])
    watcher = start()
    away = docs.parent / "away"
    docs.rename(away)
    wait_for(lambda: any("is gone" in n for n in watcher.notices), "the watch notices the folder left")
    (away / "edit.md").write_text("After the edit.")  # inotify still reports these under docs/
    (away / "drop.md").unlink()
    (away / "new.md").write_text("Created while away.")
    time.sleep(SETTLE * 4)
    assert texts(col) == {"docs/keep.md": "Stays the same.", "docs/edit.md": "Before the edit.",
                          "docs/drop.md": "Deleted while away."}  # nothing lost, nothing misapplied
    away.rename(docs)
    wait_for(lambda: texts(col) == {"docs/keep.md": "Stays the same.", "docs/edit.md": "After the edit.",
                                    "docs/new.md": "Created while away."}, "the folder reconciled")
    (docs / "later.md").write_text("Watched again.")
    wait_for(lambda: "docs/later.md" in texts(col), "changes after the return")


def test_a_folder_deleted_and_made_again_is_watched_again(watched):
    docs, col, start = watched
    (docs / "old.md").write_text("From the first folder.")
    col.index_files([docs])
    watcher = start()
    shutil.rmtree(docs)
    wait_for(lambda: any("is gone" in n for n in watcher.notices), "the watch notices the folder left")
    docs.mkdir()
    (docs / "fresh.md").write_text("From the second folder.")
    wait_for(lambda: texts(col) == {"docs/fresh.md": "From the second folder."}, "the new folder synced")


def test_folders_moved_in_are_indexed_and_folders_removed_take_their_documents(watched, tmp_path):
    docs, col, start = watched
    start()
    outside = tmp_path / "outside" / "batch"
    (outside / "deeper").mkdir(parents=True)
    (outside / "one.md").write_text("First moved file.")
    (outside / "deeper" / "two.txt").write_text("Second moved file.")
    (outside / ".hidden.md").write_text("Hidden files are not indexed.")
    outside.rename(docs / "batch")
    wait_for(lambda: set(texts(col)) == {"docs/batch/one.md", "docs/batch/deeper/two.txt"}, "moved-in folder indexed")
    shutil.rmtree(docs / "batch" / "deeper")
    wait_for(lambda: set(texts(col)) == {"docs/batch/one.md"}, "removed folder's documents deleted")


def test_a_malformed_file_does_not_hold_back_the_others(watched):
    docs, col, start = watched
    watcher = start()
    (docs / "bad.jsonl").write_text('{"text": "fine"}\n{"text": broken\n')
    (docs / "good.md").write_text("A good file next to a bad one.")
    wait_for(lambda: "docs/good.md" in texts(col), "the good file indexed")
    wait_for(lambda: any("bad.jsonl:2" in w for s in watcher.syncs for w in s.warnings), "the bad line named")
    (docs / "bad.jsonl").write_text('{"text": "fine"}\n{"text": "fixed"}\n')
    wait_for(lambda: {d.text for d in col.get() if d.source.endswith("bad.jsonl")} == {"fine", "fixed"}, "fixed file")


def test_one_watched_file_ignores_its_neighbours_and_no_prune_keeps_deletions(watched):
    docs, col, start = watched
    (docs / "notes.md").write_text("My notes.")
    (docs / "other.md").write_text("Not watched.")
    col.index_files([docs / "notes.md"])
    start([docs / "notes.md"], prune=False)
    (docs / "other.md").write_text("Still not watched.")
    (docs / "notes.md").write_text("My edited notes.")
    wait_for(lambda: texts(col) == {"docs/notes.md": "My edited notes."}, "the watched file updated")
    (docs / "notes.md").unlink()
    time.sleep(SETTLE * 4)
    assert texts(col) == {"docs/notes.md": "My edited notes."}  # --no-prune: deletions are not applied


def test_a_json_export_dropped_in_becomes_one_document_per_line(watched):
    docs, col, start = watched
    start()
    rows = [{"_id": f"r{i}", "text": f"Record number {i} about ferries."} for i in range(50)]
    tmp = docs.parent / "export.jsonl.part"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.rename(docs / "export.jsonl")  # written elsewhere, then moved in: the usual safe way
    wait_for(lambda: col.count() == 50, "every record indexed")
    assert {d.id for d in col.get()} == {r["_id"] for r in rows}
