"""Resumable indexing of one large file: kill -9 a real `semsearch index` again and again, re-run
it each time, and end exactly where an uninterrupted run ends, having encoded each chunk once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection

sys.path.insert(0, str(Path(__file__).parent))
from writer_process import text_for  # noqa: E402  (varied, realistic sentences)

RECORDS = 1500
COMMIT_EVERY = 100


def _records(path: Path) -> None:
    with path.open("w") as f:
        for i in range(RECORDS):
            f.write(json.dumps({"id": f"r{i}", "text": text_for(i), "n": i % 7}) + "\n")


class Run:
    """`semsearch index FILE --json` in a subprocess, its JSON events read as they come."""

    def __init__(self, data: Path, collection: Path, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "semsearch.cli", "index", str(data), "-c", str(collection), "--json", *options],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        self.events: list[dict] = []
        self.committed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == "batch":
                self.committed.set()

    def committed_chunks(self) -> int:
        batches = [e for e in self.events if e["event"] == "batch"]
        return batches[-1]["chunks_done"] if batches else 0


def _state(path: Path) -> dict[str, tuple]:
    with Collection(path) as col:
        docs = col.get()
        ids, vectors = col.engine.vectors(col.engine.store.chunk_ids())
        by_chunk = dict(zip(ids.tolist(), vectors))
        chunks = col.engine.chunk_ids_of([d.id for d in docs])
        assert col.verify()["consistent"]
        return {d.id: (d.text, d.metadata, d.source, np.stack([by_chunk[c] for c in chunks[d.id]])) for d in docs}


@pytest.mark.slow
def test_kill_9_during_one_large_file_then_rerun_resumes_and_ends_as_an_uninterrupted_run(tmp_path, minilm_path):
    data = tmp_path / "big.jsonl"
    _records(data)
    whole = Run(data, tmp_path / "whole", "--commit-every", str(COMMIT_EVERY))
    assert whole.proc.wait(timeout=1800) == 0
    total = whole.committed_chunks()
    assert total == RECORDS  # short records: one chunk each

    path = tmp_path / "killed"
    rng = random.Random(7)
    committed_per_attempt: list[int] = []
    kills = 0
    while True:
        run = Run(data, path, "--commit-every", str(COMMIT_EVERY))
        if kills < 4 and run.committed.wait(timeout=900):
            time.sleep(rng.uniform(0.0, 1.5))
            if run.proc.poll() is None:
                run.proc.send_signal(signal.SIGKILL)
                kills += 1
        code = run.proc.wait(timeout=1800)
        time.sleep(0.2)  # let the reader thread drain what was printed before the kill
        committed_per_attempt.append(run.committed_chunks())
        with Collection(path) as col:
            # every committed batch is there and searchable; the file is marked partial until complete
            assert col.count() >= committed_per_attempt[-1] or code == 0
            if code != 0:
                assert col.info()["partial_files"] == 1
        if code == 0:
            finish = next(e for e in run.events if e["event"] == "finish")
            assert finish["resumed"] == (1 if kills else 0)
            break
    assert kills >= 2, "the runs finished before they could be killed; make the file larger"
    # each chunk was encoded and committed once, across all attempts: what the runs acknowledged adds
    # up to the whole, less at most one batch per kill (committed, then killed before its event was
    # printed: the rerun finds it committed and skips it; the states compared below show no loss)
    acknowledged = sum(committed_per_attempt)
    assert total - kills * COMMIT_EVERY <= acknowledged <= total, committed_per_attempt
    want, got = _state(tmp_path / "whole"), _state(path)
    assert sorted(got) == sorted(want)
    for doc_id, (text, metadata, source, vectors) in want.items():
        g = got[doc_id]
        assert (g[0], g[1]) == (text, metadata) and Path(g[2]).name == Path(source).name
        np.testing.assert_allclose(g[3], vectors, atol=1e-5)
    with Collection(path) as col:
        assert col.info()["partial_files"] == 0
        assert col.index_files([data]).files_unchanged == 1


@pytest.mark.slow
def test_kill_9_mid_way_with_the_default_settings_keeps_what_was_committed(tmp_path, minilm_path):
    """Issue 23: with the default settings a file under 8,192 chunks was one batch, so a kill -9 at
    70% kept nothing. Now a batch is committed every ~10 s of work: a run killed after its first
    commit keeps it, and the re-run encodes only the rest and ends with every document."""
    lines = 5000
    data = tmp_path / "corpus.jsonl"
    with data.open("w") as f:  # a few sentences a line: the run lasts well beyond one commit interval
        for i in range(lines):
            text = " ".join(text_for(i + j * lines) for j in range(4))
            f.write(json.dumps({"id": f"r{i}", "text": text}) + "\n")
    path = tmp_path / "col"
    run = Run(data, path)  # no --commit-every: the defaults users get
    assert run.committed.wait(timeout=900), "no batch was committed"
    first = run.committed_chunks()
    assert 0 < first < lines, "the first commit must come before the end of the file"
    time.sleep(1.0)
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGKILL)
    run.proc.wait(timeout=60)
    with Collection(path) as col:
        kept = col.count()
        assert kept >= first and col.info()["partial_files"] == (0 if kept == lines else 1)
    rerun = Run(data, path)
    assert rerun.proc.wait(timeout=1800) == 0
    time.sleep(0.2)
    finish = next(e for e in rerun.events if e["event"] == "finish")
    if kept < lines:
        assert finish["resumed"] == 1 and finish["kept_documents"] == kept
        assert finish["documents"] == lines - kept  # only what the kill lost is encoded again
    with Collection(path) as col:
        assert col.count() == lines and col.info()["partial_files"] == 0
        assert sorted(d.id for d in col.get()) == sorted(f"r{i}" for i in range(lines))
        assert col.verify()["consistent"]
