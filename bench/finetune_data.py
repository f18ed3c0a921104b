"""Real (query, passage) pairs for the fine-tuning benchmark, from the system's manual pages.

A manual page's NAME line ends in a one-line summary a person wrote to say what the page is
for ("open and possibly create a file", "copy a string"): the query. The first words of its
DESCRIPTION section are the passage. Sections 2 (system calls), 3 (C library), 5 (file
formats), 7 (overviews) and 8 (administration) come from Debian's manpages/manpages-dev and
the installed tools; they are real, human-written and on every Debian machine, and nothing
here comes from the evaluation data in ../shared/data. Pages that only redirect (.so) are
skipped, pages sharing a summary become one query with several positives.

    python bench/finetune_data.py --out /tmp/manpages.jsonl [--limit 3000]

Writes JSONL rows {"query", "positive", "page"}; prints how many.
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

SECTIONS = ("2", "3", "5", "7", "8")
MAN_ROOT = Path("/usr/share/man")
PASSAGE_WORDS = 120
_HEADING = re.compile(r"^[A-Z][A-Z /]+$")


def pages() -> list[Path]:
    found = []
    for section in SECTIONS:
        folder = MAN_ROOT / f"man{section}"
        for path in sorted(folder.glob(f"*.{section}.gz")):
            if path.is_symlink():
                continue
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                head = f.read(400)
            if head.lstrip().startswith(".so "):
                continue
            found.append(path)
    return found


def render(path: Path) -> str:
    env = {**os.environ, "MANWIDTH": "10000", "MAN_KEEP_FORMATTING": "0"}
    text = subprocess.run(["man", "--nj", "--nh", "-l", str(path)], check=False, capture_output=True, text=True,
                          env=env,
                          timeout=60).stdout
    return re.sub(r".\x08", "", text)


def sections(rendered: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current = None
    for line in rendered.split("\n"):
        if line and not line[0].isspace() and _HEADING.match(line.strip()):
            current = line.strip()
            out.setdefault(current, [])
        elif current is not None:
            out[current].append(line.strip())
    return {k: " ".join(" ".join(v).split()) for k, v in out.items()}


def pair(path: Path) -> dict[str, str] | None:
    parts = sections(render(path))
    name, description = parts.get("NAME", ""), parts.get("DESCRIPTION", "")
    if " - " not in name or not description:
        return None
    summary = name.split(" - ", 1)[1].strip()
    words = description.split()
    if len(summary.split()) < 2 or len(words) < 15:
        return None
    return {"query": summary, "positive": " ".join(words[:PASSAGE_WORDS]), "page": path.name.removesuffix(".gz")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=3000, help="at most this many pairs (a seeded random sample)")
    args = parser.parse_args()
    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = [r for r in pool.map(pair, pages()) if r]
    rows = random.Random(0).sample(rows, min(args.limit, len(rows)))
    with open(args.out, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    print(f"{len(rows)} pairs ({len({r['query'] for r in rows})} distinct queries) written to {args.out}")


if __name__ == "__main__":
    main()
