"""Per-search latency of a local collection, to compare two source trees process by process.

Builds (first run) a collection of 5,000 documents of random words with random unit vectors in
FOLDER, then times 600 dense searches by vector and 600 lexical searches (k=10) in this process
and prints their medians. Run it under each tree in alternating order, e.g. (issue 24: following
another process's changes costs one ``PRAGMA data_version`` per read):

    for i in 1 2 3 4 5 6; do for tree in /tmp/base/src src; do
        OMP_NUM_THREADS=1 PYTHONPATH=$tree .venv/bin/python bench/bench_local_search_ab.py /tmp/ab-col; done; done
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from semsearch import Collection  # noqa: E402

DOCUMENTS = 5000


def build(folder: Path, rng: random.Random, words: list[str]) -> None:
    texts = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(DOCUMENTS)]
    vectors = np.random.default_rng(5).standard_normal((DOCUMENTS, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Collection(folder, progress=False) as col:
        for i in range(0, DOCUMENTS, 1000):
            col.add(texts[i:i + 1000], ids=[f"d{j}" for j in range(i, i + 1000)], embeddings=vectors[i:i + 1000])
        col.flush()


def main() -> None:
    folder = Path(sys.argv[1])
    rng = random.Random(5)
    words = [f"w{i}" for i in range(2000)]
    if not folder.exists():
        build(folder, rng, words)
    col = Collection(folder, progress=False, create=False)
    vectors = np.random.default_rng(7).standard_normal((200, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [" ".join(rng.choice(words) for _ in range(3)) for _ in range(200)]
    for i in range(20):  # loads the index and the lexical statistics
        col.search(vectors[i], k=10)
        col.search(texts[i], k=10, mode="lexical")
    dense, lexical = [], []
    for _ in range(3):
        for vector, text in zip(vectors, texts):
            started = time.perf_counter()
            col.search(vector, k=10)
            dense.append(time.perf_counter() - started)
            started = time.perf_counter()
            col.search(text, k=10, mode="lexical")
            lexical.append(time.perf_counter() - started)
    col.close()
    print(f"dense {statistics.median(dense) * 1e3:.3f} ms  lexical {statistics.median(lexical) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
