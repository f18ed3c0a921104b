"""Model resolution, device and precision choice, the vectors returned, caches that spare the model."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.embedding import (
    DEFAULT_MODEL,
    Embedder,
    calibration,
    canonical_model_name,
    cpu_has_fast_bf16,
    light,
    model_location,
)
from semsearch.embedding import models as emb
from semsearch.embedding.caches import DiskEmbeddingCache, QueryCache, text_key
from semsearch.embedding.openvino_engine import openvino_available
from semsearch.errors import InvalidInputError

# What auto picks is tested here: unforced even when the suite runs under $SEMSEARCH_ENGINE/PRECISION.
pytestmark = pytest.mark.usefixtures("auto_choice")


@pytest.fixture()
def fresh_machine(monkeypatch, tmp_path):
    """A machine that has prepared nothing yet: empty cache folder, nothing chosen or loaded in this process."""
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(tmp_path / "machine-cache"))
    monkeypatch.setattr(calibration, "_auto_precision", {})
    monkeypatch.setattr(emb, "_ov_models", {})
    monkeypatch.setattr(light, "_encoders", {})


def test_default_model_resolves_offline_to_the_bundled_weights(minilm_path):
    assert canonical_model_name("all-MiniLM-L6-v2") == DEFAULT_MODEL
    assert canonical_model_name(DEFAULT_MODEL) == DEFAULT_MODEL
    assert model_location(DEFAULT_MODEL) == minilm_path
    assert canonical_model_name("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    assert canonical_model_name("all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"


def test_vectors_are_normalised_float32(minilm_path):
    emb = Embedder(precision="fp32")
    v = emb.encode_documents(["one sentence", "and another, a little longer than the first"])
    assert v.dtype == np.float32 and v.shape == (2, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_order_is_preserved_despite_length_sorting(minilm_path):
    emb = Embedder(precision="fp32", batch_size=2)
    texts = ["a", "a much longer text " * 20, "mid length text here", "b"]
    together = emb.encode_documents(texts)
    one_by_one = np.vstack([emb.encode_documents([t]) for t in texts])
    assert np.allclose(together, one_by_one, atol=1e-4)


@pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no native bf16")
def test_auto_precision_uses_bf16_only_when_it_agrees_with_fp32(minilm_path):
    auto = Embedder(precision="auto")
    assert auto.precision == "bf16"
    assert auto.engine == ("openvino" if openvino_available() else "torch")
    fp32 = Embedder(precision="fp32", engine="torch")
    texts = ["affordable accommodation near the beach", "The central bank raised interest rates."]
    agreement = np.sum(auto.encode_documents(texts) * fp32.encode_documents(texts), axis=1)
    assert agreement.min() >= 0.999


def test_precision_switch_and_validation(minilm_path):
    assert Embedder(precision="fp32").precision == "fp32"
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        Embedder(precision="int3")


def test_unknown_local_model_is_a_clear_error(tmp_path):
    from semsearch import Collection

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="cannot load model .*not-a-model.*give the path"):
        Collection(tmp_path / "c", model=str(empty))
    assert not (tmp_path / "c").exists()  # nothing created for a model that does not load


class CountingEncode:
    """Wraps Embedder._encode to count the texts that really reach the model."""

    def __init__(self, embedder: Embedder) -> None:
        self.texts: list[str] = []
        self._inner = embedder._encode
        embedder._encode = self  # type: ignore[method-assign]

    def __call__(self, texts, kind, precision, show_progress=False, **kwargs):
        self.texts.extend(texts)
        return self._inner(texts, kind, precision, show_progress, **kwargs)


@pytest.fixture()
def tiny(tiny_model_dir) -> Embedder:
    e = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", batch_size=4)
    _ = e.precision  # load and warm up before any spy is attached
    return e


# -- device and precision choice (no GPU needed) ----------------------------------------
def test_cuda_is_chosen_when_available(monkeypatch):
    import torch

    monkeypatch.setattr(emb, "torch_build_has_accelerator", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert emb.pick_device() == "cuda"
    assert emb.pick_device("cpu") == "cpu"


def test_cpu_when_no_accelerator(monkeypatch):
    import torch

    monkeypatch.setattr(emb, "torch_build_has_accelerator", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert emb.pick_device() == "cpu"


@pytest.mark.parametrize(("bf16_supported", "expected"), [(True, "bf16"), (False, "fp16")])
def test_cuda_uses_half_precision(monkeypatch, bf16_supported, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    e = Embedder("some/model", device="cuda")
    assert e._choose_precision() == expected


def test_cpu_without_native_bf16_stays_fp32(monkeypatch):
    monkeypatch.setattr(calibration, "cpu_has_fast_bf16", lambda: False)
    assert Embedder("some/model", device="cpu", engine="torch")._choose_precision() == "fp32"


def test_bf16_refused_when_calibration_disagrees(monkeypatch, tiny_model_dir, fresh_machine):
    monkeypatch.setattr(calibration, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(calibration, "BF16_MIN_COSINE", 1.01)  # no real agreement can pass this
    assert Embedder(str(tiny_model_dir), device="cpu", engine="torch")._choose_precision() == "fp32"
    monkeypatch.setattr(calibration, "_auto_precision", {})  # the per-process choice would hide the second case
    monkeypatch.setattr(calibration, "BF16_MIN_COSINE", 0.0)
    assert Embedder(str(tiny_model_dir), device="cpu", engine="torch")._choose_precision() == "bf16"


@pytest.mark.skipif(not openvino_available(), reason="openvino is not installed")
def test_auto_engine_takes_openvino_only_when_it_agrees_with_torch(monkeypatch, tiny_model_dir, fresh_machine):
    monkeypatch.setattr(calibration, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(calibration, "BF16_MIN_COSINE", 1.01)  # every faster path refused: torch fp32 remains
    assert Embedder(str(tiny_model_dir), device="cpu")._choose() == ("torch", "fp32")
    monkeypatch.setattr(calibration, "_auto_precision", {})
    monkeypatch.setattr(calibration, "BF16_MIN_COSINE", 0.0)
    assert Embedder(str(tiny_model_dir), device="cpu")._choose() == ("openvino", "bf16")
    monkeypatch.setattr(calibration, "_auto_precision", {})
    monkeypatch.setattr(calibration, "cpu_has_fast_bf16", lambda: False)
    assert Embedder(str(tiny_model_dir), device="cpu")._choose() == ("openvino", "fp32")
    # An explicit engine or precision keeps the other choice automatic.
    monkeypatch.setattr(calibration, "_auto_precision", {})
    assert Embedder(str(tiny_model_dir), device="cpu", engine="torch")._choose() == ("torch", "fp32")


def test_without_openvino_auto_encodes_with_torch(monkeypatch, tiny_model_dir, fresh_machine):
    from semsearch.embedding import openvino_engine

    monkeypatch.setattr(openvino_engine, "openvino_available", lambda: False)
    e = Embedder(str(tiny_model_dir), device="cpu")
    assert e.engine == "torch"
    assert e.encode_documents(["still encodes"]).shape == (1, 32)
    with pytest.raises(InvalidInputError, match="engine 'openvino' cannot run .* use engine='torch'"):
        Embedder(str(tiny_model_dir), device="cpu", engine="openvino", precision="fp32").encode_documents(["x"])


def test_engine_validation():
    with pytest.raises(InvalidInputError, match="engine must be one of auto, torch, openvino"):
        Embedder("some/model", engine="onnx")
    with pytest.raises(InvalidInputError, match="engine 'openvino' runs on the CPU.*engine='torch'"):
        Embedder("some/model", device="cuda", engine="openvino")


def test_explicit_precision_is_kept_and_bad_values_rejected():
    assert Embedder("some/model", device="cpu", precision="fp32", engine="torch")._choose_precision() == "fp32"
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        Embedder("some/model", precision="fp8")
    with pytest.raises(InvalidInputError, match="batch_size"):
        Embedder("some/model", batch_size=0)


def test_resolving_precision_loads_nothing_and_warm_warms_the_kind_asked(tiny_model_dir):
    e = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", engine="torch")
    spy = CountingEncode(e)
    assert e.precision == "fp32"
    assert spy.texts == [] and e._model is None  # a process pays for what its first call needs only
    kinds = []
    inner = spy._inner
    spy._inner = lambda texts, kind, *a, **k: kinds.append(kind) or inner(texts, kind, *a, **k)
    e.warm("document")
    assert spy.texts == ["warm up"] and kinds == ["document"] and e._model is not None


# -- encoding results ---------------------------------------------------------------------
def test_documents_come_back_in_input_order_and_normalised(tiny):
    texts = ["short", "a much longer text than the others by far", "mid length text", "short"]
    out = tiny.encode_documents(texts)
    one_by_one = np.vstack([tiny._encode([t], "document", "fp32") for t in texts])
    np.testing.assert_allclose(out, one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


# -- caches -------------------------------------------------------------------------------
def test_repeated_query_does_not_call_the_model(tiny):
    spy = CountingEncode(tiny)
    first = tiny.encode_queries(["what is a fox"])
    second = tiny.encode_queries(["what is a fox", "what is a fox"])
    assert spy.texts == ["what is a fox"]
    np.testing.assert_array_equal(second, np.vstack([first, first]))
    second[:] = 0  # a caller scribbling on its result must not poison the cache
    np.testing.assert_array_equal(tiny.encode_queries(["what is a fox"]), first)


def test_query_cache_is_bounded_and_least_recent_goes_first():
    cache = QueryCache(max_entries=2)
    keys = [bytes([i]) * 32 for i in range(3)]
    vecs = np.eye(3, dtype=np.float32)
    cache.put_many(keys[:2], vecs[:2])
    cache.get_many([keys[0]])  # key 0 is now the most recent
    cache.put_many(keys[2:], vecs[2:])
    assert len(cache) == 2
    got = cache.get_many(keys)
    assert got[1] is None and got[0] is not None and got[2] is not None


def test_disk_cache_spares_the_model_across_embedders(tiny_model_dir, tmp_path):
    texts = ["alpha document", "beta document", "gamma document"]
    a = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", cache=DiskEmbeddingCache(tmp_path / "c.sqlite"))
    ref = a.encode_documents(texts)
    a.cache.close()
    b = Embedder(str(tiny_model_dir), device="cpu", precision="fp32", cache=DiskEmbeddingCache(tmp_path / "c.sqlite"))
    _ = b.precision
    spy = CountingEncode(b)
    again = b.encode_documents(texts + ["delta document", "delta document"])
    # Cached texts are not encoded at all; misses go to the model exactly as a plain
    # encode_document call would see them (duplicates included), so the vectors match it.
    assert spy.texts == ["delta document", "delta document"]
    np.testing.assert_array_equal(again[3], again[4])
    np.testing.assert_array_equal(again[:3], ref)


def test_other_precision_or_model_or_kind_misses():
    base = text_key("m", "fp32", "document", "text")
    assert base == text_key("m", "fp32", "document", "text")
    assert base != text_key("m", "bf16", "document", "text")
    assert base != text_key("m2", "fp32", "document", "text")
    assert base != text_key("m", "fp32", "query", "text")


def test_disk_cache_is_bounded(tmp_path):
    cache = DiskEmbeddingCache(tmp_path / "c.sqlite", max_entries=5)
    rng = np.random.default_rng(0)
    for batch in range(4):
        keys = [text_key("m", "fp32", "document", f"{batch}-{i}") for i in range(3)]
        cache.put_many(keys, rng.standard_normal((3, 8)).astype(np.float32))
    assert len(cache) == 5
    newest = [text_key("m", "fp32", "document", f"3-{i}") for i in range(3)]
    assert all(v is not None for v in cache.get_many(newest, 8))
    assert cache.get_many(newest, 16) == [None, None, None]  # another dimension never matches


def test_damaged_disk_cache_is_set_aside(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a sqlite database at all" * 100)
    cache = DiskEmbeddingCache(path)
    key = text_key("m", "fp32", "document", "x")
    cache.put_many([key], np.ones((1, 4), dtype=np.float32))
    assert cache.get_many([key], 4)[0] is not None
    assert list(tmp_path.glob("c.sqlite.broken-*"))


def test_reindexing_unchanged_text_encodes_nothing(tiny_model_dir, tmp_path):
    from semsearch import Collection

    with Collection(tmp_path / "col", model=str(tiny_model_dir), precision="fp32") as col:
        col.add(["the first document", "the second document"], ids=["a", "b"])
    with Collection(tmp_path / "col", precision="fp32") as col:
        _ = col.embedder.precision
        spy = CountingEncode(col.embedder)
        col.upsert(["the first document", "the second document, edited"], ids=["a", "b"])
        assert spy.texts == ["the second document, edited"]
        assert col.search("first", k=1)[0].id in {"a", "b"}


def test_unavailable_disk_cache_does_not_stop_encoding(tiny, tmp_path, monkeypatch):
    import sqlite3

    cache = DiskEmbeddingCache(tmp_path / "c.sqlite")

    def locked():
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(cache, "_connect", locked)
    tiny.cache = cache
    spy = CountingEncode(tiny)
    out = tiny.encode_documents(["one text", "another text"])
    assert out.shape[0] == 2 and spy.texts and cache.misses == 2


# -- issue 18, defect 2: the bundled model must not switch the hub off for the process ----
def test_loading_the_bundled_model_leaves_the_environment_alone(minilm_path, monkeypatch):
    import os

    import sentence_transformers  # noqa: F401  (torch sets variables of its own when imported)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(emb, "_models", {})  # as in a fresh process
    before = dict(os.environ)
    model = emb.load_sentence_transformer(DEFAULT_MODEL, "cpu")
    assert model.encode(["still loads offline"]).shape == (1, 384)
    assert dict(os.environ) == before


def test_a_hub_model_asked_for_after_the_bundled_one_goes_to_the_hub(minilm_path, monkeypatch):
    import os

    import sentence_transformers

    from semsearch.retrieval import rerank

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(emb, "_models", {})
    monkeypatch.setattr(rerank, "_models", {})
    Embedder(precision="fp32", engine="torch").encode_queries(["load the bundled default model first"])
    asked: list[tuple[str, str, str | None]] = []

    class Recorder:
        """Stands in for the hub loaders: records what they were asked and whether the hub was allowed."""

        def __init__(self, kind: str):
            self.kind = kind

        def __call__(self, name, device=None):
            asked.append((self.kind, name, os.environ.get("HF_HUB_OFFLINE")))
            return self

        def eval(self):
            return self

    monkeypatch.setattr(sentence_transformers, "CrossEncoder", Recorder("cross-encoder"))
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Recorder("bi-encoder"))
    rerank.load_cross_encoder("cross-encoder/ms-marco-MiniLM-L-6-v2", "cpu")
    emb.load_sentence_transformer("BAAI/bge-small-en-v1.5", "cpu")
    assert asked == [
        ("cross-encoder", "cross-encoder/ms-marco-MiniLM-L-6-v2", None),
        ("bi-encoder", "BAAI/bge-small-en-v1.5", None),
    ]


@pytest.mark.parametrize(
    ("version_py", "accelerator"),
    [
        ("cuda: Optional[str] = None\nhip: Optional[str] = None\nxpu: Optional[str] = None\n", False),
        ("cuda: Optional[str] = '12.4'\nhip: Optional[str] = None\nxpu: Optional[str] = None\n", True),
        ("cuda = None\nhip = '6.2.4'\nxpu = None\n", True),
        ("__version__ = '9.9'\n", True),  # cannot tell: torch itself is asked
    ],
)
def test_a_cpu_only_torch_build_is_recognised_without_importing_torch(tmp_path, monkeypatch, version_py, accelerator):
    import importlib.util
    import sys
    from types import SimpleNamespace

    (tmp_path / "version.py").write_text(version_py)
    real = importlib.util.find_spec
    fake_torch = SimpleNamespace(origin=str(tmp_path / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: fake_torch if name == "torch" else real(name, *a))
    monkeypatch.setattr(sys, "platform", "linux")
    emb.torch_build_has_accelerator.cache_clear()
    try:
        assert emb.torch_build_has_accelerator() is accelerator
        if not accelerator:
            assert emb.pick_device() == "cpu"
    finally:
        emb.torch_build_has_accelerator.cache_clear()
