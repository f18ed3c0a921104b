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
        assert details["type"].startswith("IVF") and details["type"].endswith(",SQfp16")
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


def _recall_against_exact(col: Collection, x: np.ndarray, seed: int = 11) -> float:
    """Recall@10 of the collection's dense search against brute force over the vectors ``x``
    (documents d0, d1, ... in order), on queries near the data but not in it."""
    rng = np.random.default_rng(seed)
    queries = x[rng.choice(len(x), 100)] + 0.3 * rng.normal(size=(100, x.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    found = [{int(h.id[1:]) for h in row} for row in col.search(queries, k=10, mode="dense")]
    return float(np.mean([len(f & set(t.tolist())) / 10 for f, t in zip(found, truth)]))


def test_a_quantizer_trained_while_the_collection_was_tiny_is_retrained_as_it_grows(tiny):
    """Issue 18: SQ8 trained on the first 2 vectors kept those ranges forever (recall@10 0.25-0.32)."""
    with tiny(index="SQ8") as col:
        x = fill(col, 2)
        col.flush()
        x = np.concatenate([x, fill(col, 3000, start=2)])
        col.flush()
        assert _recall_against_exact(col, x) >= 0.9
        details = col.info()["index_details"]  # says what it was trained on and the recall it measured
        assert details["type"] == "SQ8" and details["trained_on"] >= 1500
        assert details["tuning"]["recall_at_10"] >= 0.9 and details["tuned_on"] == 3002
        # Growing by less than the training share keeps the codebooks (no rebuild at every flush).
        fill(col, 200, start=3002)
        col.flush()
        assert col.info()["index_details"]["trained_on"] == details["trained_on"]


def test_auto_with_a_memory_budget_steps_down_as_the_collection_grows(tiny):
    """Issue 18: `auto:<budget>` chose Flat while small and never re-decided (Flat and SQ8 are one family)."""
    with tiny(index="auto:100KB") as col:  # Flat is 136 bytes/vector at 32 dimensions: ~750 fit
        x = fill(col, 500)
        col.flush()
        assert col.info()["index_details"]["type"] == "Flat"
        x = np.concatenate([x, fill(col, 1500, start=500)])
        col.flush()
        details = col.info()["index_details"]
        assert details["type"] == "SQ8", details
        assert details["vectors"] * details["bytes_per_vector"] <= 100 * 1024
        assert _recall_against_exact(col, x) >= 0.9


def test_a_search_never_waits_for_the_index_file_being_written(tiny, monkeypatch):
    """Issue 18: the index file was written under the exclusive index lock, so every search of the
    process waited for the disk while a flush saved it (524 ms worst case at 60k vectors)."""
    import threading

    from semsearch.index.faiss import FaissIndex

    with tiny(index="Flat") as col:
        x = fill(col, 500)
        saving, release = threading.Event(), threading.Event()
        real_save = FaissIndex.save

        def blocked_save(self, path):
            saving.set()
            release.wait(120)
            return real_save(self, path)  # the record of the files written

        monkeypatch.setattr(FaissIndex, "save", blocked_save)
        flusher = threading.Thread(target=col.flush)
        found: list = []
        searcher = threading.Thread(target=lambda: found.append(col.search(x[:3], k=1, mode="dense")))
        flusher.start()
        try:
            assert saving.wait(60), "flush never saved the index"
            searcher.start()
            searcher.join(timeout=60)
            assert found, "a search waited for the index file to be written"
            assert flusher.is_alive()  # the save was still blocked while the search ran
            assert [row[0].id for row in found[0]] == ["d0", "d1", "d2"]
        finally:
            release.set()
            flusher.join()
            if searcher.is_alive() or searcher.ident:
                searcher.join()
        assert col.verify()["consistent"]
