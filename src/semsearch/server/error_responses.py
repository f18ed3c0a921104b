"""Every failure of the API as JSON: ``{"error": {"type", "message"}}`` with the right HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    CollectionBusyError,
    DuplicateIdError,
    InvalidInputError,
    MilvusError,
    SemsearchError,
    StoreDamagedError,
    UnsupportedOptionError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as ``{"error": {"type", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers


def _json_error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "invalid_json", "the request body is not valid JSON"
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, "validation_error", "; ".join(parts) + more


_STATUS_KINDS = {
    400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
}


def install_error_handlers(app: FastAPI) -> None:
    """Answer ApiError, invalid requests, HTTP errors, semsearch errors and anything unexpected as JSON."""
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json_error(exc.status, exc.kind, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _json_error(*_validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _STATUS_KINDS.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        return _json_error(exc.status_code, kind, message, getattr(exc, "headers", None))

    @app.exception_handler(SemsearchError)
    async def semsearch_error(request: Request, exc: SemsearchError) -> JSONResponse:
        if isinstance(exc, DuplicateIdError):
            return _json_error(409, "duplicate_id", str(exc))
        if isinstance(exc, UnsupportedOptionError):
            return _json_error(422, "unsupported_option", str(exc))
        if isinstance(exc, InvalidInputError):
            return _json_error(422, "invalid_input", str(exc))
        if isinstance(exc, CollectionBusyError):
            return _json_error(503, "collection_busy", str(exc), {"Retry-After": "5"})
        if isinstance(exc, StoreDamagedError):  # the message names server paths: the log has it, the client not
            log.error("%s: %s", request.url.path, exc)
            return _json_error(503, "store_damaged", "the collection's store is damaged; this is refused until the "
                                                     "server's operator repairs it (semsearch verify --repair)")
        if isinstance(exc, MilvusError):
            return _json_error(503, "backend_unavailable", str(exc), {"Retry-After": "5"})
        log.error("semsearch error on %s: %s", request.url.path, exc)
        return _json_error(500, type(exc).__name__, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _json_error(500, "internal_error", "the server failed to handle this request; see its log")
