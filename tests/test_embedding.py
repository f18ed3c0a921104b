"""Model resolution, precision choice and the vectors the embedder returns."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.embedding import DEFAULT_MODEL, Embedder, canonical_model_name, cpu_has_fast_bf16, model_location
from semsearch.errors import InvalidInputError


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
    fp32 = Embedder(precision="fp32")
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
