"""Data for bench_topics.py (issue 27): a mixed corpus with known categories, from text on this machine.

Categories (each a real subject a user would call one topic; sizes are uneven on purpose):

- manual pages under /usr/share/man, rendered by ``man -l`` and cut to their NAME line and the
  start of their DESCRIPTION: git commands, gcloud compute and gcloud container commands,
  LLVM tools, OpenSSL (commands and EVP algorithms), PostgreSQL SQL commands, Linux system
  calls, C library functions, Perl modules, perf, systemd, dpkg, CMake;
- docstrings of six standard-library packages (:mod:`semsearch.ingest.stdlib`): asyncio,
  logging, email, unittest, xml, turtle ("qualified.name:" prefix removed);
- optionally msmarco-5k passages (/work/shared/data/msmarco-5k, benchmark only, never copied
  into the repository): web passages on every subject, label -1 ("belongs to no category"),
  mixed in to make the data as mixed as a real collection.

Every category is a seeded sample of at most ``cap`` documents. Vectors are all-MiniLM-L6-v2
through semsearch's own encoder, cached in bench/.cache/ with the texts (never committed).

    PYTHONPATH=src python bench/topics_data.py         # render and encode (a few minutes)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
MAN = Path("/usr/share/man")
# /work/shared/data beside the checkout (found from a worktree too)
MSMARCO = next((p / "shared" / "data" / "msmarco-5k" for p in HERE.parents
                if (p / "shared" / "data" / "msmarco-5k").exists()), HERE.parents[1] / "shared" / "data" / "msmarco-5k")
TEXT_CHARS = 1200  # about one MiniLM chunk (256 word pieces)

#: category -> glob patterns under /usr/share/man
MAN_CATEGORIES: dict[str, tuple[str, ...]] = {
    "git": ("man1/git-*",),
    "gcloud compute": ("man1/gcloud_compute_*",),
    "gcloud container": ("man1/gcloud_container_*",),
    "llvm tools": ("man1/llvm-*",),
    "openssl": ("man1/openssl*", "man7/EVP*"),
    "postgresql sql": ("man7/[A-Z]*.7.gz",),
    "linux system calls": ("man2/*",),
    "c library": ("man3/[a-z]*.3.gz",),
    "perl modules": ("man3/*.3perl.gz", "man3/*.3pm.gz"),
    "perf": ("man1/perf*",),
    "systemd": ("man1/systemd*", "man5/systemd*", "man7/systemd*"),
    "dpkg": ("man1/dpkg*",),
    "cmake": ("man7/cmake*",),
}
STDLIB_CATEGORIES = ("asyncio", "logging", "email", "unittest", "xml", "turtle")
_SECTION = re.compile(r"^([A-Z][A-Z /-]+)$")


def render_man(path: Path) -> str:
    """The NAME line and the start of DESCRIPTION of a manual page, as plain text."""
    env = {**os.environ, "MANWIDTH": "200", "LC_ALL": "C.UTF-8"}
    raw = subprocess.run(["man", "-l", str(path)], capture_output=True, env=env, check=False).stdout
    plain = subprocess.run(["col", "-bx"], input=raw, capture_output=True, check=False).stdout
    plain = plain.decode("utf-8", "replace")
    sections: dict[str, list[str]] = {}
    current = None
    for line in plain.splitlines()[1:]:
        match = _SECTION.match(line.strip()) if line and not line.startswith(" ") else None
        if match:
            current = match.group(1)
            continue
        if current is not None:
            sections.setdefault(current, []).append(line.strip())
    name = " ".join(" ".join(sections.get("NAME", [])).split())
    # DESCRIPTION, else the first section after the synopsis (Perl pages start with INTRODUCTION...)
    prose = [k for k in sections if k not in ("NAME", "SYNOPSIS")]
    chosen = "DESCRIPTION" if "DESCRIPTION" in sections else (prose[0] if prose else "")
    body = " ".join(" ".join(sections.get(chosen, [])).split())
    return (name + ". " + body)[:TEXT_CHARS].strip(" .")


def man_documents(cap: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(ids, texts, categories) of the manual pages, at most ``cap`` per category."""
    rng = np.random.default_rng(seed)
    ids, texts, cats = [], [], []
    for category, patterns in MAN_CATEGORIES.items():
        files = sorted({p for pattern in patterns for p in MAN.glob(pattern)})
        if len(files) > cap:
            files = [files[i] for i in np.sort(rng.choice(len(files), cap, replace=False))]
        for f in files:
            text = render_man(f)
            if len(text) >= 80:
                ids.append(f"man:{f.name.removesuffix('.gz')}")
                texts.append(text)
                cats.append(category)
    return ids, texts, cats


def stdlib_documents(cap: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    from semsearch.ingest.stdlib import stdlib_docstrings

    rng = np.random.default_rng(seed)
    ids, texts, cats = [], [], []
    for package in STDLIB_CATEGORIES:
        records = stdlib_docstrings([package])
        if len(records) > cap:
            records = [records[i] for i in np.sort(rng.choice(len(records), cap, replace=False))]
        for r in records:
            first = r.text.split("\n", 1)[0]
            ids.append(f"py:{r.id}")
            texts.append(r.text.split(": ", 1)[1] if ": " in first else r.text)
            cats.append(f"python {package}")
    return ids, texts, cats


def msmarco_documents(n: int, seed: int) -> tuple[list[str], list[str]]:
    rows = []
    with open(MSMARCO / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            rows.append((row["_id"], ((row.get("title") or "") + " " + row["text"]).strip()))
    picked = np.sort(np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False))
    return [f"msmarco:{rows[i][0]}" for i in picked], [rows[i][1] for i in picked]


def labelled_corpus(cap: int = 120, msmarco: int = 1500, seed: int = 0) -> dict:
    """{"ids", "texts", "labels" (category index, -1 for msmarco), "categories", "vectors"}, cached."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"topics_corpus_{cap}_{msmarco}_{seed}.json"
    if path.exists():
        data = json.loads(path.read_text())
    else:
        ids, texts, cats = man_documents(cap, seed)
        for part in (stdlib_documents(cap, seed),):
            ids += part[0]
            texts += part[1]
            cats += part[2]
        categories = list(dict.fromkeys(cats))
        labels = [categories.index(c) for c in cats]
        if msmarco and MSMARCO.exists():
            m_ids, m_texts = msmarco_documents(msmarco, seed)
            ids += m_ids
            texts += m_texts
            labels += [-1] * len(m_ids)
        data = {"ids": ids, "texts": texts, "labels": labels, "categories": categories}
        path.write_text(json.dumps(data))
    data["labels"] = np.asarray(data["labels"])
    data["vectors"] = encode(data["texts"])
    return data


def encode(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 document vectors (unit length, one chunk each), cached by content."""
    import hashlib

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"topics_vectors_{digest}.npy"
    if path.exists():
        return np.load(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semsearch.embedding import Embedder

    vectors = Embedder(query_cache=0).encode_documents(texts).astype(np.float32)
    np.save(path, vectors)
    return vectors


if __name__ == "__main__":
    import time

    started = time.perf_counter()
    d = labelled_corpus()
    counts = Counter(d["labels"].tolist())
    print(f"{len(d['ids'])} documents in {time.perf_counter() - started:.0f} s")
    for i, c in enumerate(d["categories"]):
        print(f"  {counts[i]:4d}  {c}")
    print(f"  {counts[-1]:4d}  msmarco (no category)")
