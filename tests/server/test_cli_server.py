"""`semsearch search` through a running `semsearch serve`: the same output, and no harm from a dead server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from same_answers import differences

from .conftest import CORPUS, free_port

SEARCHES = [
    ["where to stay by the sea", "-k", "3", "--json"],
    ["where to stay by the sea", "chocolate dessert", "-k", "2", "--json", "--where", '{"year": {"$gte": 2000}}',
     "--fusion", "rrf", "--mmr", "0.7"],
    ["moon landing", "-k", "3", "--mode", "dense", "--explain"],  # the table
]


LOADED_BY_A_SEARCH = """
import json, runpy, sys
sys.argv = ["semsearch", "search", "hotel by the sea", "-c", sys.argv[1], "--json"]
try:
    runpy.run_module("semsearch.cli", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = ("numpy", "torch", "faiss", "fastapi", "semsearch.collection", "semsearch.embedding")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    full_env.pop("SEMSEARCH_SERVER", None)
    result = subprocess.run([sys.executable, "-m", "semsearch.cli", *args], capture_output=True, text=True, check=False,
                            env=full_env, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture()
def folder(tmp_path, corpus_vectors) -> Path:
    from semsearch import Collection

    with Collection(tmp_path / "docs") as col:
        col.add([t for _, t, _ in CORPUS], ids=[i for i, _, _ in CORPUS], metadatas=[m for _, _, m in CORPUS],
                embeddings=corpus_vectors)
    return tmp_path / "docs"


def start_server(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", str(folder), "--port", str(free_port())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SEMSEARCH_API_KEY": ""})
    deadline = time.monotonic() + 600
    while not (folder / "server.json").exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the server did not announce itself in 600 s")
        time.sleep(0.2)
    return proc


def same_output(args: list[str], here: str, there: str) -> None:
    """What two processes printed for one search: JSON, the same hits with scores to float rounding
    (same_answers.py: the encoder's blocking may differ between processes); a table, the same text
    (it shows scores to 3 decimals)."""
    if "--json" in args:
        assert differences(json.loads(here), json.loads(there), tolerance=1e-5) == [], args
    else:
        assert there == here


def test_search_through_a_running_server_prints_what_a_local_search_prints(folder, tmp_path):
    local = [cli("search", *args, "-c", str(folder), "--server", "off").stdout for args in SEARCHES]
    assert json.loads(local[0])[0]["hits"][0]["id"] == "hotel-1"
    server = start_server(folder)
    try:
        announced = json.loads((folder / "server.json").read_text())
        assert announced["pid"] == server.pid and announced["url"].startswith("http://127.0.0.1:")
        through = [cli("search", *args, "-c", str(folder)).stdout for args in SEARCHES]
        for args, here, there in zip(SEARCHES, local, through):
            same_output(args, here, there)
        # Answered by the server, the command loads neither the model nor the index code, nor numpy.
        env = {k: v for k, v in os.environ.items() if k != "SEMSEARCH_SERVER"}
        probe = subprocess.run([sys.executable, "-c", LOADED_BY_A_SEARCH, str(folder)], capture_output=True, text=True,
                               timeout=600, check=True, env=env)
        assert json.loads(probe.stdout.splitlines()[-1]) == [], probe.stdout
        # Proof that the server answered: a folder holding only the server's file, no collection.
        elsewhere = tmp_path / "only-the-file"
        elsewhere.mkdir()
        shutil.copy(folder / "server.json", elsewhere / "server.json")
        same_output(SEARCHES[0], local[0], cli("search", *SEARCHES[0], "-c", str(elsewhere)).stdout)
        same_output(SEARCHES[0], local[0],
                    cli("search", *SEARCHES[0], "--server", announced["url"] + "/collections/docs").stdout)
        off = cli("search", *SEARCHES[0], "-c", str(elsewhere), "--server", "off", check=False)
        assert off.returncode != 0 and "no collection at" in off.stderr  # --server off never asks it
    finally:
        server.kill()  # SIGKILL: no chance to remove its file
        server.wait()
    assert (folder / "server.json").exists()
    # The killed server's file is ignored: the same output, searched locally.
    same_output(SEARCHES[0], local[0], cli("search", *SEARCHES[0], "-c", str(folder)).stdout)


def test_a_server_that_stops_takes_its_file_away(folder):
    server = start_server(folder)
    try:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert not (folder / "server.json").exists()


LOADED_BY_AN_ASK = LOADED_BY_A_SEARCH.replace('"search", "hotel by the sea"',
                                              '"ask", "when did people walk on the moon?"')


def test_ask_through_a_running_server_answers_what_a_local_ask_answers(folder, tmp_path):
    question = ["when did people first walk on the moon?", "--json"]
    local = json.loads(cli("ask", *question, "-c", str(folder), "--server", "off").stdout)
    assert local["answered"] and local["citations"][0]["id"] == "space-1"
    server = start_server(folder)
    try:
        through = json.loads(cli("ask", *question, "-c", str(folder)).stdout)
        for data in (local, through):
            for hit in data.pop("hits"):
                assert hit["id"]  # scores: each process encodes the question itself (float noise)
        assert through == local
        # Answered by the server, the command loads neither the model nor the index code, nor numpy.
        env = {k: v for k, v in os.environ.items() if k != "SEMSEARCH_SERVER"}
        probe = subprocess.run([sys.executable, "-c", LOADED_BY_AN_ASK, str(folder)], capture_output=True, text=True,
                               timeout=600, check=True, env=env)
        assert json.loads(probe.stdout.splitlines()[-1]) == [], probe.stdout
        # Proof that the server answered: a folder holding only the server's file, no collection.
        elsewhere = tmp_path / "only-the-file"
        elsewhere.mkdir()
        shutil.copy(folder / "server.json", elsewhere / "server.json")
        answered = json.loads(cli("ask", *question, "-c", str(elsewhere)).stdout)
        answered.pop("hits")
        assert answered == local
        human = cli("ask", question[0], "-c", str(elsewhere)).stdout
        assert local["answer"] in human and "space-1" in human
    finally:
        server.kill()
        server.wait()


LOADED_BY_SIMILAR = LOADED_BY_A_SEARCH.replace('"search", "hotel by the sea"', '"similar", "hotel-1"')
EXPLORATIONS = [
    ["similar", "hotel-1", "-k", "3", "--json"],
    ["similar", "hotel-1", "-k", "3"],  # the table
    ["duplicates", "--threshold", "0.5", "--semantic", "--json"],
    ["topics", "--json"],
    ["topics", "--central", "1"],  # the table, with the central documents' texts
]


def test_similar_duplicates_and_topics_through_a_running_server_print_what_they_print_locally(folder):
    """Issue 24: the read commands other than search used no running server (a cold process each time)."""
    local = [cli(*args, "-c", str(folder), "--server", "off") for args in EXPLORATIONS]
    server = start_server(folder)
    try:
        through = [cli(*args, "-c", str(folder)) for args in EXPLORATIONS]
        env = {k: v for k, v in os.environ.items() if k != "SEMSEARCH_SERVER"}
        probe = subprocess.run([sys.executable, "-c", LOADED_BY_SIMILAR, str(folder)], capture_output=True,
                               text=True, timeout=600, check=True, env=env)
        assert json.loads(probe.stdout.splitlines()[-1]) == [], probe.stdout  # the server answered
    finally:
        server.kill()
        server.wait()
    for args, here, there in zip(EXPLORATIONS, local, through):
        assert there.stdout == here.stdout, args
    assert json.loads(local[0].stdout)[0]["id"] != "hotel-1"
