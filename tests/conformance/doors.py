"""The four doors as a test drives them, each translating its answers into one comparable shape.

Every door method takes the arguments a Python caller gives the collection and returns what the
door answered, as plain data (hits as dicts, groups, topics), or a :class:`Refused` when the door
refused: the error it stands for (a Python exception class, an HTTP status and type, a CLI exit
code, an MCP tool error) and its message. The conformance tests then ask every door the same
thing and compare.

- :class:`PythonDoor`: a :class:`semsearch.Collection` in this process.
- :class:`CliDoor`: ``semsearch ... --json`` through typer's CliRunner (in this process).
- :class:`HttpDoor`: a real uvicorn server on loopback (``create_app``), through httpx.
- :class:`McpDoor`: ``semsearch mcp`` in a subprocess, through the official SDK's stdio client.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semsearch
from same_answers import differences  # noqa: F401  (the conformance tests import it from here)

#: The semsearch the tests import: the processes they start import the same one.
SRC = Path(semsearch.__file__).resolve().parents[1]




@dataclass(frozen=True)
class Refused:
    """A door's refusal: ``error`` as the door says it (see each door), and the message a user reads."""

    error: str
    message: str


def _hits(hits: list[Any]) -> list[dict[str, Any]]:
    return [h.to_dict() for h in hits]


def _arguments(options: dict[str, Any]) -> dict[str, Any]:
    """The options a caller set (None means "not given")."""
    return {name: value for name, value in options.items() if value is not None}


# -- Python ----------------------------------------------------------------------------------
class PythonDoor:
    """``Collection`` methods; a refusal's ``error`` is the exception's class name."""

    name = "python"

    def __init__(self, collection: Any) -> None:
        self.col = collection

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from semsearch.errors import SemsearchError

        try:
            return fn(*args, **kwargs)
        except SemsearchError as exc:
            return Refused(type(exc).__name__, str(exc))

    def search(self, query: str, **options: Any) -> Any:
        hits = self._call(self.col.search, query, **_arguments(options))
        if isinstance(hits, Refused):
            return hits
        return {"hits": _hits(hits), "no_good_match": not hits or hits[0].score < self.col.no_match_threshold}

    def ask(self, question: str, **options: Any) -> Any:
        answer = self._call(self.col.ask, question, **_arguments(options))
        if isinstance(answer, Refused):
            return answer
        return {**answer.to_dict(), "grounded": answer.grounded}

    def get(self, ids: list[str], **options: Any) -> Any:
        docs = self._call(self.col.get, ids, **_arguments(options))
        return docs if isinstance(docs, Refused) else [d.to_dict() for d in docs]

    def similar(self, doc_id: str, **options: Any) -> Any:
        hits = self._call(self.col.similar, doc_id, **_arguments(options))
        return hits if isinstance(hits, Refused) else _hits(hits)

    def duplicates(self, keep: str = "first", **options: Any) -> Any:
        groups = self._call(self.col.duplicates, **_arguments(options))
        return groups if isinstance(groups, Refused) else [g.to_dict(keep) for g in groups]

    def topics(self, **options: Any) -> Any:
        found = self._call(self.col.topics, **_arguments(options))
        return found if isinstance(found, Refused) else [t.to_dict() for t in found]


# -- CLI -------------------------------------------------------------------------------------
class CliDoor:
    """``semsearch COMMAND ... --json`` in this process; a refusal's ``error`` is ``exit N`` and its
    message what follows ``error:`` on stderr."""

    name = "cli"

    def __init__(self, path: Path, *extra: str) -> None:
        from typer.testing import CliRunner

        self.path = path
        self.extra = list(extra)  # e.g. ["--server", "off"]
        self.runner = CliRunner()

    def run(self, *args: str) -> Any:
        from semsearch.cli import app

        result = self.runner.invoke(app, [*args, "--collection", str(self.path)])
        if result.exit_code != 0:
            message = " ".join(result.stderr.split())
            if not message.startswith("error: "):
                raise AssertionError(f"semsearch {' '.join(args)} failed without an error line: {result.output}")
            return Refused(f"exit {result.exit_code}", message.removeprefix("error: "))
        return json.loads(result.stdout)

    def search(self, query: str, k: int | None = None, **options: Any) -> Any:
        out = self.run("search", query, *_flags({"k": k, **options}), "--json", *self.extra)
        if isinstance(out, Refused):
            return out
        (result,) = out
        return {"hits": result["hits"], "no_good_match": result["no_good_match"]}

    def ask(self, question: str, **options: Any) -> Any:
        return self.run("ask", question, *_flags(options), "--json", *self.extra)

    def similar(self, doc_id: str, **options: Any) -> Any:
        return self.run("similar", doc_id, *_flags(options), "--json", *self.extra)

    def duplicates(self, **options: Any) -> Any:
        return self.run("duplicates", *_flags(options), "--json", *self.extra)

    def topics(self, **options: Any) -> Any:
        return self.run("topics", *_flags(options), "--json", *self.extra)


