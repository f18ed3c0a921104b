"""Opening a collection without reading all of it (issue 25): what a cold search reads, the metadata
index on disk against the reference evaluator, BM25 of a few chunks against FTS5's own, kill -9
mid-write, and a collection of the previous format opening migrated."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch import Collection
from semsearch.backends.local.facet_index import FacetIndex, compile_filter
from semsearch.backends.local.schema import DB_NAME, FORMAT_VERSION, fill_facets_statement
from semsearch.backends.local.store import Store
from semsearch.filters import matches, parse_where
from semsearch.lexical import index_text, match_expression, tokenize

WORDS = "river mountain engine violin harvest glacier orbit lantern protein canyon ledger harbor comet".split()


def _text(i: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3 + j * j) % len(WORDS)] for j in range(4 + i % 5)) + f" n{i}"


def _metadata(i: int) -> dict:
    return {"cat": f"c{i % 20}", "num": i % 100, "tags": ["odd" if i % 2 else "even", f"t{i % 3}"]}


@pytest.fixture(scope="module")
def cold_collection(tmp_path_factory, tiny_model_dir) -> Path:
    path = tmp_path_factory.mktemp("cold") / "c"
    rng = np.random.default_rng(25)
    with Collection(path, model=str(tiny_model_dir)) as col:
        n = 400
        col.add([_text(i) for i in range(n)], ids=[f"d{i}" for i in range(n)],
                metadatas=[_metadata(i) for i in range(n)], embeddings=rng.normal(size=(n, col.dimension)))
    return path


# A fresh process: the in-memory builders and the whole-file hash fail it if called; every SQL
# statement it runs is recorded and its plan read, so a full scan of any table or index shows.
COLD_SEARCH = r"""
import json, sqlite3, sys
import semsearch.backends.local.bm25 as bm25
import semsearch.backends.local.lexical_arrays as lexical_arrays
import semsearch.backends.local.candidates as candidates
import semsearch.backends.local.facets as facets
import semsearch.index.files as files

def forbidden(*args, **kwargs):
    raise AssertionError("a cold search built an in-memory structure or hashed a whole index file")

bm25.build = facets.build = files._digest_of_open = forbidden
lexical_arrays.LexicalArrays._build = facets.MemoryFacets._build = forbidden
candidates.ALLOW_LIST_MAX = int(sys.argv[3])
from semsearch import Collection

seen = []
col = Collection(sys.argv[1], create=False)
col.engine.store.con.set_trace_callback(seen.append)
hits = col.search("harbor comet violin", k=5, where=json.loads(sys.argv[2]))
col.engine.store.con.set_trace_callback(None)
explain = sqlite3.connect(col.engine.store.path)
explain.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_vocab USING fts5vocab(main, 'chunks_fts', 'row')")
plans = {s: [r[3] for r in explain.execute("EXPLAIN QUERY PLAN " + s)]
         for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))}
lexical = col.engine.bm25.current(build=False)
print(json.dumps({"hits": [[h.id, h.metadata] for h in hits], "plans": plans, "statements": seen,
                  "mapped": getattr(col.engine.index._index, "mapped", False),
                  "lexical": None if lexical is None else [lexical.postings, lexical.resident_postings]}))
