"""Searches in many threads while one thread writes: the vector index is only changed under its write lock."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest


def unit_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_periodic_index_save_changes_the_index_only_under_the_write_lock(tmp_path, minilm_path):
    from semsearch import Collection

    col = Collection(tmp_path / "c", index_save_every=1)
    col.add(["first"], ids=["a"], embeddings=unit_vectors(1, seed=1))
    col.search(unit_vectors(1, seed=2)[0], k=1)  # loads the index
    index = col.engine.index._index
    unlocked: list[str] = []
    for name in ("add", "remove"):
        original = getattr(index, name)

        def guarded(*args, _original=original, _name=name):  # noqa: ANN001, ANN202
            if not col.engine.index._lock._writer:
                unlocked.append(_name)
            return _original(*args)

        setattr(index, name, guarded)
    col.add(["second"], ids=["b"], embeddings=unit_vectors(1, seed=3))  # crosses index_save_every: syncs and saves
    col.delete(["a"])
    assert unlocked == [], f"index.{unlocked[0]} ran while searches could be reading the index"
    assert col.engine.index._saved_seq == col.engine.store.head()
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


def test_counting_tokens_never_changes_the_tokenizer_encoding_uses(minilm_path):
    """transformers sets padding/truncation on the shared tokenizer at every call: a count (no
    padding) racing an encode used to leave the encode unpadded, and an upsert answered 500."""
    from semsearch.embedding import Embedder
    from semsearch.ingest.chunking import Chunker
    from semsearch.retrieval.fusion import vocabulary_coverage

    emb = Embedder()
    emb.encode_documents(["sets the padding and truncation encoding needs"])
    backend = emb.tokenizer.backend_tokenizer
    before = (backend.padding, backend.truncation)
    assert before[0] is not None and before[1] is not None
    long_query = "tea plantations in the hills " * 60
    assert emb.count_tokens([long_query, "a"]) == [300, 1]  # not truncated at the model's 256
    assert (backend.padding, backend.truncation) == before
    assert vocabulary_coverage("budget-friendly lodging near the harbour", emb.plain_tokenizer) > 0.9
    assert (backend.padding, backend.truncation) == before
    Chunker(emb.plain_tokenizer, 16, 0).split_many([long_query])
    assert (backend.padding, backend.truncation) == before
    with pytest.warns(UserWarning, match="a query has 300 tokens"):
        emb.encode_queries([long_query])  # counts the long query's tokens to warn about truncation


def test_word_pieces_of_the_private_tokenizer_match_the_models(minilm_path):
    from semsearch.embedding import Embedder

    emb = Embedder()
    for text in ("photosynthesis", "Budget-friendly lodging", "пирожки", "ქართული", "x86_64 2024", "😀"):
        assert emb.plain_tokenizer.tokenize(text) == emb.tokenizer.tokenize(text), text
    assert emb.plain_tokenizer.unk_token == emb.tokenizer.unk_token == "[UNK]"


def test_encoding_never_fails_while_other_threads_count_tokens(minilm_path):
    """The race behind the 500 above, reproduced: with the model's tokenizer it failed within seconds."""
    from semsearch.embedding import Embedder
    from semsearch.retrieval.fusion import vocabulary_coverage

    emb = Embedder(query_cache=1)
    emb.encode_documents(["warm up"])
    errors: list[BaseException] = []
    encodes = [0]
    stop = threading.Event()

    def encode(t: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:  # new texts every time, of varied lengths, so every call pads
                emb.encode_documents([f"text {t} {i} " + "word " * (i % 30), f"short {t} {i}"] * 3)
                encodes[0] += 1
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
                return

    def count() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                vocabulary_coverage(f"harbour cranes {i}", emb.plain_tokenizer)
                emb.count_tokens([f"tea plantations {i}"])
                emb.encode_queries(["alpine tunnels " * 80])  # long: counts its tokens to warn
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=encode, args=(t,)) for t in range(2)] + [
        threading.Thread(target=count) for _ in range(2)
    ]
    for t in threads:
        t.start()
    # Enough encodes to have overlapped the counting threads many times, however busy the machine.
    deadline = time.monotonic() + 120
    while encodes[0] < 30 and not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert encodes[0] >= 30
