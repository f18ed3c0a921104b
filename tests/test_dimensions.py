"""Smaller vectors: Matryoshka truncation (``dimensions=``) for models trained for it, a clear
error for others, and FAISS PCA index specs that train, tune, search and survive a reopen."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import faiss
import numpy as np
import pytest

from semsearch import Collection, InvalidInputError, ModelMismatchError
from semsearch.embedding import Embedder
from semsearch.embedding.caches import DiskEmbeddingCache
from semsearch.embedding.matryoshka import trained_dimensions
from test_collection import SENTENCES

IDS = [f"s{i}" for i in range(len(SENTENCES))]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def finetuned_matryoshka_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny model as `semsearch finetune --matryoshka 16,8` leaves it: the card in semsearch_finetune.json."""
    folder = tmp_path_factory.mktemp("finetuned") / "st"
    shutil.copytree(tiny_model_dir, folder)
    card = {"card_version": 1, "base_model": "tiny", "matryoshka_dimensions": [16, 8]}
    (folder / "semsearch_finetune.json").write_text(json.dumps(card))
    return folder


def test_what_a_model_card_says_about_truncation(matryoshka_model_dir, finetuned_matryoshka_dir, tiny_model_dir,
                                                 minilm_path):
    assert trained_dimensions(str(matryoshka_model_dir)) == [32, 16, 8]
    assert trained_dimensions(str(finetuned_matryoshka_dir)) == [16, 8]
    assert trained_dimensions(str(tiny_model_dir)) is None
    assert trained_dimensions("sentence-transformers/all-MiniLM-L6-v2") is None  # its card: no Matryoshka


def test_truncated_vectors_are_the_renormalised_prefix_for_documents_and_queries(matryoshka_model_dir, tmp_path):
    full = Embedder(str(matryoshka_model_dir), device="cpu", precision="fp32", engine="torch")
    cache = DiskEmbeddingCache(tmp_path / "cache.sqlite")
    small = Embedder(str(matryoshka_model_dir), device="cpu", precision="fp32", engine="torch", dimensions=16,
                     cache=cache)
    full.cache = cache  # one cache for both: keys name the dimension, so neither gets the other's vectors
    docs_full = full.encode_documents(SENTENCES)
    docs = small.encode_documents(SENTENCES)
    assert docs.shape == (7, 16) and small.dimension == 16 and small.model_dimension == 32
    np.testing.assert_allclose(docs, unit(docs_full[:, :16]), atol=1e-5)
    np.testing.assert_allclose(small.encode_documents(SENTENCES), docs, atol=1e-6)  # from the cache
    np.testing.assert_allclose(full.encode_documents(SENTENCES), docs_full, atol=1e-6)
    assert len(cache) == 14
    query = ["affordable accommodation near the beach"]
    np.testing.assert_allclose(small.encode_queries(query), unit(full.encode_queries(query)[:, :16]), atol=1e-5)


def test_a_collection_with_dimensions_records_and_shows_them(matryoshka_model_dir, tmp_path):
    with Collection(tmp_path / "col", model=str(matryoshka_model_dir), dimensions=16) as col:
        col.add(SENTENCES, ids=IDS)
        info = col.info()
        assert (info["dimension"], info["model_dimension"]) == (16, 32)
        hits = col.search("affordable accommodation near the beach", k=3, mode="dense")
        full = Embedder(str(matryoshka_model_dir))
        expected = unit(full.encode_documents([hits[0].text])[:, :16]) @ unit(
            full.encode_queries(["affordable accommodation near the beach"])[:, :16]).T
        assert hits[0].scores["dense"] == pytest.approx(float(expected[0, 0]), abs=2e-3)
    with Collection(tmp_path / "col") as col:  # reopened: still truncating, queries included
        assert col.embedder.dimension == 16 and col.search("baking", k=1)
        with pytest.raises(ModelMismatchError, match="reindex --dimensions 8"):
            Collection(tmp_path / "col", dimensions=8)
        report = col.reindex(dimensions=8)
        assert (report.dimension, col.info()["dimension"], col.info()["model_dimension"]) == (8, 8, 32)
        assert col.search("baking a cake", k=1, mode="dense")


def test_truncating_a_model_not_trained_for_it_is_a_clear_error(tiny_model_dir, tmp_path):
    with pytest.raises(InvalidInputError, match=r"not trained for truncated embeddings .*index='PCA16,Flat'"):
        Collection(tmp_path / "col", model=str(tiny_model_dir), dimensions=16)
    assert not (tmp_path / "col").exists()  # nothing was created
    with pytest.warns(UserWarning, match="truncating anyway"):
        col = Collection(tmp_path / "col", model=str(tiny_model_dir), dimensions=16, force_dimensions=True)
    with col:
        col.add(SENTENCES[:2], ids=IDS[:2])
        assert col.info()["dimension"] == 16


