"""The FastAPI application: search, write and inspect collections over HTTP, plus a search page.

``create_app`` builds one app over one or more collections. Searches are ``async``: each is
queued for the search workers (:mod:`.batching`), which encode concurrent requests' queries
together and answer each with exactly the hits it would get alone. The other endpoints are
plain ``def``, run in FastAPI's thread pool; a write holds the collection's write lock while
searches go on (readers never wait for it).

Authentication: with an API key set, every endpoint except the page, its static files,
``/healthz``, ``/readyz`` and the OpenAPI docs needs ``Authorization: Bearer KEY`` —
reads too, unless ``public_reads=True`` (then only writes need it). Without a key the
server must be bound to loopback (see :func:`semsearch.server.security.check_bind`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import InvalidInputError
from . import models as m
from .asking import mount_ask
from .collection_routes import by_name, collection_info, collection_routes, default_collection
from .discovery import INSTANCE_HEADER
from .error_responses import install_error_handlers
from .exploring import explore_routes
from .security import ApiKeyGate, BodySizeLimit, Limits, SecurityHeaders, check_api_key
from .state import CollectionSource, ServerState, open_collections
from .state import warm_up as warm_up_collections

__all__ = ["create_app", "open_collections"]


def create_app(
    collections: Mapping[str, CollectionSource] | Sequence[CollectionSource] | CollectionSource,
    *,
    api_key: str | None = None,
    public_reads: bool = False,
    cors_origins: Sequence[str] = (),
    limits: Limits | None = None,
    rerankers: Sequence[str] = (),
    default: str | None = None,
    warm_up: bool = True,
    watch: Sequence[str | os.PathLike[str]] = (),
    llm: Any = None,
) -> FastAPI:
    """A FastAPI app serving these collections (the first, or ``default``, at the short paths).

    Args:
        collections: ``{name: Collection or folder}``, or a list of either (named after folders).
        api_key: bearer token required by every write (and by reads unless ``public_reads``).
        public_reads: with a key set, let search / get / info through without it.
        cors_origins: origins allowed to call the API from a browser; none means CORS is off.
        limits: request caps (body bytes, documents per add, queries per search, k, ids).
        rerankers: cross-encoder models a request may name in ``rerank`` (the first is ``true``).
        default: the collection the short paths (``/search`` ...) use.
        warm_up: load the model and vector index in the background at startup (``/readyz``).
        watch: folders and files the default collection is kept in sync with while the app runs
            (synced once at startup, then new, changed and deleted files within seconds).
        llm: the language model ``/ask`` answers with (a ``semsearch.answer.ChatSettings``); None: extractive.

    Raises:
        InvalidInputError: bad collection names, an unknown ``default``, a ``watch`` path that does not exist.
        UnsafeBindError: an API key too short to be a secret.
    """
    check_api_key(api_key)
    opened, owned = open_collections(collections)
    default_name = default or next(iter(opened))
    if default_name not in opened:
        raise InvalidInputError(f"default collection {default_name!r} is not among {', '.join(opened)}")
    state = ServerState(
        collections=opened, default=default_name, limits=limits or Limits(), api_key=api_key,
        public_reads=public_reads, rerankers=list(rerankers), owned=owned,
    )

    app = FastAPI(
        title="semsearch",
        summary="Semantic search over your documents.",
        description=_DESCRIPTION.format(**vars(state.limits)),
        version=_version(),
        lifespan=lifespan(state, warm_up, watcher(state, watch)),
        responses={
            401: {"model": m.ErrorResponse, "description": "Missing or wrong API key"},
            413: {"model": m.ErrorResponse, "description": "Body or batch over the server's limits"},
            422: {"model": m.ErrorResponse, "description": "Invalid request"},
        },
    )
    app.state.semsearch = state
    install_error_handlers(app)

    status_routes(app, state)
    for prefix, resolve, suffix in (
        ("/collections/{name}", by_name(state), ""),
        ("", default_collection(state), "_default"),
    ):
        router = APIRouter(prefix=prefix, tags=["collections" if suffix == "" else "default collection"])
        collection_routes(router, state, resolve, suffix)
        explore_routes(router, state, resolve, suffix)  # /similar, /duplicates, /topics
        app.include_router(router)
    mount_ask(app, state, llm)
    mount_page(app)
    add_middleware(app, state, cors_origins)
    return app


def watcher(state: ServerState, watch: Sequence[str | os.PathLike[str]]) -> Any:
    """A folder watcher keeping the default collection in sync with ``watch`` (None without paths).

    Raises:
        InvalidInputError: a path that does not exist (the collections opened here are closed).
    """
    if not watch:
        return None
    from ..ingest.watch import FolderWatcher

    try:
        return FolderWatcher(state.collections[state.default], list(watch), initial_sync=True)
    except BaseException:
        for col in state.owned:
            col.close()
        raise


def lifespan(state: ServerState, warm_up: bool, watching: Any) -> Any:
    """What the app does at start (warm up in the background, start watching) and at shutdown."""

    @asynccontextmanager
    async def span(app: FastAPI):  # noqa: ANN202
        if warm_up:
            threading.Thread(target=warm_up_collections, args=(state,), name="semsearch-warm-up", daemon=True).start()
        else:
            state.ready.set()
        if watching is not None:
            watching.start()
        try:
            yield
        finally:
            if watching is not None:
                watching.stop()  # after the batch being applied: what was applied is committed
            state.batcher.close()
            for col in state.owned:
                col.close()

    return span


def status_routes(app: FastAPI, state: ServerState) -> None:
    """/healthz, /readyz and /collections (authentication is ApiKeyGate, a middleware: it runs
    before any body is read or parsed)."""

    @app.get("/healthz", response_model=m.Health, tags=["status"])
    def healthz() -> m.Health:
        """The process is up and answering."""
        return m.Health(status="ok")

    @app.get("/readyz", response_model=m.Readiness, tags=["status"], responses={503: {"model": m.Readiness}})
    def readyz() -> Any:
        """Ready to search: the model is loaded and every collection is open with its vector index."""
        ready = state.ready.is_set() and state.warmup_error is None
        body = m.Readiness(
            ready=ready, model_loaded=ready, collections_open=ready,
            detail=state.warmup_error or ("ready" if ready else "loading the model and vector indexes"),
        )
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/collections", response_model=m.CollectionList, tags=["collections"])
    def list_collections() -> m.CollectionList:
        """Every collection this server serves, with what it holds."""
        return m.CollectionList(
            default=state.default, collections=[collection_info(state, name) for name in state.collections]
        )


def mount_page(app: FastAPI) -> None:
    """The search page at / and its static files."""
    static = resources.files("semsearch.server") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")


def add_middleware(app: FastAPI, state: ServerState, cors_origins: Sequence[str]) -> None:
    """Starlette wraps the last added outermost: CORS, headers, key gate, body limit, then the app."""
    app.add_middleware(BodySizeLimit, max_bytes=state.limits.max_body_bytes)
    app.add_middleware(ApiKeyGate, api_key=state.api_key, public_reads=state.public_reads)
    app.add_middleware(SecurityHeaders, extra={INSTANCE_HEADER: state.instance})
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"], allow_credentials=False, max_age=600,
        )


_DESCRIPTION = """\
Search collections of documents by meaning. Results always come as one list of hits per
query; scores are similarities (higher is better).

Limits: bodies up to {max_body_bytes} bytes, {max_documents} documents per add/upsert,
{max_queries} queries per search, k up to {max_k}, {max_ids} ids per get/delete,
queries up to {max_query_chars} characters. Errors are `{{"error": {{"type", "message"}}}}`.
"""


def _version() -> str:
    from ..version import __version__

    return __version__
