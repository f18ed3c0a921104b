"""When ``index_files`` commits: every ~10 s of work by default, not only every 8,192 chunks.

Issue 23: a 5,000-line file was one batch (the default cap is 8,192 chunks), so a kill at 70% of
the run kept nothing and a pipe saw its only progress line at 100%. A fake clock and a fake
encoder (no model) make the rule visible exactly.
"""

from __future__ import annotations

import json
import threading
import types

import numpy as np
import pytest

from semsearch.backends.local import LocalEngine
from semsearch.collection import writing
from semsearch.ingest.chunking import Chunk

DIM = 4
MANIFEST = {"model": "fake", "dimension": DIM, "model_dimension": DIM, "normalized": True, "similarity": "cosine",
            "prompts": {}, "max_seq_length": 128, "chunk_size": 126, "chunk_overlap": 0, "index": "Flat"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    perf_counter = monotonic


def one_chunk_each(texts: list[str]) -> list[list[Chunk]]:
    return [[Chunk(t, 0, len(t), 0)] for t in texts]


class Recorder:
    """An IndexProgress that also reads what the collection has committed at each batch."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine
        self.batches: list[tuple[int, int, str]] = []

    def start(self, total_files, total_chunks, **_):
        self.total = total_chunks

    def batch_done(self, files, chunks, encoded_chunks):
        (state,) = self.engine.files().values()
        self.batches.append((chunks, self.engine.count(), state.split(":")[0]))


def run(tmp_path, monkeypatch, lines: int, seconds_per_chunk: float, **kwargs):
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "text": f"record number {i}"}) + "\n" for i in range(lines)))
    engine = LocalEngine(tmp_path / f"col-{lines}-{seconds_per_chunk}")
    engine.create(dict(MANIFEST))
    clock = Clock()
    monkeypatch.setattr(writing, "time", types.SimpleNamespace(monotonic=clock.monotonic,
                                                               perf_counter=clock.perf_counter))

    class Encoder:  # what index_files asks of an embedder: vectors for documents
        def encode_documents(self, texts, show_progress=False):
            clock.now += seconds_per_chunk * len(texts)
            return np.full((len(texts), DIM), 0.5, dtype=np.float32)

    class Chunker:
        split_many = staticmethod(one_chunk_each)

    progress = Recorder(engine)
    report = writing.index_files(engine, Encoder(), Chunker(), [data], None, progress=progress, **kwargs)
    engine.close()
    return report, progress.batches


def test_a_file_under_the_chunk_cap_is_committed_every_ten_seconds_of_work(tmp_path, monkeypatch):
    # 5,000 one-chunk records at 4 ms a chunk: 20 s of encoding, far under the 8,192-chunk cap.
    report, batches = run(tmp_path, monkeypatch, 5000, 0.004)
    assert report.documents == 5000 and report.files_added == 1
    assert len(batches) >= 2
    committed = [n for _, n, _ in batches]
    assert committed == sorted(committed) and committed[-1] == 5000
    # the first commit came after ~10 s of work, with the file marked partial until its last document
    assert 2000 <= batches[0][0] <= 3000 and batches[0][2] == "partial"
    assert batches[-1][2] != "partial"
    assert sum(n for n, _, _ in batches) == 5000


def test_the_chunk_cap_still_bounds_a_batch_when_encoding_is_fast(tmp_path, monkeypatch):
    report, batches = run(tmp_path, monkeypatch, 3000, 0.0, batch_chunks=1000)
    assert report.documents == 3000
    assert [n for n, _, _ in batches] == [1024, 1024, 952]  # slices of 512 chunks, committed once 1,000 are in


def test_a_short_run_is_one_commit(tmp_path, monkeypatch):
    report, batches = run(tmp_path, monkeypatch, 300, 0.004)
    assert report.documents == 300 and [n for n, _, _ in batches] == [300]


def test_a_batch_is_committed_while_the_next_one_encodes(tmp_path, monkeypatch):
    """Issue 25: encoding waited for every commit (SQLite, FTS5) to finish. Now the writer commits
    batch N while batch N+1 encodes: the first commit can wait for the second batch's encoding to
    start (run serially, that encoding would only start after the commit returned)."""
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "text": f"record number {i}"}) + "\n" for i in range(1536)))
    engine = LocalEngine(tmp_path / "col")
    engine.create(dict(MANIFEST))
    second_encoding = threading.Event()
    overlapped = []
    write = engine.write

    def first_write_waits_for_the_second_encoding(rows, **kwargs):
        if not overlapped:
            overlapped.append(second_encoding.wait(timeout=60))
        return write(rows, **kwargs)

    monkeypatch.setattr(engine, "write", first_write_waits_for_the_second_encoding)

    class Encoder:
        calls = 0

        def encode_documents(self, texts, show_progress=False):
            Encoder.calls += 1
            if Encoder.calls == 2:
                second_encoding.set()
            return np.full((len(texts), DIM), 0.5, dtype=np.float32)

    class Chunker:
        split_many = staticmethod(one_chunk_each)

    progress = Recorder(engine)
    report = writing.index_files(engine, Encoder(), Chunker(), [data], None, progress=progress, batch_chunks=512)
    assert overlapped == [True]
    assert report.documents == 1536 and [n for n, _, _ in progress.batches] == [512, 512, 512]
    assert engine.count() == 1536 and progress.batches[-1][2] != "partial"
    engine.close()


def test_a_failed_commit_stops_the_run_with_the_batches_before_it_kept(tmp_path, monkeypatch):
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "text": f"record number {i}"}) + "\n" for i in range(1536)))
    engine = LocalEngine(tmp_path / "col")
    engine.create(dict(MANIFEST))
    write = engine.write
    writes = []

    def failing_write(rows, **kwargs):
        writes.append(len(rows))
        if len(writes) == 2:
            raise OSError("disk full")
        return write(rows, **kwargs)

    monkeypatch.setattr(engine, "write", failing_write)

    class Encoder:
        def encode_documents(self, texts, show_progress=False):
            return np.full((len(texts), DIM), 0.5, dtype=np.float32)

    class Chunker:
        split_many = staticmethod(one_chunk_each)

    with pytest.raises(OSError, match="disk full"):
        writing.index_files(engine, Encoder(), Chunker(), [data], None, batch_chunks=512)
    assert writes[:2] == [512, 512] and len(writes) == 2  # nothing is written after the failure
    assert engine.count() == 512
    (state,) = engine.files().values()
    assert state.startswith("partial:")  # the file is not recorded as indexed
    monkeypatch.setattr(engine, "write", write)
    report = writing.index_files(engine, Encoder(), Chunker(), [data], None, batch_chunks=512)
    assert report.documents_unchanged == 512 and report.documents == 1024 and engine.count() == 1536
    engine.close()