def test_dimensions_a_model_was_not_trained_at_or_does_not_have(matryoshka_model_dir, finetuned_matryoshka_dir,
                                                                 tmp_path):
    with pytest.raises(InvalidInputError, match="trained for truncation to 32, 16, 8 dimensions, not 12"):
        Collection(tmp_path / "a", model=str(matryoshka_model_dir), dimensions=12)
    with pytest.raises(InvalidInputError, match="more than .* gives \\(32\\)"):
        Collection(tmp_path / "b", model=str(matryoshka_model_dir), dimensions=64)
    with pytest.raises(InvalidInputError, match="positive whole number"):
        Collection(tmp_path / "c", model=str(matryoshka_model_dir), dimensions=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a trained dimension: no warning
        with Collection(tmp_path / "d", model=str(finetuned_matryoshka_dir), dimensions=8) as col:
            assert col.dimension == 8


def test_reindex_to_a_dimension_the_index_spec_cannot_take_changes_nothing(matryoshka_model_dir, tmp_path):
    with Collection(tmp_path / "col", model=str(matryoshka_model_dir), index="PCA12,Flat") as col:
        col.add(SENTENCES, ids=IDS)
        with pytest.raises(InvalidInputError, match="PCA12 keeps 12 dimensions of vectors that have 8"):
            col.reindex(dimensions=8)
        assert col.dimension == 32 and "reindex_pending" not in col.info()
        assert col.reindex(dimensions=8, index="Flat").dimension == 8


# -- PCA index specs ----------------------------------------------------------------------------

def _clustered(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 centres whose variance sits in 24 directions, plus a little noise in
    all of them: the premise of PCA (real embeddings' variance decays fast over their components)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, 24)))[0].T
    centres = rng.normal(size=(40, 24))
    x = (centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, 24))) @ basis + 0.01 * rng.normal(size=(n, dim))
    return unit(x.astype(np.float32))


@pytest.mark.parametrize("spec", ["PCA64,Flat", "PCA64,IVF16,Flat", "PCA32,SQ8"])
def test_pca_specs_train_tune_search_and_survive_a_reopen(spec, tmp_path, minilm_path):
    vectors = _clustered(3000)
    ids = [f"v{i}" for i in range(len(vectors))]
    with Collection(tmp_path / "col", index=spec) as col:
        col.add([f"vector {i}" for i in range(len(vectors))], ids=ids, embeddings=vectors)
        col.flush()
        details = col.info()["index_details"]
        assert details["type"] == spec and "note" not in details  # trained (not the exact stand-in)
        assert details["dimension"] == int(spec[3:5]) and col.info()["dimension"] == 384  # searched vs stored
        assert details["tuning"]["recall_at_10"] > 0.5 and details["bytes_per_vector"] < 384 * 4
        hits = col.search(vectors[:20], k=5)
        assert sum(h[0].id == ids[i] for i, h in enumerate(hits)) >= 18
        # scores are the exact cosines of the stored vectors, not the projection's inner products
        for i, h in enumerate(hits[:5]):
            stored = vectors[int(h[1].id[1:])]
            assert h[1].scores["dense"] == pytest.approx(float(stored @ vectors[i]), abs=1e-4)
        saved = json.loads((tmp_path / "col" / "vectors.json").read_text())
    with Collection(tmp_path / "col") as col:
        again = col.search(vectors[:20], k=5)
        assert [[x.id for x in h] for h in again] == [[x.id for x in h] for h in hits]
        # loaded, not rebuilt
        assert json.loads((tmp_path / "col" / "vectors.json").read_text())["file"] == saved["file"]


def test_a_pca_index_below_its_training_size_searches_exactly_until_trained(tmp_path, minilm_path):
    vectors = _clustered(500)
    with Collection(tmp_path / "col", index="PCA256,Flat") as col:  # trains on at least 4 x 256 vectors
        col.add([f"v {i}" for i in range(500)], ids=[f"v{i}" for i in range(500)], embeddings=vectors)
        col.flush()
        assert "needs 1,024 vectors to train" in col.info()["index_details"]["note"]
        assert col.info()["index_details"]["dimension"] == 384  # searched exactly meanwhile
        assert [h[0].id for h in col.search(vectors[:10], k=1)] == [f"v{i}" for i in range(10)]


def test_pca_specs_that_cannot_work_are_refused(tmp_path, minilm_path):
    for spec, message in (("PCA512,Flat", "PCA512 keeps 512 dimensions of vectors that have 384"),
                          ("PCA64,HNSW32", "a graph over PCA-projected vectors is not supported"),
                          ("PCA64,IVF16,PQ48", "multiple of 48")):
        with pytest.raises(InvalidInputError, match=message):
            Collection(tmp_path / "col", index=spec)


def test_a_pca_index_ranks_by_the_projected_cosine_not_by_distance_from_the_mean():
    """FAISS centres before projecting; a search must still rank documents as the cosine of their
    projections does, not favour those pointing away from the data's mean (embeddings have a large one)."""
    from semsearch.index.faiss import FaissIndex

    rng = np.random.default_rng(3)
    data = unit((_clustered(2000, dim=64) + 0.6 * unit(rng.normal(size=(1, 64)))).astype(np.float32))
    index = FaissIndex("PCA16,Flat", 64)
    index.train(data)
    index.add(np.arange(2000, dtype=np.int64), data)
    queries = data[:50] + 0.05 * rng.normal(size=(50, 64)).astype(np.float32)
    _, ids = index.search(queries, 10)
    projected = faiss.downcast_index(index._index.index).reconstruct_n(0, 2000)  # mean + PᵀP(x - mean)
    expected = np.argsort(-(queries @ projected.T), axis=1)[:, :10]
    assert (ids == expected).mean() > 0.99
    # the same ranking through an allow-list (scored from reconstructed vectors)
    _, some = index.search(queries[:5], 3, allow=np.arange(0, 2000, 7, dtype=np.int64))
    allowed = np.arange(0, 2000, 7)
    best = allowed[np.argsort(-(queries[:5] @ projected[allowed].T), axis=1)[:, :3]]
    assert (some == best).all()


# -- the command line ---------------------------------------------------------------------------

def test_index_dimensions_and_info_on_the_command_line(matryoshka_model_dir, tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from semsearch.cli import app

    run = CliRunner().invoke
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(IDS, SENTENCES)))
    col = str(tmp_path / "col")
    r = run(app, ["index", str(docs), "--collection", col, "--model", str(matryoshka_model_dir), "--dimensions", "16"])
    assert r.exit_code == 0, r.output
    r = run(app, ["info", "--json", "--collection", col])
    assert (json.loads(r.output)["dimension"], json.loads(r.output)["model_dimension"]) == (16, 32)
    assert "dimension 16" in " ".join(run(app, ["info", "--collection", col]).output.split())
    # a model not trained for truncation: refused, and the message names the way that works
    r = run(app, ["index", str(docs), "--collection", str(tmp_path / "other"), "--model", str(tiny_model_dir),
                  "--dimensions", "16"])
    assert r.exit_code != 0 and "PCA16,Flat" in " ".join(r.output.split())
    assert not (tmp_path / "other").exists()