"""
TINY_TABLES = ("FROM manifest", "FROM sqlite_sequence", "FROM tallies", "chunks_fts_config")


@pytest.mark.parametrize(("where", "allow_list_max"), [
    ({"cat": "c3"}, 20_000),  # 5%: an allow-list (its vectors scanned exactly, its chunks scored)
    ({"num": {"$lt": 50}, "tags": "odd"}, 10),  # 25% with a small list limit: candidates checked
    ({"$or": [{"cat": {"$in": ["c1", "c2"]}}, {"num": {"$gte": 90}}]}, 20_000),
])
def test_a_cold_filtered_hybrid_search_reads_only_what_it_needs(cold_collection, where, allow_list_max):
    done = subprocess.run([sys.executable, "-c", COLD_SEARCH, str(cold_collection), json.dumps(where),
                           str(allow_list_max)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    node = parse_where(where)
    assert len(out["hits"]) == 5 and all(matches(node, metadata) for _, metadata in out["hits"])
    assert out["mapped"], "the vector index was read into memory instead of mapped"
    # BM25 from the arrays the writer saved, mapped: no posting read into memory, FTS5's per-row
    # bm25() never run
    postings, resident = out["lexical"]
    assert postings > 0 and resident == 0, out["lexical"]
    assert not [s for s in out["statements"] if "bm25(" in s]
    # (a virtual table's plan is its own; "(subquery-n)" is a result set made from index ranges)
    full_scans = {s: [d for d in plan if d.startswith("SCAN ") and "VIRTUAL TABLE" not in d and "(subquery" not in d]
                  for s, plan in out["plans"].items() if not any(t in s for t in TINY_TABLES)}
    assert not {s: d for s, d in full_scans.items() if d}, "a cold search scanned a whole table or index"


# -- the metadata index against the reference ----------------------------------------------------
scalars = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.0, -1.5, 2**60 + 1]), st.sampled_from(["x", "y", "é"]),
                    st.booleans())
metadata_st = st.dictionaries(st.sampled_from(["a", "b", "tags"]),
                              st.one_of(scalars, st.none(), st.lists(scalars, max_size=3),
                                        st.lists(st.lists(scalars, max_size=1), max_size=1)), max_size=3)
leaf = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(["a", "b", "tags"]), scalars),
    st.builds(lambda k, op, v: {k: {op: v}}, st.sampled_from(["a", "b"]), st.sampled_from(["$ne", "$gt", "$lte"]),
              st.integers(-3, 3)),
    st.builds(lambda k, op, v: {k: {op: v}}, st.sampled_from(["a", "tags"]), st.sampled_from(["$in", "$nin"]),
              st.lists(scalars, min_size=1, max_size=3)),
)
where_st = st.recursive(leaf, lambda inner: st.builds(lambda op, parts: {op: parts}, st.sampled_from(["$and", "$or"]),
                                                      st.lists(inner, min_size=1, max_size=3)), max_leaves=5)


@pytest.fixture(scope="module")
def bare_store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("facets"), create=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(metadata_st, min_size=1, max_size=12), updated=st.dictionaries(st.integers(0, 11), metadata_st),
       where=where_st)
def test_the_metadata_index_answers_as_the_reference_evaluator(bare_store, docs, updated, where):
    """Written, updated and deleted through the documents table's triggers, counted, listed and checked."""
    node = parse_where(where)
    with bare_store.write() as con:
        con.execute("DELETE FROM chunks")
        con.execute("DELETE FROM documents")
        rowids = []
        for i, meta in enumerate(docs):
            rowids.append(con.execute("INSERT INTO documents(id, text, metadata) VALUES (?, 't', ?)",
                                      (f"x{i}", json.dumps(meta))).lastrowid)
            con.execute("INSERT INTO chunks(doc, position, start, end, embedding) VALUES (?, 0, 0, 1, x'00')",
                        (rowids[-1],))
        for i, meta in updated.items():
            if i < len(docs):
                docs[i] = meta
                con.execute("UPDATE documents SET metadata = ? WHERE rowid = ?", (json.dumps(meta), rowids[i]))
    index = FacetIndex(bare_store)
    compiled = compile_filter(node)
    expected = [r for r, meta in zip(rowids, docs) if matches(node, meta)]
    assert index.document_rowids(compiled).tolist() == expected
    # (a planning estimate: a document counts once per matching list element)
    assert len(expected) <= index.document_count(compiled) <= 3 * len(expected)
    chunk_ids = np.array(sorted(r[0] for r in bare_store.con.execute("SELECT rowid FROM chunks")), dtype=np.int64)
    chunk_docs = dict(bare_store.con.execute("SELECT rowid, doc FROM chunks").fetchall())
    assert index.kept(compiled, chunk_ids).tolist() == [c for c in chunk_ids.tolist() if chunk_docs[c] in expected]
    assert index.chunk_ids(compiled).tolist() == [c for c in chunk_ids.tolist() if chunk_docs[c] in expected]
    assert (bare_store.document_count(), bare_store.chunk_count()) == (len(docs), len(docs))


# -- BM25 of a few chunks ------------------------------------------------------------------------
def test_bm25_of_a_few_chunks_is_fts5s_own(cold_collection):
    with Collection(cold_collection, create=False) as col:
        query = "harbor comet violin river"
        chunk_ids = np.arange(1, 400, 7, dtype=np.int64)
        ours = dict(col.engine.lexical_index.scores_of(tokenize(query), chunk_ids))
        rows = col.engine.store.con.execute(
            "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN "
            f"({','.join(map(str, chunk_ids.tolist()))})", (match_expression(query),)).fetchall()
        assert ours and ours == pytest.approx(dict(rows), rel=1e-9)


# -- kill -9 -------------------------------------------------------------------------------------
CHURN = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
from test_cold_paths import _metadata, _text
from semsearch import Collection
import numpy as np
col = Collection(sys.argv[1], index_save_every=40, lock_timeout=120)
rng = np.random.default_rng(int(sys.argv[2]))
i = int(sys.argv[2]) * 100_000
while True:
    ids = [f"k{j}" for j in range(i, i + 7)]
    col.add([_text(j) for j in range(i, i + 7)], ids=ids, metadatas=[_metadata(j) for j in range(i, i + 7)],
            embeddings=rng.normal(size=(7, col.dimension)))
    col.delete(ids[:2])
    col.engine.update_metadata({ids[3]: {"cat": "moved", "tags": [i]}})
    col.upsert([_text(i + 1) + " again"], ids=[ids[4]], metadatas=[{"num": -1}],
               embeddings=rng.normal(size=(1, col.dimension)))
    print("ACK", flush=True)
    i += 7
