"""`serve --watch`: the server keeps its default collection in sync with a folder while it runs."""

from __future__ import annotations

import threading
import time

import pytest

from semsearch.errors import InvalidInputError

pytest.importorskip("watchdog", reason="the watch extra (pip install 'semsearch[watch]')")

BOUND = 20.0


def sources(client, query: str) -> list[str]:
    r = client.post("/search", json={"query": query, "k": 10})
    assert r.status_code == 200, r.text
    return [h["source"] or "" for h in r.json()["results"][0]["hits"]]


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {BOUND}s: {what}")


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "semsearch-watch"]


def test_files_in_the_watched_folder_are_searchable_while_serving(served, tmp_path):
    from fastapi.testclient import TestClient

    from semsearch.server import create_app

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "ferry.md").write_text("The ferry to the island leaves every hour from pier 3.")
    with TestClient(create_app({"docs": served}, watch=[folder], warm_up=False)) as client:
        wait_for(lambda: any(s.endswith("ferry.md") for s in sources(client, "boat timetable to the island")),
                 "a file present at startup indexed")
        (folder / "bakery.md").write_text("The bakery on Main Street sells sourdough bread from 7 am.")
        wait_for(lambda: any(s.endswith("bakery.md") for s in sources(client, "where to buy fresh bread")),
                 "a new file searchable")
        (folder / "ferry.md").unlink()
        wait_for(lambda: not any(s.endswith("ferry.md") for s in sources(client, "boat timetable to the island")),
                 "a deleted file gone")
        assert len(watch_threads()) == 1
    assert watch_threads() == []  # the app's shutdown stopped the watch


def test_a_watch_path_that_does_not_exist_is_refused_at_startup(make_client, tmp_path):
    with pytest.raises(InvalidInputError, match="no such file or folder"):
        make_client(watch=[tmp_path / "missing"])
