"""verify: the store's integrity, the index files' checksums, the index against the store, repairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from semsearch import Collection
from semsearch.cli import app


@pytest.fixture()
def saved(tmp_path, minilm_path):
    path = tmp_path / "c"
    with Collection(path) as col:
        vectors = np.random.default_rng(0).normal(size=(300, col.dimension)).astype(np.float32)
        col.add([f"document {i}" for i in range(300)], ids=[f"d{i}" for i in range(300)], embeddings=vectors)
        col.flush()
    return path, vectors


def test_a_healthy_collection_verifies_clean(saved):
    path, _ = saved
    with Collection(path) as col:
        found = col.verify()
    assert found["consistent"] and found["problems"] == [] and found["repaired"] == [] and found["store"] == "ok"
    assert found["chunks"] == found["vectors"] == 300


def test_a_damaged_index_file_is_found_repaired_and_saved(saved):
    path, vectors = saved
    index_file = next(path.glob("vectors-*.faiss"))
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in the vectors region
    index_file.write_bytes(bytes(data))
    with Collection(path) as col:
        found = col.verify()
        assert not found["consistent"] and any("checksum" in p for p in found["problems"]), found
        assert found["repaired"] and col.search(vectors[7], k=1)[0].id == "d7"
        assert col.verify()["consistent"]  # the rebuilt index was saved: nothing left to repair
    r = CliRunner().invoke(app, ["verify", "-c", str(path), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["consistent"]


def test_the_cli_fails_when_the_store_itself_is_damaged(saved):
    path, _ = saved
    db = path / "collection.sqlite3"
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(2 * page, min(len(data), 6 * page), 97):  # garble table pages, keep the header
        data[offset] ^= 0x5A
    db.write_bytes(bytes(data))
    for leftover in path.glob("collection.sqlite3-*"):
        leftover.unlink()
    r = CliRunner().invoke(app, ["verify", "-c", str(path)])
    text = " ".join(r.output.split())
    assert r.exit_code != 0 and ("store itself is damaged" in text or "not a semsearch collection" in text), text
