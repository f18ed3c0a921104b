"""The data of bench/bench_scale.py (issue 25): msmarco-5k's passages made unique, repeated to any size.

Document ``i`` is passage ``i % 5000`` with `` (i)`` appended, so every text is distinct and the
lexical index sees a real vocabulary repeated (plus one number per document); its embedding is
its passage's random unit vector plus noise (seeded), given to ``add`` so nothing is encoded; its metadata is
``{"cat": "c00".."c99", "num": 0..999}`` from a seeded permutation of ``i`` (independent of the
text and the vector), so the filters below match exactly the stated share of documents.

The data is read from ../shared/data (never copied); collections are built under
/work/bench-data or wherever ``--root`` says, outside the repository.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data beside the repository (a worktree deeper down finds the same folder).
DATA = next((p / "shared/data/msmarco-5k" for p in REPO.parents if (p / "shared/data/msmarco-5k").is_dir()),
            REPO.parent / "shared/data/msmarco-5k")
DIM = 384  # all-MiniLM-L6-v2, the default model: the query encoder of every cold search
CATS = [f"c{i:02d}" for i in range(100)]

#: The filters, by the share of documents they match (cat: 100 values; num: 0..999).
FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "1%": {"cat": "c07"},
    "10%": {"num": {"$lt": 100}},
    "10%in": {"cat": {"$in": CATS[10:20]}},
    "50%": {"num": {"$lt": 500}},
}
#: The share each filter keeps, for checking and for peers that need a count.
SHARE = {"none": 1.0, "1%": 0.01, "10%": 0.1, "10%in": 0.1, "50%": 0.5}


def passages() -> list[str]:
    with open(DATA / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def queries() -> list[str]:
    with open(DATA / "queries.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def metadata_of(n: int, seed: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """(cat index 0..99, num 0..999) per document: a seeded permutation, so each value is
    held by exactly n/100 resp. n/1000 documents when n is a multiple of 1000."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm % 100, (perm // 100) % 1000


def batches(n: int, size: int = 20_000, seed: int = 25) -> Iterator[dict[str, Any]]:
    """Keyword arguments of ``Collection.add`` for documents 0..n-1, ``size`` at a time."""
    texts = passages()
    cats, nums = metadata_of(n, seed)
    for start in range(0, n, size):
        stop = min(n, start + size)
        vectors = _vectors(np.arange(start, stop), len(texts), seed)
        yield {
            "documents": [f"{texts[i % len(texts)]} ({i})" for i in range(start, stop)],
            "ids": [f"d{i}" for i in range(start, stop)],
            "metadatas": [{"cat": CATS[cats[i]], "num": int(nums[i])} for i in range(start, stop)],
            "embeddings": vectors,
        }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _vectors(docs: np.ndarray, n_passages: int, seed: int) -> np.ndarray:
    """A random unit vector per passage; each copy of it that vector plus noise (cosine ~0.8 to it),
    as the embeddings of near-identical texts would be. (Vectors with no structure at all make
    every approximate index scan everything: tuned to recall 0.95, IVF probes all its lists.)"""
    bases = _unit(np.random.default_rng([seed, 0]).standard_normal((n_passages, DIM), dtype=np.float32))
    noise = np.random.default_rng([seed, int(docs[0]) + 1]).standard_normal((len(docs), DIM), dtype=np.float32)
    return _unit(bases[docs % n_passages] + noise * np.float32(0.75 / np.sqrt(DIM))).astype(np.float32)


def vectors_of(passage_ids: np.ndarray, seed: int) -> np.ndarray:
    """Vectors near the given passages' (as the documents' are), e.g. query vectors for dense search."""
    return _vectors(np.asarray(passage_ids), 5000, seed) if len(passage_ids) else np.empty((0, DIM), np.float32)


def matching(flt: dict[str, Any] | None, n: int, seed: int = 25) -> np.ndarray:
    """Indexes of the documents a filter matches (NumPy, for peers and checks)."""
    cats, nums = metadata_of(n, seed)
    if flt is None:
        return np.arange(n)
    if "cat" in flt:
        want = flt["cat"]
        allowed = [want] if isinstance(want, str) else want["$in"]
        return np.flatnonzero(np.isin(cats, [CATS.index(c) for c in allowed]))
    return np.flatnonzero(nums < flt["num"]["$lt"])
