"""Data for bench_duplicates.py (issue 27): documents whose duplicates are known by construction.

Three kinds of documents, all real text or made the way real collections get them:

- **Base passages**: msmarco-5k (/work/shared/data/msmarco-5k; benchmark only, never copied
  into the repository), cleaned of the near-identical passages msmarco already holds (a passage
  is dropped when its word 3-shingles overlap an earlier kept one's by Jaccard >= 0.3), so every
  pair of base passages is a pair of *different* passages, however alike in meaning (msmarco
  has many on one subject: Jamaica's rainy season, a drug's side effects...).
- **Planted copies**: 300 base passages get an edited copy, 60 of them a second one with another
  edit. Edits, in turn: case (all lower or upper), punctuation (removed or doubled), one
  changed word, reordered sentences (the first moved to the end), truncated (last sentence
  dropped). Every pair among an original and its copies is a true duplicate pair, and only those.
- **Sister documents**: encyclopedia stubs made from one template per family (a club's seasons,
  the villages of one district, the moths of one genus, a band's albums, one country's
  elections, the stations of one line), which differ only in their facts (year, numbers, names):
  different entities, never duplicates, and exactly what an embedding puts above 0.95.

Vectors are all-MiniLM-L6-v2 through semsearch's own encoder (one chunk each), cached in
bench/.cache/.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# /work/shared/data beside the checkout (found from a worktree too)
MSMARCO = next((p / "shared" / "data" / "msmarco-5k" for p in HERE.parents
                if (p / "shared" / "data" / "msmarco-5k").exists()), HERE.parents[1] / "shared" / "data" / "msmarco-5k")
EDITS = ("case", "punctuation", "word", "reorder", "truncate")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")

ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "11th", "12th", "13th", "14th", "15th", "16th", "17th", "18th", "19th", "20th", "21st", "22nd",
            "23rd", "24th", "25th", "26th", "27th", "28th", "29th", "30th", "31st", "32nd", "33rd", "34th"]
FIRST = ["Anna", "Marek", "Luis", "Sofia", "Tomasz", "Ines", "Pieter", "Oskar", "Lena", "Mateo", "Karin",
         "Jonas", "Elif", "Rui", "Nadia", "Felix", "Ivana", "Hugo", "Maja", "Arne"]
LAST = ["Novak", "Berg", "Santos", "Kowalski", "Lindqvist", "Moreau", "Horvat", "Jansen", "Costa", "Weber",
        "Nieminen", "Petrov", "Dalton", "Ferreira", "Kaya", "Brandt", "Sousa", "Varga", "Holm", "Rossi"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
COLOURS = ["pale brown", "greyish white", "dark ochre", "olive green", "reddish brown", "silvery grey",
           "pale yellow", "blackish", "straw coloured", "deep orange"]


def _season(rng, family):
    clubs = ["FC Vorstadt", "Real Alcora", "Sporting Valmont", "AS Bellerive", "Dynamo Krasno", "Olympia Harlov"]
    leagues = ["Premier Division", "Segunda Liga", "Ligue Regionale", "First League"]
    club, league = clubs[family % len(clubs)], leagues[family % len(leagues)]
    start = int(rng.integers(1995, 2012))
    for k in range(int(rng.integers(3, 6))):
        year = start + k
        yield (f"The {year}–{str(year + 1)[2:]} {club} season was the club's {ORDINALS[20 + k + family % 5]} season "
               f"in existence and its {ORDINALS[k + 1]} consecutive season in the {league}. In addition to the "
               f"domestic league, {club} participated in this season's editions of the national cup and the "
               f"league cup. The season covered the period from 1 July {year} to 30 June {year + 1}. {club} "
               f"finished the league in {ORDINALS[int(rng.integers(0, 14))]} place with {int(rng.integers(30, 80))} "
               f"points, and {FIRST[int(rng.integers(20))]} {LAST[int(rng.integers(20))]} was the top scorer with "
               f"{int(rng.integers(8, 30))} goals.")


def _village(rng, family):
    districts = ["Levoča", "Trenčín", "Bardejov", "Senica", "Poprad", "Rožňava"]
    regions = ["Prešov", "Trenčín", "Prešov", "Trnava", "Prešov", "Košice"]
    stems = ["Horná", "Dolná", "Nová", "Stará", "Malá", "Veľká", "Vyšná", "Nižná"]
    roots = ["Lehota", "Ves", "Poruba", "Lúka", "Polianka", "Dubová", "Breznica", "Lipovec"]
    district, region = districts[family % 6], regions[family % 6]
    names = rng.permutation(len(stems) * len(roots))[: int(rng.integers(3, 7))]
    for n in names:
        town = f"{stems[n % 8]} {roots[n // 8]}"
        yield (f"{town} is a village and municipality in the {district} District in the {region} Region of "
               f"Slovakia. As of the 2011 census it had a population of {int(rng.integers(120, 2400))} inhabitants. "
               f"The municipality lies at an altitude of {int(rng.integers(180, 900))} metres and covers an area of "
               f"{rng.uniform(3, 30):.1f} km². It was first mentioned in historical records in "
               f"{int(rng.integers(1230, 1450))}.")


def _moth(rng, family):
    genera = ["Eupithecia", "Idaea", "Cosmopterix", "Ethmia", "Stathmopoda", "Agonopterix"]
    families = ["Geometridae", "Geometridae", "Cosmopterigidae", "Depressariidae", "Stathmopodidae",
                "Depressariidae"]
    epithets = ["australis", "borealis", "minuta", "insularis", "montana", "obscura", "pallida", "ornata",
                "sinuata", "rufescens", "vicina", "gracilis"]
    genus, fam = genera[family % 6], families[family % 6]
    for e in rng.permutation(len(epithets))[: int(rng.integers(3, 6))]:
        w = int(rng.integers(9, 24))
        yield (f"{genus} {epithets[e]} is a moth of the family {fam}. It was described by "
               f"{LAST[int(rng.integers(20))]} in {int(rng.integers(1850, 1990))}. It is found in "
               f"{['Peru', 'Kenya', 'Borneo', 'Chile', 'Madagascar', 'Nepal'][int(rng.integers(6))]}. The wingspan is "
               f"{w}–{w + int(rng.integers(2, 5))} mm. The forewings are {COLOURS[int(rng.integers(10))]} with "
               f"{COLOURS[int(rng.integers(10))]} markings and the hindwings are {COLOURS[int(rng.integers(10))]}.")


def _album(rng, family):
    bands = ["The Velvet Harbour", "Nordlys", "Cinder Saints", "Moth Parade", "Kessel Run", "Lumen Drift"]
    genres = ["indie rock", "black metal", "post-punk", "synth-pop", "progressive rock", "shoegaze"]
    titles = ["Northern Lights", "Glass Houses", "Ashes and Embers", "Low Tide", "Paper Crowns", "Static Hearts",
              "Iron Sky", "Hollow Ground", "Silver Lines", "Wild Frontier"]
    band, genre = bands[family % 6], genres[family % 6]
    start = int(rng.integers(1985, 2010))
    for k, t in enumerate(rng.permutation(len(titles))[: int(rng.integers(3, 6))]):
        yield (f"{titles[t]} is the {ORDINALS[k + 1]} studio album by {genre} band {band}. It was released on "
               f"{int(rng.integers(1, 28))} {MONTHS[int(rng.integers(12))]} {start + 2 * k} through "
               f"{['Nuclear Blast', 'Sub Pop', 'Rough Trade', 'Century Media'][family % 4]}. The album was produced "
               f"by {FIRST[int(rng.integers(20))]} {LAST[int(rng.integers(20))]} and recorded at "
               f"{['Abbey Road', 'Sunset Sound', 'Hansa Studios', 'Electric Lady'][int(rng.integers(4))]}. It peaked "
               f"at number {int(rng.integers(1, 90))} on the national albums chart.")


def _election(rng, family):
    places = ["Ruritanian", "Valdorian", "Estovakian", "Borduran", "Carpathian", "Meridian"]
    bodies = ["National Assembly", "Chamber of Deputies", "Federal Diet", "House of Representatives"]
    parties = ["Social Democratic Party", "National Union", "Liberal Alliance", "People's Party"]
    place, body = places[family % 6], bodies[family % 4]
    total = int(rng.integers(80, 300))
    start = int(rng.integers(1950, 2000))
    for k in range(int(rng.integers(3, 6))):
        year = start + 4 * k
        yield (f"The {year} {place} parliamentary election was held on {int(rng.integers(1, 28))} "
               f"{MONTHS[int(rng.integers(12))]} {year} to elect the {total} members of the {body}. Turnout was "
               f"{rng.uniform(45, 85):.1f}%. The {parties[int(rng.integers(4))]} won "
               f"{int(rng.integers(total // 4, total // 2))} of the {total} seats, and {FIRST[int(rng.integers(20))]} "
               f"{LAST[int(rng.integers(20))]} became prime minister.")


def _station(rng, family):
    lines = ["Bergen", "Ofoten", "Gotthard", "Semmering", "Tauern", "Arlberg"]
    countries = ["Norway", "Norway", "Switzerland", "Austria", "Austria", "Austria"]
    towns = ["Haugastøl", "Finse", "Myrdal", "Ustaoset", "Geilo", "Ål", "Gol", "Nesbyen", "Flå", "Hønefoss"]
    line, country = lines[family % 6], countries[family % 6]
    for t in rng.permutation(len(towns))[: int(rng.integers(3, 6))]:
        yield (f"{towns[t]} Station is a railway station on the {line} Line in {country}. It is located "
               f"{rng.uniform(20, 400):.1f} km from the line's terminus and lies {int(rng.integers(100, 1300))} metres "
               f"above sea level. The station opened in {int(rng.integers(1880, 1930))} and has "
               f"{int(rng.integers(1, 4))} platforms; it is served by regional trains.")


TEMPLATES = (_season, _village, _moth, _album, _election, _station)


def sister_documents(families_per_template: int = 6, seed: int = 0) -> tuple[list[str], list[int]]:
    """(texts, family of each): stubs of one template and family are sisters, different entities."""
    rng = np.random.default_rng(seed)
    texts, family = [], []
    for t, template in enumerate(TEMPLATES):
        for f in range(families_per_template):
            for text in template(rng, f):
                texts.append(text)
                family.append(t * families_per_template + f)
    return texts, family


def shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.sub(r"[^\w\s]", "", text.casefold()).split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def clean_base(texts: list[str], limit: float = 0.3) -> list[int]:
    """Indices of the passages to keep: each drops if its 3-shingles overlap a kept one's by Jaccard >= limit."""
    from scipy import sparse

    vocab: dict[tuple[str, ...], int] = {}
    rows, cols = [], []
    for r, t in enumerate(texts):
        for s in shingles(t):
            rows.append(r)
            cols.append(vocab.setdefault(s, len(vocab)))
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), len(vocab)))
    sizes = np.asarray(m.sum(axis=1)).ravel()
    inter = (m @ m.T).tocoo()
    keep = np.ones(len(texts), dtype=bool)
    clash: dict[int, list[int]] = {}
    for a, b, v in zip(inter.row, inter.col, inter.data):
        if a < b and v / (sizes[a] + sizes[b] - v) >= limit:
            clash.setdefault(int(b), []).append(int(a))
    for b in sorted(clash):
        if any(keep[a] for a in clash[b]):
            keep[b] = False
    return np.flatnonzero(keep).tolist()


