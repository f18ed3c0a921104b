"""A damaged store (bytes overwritten inside collection.sqlite3): found, marked, refused, repaired.

The collection is built once with the real model from a JSONL file; each test damages a copy.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from semsearch import Collection, StoreDamagedError, StoreDamagedWarning
from semsearch.cli import app

PAGE = 4096  # SQLite's default page size, which collections use
SUBJECTS = ["river", "mountain", "violin", "harbour", "glacier", "orchard", "lantern", "meadow", "comet", "falcon"]
PLACES = ["valley", "village", "island", "city", "forest", "desert", "coast", "plateau"]
runner = CliRunner()


def document_text(n: int) -> str:
    """A deterministic text of 250-400 characters (the same bytes on every machine)."""
    rng = np.random.default_rng(n)
    words = [SUBJECTS[int(rng.integers(10))] for _ in range(6)]
    place = PLACES[n % len(PLACES)]
    return (f"Record {n:04d}: the {words[0]} near the {place} was described by the {words[1]} society. "
            f"Visitors compared the {words[2]} with the {words[3]} and wrote about the {words[4]} at length; "
            f"the {words[5]} of the {place} is mentioned in {n % 7 + 1} later reports and in the local archive.")


N_DOCUMENTS = 160


@pytest.fixture(scope="module")
def built(tmp_path_factory, minilm_path):
    """(collection folder, source file, ids) of a sound collection indexed from a JSONL file."""
    root = tmp_path_factory.mktemp("repair")
    source = root / "docs.jsonl"
    ids = [f"doc-{n:04d}" for n in range(N_DOCUMENTS)]
    source.write_text("".join(json.dumps({"id": i, "text": document_text(n)}) + "\n" for n, i in enumerate(ids)))
    folder = root / "col"
    with Collection(folder, engine="torch") as col:
        col.index_files([source])
        col.flush()
    assert not list(folder.glob("collection.sqlite3-wal"))  # closed cleanly: everything is in the file
    return folder, source, ids


@pytest.fixture()
def copy(built, tmp_path):
    folder, source, ids = built
    target = tmp_path / "col"
    shutil.copytree(folder, target)
    return target, source, ids  # the copy's documents name the module's source file


def overwrite(db, offset: int, length: int) -> None:
    data = bytearray(db.read_bytes())
    data[offset : offset + length] = bytes((i * 37 + 11) % 251 for i in range(length))
    db.write_bytes(bytes(data))


def page_holding(db, needle: bytes) -> int:
    offset = db.read_bytes().find(needle)
    assert offset > 0, needle
    return offset // PAGE * PAGE


def invoke(folder, *args):
    result = runner.invoke(app, [*args, "--collection", str(folder)])
    result.text = " ".join(result.output.split())
    return result


def test_8kb_overwritten_mid_file_is_found_marked_refused_and_repaired(copy):
    folder, source, ids = copy
    db = folder / "collection.sqlite3"
    overwrite(db, db.stat().st_size // 2 // PAGE * PAGE, 8192)

    r = invoke(folder, "verify")
    assert r.exit_code != 0 and "store itself is damaged" in r.text and "semsearch verify --repair" in r.text
    assert (folder / "store-damaged.json").exists()
    r = invoke(folder, "info")  # every command warns until the repair
    assert "is damaged" in r.text and "verify --repair" in r.text
    r = runner.invoke(app, ["index", str(source), "--collection", str(folder)])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "verify --repair" in text and "unchanged" not in text
    r = invoke(folder, "delete", ids[0])
    assert r.exit_code == 1 and "writes are refused" in r.text

    r = invoke(folder, "verify", "--repair", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["repaired"] and report["lost"] == [] and report["lost_without_id"] == 0
    assert report["documents"] == N_DOCUMENTS
    assert (folder / report["damaged_copy"].rsplit("/", 1)[-1]).exists()  # kept aside, not deleted

    assert not (folder / "store-damaged.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreDamagedWarning)
        with Collection(folder) as col:
            assert col.verify()["consistent"]
            docs = col.get(ids)
            assert [d.text for d in docs] == [document_text(n) for n in range(N_DOCUMENTS)]
            hit = col.search(document_text(77), k=1, mode="dense")[0]
            assert hit.id == ids[77]
            col.add(["A document written after the repair."], ids=["after"])  # writable again
            assert col.delete([ids[0]]) == 1 and col.count() == N_DOCUMENTS


def test_a_lost_page_of_documents_is_listed_and_indexed_again_from_its_file(copy, tmp_path):
    folder, source, ids = copy
    db = folder / "collection.sqlite3"
    start = page_holding(db, document_text(90).encode()[:60])
    overwrite(db, start, PAGE)
    with Collection(folder) as col:
        with pytest.raises(StoreDamagedError, match="verify --repair"):
            col.get([ids[90]])  # a read that meets the damage marks the collection
    with pytest.warns(StoreDamagedWarning, match="verify --repair"), Collection(folder) as col:
        with pytest.raises(StoreDamagedError, match="writes are refused"):
            col.add(["new"], ids=["new"])
        hidden = tmp_path / "moved.jsonl"
        source.rename(hidden)  # the source file is gone: its lost documents cannot come back from it
        try:
            report = col.repair()
        finally:
            hidden.rename(source)
        assert report.repaired and ids[90] in report.lost and report.restored_from_files == []
        assert report.lost_sources[ids[90]] == str(source)
        assert set(report.lost) <= set(ids) and report.documents == N_DOCUMENTS - len(report.lost)
        assert col.get(report.lost) == [] and col.info()["partial_files"] == 1
    r = runner.invoke(app, ["index", str(source), "--collection", str(folder)])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and f"indexed {len(report.lost)} document(s)" in out  # only the lost ones
    with Collection(folder) as col:
        assert col.count() == N_DOCUMENTS and col.get([ids[90]])[0].text == document_text(90)


def test_documents_that_lost_their_vectors_are_encoded_again_from_their_text(copy):
    folder, _, ids = copy
    db = folder / "collection.sqlite3"
    with Collection(folder) as col:
        (chunk_id,) = col.engine.chunk_ids_of([ids[40]])[ids[40]]
        vector = col.engine.vectors(np.array([chunk_id]))[1][0]
    overwrite(db, page_holding(db, vector.astype(np.float32).tobytes()), PAGE)
    with Collection(folder) as col:
        report = col.repair()
        assert report.repaired and ids[40] in report.encoded_again and report.lost == []
        assert col.count() == N_DOCUMENTS and col.verify()["consistent"]
        assert col.search(document_text(40), k=1, mode="dense")[0].id == ids[40]


def test_a_sound_store_is_left_alone(copy):
    folder, _, _ = copy
    with Collection(folder) as col:
        report = col.repair()
        assert not report.repaired and report.documents == N_DOCUMENTS
    assert not list(folder.glob("collection.sqlite3.damaged-*"))
    r = invoke(folder, "verify", "--repair")
    assert r.exit_code == 0 and "nothing to repair" in r.text


def test_the_server_says_a_store_is_damaged_and_refuses_writes(copy):
    from fastapi.testclient import TestClient

    from semsearch.server import create_app

    folder, _, ids = copy
    db = folder / "collection.sqlite3"
    overwrite(db, page_holding(db, document_text(90).encode()[:60]), PAGE)
    assert invoke(folder, "verify").exit_code != 0
    with pytest.warns(StoreDamagedWarning), Collection(folder) as col:
        with TestClient(create_app({"docs": col}, warm_up=False)) as client:
            (info,) = client.get("/collections").json()["collections"]
            assert info["store_damaged"] is True
            r = client.post("/add", json={"documents": ["new text"], "ids": ["new"]})
            assert r.status_code == 503 and r.json()["error"]["type"] == "store_damaged"
            assert "verify --repair" in r.json()["error"]["message"] and str(folder) not in r.text
            r = client.post("/search", json={"query": document_text(90), "k": 1})  # a read that meets the damage
            assert r.status_code == 503 and r.json()["error"]["type"] == "store_damaged"
