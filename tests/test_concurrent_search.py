"""Searches in many threads while one thread writes: the vector index is only changed under its write lock."""

from __future__ import annotations

import threading

import numpy as np


def unit_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_periodic_index_save_changes_the_index_only_under_the_write_lock(tmp_path, minilm_path):
    from semsearch import Collection

    col = Collection(tmp_path / "c", index_save_every=1)
    col.add(["first"], ids=["a"], embeddings=unit_vectors(1, seed=1))
    col.search(unit_vectors(1, seed=2)[0], k=1)  # loads the index
    index = col._index
    unlocked: list[str] = []
    for name in ("add", "remove"):
        original = getattr(index, name)

        def guarded(*args, _original=original, _name=name):  # noqa: ANN001, ANN202
            if not col._index_lock._writer:
                unlocked.append(_name)
            return _original(*args)

        setattr(index, name, guarded)
    col.add(["second"], ids=["b"], embeddings=unit_vectors(1, seed=3))  # crosses index_save_every: syncs and saves
    col.delete(["a"])
    assert unlocked == [], f"index.{unlocked[0]} ran while searches could be reading the index"
    assert col._index_saved_seq == col.store.head()
    col.close()


def test_searches_during_writes_never_fail_and_stay_consistent(tmp_path, minilm_path):
    from semsearch import Collection

    col = Collection(tmp_path / "c", index_save_every=2)
    vectors = unit_vectors(60, seed=4)
    col.add([f"doc {i}" for i in range(20)], ids=[f"d{i}" for i in range(20)], embeddings=vectors[:20])
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                hits = col.search(vectors[:5], k=5)
                for h in (h for per_query in hits for h in per_query):
                    assert h.text == f"doc {h.id[1:]}", h
            except BaseException as exc:  # noqa: BLE001 - any failure in a reader is the finding
                errors.append(exc)
                return

    readers = [threading.Thread(target=search) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for i in range(20, 60):
            col.add([f"doc {i}"], ids=[f"d{i}"], embeddings=vectors[i : i + 1])
            if i % 3 == 0:
                col.delete([f"d{i - 20}"])
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors[0]
    assert col.verify()["consistent"]
    col.close()
