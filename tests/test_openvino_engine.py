"""The OpenVINO engine: same vectors as torch (to the precision asked), cached conversion, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from semsearch.embedding import Embedder, calibration, light, openvino_engine
from semsearch.embedding import models as emb

pytestmark = pytest.mark.skipif(not openvino_engine.openvino_available(), reason="openvino is not installed")

TEXTS = [
    "affordable accommodation near the beach",
    "Budget-friendly lodging by the coast, five minutes from the sand.",
    "x",
    "The central bank raised interest rates to curb inflation, surprising analysts who expected a pause. " * 3,
    "東京は日本の首都です。",
    "How do I parse command line arguments in Python?",
]


def test_openvino_agrees_with_torch_on_the_real_model(minilm_path):
    torch32 = Embedder(precision="fp32", engine="torch").encode_documents(TEXTS)
    ov32 = Embedder(precision="fp32", engine="openvino")
    assert ov32.engine == "openvino" and ov32.path == "openvino-fp32"
    assert np.sum(ov32.encode_documents(TEXTS) * torch32, axis=1).min() >= 0.99999
    ov16 = Embedder(precision="bf16", engine="openvino")
    got = ov16.encode_documents(TEXTS)
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.sum(got * torch32, axis=1).min() >= 0.999
    # Queries take the query path (prompts) and agree too.
    q = ov16.encode_queries(["budget lodging"])
    assert float((q @ Embedder(precision="fp32", engine="torch").encode_queries(["budget lodging"]).T)[0, 0]) >= 0.999


def test_openvino_batches_keep_order_and_match_one_by_one(tiny_model_dir):
    e = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="openvino", batch_size=3)
    together = e.encode_documents(TEXTS)
    one_by_one = np.vstack([e.encode_documents([t]) for t in TEXTS])
    assert np.allclose(together, one_by_one, atol=1e-5)
    ref = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="torch").encode_documents(TEXTS)
    assert np.allclose(together, ref, atol=1e-4)


def test_torch_model_is_untouched_by_the_openvino_copy(tiny_model_dir):
    torch_e = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="torch")
    before = torch_e.encode_documents(TEXTS)
    Embedder(str(tiny_model_dir), device="cpu", precision="bf16", engine="openvino").encode_documents(TEXTS)
    assert np.array_equal(torch_e.encode_documents(TEXTS), before)
    assert torch_e.model[0].forward.__self__ is torch_e.model[0]  # the shared module keeps its own forward


def test_conversion_is_cached_and_a_damaged_cache_is_rebuilt(tiny_model_dir, tmp_path, monkeypatch, caplog):
    import openvino

    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(emb, "_ov_models", {})
    monkeypatch.setattr(light, "_encoders", {})
    first = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="openvino").encode_documents(TEXTS)
    [entry] = list((tmp_path / "openvino").iterdir())
    assert (entry / "model.xml").exists() and (entry / "model.bin").exists()

    # A later process reads the cached model: conversion is not called again.
    monkeypatch.setattr(emb, "_ov_models", {})
    calls = []
    real_convert = openvino.convert_model
    monkeypatch.setattr(openvino, "convert_model", lambda *a, **k: calls.append(1) or real_convert(*a, **k))
    again = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="openvino").encode_documents(TEXTS)
    assert calls == [] and np.allclose(again, first, atol=1e-6)

    # A damaged entry is converted again, with a warning, and replaced.
    (entry / "model.xml").write_text("<not a model")
    monkeypatch.setattr(emb, "_ov_models", {})
    with caplog.at_level("WARNING", logger="semsearch.embedding.openvino_engine"):
        fixed = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="openvino").encode_documents(TEXTS)
    assert calls == [1] and np.allclose(fixed, first, atol=1e-6)
    assert "unreadable" in caplog.text and (entry / "model.xml").read_text().startswith("<?xml")


def test_a_model_openvino_cannot_convert_runs_in_torch(tiny_model_dir, monkeypatch, tmp_path, auto_choice):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation")

    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(tmp_path))  # a machine that has not chosen yet
    monkeypatch.setattr(emb, "_ov_models", {})
    monkeypatch.setattr(calibration, "_auto_precision", {})
    monkeypatch.setattr(openvino_engine, "openvino_model", broken)
    e = Embedder(str(tiny_model_dir), device="cpu")
    assert e.engine == "torch"
    assert e.encode_documents(["fine"]).shape == (1, 32)


def test_threads_encoding_at_once_get_the_same_vectors(tiny_model_dir):
    e = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="openvino", query_cache=0)
    texts = [f"document number {i} " * (1 + i % 7) for i in range(64)]
    expected = e.encode_documents(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = e.encode_documents(texts) if i % 2 else e.encode_queries(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in results.items():
        assert np.allclose(got, expected if i % 2 else e.encode_queries(texts), atol=1e-5)


def test_models_it_cannot_cover_are_recognised(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    assert openvino_engine.supports(model)
    hf = openvino_engine._hf_model(model[0])
    hf.config.output_hidden_states = True  # a later module would read every layer
    try:
        assert not openvino_engine.supports(model)
    finally:
        hf.config.output_hidden_states = False


def test_large_inputs_are_encoded_by_workers_in_order(tiny_model_dir):
    e = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="openvino", batch_size=4, query_cache=0)
    encoder = emb.load_openvino_model(e.name, "cpu", "fp32")
    texts = [f"text {i} " + "word " * (i * 7 % 23) for i in range(150)]  # several pieces of 16
    assert len(texts) > 4 * encoder.PIECE_BATCHES
    got = e.encode_documents(texts, show_progress=True)
    one_by_one = np.vstack([e.encode_documents([t]) for t in texts[::10]])
    assert np.allclose(got[::10], one_by_one, atol=1e-5)
    ref = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="torch").encode_documents(texts)
    assert np.allclose(got, ref, atol=1e-4)
    assert np.array_equal(e.encode_documents(texts), got)  # thread timing never changes a result


def test_the_first_inference_of_a_process_is_made_by_one_thread_and_later_ones_concurrently(monkeypatch):
    """OpenVINO's binding initialises statics at a process's first inference (two threads doing
    it at once can deadlock): the first call runs alone, the others wait for it, then run at once."""
    import time

    from semsearch.embedding import ov_import

    monkeypatch.setattr(ov_import, "_first_done", False)
    inside, most = [0], [0]
    lock = threading.Lock()

    def run() -> int:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return 7

    def four_at_once() -> list:
        """first_inference(run) from four threads released together; what each got."""
        got: list = []
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=lambda: (barrier.wait(), got.append(ov_import.first_inference(run))))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return got

    assert four_at_once() == [7, 7, 7, 7] and ov_import._first_done
    assert most[0] == 3  # the first call ran alone (without the guard all four run at once), then three at once
    most[0] = 0
    assert four_at_once() == [7] * 4 and most[0] >= 2  # after it, calls overlap
