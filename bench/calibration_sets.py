"""Judged sets and unanswerable questions for the calibration study (bench/bench_calibration.py).

Four kinds of search, each with real questions the corpus does not answer (bench/unanswerable/):

- ``msmarco``: msmarco-5k (../shared/data) and its TREC-DL questions; unanswerable: questions
  in the same style on topics no passage covers (checked by reading each one's best hits).
- ``entities``: entity look-ups over encyclopedia-style descriptions (bench/judged/entities.jsonl);
  unanswerable: names of entities the corpus does not describe, some near ones (other planets,
  elements, car makers, cities).
- ``european``: German, French and Spanish texts and queries (bench/judged/european.jsonl);
  unanswerable: everyday questions in those languages on topics the texts do not cover.
- ``stdlib``: code identifiers: the docstrings of Python's standard library (the demo corpus),
  searched by function, class or method names as a programmer types them ("copytree",
  "shutil.copytree", "copytree shutil"); unanswerable: identifiers of third-party libraries
  (numpy, pandas, torch, flask, ...) that the standard library does not have.
- ``codes`` (part numbers, bench/quality_sets.py); unanswerable: part numbers and EANs that
  are not in the catalogue.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from quality_sets import SHARED, Dataset, codes, judged, load_beir

HERE = Path(__file__).parent


def unanswerable(name: str) -> list[str]:
    """The unanswerable questions of one set (bench/unanswerable/NAME.txt, one per line)."""
    path = HERE / "unanswerable" / f"{name}.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def stdlib_identifiers(n_queries: int = 120, seed: int = 11) -> Dataset:
    """Standard-library docstrings searched by identifier; one judged document per query."""
    from semsearch.ingest.stdlib import stdlib_docstrings

    records = stdlib_docstrings()
    corpus = {r.id: r.text for r in records}
    last = {}
    for r in records:
        if r.metadata["kind"] != "module":
            last.setdefault(r.id.rsplit(".", 1)[-1].lower(), []).append(r)
    unique = [rs[0] for name, rs in sorted(last.items())
              if len(rs) == 1 and len(name) >= 6 and not name.startswith("_")]
    rnd = random.Random(seed)
    picked = rnd.sample(unique, n_queries)
    queries, qrels = {}, {}
    for i, r in enumerate(picked):
        name = r.id.rsplit(".", 1)[-1]
        module = r.metadata["module"].split(".")[-1]
        form = rnd.random()
        queries[f"s{i}"] = name if form < 0.4 else f"{module}.{name}" if form < 0.7 else f"{name} {module}"
        qrels[f"s{i}"] = {r.id: 1}
    return corpus, queries, qrels


def codes_unanswerable(corpus: dict[str, str], n: int = 40, seed: int = 29) -> list[str]:
    """Part numbers and EANs in the catalogue's formats that no product has."""
    text = " ".join(corpus.values())
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        code = f"{rnd.choice('ABCDEFGHKLMNPRSTX')}{rnd.choice('ABCDEFGHKLMNPRSTX')}-{rnd.randint(1000, 9999)}"
        ean = "".join(str(rnd.randint(0, 9)) for _ in range(13))
        q = rnd.choice([code, f"{code} hex bolt", f"datasheet for part {code}", f"EAN {ean}", ean])
        if not any(tok in text for tok in re.findall(r"[A-Z]{2}-\d{4}|\d{13}", q)):
            out.append(q)
    return out


def calibration_sets() -> dict[str, tuple[Dataset, list[str]]]:
    """name -> ((corpus, queries, qrels), unanswerable questions)."""
    sets: dict[str, tuple[Dataset, list[str]]] = {}
    folder = SHARED / "msmarco-5k"
    if folder.exists():
        sets["msmarco"] = (load_beir(folder), unanswerable("msmarco"))
    sets["entities"] = (judged("entities"), unanswerable("entities"))
    sets["european"] = (judged("european"), unanswerable("european"))
    sets["stdlib"] = (stdlib_identifiers(), unanswerable("stdlib"))
    product_codes = codes()
    sets["codes"] = (product_codes, codes_unanswerable(product_codes[0]))
    return sets
