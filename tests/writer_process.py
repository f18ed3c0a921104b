"""A separate process that writes to a collection, driven by the concurrency and crash tests.

    python writer_process.py hold-lock PATH      (holds the write lock until a line arrives on stdin)
    python writer_process.py add PATH START COUNT BATCH [SAVE_EVERY]

``add`` prints ``ACK id,id,...`` (flushed) only after each ``add`` call has returned, so the
parent knows exactly which documents were acknowledged when it kills this process.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = (
    "river mountain engine violin harvest glacier orbit lantern protein canyon ledger "
    "harbor comet meadow circuit pepper falcon marble tundra quartz"
).split()


def text_for(i: int) -> str:
    picked = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(6)]
    return f"Record {i} is about the {picked[0]} and the {picked[1]}, near a {picked[2]} with {' '.join(picked[3:])}."


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "hold-lock":
        from pathlib import Path

        from semsearch.backends.local.locking import WriteLock

        with WriteLock(Path(path), timeout=5):
            print("LOCKED", flush=True)
            sys.stdin.readline()
        print("RELEASED", flush=True)
        return
    if mode == "add":
        from semsearch import Collection

        start, count, batch = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        save_every = int(sys.argv[6]) if len(sys.argv) > 6 else 200_000
        col = Collection(path, index_save_every=save_every, lock_timeout=120)
        col.search("warm up", k=1)  # load the index, so writes also update it in memory
        print("READY", flush=True)
        for first in range(start, start + count, batch):
            ids = [f"doc-{i}" for i in range(first, min(first + batch, start + count))]
            col.add([text_for(int(i.split("-")[1])) for i in ids], ids=ids, metadatas=[{"n": int(i[4:])} for i in ids])
            print("ACK " + ",".join(ids), flush=True)
            if os.environ.get("WRITER_SEARCH"):
                col.search("harbor comet", k=3)
        col.close()
        print("DONE", flush=True)
        return
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