def test_info_says_a_pca_index_searches_projections(tmp_path, minilm_path):
    from typer.testing import CliRunner

    from semsearch.cli import app

    vectors = _clustered(1200)
    with Collection(tmp_path / "col", index="PCA64,Flat") as col:
        col.add([f"v {i}" for i in range(1200)], ids=[f"v{i}" for i in range(1200)], embeddings=vectors)
    text = " ".join(CliRunner().invoke(app, ["info", "--collection", str(tmp_path / "col")]).output.split())
    assert "searched as 64-dimensional PCA projections" in text and "dimension 384" in text


def test_a_pca_index_returns_what_exact_cosines_rank_first_among_more_candidates(tmp_path, minilm_path):
    """PCA16 of vectors whose variance spans 24 directions misranks neighbours; fetching 4x the hits
    and keeping the best by their stored vectors' exact cosine returns most of the exact top 10."""
    vectors = _clustered(3000)
    with Collection(tmp_path / "col", index="PCA16,Flat") as col:
        col.add([f"t{i}" for i in range(3000)], ids=[f"v{i}" for i in range(3000)], embeddings=vectors)
        col.flush()
        rng = np.random.default_rng(1)
        queries = unit(vectors[:100] + 0.02 * rng.normal(size=(100, 384)).astype(np.float32))
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        found = [[int(h.id[1:]) for h in hits] for hits in col.search(queries, k=10, mode="dense")]
        _, alone = col.engine.index._index.search(queries, 10)  # the projection's own top 10 (chunk ids from 1)

    def overlap(rows):
        return np.mean([len(set(a) & set(b.tolist())) / 10 for a, b in zip(rows, exact)])

    assert overlap(found) > 0.85 and overlap(found) > overlap([(r - 1).tolist() for r in alone]) + 0.3
