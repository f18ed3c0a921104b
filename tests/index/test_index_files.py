"""Saved index files carry digests: any damaged, truncated, missing or unrecorded file is refused."""

from __future__ import annotations

import json
import logging
import os

import faiss
import numpy as np
import pytest

from semsearch import Collection
from semsearch.errors import IndexFileCorruptError
from semsearch.index import load_index
from semsearch.index.files import CHECKSUMS_SUFFIX, digest_of

from .test_index_types import DIM, built, clustered

# Every index family: exact, IVF (flat, SQ8, PQ codes), graphs (plain and SQ8), exhaustive codes, binary.
SPECS = ["Flat", "IVF16,Flat", "IVF16,SQ8", "IVF16,PQ8x4", "HNSW16", "HNSW16,SQ8", "SQ8", "PQ8x4", "binary",
         "binary,SQ8"]


@pytest.fixture(scope="module")
def data():
    x = clustered(2_000)
    return np.arange(len(x), dtype=np.int64) * 3 + 7, x


def saved(tmp_path, data, spec):
    ids, x = data
    index = built(spec, ids, x)
    index.remove(ids[:50])  # HNSW keeps tombstones: a side file more to damage
    path = tmp_path / "vectors-3.faiss"
    record = index.save(path)
    return index, path, record


