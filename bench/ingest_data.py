"""Real passages for the ingestion benchmark at 50,000 documents, from the system's manual pages.

msmarco-5k has 5,000 passages; copies or recombinations of them would be neither real nor
realistic for the tokenizer and the model. Debian's manual pages are real, human-written
English prose on every Debian machine: each page of sections 1-8 is rendered by ``man`` and
cut into its paragraphs (blank-line separated, whitespace collapsed); a paragraph of 20 to 300
words is a passage (option tables and one-line synopses are shorter, and are dropped), exact
duplicates are dropped, and pages are visited in a seeded random order until N passages are
found. 16,631 of the 17,847 pages of section 1 here document one tool (the Google Cloud CLI,
``gcloud ...``: long, alike pages), so every other page is visited first and those fill up
only what remains (the count of each is printed). Nothing here comes from the evaluation data
in ../shared/data.

    python bench/ingest_data.py --out /tmp/manpages-50k.jsonl [--passages 50000]

Writes BEIR-style JSONL rows {"_id", "title", "text"} (title: the page) and prints how many
passages from how many pages.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MAN_ROOT = Path("/usr/share/man")
MIN_WORDS, MAX_WORDS = 20, 300
ALIKE = "gcloud"


def pages() -> list[Path]:
    found = []
    for folder in sorted(MAN_ROOT.glob("man[1-8]")):
        for path in sorted(folder.glob("*.gz")):
            if path.is_symlink():
                continue
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                if f.read(400).lstrip().startswith(".so "):
                    continue  # a redirect to another page
            found.append(path)
    return found


def paragraphs(path: Path) -> list[str]:
    env = {**os.environ, "MANWIDTH": "10000", "MAN_KEEP_FORMATTING": "0"}
    rendered = subprocess.run(["man", "--nj", "--nh", "-l", str(path)], check=False, capture_output=True, text=True,
                              env=env, timeout=120).stdout
    rendered = re.sub(r".\x08", "", rendered)
    out = []
    for block in re.split(r"\n\s*\n", rendered):
        words = block.split()
        if MIN_WORDS <= len(words) <= MAX_WORDS:
            out.append(" ".join(words))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    found = pages()
    random.Random(args.seed).shuffle(found)
    found.sort(key=lambda p: p.name.startswith(ALIKE))  # stable: each part stays shuffled
    seen: set[str] = set()
    rows = []
    used = alike = 0
    with ThreadPoolExecutor(4) as pool:
        for start in range(0, len(found), 64):
            chunk = found[start : start + 64]
            for path, texts in zip(chunk, pool.map(paragraphs, chunk)):
                fresh = [t for t in texts if t not in seen]
                if fresh:
                    used += 1
                    alike += path.name.startswith(ALIKE)
                for i, text in enumerate(fresh):
                    seen.add(text)
                    rows.append({"_id": f"{path.name.removesuffix('.gz')}#{i}", "title": "", "text": text})
            if len(rows) >= args.passages:
                break
    rows = rows[: args.passages]
    with args.out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} passages from {used} manual pages ({alike} of them {ALIKE} pages) -> {args.out}")


if __name__ == "__main__":
    main()
