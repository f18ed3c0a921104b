"""A served collection that another process changes (issue 24): every door answers the new state.

The HTTP server (a real uvicorn in this process) and the MCP server (``semsearch mcp`` in a
subprocess) serve a collection while ANOTHER process re-encodes it at another dimension and with
another model, rebuilds its vector index as HNSW and back, adds documents and deletes one, each
with the ``semsearch`` command a user would run. After each change every request answers 200 with
exactly what a process opening the collection afresh answers (the same hits and scores, so the
new model's vectors; the new documents; never a deleted one), and ``info`` tells the new state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import DOCS
from .doors import SRC, HttpDoor, McpDoor, PythonDoor, Refused, differences, live_server

OTHER_PROCESS = Path(__file__).with_name("other_process.py")
QUERIES = ["when did people first walk on the moon", "kettle receipt", "penguins on the ice"]
QUESTION = "What landed on the Moon and on Mars?"
PENGUIN = {"_id": "penguin", "text": "Emperor penguins huddle together on the Antarctic sea ice through the winter.",
           "topic": "animals"}


class OtherProcess:
    """A process that runs ``semsearch`` commands on request (other_process.py): one load of torch."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        self.proc = subprocess.Popen([sys.executable, str(OTHER_PROCESS)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.output: list[str] = []
        self._wait_for("READY")

    def _wait_for(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        timer = threading.Timer(300, self.proc.kill)  # a hung child fails the test instead of hanging it
        timer.start()
        try:
            for line in self.proc.stdout:
                self.output.append(line.rstrip())
                if line.startswith(prefix):
                    return line.strip()
        finally:
            timer.cancel()
        raise AssertionError(f"the other process ended: {self.output[-20:]}")

    def run(self, *args: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(list(args)) + "\n")
        self.proc.stdin.flush()
        done = self._wait_for("DONE ")
        assert done == "DONE 0", f"semsearch {' '.join(args)} failed: {self.output[-20:]}"

    def __enter__(self) -> OtherProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def fresh_answers(path: Path) -> dict[str, Any]:
    """What a process that opens the collection now answers: the truth every door must match."""
    from semsearch import Collection

    with Collection(path, create=False) as col:
        door = PythonDoor(col)
        info = col.info()
        return {
            "search": [door.search(q, k=5) for q in QUERIES],
            "dense": [door.search(q, k=5, mode="dense") for q in QUERIES],
            "similar": door.similar("mars", k=3),
            "ask": door.ask(QUESTION),
            "info": {key: info[key] for key in ("documents", "chunks", "model", "dimension", "index")},
        }


def served_answers(http: HttpDoor, mcp: McpDoor, first: str) -> dict[str, Any]:
    """What the doors serving the collection since before the change answer; ``first`` is asked first
    (the request that meets the change: each kind of request meets one)."""
    requests: dict[str, Callable[[], Any]] = {
        "info": http.info,
        "search": lambda: [http.search(q, k=5) for q in QUERIES],
        "dense": lambda: [http.search(q, k=5, mode="dense") for q in QUERIES],
        "similar": lambda: http.similar("mars", k=3),
        "ask": lambda: http.ask(QUESTION),
        "mcp": lambda: [mcp.search(q, k=5) for q in QUERIES],
    }
    out = {first: requests[first]()}
    out.update((key, request()) for key, request in requests.items() if key != first)
    if not isinstance(out["info"], Refused):
        out["info"] = {key: out["info"][key] for key in ("documents", "chunks", "model", "dimension", "index")}
    return out


def hit_ids(answers: dict[str, Any]) -> set[str]:
    """Every document id any answer shows."""
    ids = {h["id"] for key in ("search", "dense", "mcp") for result in answers[key] for h in result["hits"]}
    return ids | {h["id"] for h in answers["similar"]} | {h["id"] for h in answers["ask"].get("hits", [])} | \
        {c["id"] for c in answers["ask"]["citations"]}


def check_served(path: Path, http: HttpDoor, mcp: McpDoor, after: str, first: str) -> dict[str, Any]:
    served = served_answers(http, mcp, first)
    truth = fresh_answers(path)
    refused = {key: value for key, value in served.items()
               if isinstance(value, Refused) or isinstance(value, list) and any(isinstance(v, Refused) for v in value)}
    assert refused == {}, f"after {after}, the doors refused: {refused}"
    assert differences(truth, served, k=5) == [], f"after {after}, HTTP answers an old state"  # "mcp" is not in truth
    assert differences(truth["search"], served["mcp"], k=5) == [], f"after {after}, MCP answers an old state"
    return served


def test_served_collection_answers_its_new_state_after_another_process_changes_it(tmp_path, minilm_path,
                                                                                   tiny_model_dir):
    from semsearch import Collection
    from semsearch.server import create_app

    path = tmp_path / "docs"
    with Collection(path) as col:
        col.add([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadatas=[m for _, _, m in DOCS])
    added = tmp_path / "new.jsonl"
    added.write_text(json.dumps(PENGUIN) + "\n")
    collection = ["--collection", str(path)]

    def dimension(n: int) -> Callable[[dict[str, Any]], None]:
        def check(served: dict[str, Any]) -> None:
            assert served["info"]["dimension"] == n

        return check

    def index(spec: str) -> Callable[[dict[str, Any]], None]:
        def check(served: dict[str, Any]) -> None:
            assert served["info"]["index"] == spec

        return check

    def penguin_found(served: dict[str, Any]) -> None:
        assert served["info"]["documents"] == len(DOCS) + 1
        assert served["search"][2]["hits"][0]["id"] == "penguin" and served["mcp"][2]["hits"][0]["id"] == "penguin"

    def apollo_gone(served: dict[str, Any]) -> None:
        assert served["info"]["documents"] == len(DOCS)
        assert "apollo" not in hit_ids(served)

    def model(name: str, n: int) -> Callable[[dict[str, Any]], None]:
        def check(served: dict[str, Any]) -> None:
            assert served["info"]["model"] == name and served["info"]["dimension"] == n
            assert "apollo" not in hit_ids(served)

        return check

    # (what changes, the command, what the doors must show, the request that meets the change first)
    changes: list[tuple[str, list[str], Callable[[dict[str, Any]], None], str]] = [
        ("re-encoding at 128 dimensions", ["reindex", "--dimensions", "128", "--force-dimensions"], dimension(128),
         "search"),
        ("re-encoding at 256 dimensions", ["reindex", "--dimensions", "256", "--force-dimensions"], dimension(256),
         "similar"),
        ("re-encoding at 192 dimensions", ["reindex", "--dimensions", "192", "--force-dimensions"], dimension(192),
         "ask"),
        ("re-indexing as HNSW16", ["reindex", "--index", "HNSW16"], index("HNSW16"), "info"),
        ("adding a document", ["index", str(added)], penguin_found, "search"),
        ("deleting a document", ["delete", "apollo"], apollo_gone, "similar"),
        ("re-indexing as Flat", ["reindex", "--index", "Flat"], index("Flat"), "dense"),
        ("re-encoding with another model", ["reindex", "--model", str(tiny_model_dir)],
         model(str(tiny_model_dir), 32), "info"),
    ]
    app = create_app({"docs": path}, warm_up=False)
    with live_server(app) as url, HttpDoor(url) as http, McpDoor(str(path)) as mcp, OtherProcess() as other:
        before = check_served(path, http, mcp, "nothing", "search")
        assert "apollo" in hit_ids(before) and before["info"]["dimension"] == 384
        for what, command, expected, first in changes:
            other.run(*command, *collection)
            expected(check_served(path, http, mcp, what, first))


@pytest.mark.parametrize("backend", ["local", "milvus"])
def test_an_open_collection_follows_what_another_one_changed(backend, tmp_path, minilm_path, request):
    """The one path under every door: a collection object open before another (here in the same
    process, like another process) re-encodes or re-indexes it answers its reads in the new state:
    similar, duplicates and topics read the new vectors (they used to fail, or read vectors of the
    new dimension as the old one), info tells the new dimension and index spec."""
    from semsearch import Collection

    where = {"backend": "milvus", "uri": request.getfixturevalue("milvus_uri")} if backend == "milvus" else {}
    name = tmp_path / "followed" if backend == "local" else "conformance_followed"
    served = Collection(name, **where)
    try:
        served.add([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadatas=[m for _, _, m in DOCS])
        served.search("warm up")
        with Collection(name, create=False, **where) as other:
            truncate(other, 128)
            assert served.info()["dimension"] == 128
            truncate(other, 256)
            assert differences(_hits(other.similar("mars", k=3)), _hits(served.similar("mars", k=3)), k=3) == []
            truncate(other, 192)
            assert [g.to_dict() for g in served.duplicates(0.9)] == [g.to_dict() for g in other.duplicates(0.9)]
            truncate(other, 160)
            assert [t.to_dict() for t in served.topics(n=2)] == [t.to_dict() for t in other.topics(n=2)]
            other.set_index("HNSW16")
            assert served.info()["index"] == "HNSW16"
            assert differences(_hits(other.search(QUERIES[0], k=5)), _hits(served.search(QUERIES[0], k=5)),
                               k=5) == []
    finally:
        if backend == "milvus":
            served.drop()
        else:
            served.close()


def truncate(col: Any, dimensions: int) -> None:
    """Re-encode at fewer dimensions (MiniLM is not a Matryoshka model: forced, with its warning)."""
    with pytest.warns(UserWarning, match="not trained for truncated embeddings"):
        col.reindex(dimensions=dimensions, force_dimensions=True)


def _hits(hits: list[Any]) -> list[dict[str, Any]]:
    return [h.to_dict() for h in hits]