"""


def test_kill_9_mid_write_leaves_the_metadata_and_lexical_indexes_as_the_store(tmp_path, tiny_model_dir):
    path = tmp_path / "c"
    Collection(path, model=str(tiny_model_dir)).close()
    rng = random.Random(25)
    for round_ in range(4):
        writer = subprocess.Popen([sys.executable, "-c", CHURN, str(path), str(round_), str(Path(__file__).parent)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ACK"
        time.sleep(rng.uniform(0.0, 1.5))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        with Collection(path) as col:
            con = col.engine.store.con
            facets = sorted(con.execute("SELECT key, kind, value, doc FROM facets").fetchall(), key=repr)
            con.execute("CREATE TEMP TABLE IF NOT EXISTS facets_again AS SELECT * FROM facets WHERE 0")
            con.execute("DELETE FROM temp.facets_again")
            con.execute(fill_facets_statement().replace("INTO facets", "INTO temp.facets_again"))
            again = sorted(con.execute("SELECT key, kind, value, doc FROM temp.facets_again").fetchall(), key=repr)
            assert facets == again, f"round {round_}: the metadata index disagrees with the documents"
            counts = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", "chunks")]
            assert [col.engine.store.document_count(), col.engine.store.chunk_count()] == counts
            texts = dict(con.execute("SELECT c.rowid, substr(d.text, c.start + 1, c.end - c.start) FROM chunks c "
                                     "JOIN documents d ON d.rowid = c.doc").fetchall())
            for word in ["harbor", "again", "n5"]:
                matched = {r[0] for r in con.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?",
                                                     (f'"{word}"',))}
                assert matched == {c for c, t in texts.items() if word in index_text(t).split()}, word
            assert col.engine.lexical_index.totals()[0] == counts[1]


# -- a collection of the previous format ---------------------------------------------------------
def _as_format_2(path: Path) -> None:
    """What semsearch wrote before issue 25: no facets or tallies, format 2, the vector index's
    metadata without verified file identities."""
    con = sqlite3.connect(path / DB_NAME, isolation_level=None)
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    con.execute("BEGIN")
    for name in names:
        if "facets" in name or "counted" in name:
            con.execute(f"DROP TRIGGER {name}")
    con.execute("DROP TABLE facets")
    con.execute("DROP TABLE tallies")
    con.execute("UPDATE manifest SET value = '2' WHERE key = 'format_version'")
    con.execute("COMMIT")
    con.close()
    meta = json.loads((path / "vectors.json").read_text())
    meta.pop("verified", None)
    (path / "vectors.json").write_text(json.dumps(meta))


def test_a_collection_of_the_previous_format_opens_migrated(tmp_path, tiny_model_dir):
    path = tmp_path / "old"
    rng = np.random.default_rng(3)
    with Collection(path, model=str(tiny_model_dir)) as col:
        col.add([_text(i) for i in range(60)], ids=[f"d{i}" for i in range(60)],
                metadatas=[_metadata(i) for i in range(60)], embeddings=rng.normal(size=(60, col.dimension)))
    _as_format_2(path)
    with Collection(path) as col:
        assert col.manifest["format_version"] == FORMAT_VERSION
        where = {"cat": "c3", "tags": "odd"}
        found = {h.id for h in col.search("harbor", k=10, where=where)}
        assert found == {f"d{i}" for i in range(60) if matches(parse_where(where), _metadata(i))}
        assert col.engine.store.document_count() == 60
        col.delete(["d3"])
        assert "d3" not in {h.id for h in col.search(_text(3), k=10, mode="lexical")}
        assert col.engine.store.document_count() == 59
    # The index file was hashed once at that open and its identity recorded: later opens map it unhashed.
    assert "verified" in json.loads((path / "vectors.json").read_text())


def test_a_word_in_most_chunks_is_left_out_of_the_match_without_changing_what_ranks_first(tmp_path, tiny_model_dir):
    """FTS5 scores every row a query matches; a word in over half the chunks has idf 1e-6 there."""
    texts = [f"the record {w}" for w in WORDS] + [f"quay lantern {i}" for i in range(5)]
    with Collection(tmp_path / "c", model=str(tiny_model_dir)) as col:
        col.add(texts, ids=[f"t{i}" for i in range(len(texts))],
                embeddings=np.random.default_rng(1).normal(size=(len(texts), col.dimension)))
        store = col.engine.store
        full = dict(store.con.execute("SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                      (match_expression("the quay"),)).fetchall())
        pruned = col.engine.lexical_index.best(tokenize("the quay"), 4)  # 5 chunks hold "quay": enough
        assert len(pruned) == 4 and all(abs(score - full[c]) < 1e-5 for c, score in pruned)
        assert {c for c, _ in pruned} <= set(range(len(WORDS) + 1, len(texts) + 1))
        hits = col.search("the quay", k=8, mode="lexical")  # more than hold "quay": "the" counts again
        assert [h.id for h in hits[:5]] == sorted([h.id for h in hits[:5]], key=lambda i: -full[int(i[1:]) + 1])
        assert {h.id for h in hits[:5]} == {f"t{len(WORDS) + i}" for i in range(5)} and len(hits) == 8