def edit(text: str, kind: str, rng: np.random.Generator, vocabulary: list[str]) -> str:
    if kind == "case":
        return text.lower() if rng.random() < 0.5 else text.upper()
    if kind == "punctuation":
        if rng.random() < 0.5:
            return " ".join(text.translate(str.maketrans("", "", string.punctuation)).split())
        return re.sub(r"([.,!?;:])", r"\1\1", text)
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if kind == "reorder" and len(sentences) >= 2:
        return " ".join(sentences[1:] + sentences[:1])
    if kind == "truncate" and len(sentences) >= 3:
        return " ".join(sentences[:-1])
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w.strip(string.punctuation)) >= 4] or [len(words) - 1]
    i = candidates[int(rng.integers(len(candidates)))]
    words[i] = vocabulary[int(rng.integers(len(vocabulary)))]
    return " ".join(words)


def duplicate_corpus(originals: int = 300, second: int = 60, seed: int = 0) -> dict:
    """{"ids", "texts", "kind" (base/copy/sister), "truth": set of true pairs (i, j), "family", "edits"}."""
    passages = []
    with open(MSMARCO / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            passages.append(((row.get("title") or "") + " " + row["text"]).strip())
    base = [passages[i] for i in clean_base(passages)]
    rng = np.random.default_rng(seed)
    vocabulary = sorted({w for t in base for w in re.findall(r"[a-z]{4,}", t.lower())})
    texts, kind, family = list(base), ["base"] * len(base), [-1] * len(base)
    truth: set[tuple[int, int]] = set()
    edits: dict[tuple[int, int], str] = {}
    chosen = np.sort(rng.choice(len(base), originals, replace=False)).tolist()
    n = 0
    for rank, i in enumerate(chosen):
        group = [i]
        for _ in range(2 if rank < second else 1):
            how = EDITS[n % len(EDITS)]
            n += 1
            texts.append(edit(base[i], how, rng, vocabulary))
            kind.append("copy")
            family.append(-1)
            copy = len(texts) - 1
            for other in group:
                truth.add((other, copy))
            edits[(i, copy)] = how
            group.append(copy)
    sisters, fam = sister_documents(seed=seed)
    texts += sisters
    kind += ["sister"] * len(sisters)
    family += fam
    ids = [f"d{i}" for i in range(len(texts))]
    return {"ids": ids, "texts": texts, "kind": kind, "truth": truth, "family": family, "edits": edits}


def encode(texts: list[str], name: str) -> np.ndarray:
    import hashlib
    import os

    cache = HERE / ".cache"
    cache.mkdir(exist_ok=True)
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"{name}_{digest}.npy"
    if path.exists():
        return np.load(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semsearch.embedding import Embedder

    vectors = Embedder(query_cache=0).encode_documents(texts).astype(np.float32)
    np.save(path, vectors)
    return vectors


if __name__ == "__main__":
    d = duplicate_corpus()
    print(len(d["texts"]), "documents:", {k: d["kind"].count(k) for k in ("base", "copy", "sister")},
          len(d["truth"]), "true pairs")
    v = encode(d["texts"], "duplicates")
    print(v.shape)
