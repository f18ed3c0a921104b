"""Data for bench_corpus.py: corpora with known near-duplicates and known topics, encoded once and cached.

- msmarco-5k passages (/work/shared/data/msmarco-5k) plus edited copies of a seeded 5% of
  them: each copy gets one edit, in turn: case (all lower or all upper), punctuation (removed,
  or doubled), one changed word (a word of 4+ letters replaced by a random corpus word), or
  reordered sentences (the first sentence moved to the end; passages of one sentence get a
  changed word instead).
- The Python standard library's docstrings (semsearch.ingest.stdlib) of the 20 top-level
  packages with the most docstrings, labelled by package ("module family"), the leading
  "qualified.name:" removed so the topic has to come from what the docstring says.

Vectors are all-MiniLM-L6-v2 through semsearch's own encoder, cached in bench/.cache/.

    PYTHONPATH=src python bench/corpus_data.py        # encode both (a few minutes on a laptop)
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
MSMARCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco-5k"
EDITS = ("case", "punctuation", "word", "reorder")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def msmarco_passages() -> tuple[list[str], list[str]]:
    """(ids, texts) of the msmarco-5k corpus, title prepended as BEIR loaders do."""
    ids, texts = [], []
    with open(MSMARCO / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            ids.append(row["_id"])
            texts.append(((row.get("title") or "") + " " + row["text"]).strip())
    return ids, texts


def edit(text: str, kind: str, rng: np.random.Generator, vocabulary: list[str]) -> tuple[str, str]:
    """(edited text, the edit actually made)."""
    if kind == "case":
        return (text.lower() if rng.random() < 0.5 else text.upper()), kind
    if kind == "punctuation":
        if rng.random() < 0.5:
            return " ".join(text.translate(str.maketrans("", "", string.punctuation)).split()), kind
        return re.sub(r"([.,!?;:])", r"\1\1", text), kind
    if kind == "reorder":
        sentences = [s for s in _SENTENCE.split(text) if s.strip()]
        if len(sentences) >= 2:
            return " ".join(sentences[1:] + sentences[:1]), kind
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w.strip(string.punctuation)) >= 4]
    if not candidates:
        return text + " " + vocabulary[int(rng.integers(len(vocabulary)))], "word"
    i = candidates[int(rng.integers(len(candidates)))]
    words[i] = vocabulary[int(rng.integers(len(vocabulary)))]
    return " ".join(words), "word"


def msmarco_with_copies(fraction: float = 0.05, seed: int = 0) -> dict:
    """Passages plus edited copies: {"ids", "texts", "truth": [(original index, copy index)], "edits"}."""
    ids, texts = msmarco_passages()
    rng = np.random.default_rng(seed)
    vocabulary = sorted({w for t in texts for w in re.findall(r"[a-z]{4,}", t.lower())})
    chosen = np.sort(rng.choice(len(texts), int(round(fraction * len(texts))), replace=False))
    truth, edits = [], []
    out_ids, out_texts = list(ids), list(texts)
    for n, i in enumerate(chosen.tolist()):
        new, kind = edit(texts[i], EDITS[n % len(EDITS)], rng, vocabulary)
        truth.append((i, len(out_texts)))
        edits.append(kind)
        out_ids.append(f"{ids[i]}-copy")
        out_texts.append(new)
    return {"ids": out_ids, "texts": out_texts, "truth": truth, "edits": edits}


def stdlib_families(families: int = 20) -> dict:
    """{"ids", "texts", "labels" (family index), "families" (names)} of the stdlib docstrings."""
    from semsearch.ingest.stdlib import stdlib_docstrings

    records = stdlib_docstrings()
    family = [r.metadata["module"].split(".")[0] for r in records]
    top = [name for name, _ in Counter(family).most_common(families)]
    ids, texts, labels = [], [], []
    for r, fam in zip(records, family):
        if fam in top:
            ids.append(r.id)
            body = r.text.split(": ", 1)[1] if ": " in r.text.split("\n", 1)[0] else r.text
            texts.append(body)
            labels.append(top.index(fam))
    return {"ids": ids, "texts": texts, "labels": np.array(labels), "families": top}


def encode(texts: list[str], name: str) -> np.ndarray:
    """all-MiniLM-L6-v2 document vectors of ``texts`` (unit length), cached by content."""
    import os

    CACHE.mkdir(exist_ok=True)
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"{name}_{digest}.npy"
    if path.exists():
        return np.load(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semsearch.embedding import Embedder

    embedder = Embedder(query_cache=0)
    vectors = embedder.encode_documents(texts).astype(np.float32)
    np.save(path, vectors)
    return vectors


if __name__ == "__main__":
    import time

    for name, data in (("msmarco_copies", msmarco_with_copies()), ("stdlib_families", stdlib_families())):
        started = time.perf_counter()
        v = encode(data["texts"], name)
        print(f"{name}: {v.shape} in {time.perf_counter() - started:.0f} s", flush=True)
