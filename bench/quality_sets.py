"""Judged retrieval sets for checking that hybrid search is robust, not tuned to one dataset.

Each set is a BEIR-like triple (corpus {id: text}, queries {id: text}, qrels {qid: {docid: gain}}):

- ``msmarco``: ../shared/data/msmarco-5k (43 judged queries), when present.
- ``msmarco-georgian``: msmarco with every Latin letter replaced by a Georgian one: the same
  words and word statistics (so BM25 is unchanged), in a script all-MiniLM-L6-v2's vocabulary
  maps to [UNK] — a language the dense model does not cover at all.
- ``msmarco-pseudo``: every English word replaced by a made-up Latin-script word (a fixed
  random syllable string per word): no [UNK], but WordPiece shatters the words into
  fragments, like a Latin-script language the model never learnt (Finnish, Swahili...).
- ``codes``: product records looked up by part number, model code and quantity, where the
  distinguishing information is an identifier dense models blur.
- ``paraphrase``: hand-written questions that share (almost) no content words with their
  answers, next to distractors that share the words but not the meaning: dense wins.
- ``multilingual``: hand-written short texts in German, French, Spanish, Russian, Chinese,
  Japanese, Thai and Hindi, with queries in the same language.

Four more hand-written sets (bench/judged/*.jsonl, one document per line with the queries it
answers), added so the default fusion is chosen across kinds of search, not for one set:

- ``entities``: short entity-name queries ("jaguar cars", "mercury planet", "queen band")
  and a few descriptive ones over encyclopedia-style entity descriptions, with ambiguous
  names (Paris, Mercury, Jaguar, Amazon, Java, Titanic...) so that both retrievers work but
  neither is perfect (the kind of set where RRF loses to dense).
- ``faq``: help-centre question/answer entries searched with users' own wording of the
  question (some shared words, mostly paraphrase).
- ``european``: German, French and Spanish news/recipe/travel sentences with keyword and
  paraphrased queries in the same language (a language MiniLM, trained on English, partly
  reads).
- ``cjk``: Chinese, Japanese and Korean sentences and queries (scripts MiniLM barely reads;
  BM25 works on character bigrams).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

Dataset = tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_beir(folder: Path, split: str = "test") -> Dataset:
    corpus, queries, qrels = {}, {}, {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            corpus[str(r["_id"])] = ((r.get("title") or "") + " " + r["text"]).strip()
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            queries[str(r["_id"])] = r["text"]
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not parts[2].lstrip("-").isdigit():
                continue  # header
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {q: t for q, t in queries.items() if q in qrels}
    return corpus, queries, qrels


def _map_texts(data: Dataset, fn) -> Dataset:  # noqa: ANN001
    corpus, queries, qrels = data
    return {k: fn(v) for k, v in corpus.items()}, {k: fn(v) for k, v in queries.items()}, qrels


_GEORGIAN = dict(zip("abcdefghijklmnopqrstuvwxyz", "აბგდევზთიკლმნოპჟრსტუფქღყშჩ"))


def georgian(text: str) -> str:
    return "".join(_GEORGIAN.get(ch, ch) for ch in text.lower())


_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["ka", "tu", "ri", "ok", "el", "an"]


def _pseudo_word(word: str) -> str:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
    rnd = random.Random(seed)
    return "".join(rnd.choice(_SYLLABLES) for _ in range(max(2, (len(word) + 2) // 3)))


def pseudo(text: str) -> str:
    return re.sub(r"[A-Za-z]+", lambda m: _pseudo_word(m.group(0).lower()), text)


def codes(n_products: int = 600, seed: int = 3) -> Dataset:
    rnd = random.Random(seed)
    kinds = ["hex bolt", "wood screw", "wall plug", "washer", "hinge", "bracket", "cable tie", "rivet"]
    materials = ["stainless steel", "zinc-plated steel", "brass", "nylon", "aluminium"]
    corpus, queries, qrels = {}, {}, {}
    used: set[str] = set()
    for i in range(n_products):
        while True:
            code = f"{rnd.choice('ABCDEFGHKLMNPRSTX')}{rnd.choice('ABCDEFGHKLMNPRSTX')}-{rnd.randint(1000, 9999)}"
            if code not in used:
                used.add(code)
                break
        kind, material = rnd.choice(kinds), rnd.choice(materials)
        size, pack = rnd.choice([3, 4, 5, 6, 8, 10, 12]), rnd.choice([10, 25, 50, 100, 200])
        ean = "".join(str(rnd.randint(0, 9)) for _ in range(13))
        corpus[f"p{i}"] = (
            f"Part {code}: {material} {kind}, {size} mm, sold in packs of {pack}. EAN {ean}. "
            f"Suitable for indoor and outdoor use; see the fitting guide for torque values."
        )
        if i % 6 == 0:
            q = rnd.choice([f"{code}", f"{code} {kind}", f"datasheet for part {code}", f"EAN {ean}", f"{ean}"])
            queries[f"q{i}"] = q
            qrels[f"q{i}"] = {f"p{i}": 1}
    return corpus, queries, qrels


_PARAPHRASE = [
    ("Budget-friendly lodging by the coast, a short walk from the sand.", "cheap hotel near the beach"),
    ("The central bank raised interest rates by a quarter point.", "monetary authority makes borrowing costlier"),
    ("Preheat the oven and whisk the eggs with sugar for the sponge cake.", "how to bake a light dessert"),
    ("The striker scored twice in the second half of the final.",
     "football player nets two goals in championship match"),
    ("Photosynthesis turns sunlight, water and carbon dioxide into sugar.", "how plants make food from light"),
    ("The museum's new wing displays medieval manuscripts.", "gallery extension shows old handwritten books"),
    ("Her physician prescribed antibiotics for the bacterial infection.", "doctor gave medicine to treat germs"),
    ("The automobile would not start because the battery was flat.", "car dead due to electrical power cell"),
    ("Commuters faced long delays after the train derailed.", "railway accident slows travellers going to work"),
    ("The toddler refused to eat his vegetables at dinner.", "small child will not finish greens at supper"),
    ("Wildfires forced thousands to evacuate their homes.", "blazes make many people flee houses"),
    ("The senator announced she will not seek re-election.", "politician retiring from office at end of term"),
    ("Regular aerobic exercise lowers blood pressure.", "cardio workouts reduce hypertension"),
    ("The startup raised twenty million dollars in venture funding.",
     "young company gets investment money from backers"),
    ("Glaciers are melting faster as global temperatures rise.", "ice sheets shrinking due to warming climate"),
    ("He apologised for arriving late to the meeting.", "said sorry for tardiness at the conference"),
    ("The puppy chewed through the sofa cushions.", "young dog destroyed couch pillows"),
    ("Use a VPN to encrypt traffic on public wifi.", "secure browsing at cafe hotspots"),
    ("The orchestra performed Beethoven's ninth symphony.", "musicians played famous classical composition"),
    ("Heavy rainfall caused the river to burst its banks.", "downpour leads to flooding"),
    ("The software update fixes a security vulnerability.", "patch closes hole that hackers could exploit"),
    ("Our flight was cancelled due to a snowstorm.", "plane trip called off because of blizzard"),
    ("She knitted a scarf for her grandson.", "woman made woollen neckwear for grandchild"),
    ("The landlord raised the rent by ten percent.", "property owner increases monthly housing payment"),
    ("Bees pollinate many of the crops we eat.", "insects help food plants reproduce"),
]
_DISTRACTORS = [
    "The beach near the hotel was closed, and nothing there was cheap.",
    "Make sure the light in the dessert fridge is off before you bake bread.",
    "The match between the two championship teams was postponed; no player was available.",
    "Plants in the office make the light look green and the food smell fresh.",
    "The gallery's old books were shown in an extension of the catalogue.",
    "The doctor said the medicine to treat the cat was not available.",
    "The car park has an electrical power outlet near the exit.",
    "Travellers going to work prefer the railway when the roads slow down.",
    "A small child sang at the supper; the greens were on the table.",
    "Many people in houses near the lake watch the blazes of the sunset.",
    "The politician gave a speech at the end of the office party.",
    "Workouts at the gym reduce stress, says the cardio instructor.",
    "The young company sold money boxes to its backers.",
    "The climate in the ice rink is kept warm for sheets of paper.",
    "The conference said sorry: the coffee was cold.",
    "The young dog sleeps on the couch next to the pillows.",
    "Browsing the cafe menu is secure and fun.",
    "Musicians played in the park; the composition was famous locally.",
    "The downpour of praise leads to a flooding of applications.",
    "The patch on the road has a hole that cyclists avoid.",
    "The plane trip was long and the blizzard film was called off.",
    "The woman bought neckwear for her grandchild's birthday.",
    "The property owner painted the housing units in monthly colours.",
    "Insects and plants were the topic of the food fair.",
    "Hackers could not exploit the patch of grass.",
]


def paraphrase() -> Dataset:
    corpus = {f"a{i}": doc for i, (doc, _) in enumerate(_PARAPHRASE)}
    corpus.update({f"x{i}": d for i, d in enumerate(_DISTRACTORS)})
    queries = {f"q{i}": q for i, (_, q) in enumerate(_PARAPHRASE)}
    qrels = {f"q{i}": {f"a{i}": 1} for i in range(len(_PARAPHRASE))}
    return corpus, queries, qrels


def multilingual() -> Dataset:
    path = Path(__file__).with_name("multilingual.jsonl")
    corpus, queries, qrels = {}, {}, {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        r = json.loads(line)
        corpus[f"m{i}"] = r["doc"]
        if r.get("query"):
            queries[f"q{i}"] = r["query"]
            qrels[f"q{i}"] = {f"m{i}": 1}
    return corpus, queries, qrels


def judged(name: str) -> Dataset:
    """A hand-written set from bench/judged/NAME.jsonl (each query judges its line's document relevant)."""
    path = Path(__file__).with_name("judged") / f"{name}.jsonl"
    corpus, queries, qrels = {}, {}, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        corpus[r["id"]] = r["doc"]
        for j, q in enumerate(r.get("queries", [])):
            qid = f"{r['id']}-q{j}"
            queries[qid] = q
            qrels[qid] = {r["id"]: 1}
    return corpus, queries, qrels


JUDGED = ("entities", "faq", "european", "cjk")


def all_sets(include_msmarco: bool = True) -> dict[str, Dataset]:
    sets: dict[str, Dataset] = {}
    folder = SHARED / "msmarco-5k"
    if include_msmarco and folder.exists():
        ms = load_beir(folder)
        sets["msmarco"] = ms
        sets["msmarco-georgian"] = _map_texts(ms, georgian)
        sets["msmarco-pseudo"] = _map_texts(ms, pseudo)
    sets["codes"] = codes()
    sets["paraphrase"] = paraphrase()
    sets["multilingual"] = multilingual()
    for name in JUDGED:
        sets[name] = judged(name)
    return sets