def _flags(options: dict[str, Any]) -> list[str]:
    """Command-line flags for Python keyword arguments (``rrf_k=60`` -> ``--rrf-k 60``)."""
    out: list[str] = []
    for name, value in _arguments(options).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else flag.replace("--", "--no-", 1))
        elif isinstance(value, dict):
            out += [flag, json.dumps(value)]
        else:
            out += [flag, str(value)]
    return out


# -- HTTP ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """``app`` served by a real uvicorn server on a free loopback port; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-conformance", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class HttpDoor:
    """The HTTP API of one collection; a refusal's ``error`` is ``STATUS type``."""

    name = "http"

    def __init__(self, url: str, collection: str = "docs") -> None:
        import httpx

        self.http = httpx.Client(base_url=f"{url}/collections/{collection}", timeout=120)
        self.root = httpx.Client(base_url=url, timeout=120)
        self.collection = collection

    def __enter__(self) -> HttpDoor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.root.close()

    def info(self) -> Any:
        response = self.root.get(f"/collections/{self.collection}")
        if response.status_code != 200:
            error = response.json()["error"]
            return Refused(f"{response.status_code} {error['type']}", error["message"])
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        if response.status_code != 200:
            error = response.json()["error"]
            return Refused(f"{response.status_code} {error['type']}", error["message"])
        return response.json()

    def search(self, query: str, **options: Any) -> Any:
        out = self.post("/search", {"query": query, **_arguments(options)})
        if isinstance(out, Refused):
            return out
        (result,) = out["results"]
        return {"hits": result["hits"], "no_good_match": result["no_good_match"]}

    def ask(self, question: str, **options: Any) -> Any:
        out = self.post("/ask", {"question": question, **_arguments(options)})
        if isinstance(out, Refused):
            return out
        return {"answer": out["answer"], "answered": out["answered"], "grounded": out["grounded"],
                "citations": out["citations"], "hits": out["hits"], "model": out["model"]}

    def get(self, ids: list[str], **options: Any) -> Any:
        out = self.post("/get", {"ids": ids, **_arguments(options)})
        return out if isinstance(out, Refused) else out["documents"]

    def similar(self, doc_id: str, **options: Any) -> Any:
        out = self.post("/similar", {"id": doc_id, **_arguments(options)})
        return out if isinstance(out, Refused) else out["hits"]

    def duplicates(self, **options: Any) -> Any:
        out = self.post("/duplicates", _arguments(options))
        return out if isinstance(out, Refused) else out["groups"]

    def topics(self, **options: Any) -> Any:
        out = self.post("/topics", _arguments(options))
        return out if isinstance(out, Refused) else out["topics"]


# -- MCP -------------------------------------------------------------------------------------
class McpDoor:
    """``semsearch mcp FOLDER`` in a subprocess, one session held open; a refusal's ``error`` is
    ``tool error`` and its message the tool's text without the SDK's ``Error executing tool NAME: ``."""

    name = "mcp"

    def __init__(self, *args: str) -> None:
        from anyio.from_thread import start_blocking_portal
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        params = StdioServerParameters(command=sys.executable, args=["-m", "semsearch.cli", "mcp", *args], env=env)
        self._portal_cm = start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self._contexts: list[Any] = []
        try:
            read, write = self._enter(stdio_client(params))
            self.session = self._enter(ClientSession(read, write))
            self.portal.call(self.session.initialize)
        except BaseException:
            self.close()
            raise

    def _enter(self, context: Any) -> Any:
        wrapped = self.portal.wrap_async_context_manager(context)
        value = wrapped.__enter__()
        self._contexts.append(wrapped)
        return value

    def __enter__(self) -> McpDoor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._contexts:
            self._contexts.pop().__exit__(None, None, None)
        self._portal_cm.__exit__(None, None, None)

    def tools(self) -> dict[str, Any]:
        return {t.name: t for t in self.portal.call(self.session.list_tools).tools}

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        result = self.portal.call(self.session.call_tool, tool, arguments)
        if result.isError:
            text = result.content[0].text
            prefix = f"Error executing tool {tool}: "
            assert text.startswith(prefix), text
            return Refused("tool error", text.removeprefix(prefix))
        return result.structuredContent

    def search(self, query: str, **options: Any) -> Any:
        out = self.call("search", {"query": query, **_arguments(options)})
        return out if isinstance(out, Refused) else {"hits": out["hits"]}

    def ask(self, question: str, **options: Any) -> Any:
        out = self.call("ask", {"question": question, **_arguments(options)})
        if isinstance(out, Refused):
            return out
        return {"answer": out["answer"], "answered": out["answered"], "grounded": out["grounded"],
                "citations": [{"n": c["n"], "id": c["id"]} for c in out["citations"]], "model": out["model"]}

    def get(self, ids: list[str], **options: Any) -> Any:
        out = self.call("get_documents", {"ids": ids, **_arguments(options)})
        if isinstance(out, Refused):
            return out
        return [{"id": d["id"], "text": d["text"], "metadata": d["metadata"], "source": d["source"]}
                for d in out["documents"]]


# -- comparing answers -------------------------------------------------------------------------
