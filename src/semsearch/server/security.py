"""What makes the server safe to expose: bind checks, bearer keys, request size limits."""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SemsearchError

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class UnsafeBindError(SemsearchError):
    """Refusing to listen beyond loopback without an API key."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one request may ask for; beyond them the server answers 413 or 422."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_documents: int = 1000  # per add / upsert request
    max_queries: int = 64  # per search request
    max_k: int = 100
    max_ids: int = 1000  # per get / delete request
    max_query_chars: int = 4000
    max_candidates: int = 1000  # candidates / rerank_top per query


def is_loopback(host: str) -> bool:
    """True when ``host`` only ever reaches this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except socket.gaierror:
        return False
    # IPv4/IPv6 socket addresses start with the address text; anything else is not known to stay local.
    return bool(addresses) and all(
        isinstance(a, str) and ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses
    )


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve beyond loopback without a key.

    Raises:
        UnsafeBindError: ``host`` is not loopback and no API key is set.
    """
    if api_key is None and not is_loopback(host):
        raise UnsafeBindError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could change your "
            "collections. Set --api-key (or $SEMSEARCH_API_KEY), or bind to 127.0.0.1"
        )


def check_api_key(api_key: str | None) -> None:
    if api_key is not None and len(api_key) < 16:
        raise UnsafeBindError(
            "the API key is too short; use at least 16 random characters (e.g. `openssl rand -hex 24`)"
        )


def key_matches(authorization: str | None, api_key: str) -> bool:
    """True when the Authorization header is ``Bearer <api_key>`` (compared in constant time)."""
    if not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode("utf-8", "surrogateescape"), api_key.encode("utf-8"))


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app sees it.

    Declared lengths are refused up front; chunked bodies are counted as they arrive, so a
    client cannot slip past by leaving Content-Length out.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _error(send, 400, "bad_request", "Content-Length is not a number")
                return
            if too_big:
                await _error(send, 413, "payload_too_large", self._message(int(declared)))
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _error(send, 413, "payload_too_large", self._message(len(body)) + " (or more)")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _message(self, size: int) -> str:
        return (
            f"request body is {size} bytes; this server accepts at most {self.max_bytes} "
            "(send fewer documents per request)"
        )


class SecurityHeaders:
    """ASGI middleware: nosniff everywhere, a strict CSP and no framing for the search page, and
    the ``extra`` headers on every response (the server's instance id, which the CLI checks)."""

    PAGE_CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )

    def __init__(self, app: ASGIApp, extra: dict[str, str] | None = None) -> None:
        self.app = app
        self.extra = [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.extra if h[0] not in present)
                if page:
                    headers.append((b"content-security-policy", self.PAGE_CSP.encode()))
                    headers.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _error(send: Any, status: int, kind: str, message: str, extra: list | None = None) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
WRITE_ACTIONS = ("/add", "/upsert", "/delete")


class ApiKeyGate:
    """ASGI middleware: with a key set, a request without ``Authorization: Bearer KEY`` gets 401.

    It runs before the body is read or parsed, so an unauthenticated client gets nothing
    but the 401 (not even a JSON syntax error). Public: the page and its static files,
    health, readiness and the OpenAPI docs. With ``public_reads`` only writes need the key.
    """

    def __init__(self, app: ASGIApp, api_key: str | None, public_reads: bool = False) -> None:
        self.app = app
        self.api_key = api_key
        self.public_reads = public_reads

    def needs_key(self, method: str, path: str) -> bool:
        if self.api_key is None or method == "OPTIONS":  # CORS preflights never carry credentials
            return False
        if path in PUBLIC_PATHS or path.startswith("/static/"):
            return False
        if self.public_reads:
            return path.endswith(WRITE_ACTIONS)
        return True

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.needs_key(scope["method"], scope.get("path", "")):
            assert self.api_key is not None
            if not key_matches(_header(scope, b"authorization"), self.api_key):
                await _error(send, 401, "unauthorized",
                             "this endpoint needs the header Authorization: Bearer <API key>",
                             [(b"www-authenticate", b'Bearer realm="semsearch"')])
                return
        await self.app(scope, receive, send)
