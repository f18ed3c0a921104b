"""Index specs through the Collection: auto tuning, spec changes without re-encoding, crash safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsearch import Collection
from semsearch.errors import InvalidInputError

from .test_index_types import clustered


def fill(col: Collection, n: int, start: int = 0) -> np.ndarray:
    x = clustered(n, dim=col.dimension, seed=start + 5)
    col.add([f"doc {i}" for i in range(start, start + n)], ids=[f"d{i}" for i in range(start, start + n)], embeddings=x)
    return x


@pytest.fixture()
def tiny(tmp_path, tiny_model_dir):
    def open_(index=None, **kw):
        return Collection(tmp_path / "c", model=str(tiny_model_dir), precision="fp32", index=index, **kw)

    return open_


def test_auto_switches_to_a_tuned_ivf_at_flush_and_info_shows_its_recall(tiny, monkeypatch):
    import semsearch.index.tuning as tuning

    monkeypatch.setattr(tuning, "EXACT_UNTIL", 2000)  # the real threshold is 100k vectors
    with tiny() as col:
        assert col.manifest["index"] == "auto"
        fill(col, 1000)
        col.flush()
        assert col.info()["index_details"]["type"] == "Flat"
        x = np.concatenate([clustered(1000, dim=32, seed=5), fill(col, 4000, start=1000)])
        col.flush()
        details = col.info()["index_details"]
        assert details["type"].startswith("IVF") and details["type"].endswith(",Flat")
        nlist = int(details["type"][3:].split(",")[0])
        assert nlist <= 5000 // 39
        assert details["tuning"]["param"] == "nprobe" and details["tuning"]["recall_at_10"] >= 0.95
        # Recall on fresh queries (not from the data) against brute force.
        rng = np.random.default_rng(99)
        queries = x[rng.choice(len(x), 100)] + 0.2 * rng.normal(size=(100, 32)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        truth = np.argsort(-(queries @ x.T), axis=1)[:, :10]
        hits = col.search(queries, k=10)
        found = [{int(h.id[1:]) for h in row} for row in hits]
        recall = np.mean([len(f & set(t.tolist())) / 10 for f, t in zip(found, truth)])
        assert recall >= 0.9
        assert all(len(row) == 10 for row in hits)


def test_too_small_for_its_ivf_it_searches_exactly_then_trains_at_flush(tiny):
    with tiny(index="IVF16,Flat") as col:  # needs 16 * 39 = 624 vectors
        x = fill(col, 300)
        col.flush()
        details = col.info()["index_details"]
        assert "needs 624 vectors" in details["note"]
        q = x[:5]
        assert [r[0].id for r in col.search(q, k=1)] == [f"d{i}" for i in range(5)]
        fill(col, 700, start=300)
        col.flush()
        details = col.info()["index_details"]
        assert "note" not in details and details["tuning"]["recall_at_10"] >= 0.95


def test_changing_the_spec_rebuilds_from_stored_vectors_without_encoding(tiny, monkeypatch):
    with tiny() as col:
        x = fill(col, 1500)
        before = [[h.id for h in row] for row in col.search(x[:20], k=5)]

    from semsearch.embedding import Embedder

    def no_encoding(*a, **k):
        raise AssertionError("the spec change re-encoded documents")

    monkeypatch.setattr(Embedder, "encode_documents", no_encoding)
    with tiny(index="HNSW16") as col:
        assert col.manifest["index"] == "HNSW16"
        assert col.info()["index_details"]["type"] == "HNSW16"
        after = [[h.id for h in row] for row in col.search(x[:20], k=5)]
        assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(before, after)]) >= 0.9
        col.delete([f"d{i}" for i in range(10)])
        assert not any(h.id in {f"d{i}" for i in range(10)} for row in col.search(x[:20], k=5) for h in row)
    with tiny() as col:  # reopening without a spec keeps the new one
        assert col.manifest["index"] == "HNSW16" and col.verify()["consistent"]


def test_a_bad_spec_changes_nothing(tiny):
    with tiny() as col:
        fill(col, 100)
    with pytest.raises(InvalidInputError, match="index_factory"):
        tiny(index="IVF,Bogus")
    with tiny() as col:
        assert col.manifest["index"] == "auto"


def test_a_crash_during_the_spec_change_leaves_a_consistent_collection(tiny, monkeypatch, tmp_path):
    with tiny() as col:
        x = fill(col, 800)
    import semsearch.index.build as build

    real = build.build_from_store

    def killed(*a, **k):
        raise KeyboardInterrupt("killed while rebuilding")

    monkeypatch.setattr(build, "build_from_store", killed)
    with pytest.raises(KeyboardInterrupt):
        tiny(index="SQ8")
    monkeypatch.setattr(build, "build_from_store", real)
    # The manifest committed first; the old index file is stale and gets rebuilt from the store.
    assert json.loads((tmp_path / "c" / "vectors.json").read_text())["spec"] == "auto"
    with tiny() as col:
        assert col.manifest["index"] == "SQ8"
        assert [r[0].id for r in col.search(x[:5], k=1)] == [f"d{i}" for i in range(5)]
        assert col.verify()["consistent"]
        col.flush()
        assert col.info()["index_details"]["type"] == "SQ8"
