"""Re-encoding a collection with another model or dimension (``reindex --model``), on every backend:
the old vectors serve until the new set is complete, a kill leaves one whole set, and the new
model is what searches and writes use afterwards, in this process and in others."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection, EmbeddingsReplacedError, InvalidInputError, ModelMismatchError
from semsearch.embedding import Embedder
from test_collection import SENTENCES

SRC = str(Path(__file__).resolve().parents[1] / "src")
IDS = [f"s{i}" for i in range(len(SENTENCES))]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
BEACH = "affordable accommodation near the beach"
_names = itertools.count()


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """A second tiny model of the same dimension (32) whose vectors differ: other random weights."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(1)
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    out = tmp_path_factory.mktemp("other-tiny") / "st"
    model.save(str(out))
    return out


@pytest.fixture(params=["local", "milvus"])
def make(request, tmp_path):
    """``make(name, **kwargs)`` opens a collection on the backend of this run of the test."""
    where: dict = {}
    if request.param == "milvus":
        where = {"backend": "milvus", "uri": request.getfixturevalue("milvus_uri")}
    opened = []

    def open_(name: str | None = None, **kwargs):
        col = Collection(tmp_path / (name or f"c{next(_names)}"), **where, **kwargs)
        opened.append(col)
        return col

    open_.backend = request.param
    yield open_
    for col in opened:
        try:
            col.drop()
        except Exception:  # noqa: BLE001 - dropped by the test already
            pass


def dense_scores(col: Collection, embedder: Embedder, query: str) -> tuple[list[float], list[float]]:
    """(scores the collection returns, cosines ``embedder`` gives) for each document of a dense search."""
    hits = col.search(query, k=len(SENTENCES), mode="dense")
    docs = embedder.encode_documents([h.text for h in hits])
    q = embedder.encode_queries([query])[0]
    return [h.scores["dense"] for h in hits], (docs @ q).tolist()


def test_reindex_with_another_model_swaps_model_dimension_and_search(make, tiny_model_dir, minilm_path):
    col = make(model=str(tiny_model_dir))
    col.add(SENTENCES, ids=IDS, metadatas=[{"n": i} for i in range(len(IDS))])
    assert (col.info()["model"], col.dimension) == (str(Path(tiny_model_dir).resolve()), 32)

    report = col.reindex(model="all-MiniLM-L6-v2", batch_chunks=3)
    assert report.changed and (report.model, report.dimension, report.chunks, report.encoded) == (MINILM, 384, 7, 7)
    info = col.info()
    assert (info["model"], info["dimension"], info["model_dimension"], info["chunks"]) == (MINILM, 384, 384, 7)
    assert info["chunk_size"] == 62  # chunks stay as they were cut
    assert "reindex_pending" not in info
    # Searches use the new model: meaning works (the tiny random model's ranking is noise), and
    # each dense score is the new model's cosine of the stored text.
    assert col.search(BEACH, k=1, mode="dense")[0].id == "s0"
    got, want = dense_scores(col, Embedder(minilm_path, expect_dimension=384), BEACH)
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert col.get(["s3"])[0].metadata == {"n": 3}
    col.add("A sourdough starter needs flour, water and patience.", ids="new")  # writes use the new model
    assert col.search("keeping a sourdough culture alive", k=1, mode="dense")[0].id == "new"
    col.close()
    again = make(col.name if make.backend == "milvus" else col.path.name)
    assert (again.manifest["model"], again.dimension) == (MINILM, 384)
    assert again.search(BEACH, k=1)[0].id == "s0"


def test_reindex_removes_the_old_set(make, tiny_model_dir, minilm_path):
    col = make(model=str(tiny_model_dir))
    col.add(SENTENCES, ids=IDS)
    col.flush()
    col.reindex(model=minilm_path)
    if make.backend == "local":
        import sqlite3

        con = sqlite3.connect(col.path / "collection.sqlite3")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        sizes = {len(r[0]) for r in con.execute("SELECT embedding FROM chunks")}
        con.close()
        assert "reembedding" not in tables and sizes == {384 * 4}
        assert [p.name for p in col.path.glob("vectors-*.faiss")]
        assert json.loads((col.path / "vectors.json").read_text())["dim"] == 384
    else:
        names = set(col.engine.client.list_collections())
        assert not {n for n in names if n.startswith(col.name + "__") and n.endswith(("reembed", "retired"))}


