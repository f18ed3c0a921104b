"""Data for bench_ann.py: real MiniLM embeddings (cached) and clustered synthetic vectors.

Real set: the msmarco-5k passages split into sentences plus the Python standard library's
docstrings (semsearch.ingest.stdlib), and beyond those (~20k texts) paragraphs of the docstrings
of the packages installed next to semsearch (site-packages, read with ``ast``, files in sorted
order: torch, transformers, sympy, scipy, ...), encoded once with all-MiniLM-L6-v2 and cached in
bench/.cache/ (gitignored). Which packages are installed decides the texts past ~20k, so a
100k set is reproducible on the same environment, not across environments. A reproducible 5% of
the texts is held out of the collection and used as queries next to the 50 real msmarco queries:
held-out texts sit at the distance real "more like this" queries do, the msmarco queries at the
distance short questions do.

    PYTHONPATH=src python bench/ann_data.py --max-texts 40000    # msmarco + stdlib (~20k texts)
    PYTHONPATH=src python bench/ann_data.py --max-texts 110000   # + site-packages docstrings
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco-5k"
DIM = 384
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def real_texts(max_texts: int) -> tuple[list[str], list[str]]:
    """(collection-side texts, msmarco queries); sentences of >= 25 characters, deduplicated."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from semsearch.ingest.stdlib import stdlib_docstrings

    texts: list[str] = []
    seen: set[str] = set()
    if SHARED.exists():
        with open(SHARED / "corpus.jsonl", encoding="utf-8") as f:
            for line in f:
                for s in _SENTENCE.split(json.loads(line)["text"]):
                    s = s.strip()
                    if len(s) >= 25 and s not in seen:
                        seen.add(s)
                        texts.append(s)
    for rec in stdlib_docstrings():
        for para in rec.text.split("\n\n"):
            para = " ".join(para.split())
            if len(para) >= 25 and para not in seen:
                seen.add(para)
                texts.append(para[:1000])
    if len(texts) < max_texts:
        for para in site_docstrings():
            if para not in seen:
                seen.add(para)
                texts.append(para)
                if len(texts) >= max_texts:
                    break
    queries = []
    if SHARED.exists():
        with open(SHARED / "queries.jsonl", encoding="utf-8") as f:
            queries = [json.loads(line)["text"] for line in f]
    rng = np.random.default_rng(0)
    if len(texts) > max_texts:
        texts = [texts[i] for i in np.sort(rng.choice(len(texts), max_texts, replace=False))]
    return texts, queries


def site_docstrings():
    """Paragraphs (>= 25 characters, <= 1000 kept) of every docstring in site-packages, in file order."""
    import ast
    import sysconfig

    root = Path(sysconfig.get_paths()["purelib"])
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                for para in (doc or "").split("\n\n"):
                    para = " ".join(para.split())
                    if len(para) >= 25:
                        yield para[:1000]


def real_embeddings(max_texts: int = 40_000, encode: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(collection vectors, held-out text queries, msmarco queries), unit norm, or None if not cached.

    With ``encode`` the texts are encoded (batched, checkpointed to the cache every few
    thousand texts so an interrupted run resumes).
    """
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"real_minilm_{max_texts}.npz"
    if path.exists():
        z = np.load(path)
        return z["docs"], z["heldout"], z["queries"]
    if not encode:
        return None
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semsearch.embedding import Embedder

    texts, queries = real_texts(max_texts)
    # semsearch's default encoding path (agrees with fp32 to >= 0.999 cosine, checked at load).
    embedder = Embedder(query_cache=0)
    print(f"encoding with engine {embedder.engine}, precision {embedder.precision}", flush=True)
    part = CACHE / f"real_minilm_{max_texts}.partial.npy"
    done = np.load(part) if part.exists() else np.empty((0, DIM), dtype=np.float32)
    started, step = time.perf_counter(), 2000
    for s in range(len(done), len(texts), step):
        chunk = texts[s : s + step]
        emb = embedder.encode_documents(chunk)
        done = np.concatenate([done, emb.astype(np.float32)])
        np.save(part, done)
        rate = (len(done)) / (time.perf_counter() - started)
        print(f"encoded {len(done):,}/{len(texts):,} ({rate:.0f}/s this run)", flush=True)
    qv = embedder.encode_queries(queries).astype(np.float32)
    rng = np.random.default_rng(1)
    held = np.zeros(len(done), dtype=bool)
    held[rng.choice(len(done), len(done) // 20, replace=False)] = True
    np.savez(path, docs=done[~held], heldout=done[held], queries=qv)
    part.unlink()
    return done[~held], done[held], qv


def clustered(n: int, dim: int = DIM, seed: int = 0, clusters: int = 1000) -> np.ndarray:
    """Unit vectors around 1,000 anisotropic clusters (the shape of sentence embeddings)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    scales = rng.uniform(0.3, 1.0, size=(clusters, 1)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        c = rng.integers(0, clusters, m)
        out[start : start + m] = centers[c] + scales[c] * rng.normal(size=(m, dim)).astype(np.float32) * 1.2
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-texts", type=int, default=40_000)
    args = ap.parse_args()
    texts, queries = real_texts(args.max_texts)
    print(f"{len(texts):,} texts, {len(queries)} queries", flush=True)
    docs, held, qv = real_embeddings(args.max_texts, encode=True)
    print(docs.shape, held.shape, qv.shape)