def positions(size: int) -> list[int]:
    """The first and last bytes, the header, and 24 places spread over the file."""
    spread = np.linspace(0, size - 1, 24).astype(int).tolist()
    return sorted({0, 1, 2, 3, 5, 8, 13, 21, size // 2, size - 9, size - 2, size - 1, *spread} & set(range(size)))


def flip(path, at: int, mask: int = 0x01) -> bytes:
    data = path.read_bytes()
    damaged = bytearray(data)
    damaged[at] ^= mask
    path.write_bytes(bytes(damaged))
    return data


@pytest.mark.parametrize("spec", SPECS)
def test_the_record_lists_every_file_the_save_wrote_and_matches_them(tmp_path, data, spec):
    index, path, record = saved(tmp_path, data, spec)
    written = {p.name for p in tmp_path.iterdir()} - {path.name + CHECKSUMS_SUFFIX}
    assert set(record) == written
    assert path.name in record and path.name + ".meta.json" in record
    if spec.startswith("HNSW"):
        assert path.name + ".tombstones.npy" in record
    for name, digest in record.items():
        assert digest == digest_of(tmp_path / name)
    assert json.loads((tmp_path / (path.name + CHECKSUMS_SUFFIX)).read_text())["files"] == record
    for checksums in (record, None):
        again = load_index(path, spec, DIM, checksums=checksums)
        assert len(again) == len(index)


@pytest.mark.parametrize("spec", SPECS)
def test_a_flipped_byte_anywhere_in_any_file_is_refused(tmp_path, data, spec):
    _, path, record = saved(tmp_path, data, spec)
    for name in record:
        file = tmp_path / name
        for at in positions(file.stat().st_size):
            for mask in (0x01, 0x80):
                original = flip(file, at, mask)
                for checksums in (record, None):  # the caller's record, or the one next to the index
                    with pytest.raises(IndexFileCorruptError, match="checksum mismatch") as caught:
                        load_index(path, spec, DIM, checksums=checksums)
                    assert caught.value.path == str(file)
                file.write_bytes(original)
    assert len(load_index(path, spec, DIM)) > 0  # undamaged again: loads


@pytest.mark.parametrize("spec", ["Flat", "IVF16,PQ8x4", "HNSW16", "binary,SQ8"])
def test_a_truncated_or_missing_file_is_refused(tmp_path, data, spec):
    _, path, record = saved(tmp_path, data, spec)
    for name in record:
        file = tmp_path / name
        original = file.read_bytes()
        for keep in (0, 1, len(original) // 2, len(original) - 1):
            file.write_bytes(original[:keep])
            with pytest.raises(IndexFileCorruptError, match=f"{keep:,} bytes where {len(original):,} were written"):
                load_index(path, spec, DIM, checksums=record)
        file.unlink()
        with pytest.raises(IndexFileCorruptError, match="missing"):
            load_index(path, spec, DIM)
        file.write_bytes(original)
    load_index(path, spec, DIM, checksums=record)


def test_every_byte_of_the_record_next_to_the_index_is_protected(tmp_path, data):
    """Without the caller's record, the one saved next to the index is the reference: damage to
    it must not let a load through either (it is written without spaces, so no byte is slack)."""
    _, path, _ = saved(tmp_path, data, "Flat")
    sidecar = tmp_path / (path.name + CHECKSUMS_SUFFIX)
    for at in range(sidecar.stat().st_size):
        for mask in (0x01, 0x80):
            original = flip(sidecar, at, mask)
            with pytest.raises(IndexFileCorruptError):
                load_index(path, "Flat", DIM)
            sidecar.write_bytes(original)


def test_an_index_without_any_record_is_unverifiable_and_refused(tmp_path, data):
    _, path, record = saved(tmp_path, data, "Flat")
    (tmp_path / (path.name + CHECKSUMS_SUFFIX)).unlink()
    with pytest.raises(IndexFileCorruptError, match="no checksum record"):
        load_index(path, "Flat", DIM)
    del record[path.name + ".meta.json"]
    with pytest.raises(IndexFileCorruptError, match="no checksum recorded for this file"):
        load_index(path, "Flat", DIM, checksums=record)


def test_a_file_replaced_while_it_is_read_is_refused(tmp_path, data, monkeypatch):
    """What is parsed must be what was verified: a save renaming another file into place between
    the check and the read is caught."""
    _, path, record = saved(tmp_path, data, "Flat")
    other = tmp_path / "other.faiss"
    faiss.write_index(faiss.IndexIDMap(faiss.IndexFlatIP(DIM)), str(other))
    real_read = faiss.read_index

    def read_after_a_rename(name, *args):
        os.replace(other, name)
        return real_read(name, *args)

    monkeypatch.setattr(faiss, "read_index", read_after_a_rename)
    with pytest.raises(IndexFileCorruptError, match="replaced by another save"):
        load_index(path, "Flat", DIM, checksums=record)


def test_a_save_under_the_same_name_drops_side_files_it_no_longer_has(tmp_path, data):
    ids, x = data
    index = built("HNSW16", ids, x)
    index.remove(ids[:10])
    path = tmp_path / "vectors-1.faiss"
    index.save(path)
    fresh = built("HNSW16", ids, x)
    record = fresh.save(path)
    assert not (tmp_path / "vectors-1.faiss.tombstones.npy").exists()
    assert len(load_index(path, "HNSW16", DIM, checksums=record)) == len(ids)


# -- through a collection: the damaged index is rebuilt from the store --------------------------


@pytest.fixture()
def saved_collection(tmp_path, tiny_model_dir):
    def open_(**kw):
        return Collection(tmp_path / "c", model=str(tiny_model_dir), precision="fp32", index="Flat", **kw)

    x = clustered(500, dim=32, seed=11)
    with open_() as col:
        col.add([f"doc {i}" for i in range(len(x))], ids=[f"d{i}" for i in range(len(x))], embeddings=x)
    return open_, x, tmp_path / "c"


@pytest.mark.parametrize("where", ["vectors", "header", "id map", "meta", "record"])
def test_a_collection_rebuilds_a_damaged_index_from_the_store_and_says_so(saved_collection, where, caplog):
    open_, x, folder = saved_collection
    meta = json.loads((folder / "vectors.json").read_text())
    main = folder / meta["file"]
    size = main.stat().st_size
    target, at = {
        "vectors": (main, size // 2),  # inside the float32 vectors
        "header": (main, 4),  # FAISS's dimension field
        "id map": (main, size - 5),  # the IndexIDMap's ids come last
        "meta": (folder / (meta["file"] + ".meta.json"), 3),
        "record": (folder / (meta["file"] + CHECKSUMS_SUFFIX), 30),
    }[where]
    flip(target, at, 0x10)
    queries = x[:20]
    with caplog.at_level(logging.WARNING, logger="semsearch"), open_() as col:
        hits = col.search(queries, k=1, mode="dense")
        col.flush()  # a rebuilt index is saved at the next flush (close() saves only when the store moved on)
    assert [row[0].id for row in hits] == [f"d{i}" for i in range(20)]  # exact answers: rebuilt, not damaged
    rebuilt = any("rebuilding the vector index" in r.getMessage() and "cannot be used" in r.getMessage()
                  for r in caplog.records)
    # vectors.json keeps the record the collection checks against: a damaged side copy changes nothing
    assert rebuilt == (where != "record")
    # The index on disk is sound, checked against the record vectors.json keeps.
    meta = json.loads((folder / "vectors.json").read_text())
    assert len(load_index(folder / meta["file"], "Flat", 32, checksums=meta["files"])) == len(x)


def test_verify_files_lists_each_damaged_file_without_loading(tmp_path, data):
    from semsearch.index.files import verify_files

    _, path, record = saved(tmp_path, data, "HNSW16")
    assert verify_files(path) == [] and verify_files(path, record) == []
    flip(path, path.stat().st_size // 2)
    (tmp_path / (path.name + ".tombstones.npy")).unlink()
    problems = verify_files(path, record)
    assert sorted(p.path for p in problems) == sorted([str(path), str(tmp_path / (path.name + ".tombstones.npy"))])
    assert {p.reason.split(" (")[0] for p in problems} == {"checksum mismatch", "missing"}