LONG = (
    "The lighthouse keeper climbed the spiral stairs every evening to light the lamp. "
    "Ships far out at sea watched for its beam to steer clear of the rocks below the cliff. "
    "In winter the storms rattled the windows and salt spray froze on the iron railing. "
    "His daughter kept a logbook of every vessel that passed, with its flag and its cargo. "
    "Years later the logbook was found in an attic and given to the maritime museum of the town, "
    "where visitors can still read the careful handwriting about schooners, steamers and a zeppelin."
)


def test_a_model_that_reads_less_than_the_chunks_re_chunks_the_collection(make, tiny_model_dir):
    """A fine-tuned model with a shorter max_seq_length: reindex cuts the documents again (local)."""
    col = make()  # MiniLM: chunks of up to 254 tokens; the tiny model reads 62
    col.add([*SENTENCES, LONG], ids=[*IDS, "long"])
    assert col.engine.chunk_count() == 8
    if make.backend == "milvus":
        with pytest.raises(InvalidInputError, match=r"re-chunking a Milvus collection is not supported.*migrate"):
            col.reindex(model=str(tiny_model_dir))
        assert (col.manifest["model"], col.dimension, col.manifest["chunk_size"]) == (MINILM, 384, 254)
        assert col.search(BEACH, k=1)[0].id == "s0"
        return
    with pytest.raises(InvalidInputError, match=r"chunk_size 100 is more than .* reads \(62 tokens\)"):
        col.reindex(model=str(tiny_model_dir), chunk_size=100)
    report = col.reindex(model=str(tiny_model_dir), batch_chunks=3)
    assert report.changed and report.rechunked and report.chunk_size == 62
    assert (col.manifest["chunk_size"], col.manifest["chunk_overlap"]) == (62, 31 * 62 // 254)
    tiny = Embedder(str(tiny_model_dir), expect_dimension=32)
    pieces = col.engine.chunks(col.engine.chunk_ids_of(["long"])["long"])
    assert len(pieces) >= 2 and max(tiny.count_tokens([p.text for p in pieces.values()])) <= 62
    assert report.chunks == col.engine.chunk_count() == 7 + len(pieces)
    # The vectors are the tiny model's of the new chunks, and the lexical index holds the new chunks.
    got = col.engine.vectors(np.array(sorted(pieces)))[1]
    np.testing.assert_allclose(got, tiny.encode_documents([pieces[i].text for i in sorted(pieces)]), atol=2e-3)
    hit = col.search("zeppelin schooners", k=1, mode="lexical")[0]
    assert hit.id == "long" and "zeppelin" in hit.text and hit.text != LONG
    assert col.verify()["consistent"]
    col.add(LONG + " A second copy.", ids="long2")  # writes cut at the new size too
    assert len(col.engine.chunk_ids_of(["long2"])["long2"]) >= 2
    # The same chunks as a collection indexed with that chunking from the start.
    fresh = make(model=str(tiny_model_dir), chunk_size=62, chunk_overlap=31 * 62 // 254)
    fresh.add(LONG, ids="long")
    assert [(c.start, c.end) for c in fresh.engine.chunks(fresh.engine.chunk_ids_of(["long"])["long"]).values()] \
        == [(c.start, c.end) for c in pieces.values()]


def test_reindex_chunk_size_alone_re_chunks_with_the_same_model(make, tiny_model_dir):
    col = make(model=str(tiny_model_dir))
    col.add([*SENTENCES, LONG], ids=[*IDS, "long"])
    before = len(col.engine.chunk_ids_of(["long"])["long"])
    if make.backend == "milvus":
        with pytest.raises(InvalidInputError, match="re-chunking a Milvus collection is not supported"):
            col.reindex(chunk_size=20)
        return
    with pytest.raises(InvalidInputError, match=r"chunks at 62 tokens, not 20; .*`semsearch reindex --chunk-size 20`"):
        Collection(col.path, chunk_size=20)
    report = col.reindex(chunk_size=20, chunk_overlap=0)
    assert report.rechunked and (report.model, col.manifest["chunk_size"], col.manifest["chunk_overlap"]) == (
        str(Path(tiny_model_dir).resolve()), 20, 0)
    assert len(col.engine.chunk_ids_of(["long"])["long"]) > before
    assert not col.reindex(chunk_size=20, chunk_overlap=0).changed


def test_an_error_inside_the_re_chunk_swap_leaves_the_old_collection(tmp_path, tiny_model_dir, monkeypatch):
    from semsearch.backends.local import rechunking

    with Collection(tmp_path / "col", model=str(tiny_model_dir)) as col:
        col.add([*SENTENCES, LONG], ids=[*IDS, "long"])
        before = {c: (s.doc_id, s.start, s.end) for c, s in col.engine.chunks(range(1, 100)).items()}

        def killed(*args, **kwargs):  # the old chunks are deleted and the new ones inserted, uncommitted
            raise KeyboardInterrupt

        monkeypatch.setattr(rechunking, "commit_new_set", killed)
        with pytest.raises(KeyboardInterrupt):
            col.reindex(chunk_size=20)
        monkeypatch.undo()
    with Collection(tmp_path / "col") as col:
        assert col.manifest["chunk_size"] == 62 and col.info()["reindex_pending"]["chunk_size"] == 20
        assert {c: (s.doc_id, s.start, s.end) for c, s in col.engine.chunks(range(1, 100)).items()} == before
        assert col.search("zeppelin", k=1, mode="lexical")[0].id == "long"
        report = col.reindex(chunk_size=20)  # resumes: every document was staged already
        assert report.encoded == 0 and report.resumed == report.chunks > len(before)
        assert col.verify()["consistent"]


def test_the_same_model_and_dimension_is_not_re_encoded(make, minilm_path):
    col = make()
    col.add(SENTENCES, ids=IDS)
    report = col.reindex(model="all-MiniLM-L6-v2")
    assert not report.changed and report.encoded == 0


def test_another_process_that_opened_before_the_swap_follows_the_new_model(make, tiny_model_dir, other_tiny_model_dir):
    first = make("shared", model=str(tiny_model_dir))
    first.add(SENTENCES, ids=IDS)
    second = make("shared")  # opened before the swap, with the old model
    second.search(BEACH, k=2)
    first.reindex(model=str(other_tiny_model_dir))  # same dimension: old-model queries would be silent garbage
    got, want = dense_scores(second, Embedder(str(other_tiny_model_dir), expect_dimension=32), BEACH)
    assert second.embedder.name == str(Path(other_tiny_model_dir).resolve())
    np.testing.assert_allclose(got, want, atol=2e-3)
    second.add("written by the other process after the swap", ids="late")
    stored = second.engine.vectors(np.array(second.engine.chunk_ids_of(["late"])["late"]))[1]
    expected = Embedder(str(other_tiny_model_dir)).encode_documents(["written by the other process after the swap"])
    np.testing.assert_allclose(stored, expected, atol=2e-3)


def test_an_engine_left_behind_raises_a_clear_error(make, tiny_model_dir, other_tiny_model_dir):
    first = make("shared2", model=str(tiny_model_dir))
    first.add(SENTENCES, ids=IDS)
    second = make("shared2")
    first.reindex(model=str(other_tiny_model_dir))
    query = np.ones((1, 32), dtype=np.float32) / np.sqrt(32)
    with pytest.raises(EmbeddingsReplacedError, match="re-encoded with .* by another (process|client)"):
        second.engine.dense_candidates(query, 3, second.engine.scope(None))


# -- a kill during the re-encode -------------------------------------------------------------

WORDS = "river mountain engine violin harvest glacier orbit lantern protein canyon ledger harbor comet meadow".split()


def _texts(n: int) -> list[str]:
    return [f"Record {i} tells of the {WORDS[i % 14]} and the {WORDS[(i * 5) % 14]} by the {WORDS[(i * 3) % 14]}."
            for i in range(n)]


def _reindex_until_killed(args: list[str], batches: int, *, new_session: bool = False) -> None:
    """Run ``semsearch reindex ... --json`` and kill -9 it once ``batches`` batches were committed."""
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "reindex", *args, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": SRC},
                            start_new_session=new_session)
    seen = 0
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            event = json.loads(line)
            if event["event"] == "batch" and event["done"] > 0:
                seen += 1
                if seen >= batches:
                    break
            assert event["event"] != "finish", "the run ended before it could be killed; give it more to encode"
    finally:
        if new_session:  # the process and the Milvus Lite server it started, as one crash
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert seen >= batches


def test_a_kill_during_the_re_encode_leaves_the_old_set_serving_and_a_rerun_resumes(tmp_path, tiny_model_dir,
                                                                                   minilm_path):
    folder = tmp_path / "col"
    texts = SENTENCES + _texts(393)
    with Collection(folder, model=str(tiny_model_dir)) as col:
        col.add(texts, ids=IDS + [f"r{i}" for i in range(393)])
        col.flush()
        before = col.search(BEACH, k=5, mode="dense")
    _reindex_until_killed(["--model", "all-MiniLM-L6-v2", "--batch", "8", "-c", str(folder), "--no-progress"],
                          batches=3)

    with Collection(folder) as col:  # opens; the old model and vectors serve as before
        assert (col.manifest["model"], col.dimension) == (str(Path(tiny_model_dir).resolve()), 32)
        after = col.search(BEACH, k=5, mode="dense")
        assert [(h.id, round(h.score, 5)) for h in after] == [(h.id, round(h.score, 5)) for h in before]
        pending = col.info()["reindex_pending"]
        assert pending["model"] == MINILM and pending["dimension"] == 384 and 24 <= pending["staged_chunks"] < 400
        col.add("added while the re-encode was interrupted", ids="between")  # the old model still writes
        report = col.reindex(model="all-MiniLM-L6-v2", batch_chunks=64)
        assert report.resumed == pending["staged_chunks"] and report.encoded == 401 - report.resumed
        assert (col.manifest["model"], col.dimension, col.count()) == (MINILM, 384, 401)
        assert col.search(BEACH, k=1, mode="dense")[0].id == "s0"
        got, want = dense_scores(col, Embedder(minilm_path, expect_dimension=384), BEACH)
        np.testing.assert_allclose(got[:7], want[:7], atol=2e-3)
        assert col.verify()["consistent"]


def test_a_kill_during_a_re_chunk_leaves_the_old_collection_and_a_rerun_resumes(tmp_path, tiny_model_dir):
    folder = tmp_path / "col"
    texts = [f"{a} {b}" for a, b in zip(_texts(300), reversed(_texts(300)))]  # ~40 tokens: two chunks of 20
    ids = [f"r{i}" for i in range(300)]
    with Collection(folder, model=str(tiny_model_dir)) as col:
        col.add(texts, ids=ids)
        col.flush()
        before = [(h.id, round(h.score, 5)) for h in col.search("the glacier and the comet", k=5)]
    _reindex_until_killed(["--chunk-size", "20", "--batch", "8", "-c", str(folder), "--no-progress"], batches=3)

    with Collection(folder) as col:  # the old chunks serve as before
        assert (col.manifest["chunk_size"], col.engine.chunk_count()) == (62, 300)
        assert [(h.id, round(h.score, 5)) for h in col.search("the glacier and the comet", k=5)] == before
        pending = col.info()["reindex_pending"]
        assert pending["chunk_size"] == 20 and pending["staged_chunks"] >= 8
        col.add(LONG, ids="between")  # written with the old chunking while the run is interrupted
        report = col.reindex(chunk_size=20, batch_chunks=64)
        assert report.rechunked and report.resumed == pending["staged_chunks"]
        assert report.resumed + report.encoded == report.chunks == col.engine.chunk_count()
        assert col.verify()["consistent"]
        got = {d: [(c.start, c.end) for c in col.engine.chunks(cs).values()]
               for d, cs in col.engine.chunk_ids_of([*ids, "between"]).items()}
    # Exactly the chunks and vectors of a collection indexed at that size from the start.
    with Collection(tmp_path / "fresh", model=str(tiny_model_dir), chunk_size=20, chunk_overlap=62 // 8 * 20 // 62) \
            as fresh:
        fresh.add([*texts, LONG], ids=[*ids, "between"])
        want = {d: [(c.start, c.end) for c in fresh.engine.chunks(cs).values()]
                for d, cs in fresh.engine.chunk_ids_of([*ids, "between"]).items()}
        fresh_vectors = fresh.engine.vectors(np.array(fresh.engine.chunk_ids_of(["r7"])["r7"]))[1]
    assert got == want and len(got["r7"]) >= 2
    with Collection(folder) as col:
        stored = col.engine.vectors(np.array(col.engine.chunk_ids_of(["r7"])["r7"]))[1]
    np.testing.assert_allclose(stored, fresh_vectors, atol=2e-3)


def test_milvus_a_kill_during_the_re_encode_leaves_the_old_set_serving(tmp_path, tiny_model_dir, minilm_path):
    pytest.importorskip("milvus_lite", reason="Milvus Lite is not installed")
    from semsearch.backends.milvus import release_lite

    uri = str(tmp_path / "kill.db")  # its own file: the child process runs the Milvus Lite server of it
    texts = SENTENCES + _texts(393)
    with Collection("col", backend="milvus", uri=uri, model=str(tiny_model_dir)) as col:
        col.add(texts, ids=IDS + [f"r{i}" for i in range(393)])
        before = [h.id for h in col.search(BEACH, k=5, mode="dense")]
    release_lite(uri)
    _reindex_until_killed(["--model", "all-MiniLM-L6-v2", "--batch", "8", "-c", "col", "--backend", "milvus",
                           "--uri", uri, "--no-progress"], batches=3, new_session=True)
    with Collection("col", backend="milvus", uri=uri) as col:
        assert (col.manifest["model"], col.dimension, col.engine.chunk_count()) == (str(Path(tiny_model_dir).resolve()),
                                                                                    32, 400)
        assert [h.id for h in col.search(BEACH, k=5, mode="dense")] == before
        assert col.info()["reindex_pending"]["staged_chunks"] >= 24
        report = col.reindex(model="all-MiniLM-L6-v2", batch_chunks=128)
        assert report.resumed >= 24 and (col.manifest["model"], col.dimension) == (MINILM, 384)
        assert col.search(BEACH, k=1, mode="dense")[0].id == "s0"
    release_lite(uri)


def test_local_a_kill_after_the_swap_never_serves_the_old_index_file(tmp_path, tiny_model_dir, other_tiny_model_dir,
                                                                    monkeypatch):
    from semsearch.backends.local.vectors import DerivedIndex

    with Collection(tmp_path / "col", model=str(tiny_model_dir)) as col:
        col.add(SENTENCES, ids=IDS)
        col.flush()  # an index file of the old vectors, of the same dimension as the new ones

        def killed(self):  # the process dies right after the swap committed
            raise KeyboardInterrupt

        monkeypatch.setattr(DerivedIndex, "flush", killed)
        with pytest.raises(KeyboardInterrupt):
            col.reindex(model=str(other_tiny_model_dir))
        monkeypatch.undo()
    with Collection(tmp_path / "col") as col:
        assert col.manifest["model"] == str(Path(other_tiny_model_dir).resolve())
        got, want = dense_scores(col, Embedder(str(other_tiny_model_dir), expect_dimension=32), BEACH)
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_milvus_a_kill_between_the_renames_is_resolved_on_open(tmp_path, milvus_uri, tiny_model_dir,
                                                               other_tiny_model_dir, monkeypatch):
    from semsearch.backends.milvus import reembedding

    name = f"gap{next(_names)}"
    col = Collection(name, backend="milvus", uri=milvus_uri, model=str(tiny_model_dir))
    col.add(SENTENCES, ids=IDS)
    client = col.engine.client

    def first_rename_only(client_, name_):
        client_.rename_collection(name_, reembedding.retired_name(name_))
        raise KeyboardInterrupt  # killed between the two renames: no collection of that name

    monkeypatch.setattr(reembedding, "_swap", first_rename_only)
    with pytest.raises(KeyboardInterrupt):
        col.reindex(model=str(other_tiny_model_dir))
    monkeypatch.undo()
    assert not client.has_collection(name)
    reopened = Collection(name, backend="milvus", uri=milvus_uri, create=False)  # the complete new set is put in place
    assert reopened.manifest["model"] == str(Path(other_tiny_model_dir).resolve())
    assert not client.has_collection(reembedding.retired_name(name))
    got, want = dense_scores(reopened, Embedder(str(other_tiny_model_dir), expect_dimension=32), BEACH)
    np.testing.assert_allclose(got, want, atol=2e-3)

    # An incomplete new set is never put in place: the old one comes back.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reembedding, "_catch_up", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reopened.reindex(model=str(tiny_model_dir))
    monkeypatch.undo()
    client.rename_collection(name, reembedding.retired_name(name))
    back = Collection(name, backend="milvus", uri=milvus_uri, create=False)
    assert back.manifest["model"] == str(Path(other_tiny_model_dir).resolve())
    assert back.info()["reindex_pending"]["model"] == str(Path(tiny_model_dir).resolve())
    back.drop()
    for c in (col, reopened, back):
        c.close()


# -- the command line --------------------------------------------------------------------------

def test_cli_reindex_model_and_info(tmp_path, tiny_model_dir, minilm_path):
    folder = tmp_path / "col"
    with Collection(folder, model=str(tiny_model_dir)) as col:
        col.add(SENTENCES, ids=IDS)
    env = {**os.environ, "PYTHONPATH": SRC}
    run = lambda *a: subprocess.run([sys.executable, "-m", "semsearch.cli", *a], capture_output=True, text=True,  # noqa: E731
                                    env=env, timeout=600)
    done = run("reindex", "--model", "all-MiniLM-L6-v2", "-c", str(folder), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "re-encoded 7 chunk(s) with sentence-transformers/all-MiniLM-L6-v2 (384 dimensions, was " in done.stdout
    info = json.loads(run("info", "-c", str(folder), "--json").stdout)
    assert (info["model"], info["dimension"], info["model_dimension"]) == (MINILM, 384, 384)
    back = run("reindex", "--model", str(tiny_model_dir), "-c", str(folder), "--json", "--batch", "4")
    events = [json.loads(line) for line in back.stdout.splitlines()]
    assert [e["done"] for e in events if e["event"] == "batch"] == [0, 4, 7]
    assert events[-1]["event"] == "finish" and events[-1]["dimension"] == 32
    assert events[-1]["previous"].startswith(MINILM)
    nothing = run("reindex", "-c", str(folder))
    assert nothing.returncode == 1 and "nothing to do" in nothing.stderr


def test_the_reindex_that_index_model_recommends_works_for_a_model_that_reads_less(tmp_path, minilm_path,
                                                                                    tiny_model_dir):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.txt").write_text(LONG)
    (docs / "beach.txt").write_text(SENTENCES[0])
    from typer.testing import CliRunner

    from semsearch.cli import app

    folder = tmp_path / "col"
    run = lambda *a: CliRunner().invoke(app, list(a))  # noqa: E731
    assert run("index", str(docs), "-c", str(folder), "--no-progress").exit_code == 0  # MiniLM, 254-token chunks
    refused = run("index", str(docs), "-c", str(folder), "--model", str(tiny_model_dir), "--no-progress")
    assert refused.exit_code != 0
    recommended = f"semsearch reindex --model {tiny_model_dir}"
    assert recommended in " ".join(refused.stderr.split())
    done = run(*recommended.split()[1:], "-c", str(folder), "--no-progress")
    assert done.exit_code == 0, done.output
    assert "re-chunked 2 document(s) from their stored text into " in done.stdout
    assert "of at most 62 tokens (were 254: " in done.stdout
    again = run("index", str(docs), "-c", str(folder), "--model", str(tiny_model_dir), "--no-progress")
    assert again.exit_code == 0, again.output
    info = json.loads(run("info", "-c", str(folder), "--json").stdout)
    assert (info["dimension"], info["chunk_size"], info["documents"]) == (32, 62, 2)


def test_reopening_with_another_model_names_reindex(tmp_path, minilm_path, tiny_model_dir):
    with Collection(tmp_path / "col") as col:
        col.add(SENTENCES[:2], ids=IDS[:2])
    with pytest.raises(ModelMismatchError, match="semsearch reindex --model"):
        Collection(tmp_path / "col", model=str(tiny_model_dir))
