"""The FAISS exact index behind the VectorIndex interface."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.errors import InvalidInputError
from semsearch.index import load_index, make_index


def _unit(rng, n, d):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(1)
    data, queries = _unit(rng, 500, 16), _unit(rng, 7, 16)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = make_index("Flat", 16)
    index.add(ids, data)
    scores, found = index.search(queries, 5)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :5]
    assert (found == ids[truth]).all()
    assert np.allclose(scores, np.take_along_axis(queries @ data.T, truth, axis=1), atol=1e-5)


def test_remove_allow_list_and_padding():
    rng = np.random.default_rng(2)
    data = _unit(rng, 10, 8)
    index = make_index("Flat", 8)
    index.add(np.arange(10, dtype=np.int64), data)
    assert index.remove(np.array([3, 4, 77])) == 2 and len(index) == 8
    _, ids = index.search(data[[3]], 10)
    assert 3 not in ids and (ids[0, -2:] == -1).all()  # fewer than k: padded with -1
    _, ids = index.search(data[[0]], 3, allow=np.array([5, 9]))
    assert set(ids[0, :2].tolist()) == {5, 9} and ids[0, 2] == -1


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    data = _unit(rng, 50, 8)
    index = make_index("Flat", 8)
    index.add(np.arange(50, dtype=np.int64) * 7, data)
    index.save(tmp_path / "v.faiss")
    again = load_index(tmp_path / "v.faiss", "Flat", 8)
    assert len(again) == 50
    assert (again.search(data[:3], 4)[1] == index.search(data[:3], 4)[1]).all()
    assert not list(tmp_path.glob("*.tmp"))


def test_wrong_dimension_and_unknown_spec():
    index = make_index("Flat", 8)
    with pytest.raises(InvalidInputError, match="dimension 8"):
        index.add(np.arange(2, dtype=np.int64), np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="not supported"):
        make_index("Bogus42", 8)
