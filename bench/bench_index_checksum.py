"""What verifying a saved index costs when it is opened (issue 13).

Builds a 1,000,000 x 384 float32 ``Flat`` index (the largest file per vector semsearch writes:
1.5 GB), saves it with semsearch (digests taken while writing), then loads it again and again
in alternating order, each way on the same files:

* verified: ``semsearch.index.load_index`` as the collection calls it (every file hashed
  through a memory map and compared with the record, then parsed by FAISS);
* unverified: the same loading code with verification switched off (what loading did before);
* digest only: hashing the files, nothing parsed.

Warm = files in the page cache (a collection reopened); cold = the files' pages dropped first
with posix_fadvise(DONTNEED) (a collection opened after a reboot). It also times the hash
functions considered on the same mapped file (xxh3-64, CRC32C from ``crc32c`` and
``google-crc32c``, zlib's CRC32 as the slow reference) and the save with and without hashing.

    PYTHONPATH=src python bench/bench_index_checksum.py               # 5 rounds, ~5 min, 3.5 GB of /tmp
    PYTHONPATH=src python bench/bench_index_checksum.py --n 100000 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import tempfile
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from semsearch.index import load_index, make_index
from semsearch.index.faiss import FaissIndex
from semsearch.index.files import CheckedFiles, digest_of, read_checksums

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
HEADING = "## Index file checksums (issue 13)"


READING = [
    "How to read it:",
    "- The cost of verifying is one sequential hash pass over the files: the *digest only* row, measured directly.",
    "  The verified/unverified difference should match it but carries the noise of two multi-second loads.",
    "- Cold, the hash pass reads the file through a memory map with sequential read-ahead, ahead of FAISS's own",
    "  reads, which then come from the page cache: the verified open was no slower than the unverified one.",
    "- The function: xxh3-64 (xxhash: BSD-licensed, 64-bit digest, SIMD on any x86-64 or ARM CPU). CRC32C from",
    "  `crc32c` is as fast on CPUs with CRC instructions (LGPL-2.1; table-driven without them); google-crc32c",
    "  takes only `bytes`, so a mapped file is copied block by block first; zlib's CRC32 is the slow reference.",
]


class Unverified(CheckedFiles):
    """The loading code path with the checks taken out: the baseline."""

    def read_bytes(self, path: Path) -> bytes:
        return path.read_bytes()

    @contextmanager
    def verified_path(self, path: Path):
        yield str(path)


def load_unverified(path: Path, dim: int) -> FaissIndex:
    return FaissIndex._read_files(path, "Flat", dim, Unverified(path.parent, {}))


def drop_cache(folder: Path) -> None:
    for file in folder.iterdir():
        with open(file, "rb") as f:
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def timed(fn) -> float:
    started = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - started
    del out
    return elapsed * 1000


def hash_mapped(path: Path, update_factory) -> float:
    """ms to hash a file through a memory map with one of the candidate functions."""
    started = time.perf_counter()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        update = update_factory()
        for start in range(0, len(view), 1 << 26):
            update(view[start : start + (1 << 26)])
        view.release()
    return (time.perf_counter() - started) * 1000


def hash_candidates() -> dict[str, object]:
    import xxhash

    out: dict[str, object] = {}

    def xxh3():
        h = xxhash.xxh3_64()
        return h.update

    out["xxh3-64 (xxhash, chosen)"] = xxh3
    try:
        import crc32c

        def crc():
            state = [0]

            def update(block):
                state[0] = crc32c.crc32c(block, state[0])

            return update

        out["CRC32C (crc32c)"] = crc
    except ImportError:
        pass
    try:
        import google_crc32c

        def gcrc():
            state = [0]

            def update(block):
                state[0] = google_crc32c.extend(state[0], bytes(block))  # it takes bytes only: one copy per block

            return update

        out["CRC32C (google-crc32c)"] = gcrc
    except ImportError:
        pass

    def z():
        state = [0]

        def update(block):
            state[0] = zlib.crc32(block, state[0])

        return update

    out["CRC32 (zlib)"] = z
    return out


def save_unhashed(index: FaissIndex, plain: Path) -> None:
    """The save before digests: faiss.write_index to a temp file, fsync, rename."""
    tmp = plain.with_name(plain.name + ".tmp")
    faiss.write_index(index._index, str(tmp))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, plain)


def save_times(index: FaissIndex, path: Path, plain: Path, rounds: int) -> tuple[list[float], list[float]]:
    """ms to save with semsearch (digests while writing) and as before (no digests); both fsync and rename."""
    hashed, bare = [], []
    for r in range(rounds):
        if r % 2:
            bare.append(timed(lambda: save_unhashed(index, plain)))
            hashed.append(timed(lambda: index.save(path)))
        else:
            hashed.append(timed(lambda: index.save(path)))
            bare.append(timed(lambda: save_unhashed(index, plain)))
    return hashed, bare


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="semsearch-bench-checksum-") as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(0)
        index = make_index("Flat", args.dim)
        for start in range(0, args.n, 100_000):
            x = rng.standard_normal((min(100_000, args.n - start), args.dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            index.add(np.arange(start, start + len(x), dtype=np.int64), x)
        path = folder / "vectors-1.faiss"
        plain = folder / "plain.faiss"
        save_hashed, save_plain = save_times(index, path, plain, max(3, args.rounds))
        plain.unlink()
        record = read_checksums(path)
        size = sum(d["bytes"] for d in record.values())
        index = None  # free its 1.5 GB before loading copies

        ways = {
            "verified": lambda: load_index(path, "Flat", args.dim),
            "unverified": lambda: load_unverified(path, args.dim),
            "digest only": lambda: [digest_of(folder / name) for name in record],
        }
        times: dict[tuple[str, str], list[float]] = {}
        names = list(ways)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for cache in ("warm", "cold"):
                for name in order:
                    if cache == "cold":
                        drop_cache(folder)
                    else:
                        ways["digest only"]()  # reads every page: the files are in the page cache
                    times.setdefault((cache, name), []).append(timed(ways[name]))
        hashes: dict[str, list[float]] = {}
        in_memory: dict[str, list[float]] = {}
        candidates = list(hash_candidates().items())
        for r in range(args.rounds):
            for name, factory in candidates[r % len(candidates) :] + candidates[: r % len(candidates)]:
                hashes.setdefault(name, []).append(hash_mapped(path, factory))
        data = path.read_bytes()  # the function alone: no page faults, no mapping
        for r in range(args.rounds):
            for name, factory in candidates[r % len(candidates) :] + candidates[: r % len(candidates)]:
                update = factory()
                in_memory.setdefault(name, []).append(timed(lambda update=update: update(data)))
        data = b""

    lines = [
        HEADING,
        "",
        (
            f"`PYTHONPATH=src python bench/bench_index_checksum.py` ({time.strftime('%Y-%m-%d')}, "
            f"{'shared machine, ' if load > 1.5 else ''}load average {load:.1f} at the start; {os.cpu_count()} cores). "
            f"A {args.n:,} x {args.dim} float32 `Flat` index saved by semsearch ({size / 1e9:.2f} GB in "
            f"{len(record)} files), loaded {args.rounds} times each way in rotating order; medians, every run in "
            "brackets. Cold: the files' pages dropped with posix_fadvise(DONTNEED) before each load."
        ),
        "",
        "| open the index | warm ms | cold ms |",
        "|---|---:|---:|",
    ]
    for name in names:
        w, c = times[("warm", name)], times[("cold", name)]
        lines.append(f"| {name} | {med(w):.0f} ({', '.join(f'{v:.0f}' for v in w)}) | "
                     f"{med(c):.0f} ({', '.join(f'{v:.0f}' for v in c)}) |")
    summary = []
    for cache in ("warm", "cold"):
        v, u, d = (med(times[(cache, n)]) for n in names)
        paired = med([a - b for a, b in zip(times[(cache, "verified")], times[(cache, "unverified")])])
        summary.append(f"{cache}: hashing the files takes {d:.0f} ms = {d / v:.0%} of the verified load ({v:.0f} ms); "
                       f"verified/unverified load ratio {v / u:.2f}, median paired difference {paired:+.0f} ms")
    lines += ["", *[f"- {s}" for s in summary]]
    lines += [
        (
            f"- saving: {med(save_hashed):.0f} ms with digests taken while writing vs {med(save_plain):.0f} ms as "
            f"before (`faiss.write_index`, fsync, rename), ratio {med(save_hashed) / med(save_plain):.2f} "
            f"(runs: {', '.join(f'{v:.0f}' for v in save_hashed)} vs {', '.join(f'{v:.0f}' for v in save_plain)})"
        ),
        "",
        (
            f"Hash functions over the same {size / 1e9:.2f} GB: through a memory map of the file as loading does "
            f"(warm), and over the bytes already in memory (the function alone); one thread, medians of {args.rounds}:"
        ),
        "",
        "| function | mapped file ms | GB/s | in memory ms | GB/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in hashes.items():
        mem = in_memory[name]
        lines.append(f"| {name} | {med(values):.0f} | {size / med(values) / 1e6:.1f} | {med(mem):.0f} | "
                     f"{size / med(mem) / 1e6:.1f} |")
    lines += ["", *READING]
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_write:
        text = RESULTS.read_text()
        start = text.find(HEADING)
        if start < 0:
            text = text.rstrip("\n") + "\n\n" + section
        else:
            end = text.find("\n## ", start + len(HEADING))
            text = text[:start] + section + (text[end:] if end >= 0 else "")
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
