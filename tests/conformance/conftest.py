"""The conformance suite's collection: a few documents with topics, filters and a near-duplicate pair."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the server extra (pip install 'semsearch[server]')")
pytest.importorskip("httpx", reason="httpx drives the HTTP door")
pytest.importorskip("mcp", reason="the MCP SDK (pip install 'semsearch[mcp]')")

DOCS = [
    ("apollo", "Apollo 11 landed on the Moon on 20 July 1969. Neil Armstrong was the first person to walk on it, "
               "and Buzz Aldrin followed him twenty minutes later.", {"topic": "space", "year": 1969}),
    ("mars", "The Perseverance rover landed in Jezero crater on Mars in February 2021 to look for signs of ancient "
             "microbial life.", {"topic": "space", "year": 2021}),
    ("hubble", "The Hubble Space Telescope orbits the Earth and photographs distant galaxies and nebulae.",
     {"topic": "space", "year": 1990}),
    ("tomato", "Water tomato plants deeply twice a week during hot summer days. Mulch keeps the soil moist.",
     {"topic": "garden", "year": 2022}),
    ("roses", "Prune roses in late winter, just above an outward-facing bud, so the bush stays open and healthy.",
     {"topic": "garden", "year": 2020}),
    ("compost", "A compost heap needs green kitchen scraps, brown dry leaves and air to rot down quickly.",
     {"topic": "garden", "year": 2019}),
    ("warranty", "The warranty on the X200 kettle lasts two years from the date of purchase. Keep the receipt.",
     {"topic": "support", "year": 2023}),
    # A near-copy (one word changed): a duplicate by meaning and by text.
    ("warranty-copy", "The warranty on the X200 kettle lasts two years from the date of purchase. Keep your receipt.",
     {"topic": "support", "year": 2024}),
    ("bread", "Sourdough bread needs a lively starter and a long, slow rise in a cool kitchen.",
     {"topic": "food", "year": 2018}),
    ("cake", "A recipe for chocolate cake with dark cocoa, butter and three eggs.", {"topic": "food", "year": 2017}),
    ("argparse", "Python's argparse module parses command line arguments and prints a help message.",
     {"topic": "code", "year": 2023}),
]
#: Nothing in DOCS says anything about this.
UNANSWERABLE = "What is the boiling point of liquid nitrogen at sea level?"


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory, minilm_path):
    """A local collection holding DOCS, encoded by the real default model (built once per module)."""
    from semsearch import Collection

    path = tmp_path_factory.mktemp("conformance") / "docs"
    with Collection(path) as col:
        col.add([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadatas=[m for _, _, m in DOCS])
    return path
