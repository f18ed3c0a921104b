"""The read commands (search, ask, similar, duplicates, topics) through a running ``semsearch serve``:
the warm process answers in milliseconds.

``--server auto`` (the default) asks the server announced in the collection's folder
(``server.json``, see :mod:`semsearch.server.discovery`) when there is a live one on loopback,
and searches locally whenever it cannot answer (no server, a stale file, a key it does not have,
an option it refuses, any error): the output is the same either way, only faster.
``--server URL`` insists on that server (a loopback URL) and reports its errors;
``--server off`` always searches locally.

Only the standard library is imported here (``http.client``): the point is to skip loading
the model, so the client must cost nothing to start.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInputError, SemsearchError, UnsupportedOptionError
from ..server.discovery import INSTANCE_HEADER, find, loopback_url

AUTO_TIMEOUT = 10.0  # seconds; past this a busy server is given up on and the CLI searches itself
EXPLICIT_TIMEOUT = 120.0
#: The API's error types of a refused input (server/error_responses.py) and the errors they stand for.
_REFUSALS: dict[Any, type[InvalidInputError]] = {"invalid_input": InvalidInputError,
                                                 "unsupported_option": UnsupportedOptionError}
_COLLECTION_PATH = re.compile(r"^/collections/([A-Za-z0-9][A-Za-z0-9._-]{0,63})/?$")


class ServerUnavailable(Exception):
    """The server could not answer this request (the reason is the message)."""


class ServerRefused(ServerUnavailable):
    """The server refused the request's input (HTTP 422): ``error`` is the refusal a local run
    gives, with the server's message (the collection's own: the same on every door)."""

    def __init__(self, error: SemsearchError) -> None:
        super().__init__(str(error))
        self.error = error


def through_server(server: str, folder: Path, operation: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON answer of ``POST .../<operation>`` (search, ask, similar, duplicates, topics) from a
    running server, or None to do the work locally.

    ``body`` is the request (None values left out; ``where``/``where_document`` may be JSON text,
    checked here first so a malformed filter gets the message a local run gives). With ``server``
    "auto" any failure means None; with an explicit URL it is an error.

    Raises:
        SemsearchError: with an explicit ``server`` URL, whatever kept it from answering.
    """
    if server == "off":
        return None
    from ..filters import parse_where, parse_where_document

    parse_where(body.get("where"))
    parse_where_document(body.get("where_document"))
    body = {name: json.loads(value) if name in ("where", "where_document") and isinstance(value, str) else value
            for name, value in body.items() if value is not None}
    key = os.environ.get("SEMSEARCH_API_KEY") or None
    if server == "auto":
        address = find(folder)
        if address is None or (address.api_key and key is None):
            return None
        try:
            return _post(address.url, f"/collections/{address.collection}/{operation}", body, key, AUTO_TIMEOUT,
                         address.instance)
        except ServerUnavailable:
            return None
    url, prefix = _explicit(server)
    try:
        return _post(url, f"{prefix}/{operation}", body, key, EXPLICIT_TIMEOUT, None)
    except ServerRefused as exc:
        raise exc.error from None
    except ServerUnavailable as exc:
        raise SemsearchError(f"the server at {server} did not answer: {exc}") from None


def search_through_server(
    server: str, folder: Path, queries: list[str], k: int, options: dict[str, Any],
) -> list[list[dict[str, Any]]] | None:
    """Hits (as ``Hit.to_dict()``) per query from a running server, or None to search locally
    (the rules of :func:`through_server`; ``options`` are ``Collection.search`` keywords).

    Raises:
        SemsearchError: with an explicit ``server`` URL, whatever kept it from answering.
    """
    payload = through_server(server, folder, "search", {"queries": queries, "k": k, **options})
    if payload is None:
        return None
    results = payload.get("results")
    if not isinstance(results, list) or len(results) != len(queries):
        if server == "auto":
            return None
        raise SemsearchError(f"the server at {server} answered without one result per query")
    return [result["hits"] for result in results]


def ask_through_server(server: str, folder: Path, body: dict[str, Any]) -> dict[str, Any] | None:
    """The answer (``Answer.to_dict()``, as ``POST /ask`` returns it) from a running server, or None to
    answer locally; the rules of :func:`through_server` (``body`` is an ``/ask`` request).

    Raises:
        SemsearchError: with an explicit ``server`` URL, whatever kept it from answering.
    """
    payload = through_server(server, folder, "ask", body)
    if payload is not None:
        payload.pop("collection", None)
        payload.pop("took_ms", None)
    return payload


def _explicit(server: str) -> tuple[str, str]:
    """(base URL, path prefix) of a ``--server`` URL: "" for the default collection, or ``/collections/NAME``."""
    parts = urlsplit(server)
    base = f"{parts.scheme}://{parts.netloc}"
    if not loopback_url(base):
        raise SemsearchError(
            f"--server must be auto, off or the http URL of a server on this machine's loopback "
            f"(e.g. http://127.0.0.1:8000), got {server!r}"
        )
    if parts.path in ("", "/"):
        return base, ""
    match = _COLLECTION_PATH.match(parts.path)
    if match is None:
        raise SemsearchError(
            f"--server takes a server URL or one of its collections (…/collections/NAME), got {server!r}"
        )
    return base, f"/collections/{match.group(1)}"


def _post(url: str, path: str, body: dict[str, Any], key: str | None, timeout: float,
          instance: str | None) -> dict[str, Any]:
    """The JSON object a loopback server answers to ``POST path``.

    Raises:
        ServerUnavailable: no answer, another server at that address, or an error status.
    """
    import http.client  # here, not at the top: a command with no server running never needs it

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)  # a loopback URL
    headers = {"content-type": "application/json", "accept": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ServerUnavailable(str(exc) or type(exc).__name__) from None
    finally:
        conn.close()
    if instance is not None and response.getheader(INSTANCE_HEADER) != instance:
        raise ServerUnavailable("another server answers at that address")
    try:
        payload = json.loads(data)
    except ValueError:
        raise ServerUnavailable(f"HTTP {response.status} with a body that is not JSON") from None
    if response.status != 200 or not isinstance(payload, dict):
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        refusal = _REFUSALS.get(error.get("type")) if response.status == 422 else None
        if refusal is not None and isinstance(error.get("message"), str):
            raise ServerRefused(refusal(error["message"]))
        raise ServerUnavailable(f"HTTP {response.status}: {error.get('message', data[:200])}")
    return payload
