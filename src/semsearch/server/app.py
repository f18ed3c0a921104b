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

import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Union

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..collection import Collection
from ..errors import InvalidInputError
from ..types import Document
from . import models as m
from .asking import mount_ask
from .exploring import explore_routes
from .batching import QueryEncoder, SearchBatcher
from .discovery import INSTANCE_HEADER
from .error_responses import ApiError, install_error_handlers
from .search_options import MODES, SEARCH_OPTIONS, search_keywords
from .searching import answer_search
from .security import ApiKeyGate, BodySizeLimit, Limits, SecurityHeaders, check_api_key

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CollectionSource = Union[Collection, str, "os.PathLike[str]"]


@dataclass
class ServerState:
    """What the app serves and how; one per app, shared by every request thread."""

    collections: dict[str, Collection]
    default: str
    limits: Limits
    api_key: str | None
    public_reads: bool
    rerankers: list[str]
    owned: list[Collection] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    warmup_error: str | None = None
    batcher: SearchBatcher = field(default_factory=SearchBatcher)
    encoders: dict[str, QueryEncoder] = field(default_factory=dict)
    #: A random id per app, sent with every search answer (the CLI checks it: server/discovery.py).
    instance: str = field(default_factory=lambda: secrets.token_hex(16))

    def collection(self, name: str) -> Collection:
        col = self.collections.get(name)
        if col is None:
            raise ApiError(404, "collection_not_found", f"no collection named {name!r}; GET /collections lists them")
        return col


def open_collections(
    collections: Mapping[str, CollectionSource] | Sequence[CollectionSource] | CollectionSource,
) -> tuple[dict[str, Collection], list[Collection]]:
    """Name and open what to serve; returns (collections by name, the ones opened here).

    A mapping keeps its names; otherwise a collection is named after its folder (with -2, -3
    appended on clashes). Paths must hold an existing collection: the server never creates one.

    Raises:
        InvalidInputError: a name that is not [A-Za-z0-9._-] (up to 64 characters), or nothing to serve.
        NotACollectionError: a path that is not a collection.
    """
    if isinstance(collections, (Collection, str, os.PathLike)):
        collections = [collections]
    pairs: list[tuple[str | None, CollectionSource]] = (
        list(collections.items()) if isinstance(collections, Mapping) else [(None, c) for c in collections]
    )
    if not pairs:
        raise InvalidInputError("no collections to serve; give at least one collection folder")
    opened: dict[str, Collection] = {}
    owned: list[Collection] = []
    try:
        for name, source in pairs:
            # An already-open collection (local or Milvus: same interface) is served as it is.
            opened_here = isinstance(source, (str, os.PathLike))
            col = Collection(source, create=False) if opened_here else source
            if opened_here:
                owned.append(col)
            base = name or col.name
            if not NAME_PATTERN.match(base):
                if name is not None:
                    raise InvalidInputError(f"collection name {name!r} must be 1-64 of A-Z a-z 0-9 . _ - (not starting with . _ -)")
                base = re.sub(r"[^A-Za-z0-9._-]", "-", base).lstrip("._-")[:64] or "collection"
            unique, n = base, 2
            while unique in opened:
                if name is not None:
                    raise InvalidInputError(f"collection name {name!r} is given twice")
                unique, n = f"{base}-{n}", n + 1
            opened[unique] = col
    except BaseException:
        for col in owned:
            col.close()
        raise
    return opened, owned


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
        encoders={name: QueryEncoder(col) for name, col in opened.items()},
    )

    watcher = None
    if watch:
        from ..ingest.watch import FolderWatcher

        try:
            watcher = FolderWatcher(opened[default_name], list(watch), initial_sync=True)
        except BaseException:
            for col in owned:
                col.close()
            raise

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        if warm_up:
            threading.Thread(target=_warm_up, args=(state,), name="semsearch-warm-up", daemon=True).start()
        else:
            state.ready.set()
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()  # after the batch being applied: what was applied is committed
            state.batcher.close()
            for col in state.owned:
                col.close()

    app = FastAPI(
        title="semsearch",
        summary="Semantic search over your documents.",
        description=_DESCRIPTION.format(**vars(state.limits)),
        version=_version(),
        lifespan=lifespan,
        responses={
            401: {"model": m.ErrorResponse, "description": "Missing or wrong API key"},
            413: {"model": m.ErrorResponse, "description": "Body or batch over the server's limits"},
            422: {"model": m.ErrorResponse, "description": "Invalid request"},
        },
    )
    app.state.semsearch = state
    install_error_handlers(app)

    # Authentication is ApiKeyGate (middleware below), so it runs before any body is read or parsed.
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
            default=state.default, collections=[_info(state, name) for name in state.collections]
        )

    for prefix, resolve, suffix in (
        ("/collections/{name}", _by_name(state), ""),
        ("", _default_collection(state), "_default"),
    ):
        router = APIRouter(prefix=prefix, tags=["collections" if suffix == "" else "default collection"])
        _collection_routes(router, state, resolve, suffix)
        explore_routes(router, state, resolve, suffix)  # /similar, /duplicates, /topics
        app.include_router(router)
    mount_ask(app, state, llm)

    static = resources.files("semsearch.server") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    # Starlette wraps the last added outermost: CORS, headers, key gate, body limit, then the app.
    app.add_middleware(BodySizeLimit, max_bytes=state.limits.max_body_bytes)
    app.add_middleware(ApiKeyGate, api_key=api_key, public_reads=public_reads)
    app.add_middleware(SecurityHeaders)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"], allow_credentials=False, max_age=600,
        )
    return app


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


# The resolvers are async (a dict lookup): FastAPI would run a plain def in its thread pool.
def _by_name(state: ServerState) -> Callable[..., Any]:
    async def resolve(name: str) -> tuple[str, Collection]:
        return name, state.collection(name)

    return resolve


def _default_collection(state: ServerState) -> Callable[..., Any]:
    async def resolve() -> tuple[str, Collection]:
        return state.default, state.collection(state.default)

    return resolve


def _collection_routes(
    router: APIRouter, state: ServerState, resolve: Callable[..., tuple[str, Collection]], suffix: str
) -> None:
    limits = state.limits
    Target = Depends(resolve)

    def info(target: tuple[str, Collection] = Target) -> m.CollectionInfo:
        """What the collection holds, how it was built, and which search options it takes."""
        return _info(state, target[0])

    async def search(body: m.SearchRequest, target: tuple[str, Collection] = Target) -> Any:
        """The k documents most similar in meaning to each query."""
        name = target[0]
        queries = body.query_list()
        if len(queries) > limits.max_queries:
            raise ApiError(413, "batch_too_large", f"{len(queries)} queries in one request; this server takes at most {limits.max_queries}")
        if body.k > limits.max_k:
            raise ApiError(422, "invalid_input", f"k is {body.k}; this server returns at most {limits.max_k} hits per query")
        for i, q in enumerate(queries):
            if len(q) > limits.max_query_chars:
                raise ApiError(422, "invalid_input", f"query {i} has {len(q)} characters; at most {limits.max_query_chars}")
        for option in ("candidates", "rerank_top"):
            if (value := getattr(body, option)) is not None and value > limits.max_candidates:
                raise ApiError(422, "invalid_input", f"{option} is {value}; this server reads at most {limits.max_candidates}")
        options = {option: getattr(body, option) for option in SEARCH_OPTIONS}
        kwargs = search_keywords(options, state.rerankers, default_reranker=state.rerankers[0] if state.rerankers else None)
        # Queued for a worker that encodes it with concurrent requests' queries (server/batching.py).
        return await answer_search(state.batcher, state.encoders[name], name, queries, body.k, kwargs,
                                   headers={INSTANCE_HEADER: state.instance})

    def write(body: m.DocumentsRequest, target: tuple[str, Collection], replace: bool) -> m.WriteResponse:
        name, col = target
        if len(body.documents) > limits.max_documents:
            raise ApiError(
                413, "batch_too_large",
                f"{len(body.documents)} documents in one request; this server takes at most {limits.max_documents} (split the batch)",
            )
        if body.embeddings is not None and len({len(v) for v in body.embeddings}) > 1:
            raise ApiError(422, "invalid_input", "embeddings have different lengths; give one vector of the collection's dimension per document")
        method = col.upsert if replace else col.add
        ids = method(body.documents, ids=body.ids, metadatas=body.metadatas, embeddings=body.embeddings, sources=body.sources)
        return m.WriteResponse(collection=name, ids=ids, count=len(ids))

    def add(body: m.DocumentsRequest, target: tuple[str, Collection] = Target) -> m.WriteResponse:
        """Add new documents (409 if an id exists: use upsert to replace). Durable when it answers."""
        return write(body, target, replace=False)

    def upsert(body: m.UpsertRequest, target: tuple[str, Collection] = Target) -> m.WriteResponse:
        """Add documents, replacing those that already have these ids."""
        return write(body, target, replace=True)

    def delete(body: m.DeleteRequest, target: tuple[str, Collection] = Target) -> m.DeleteResponse:
        """Delete documents by id (unknown ids are ignored) or by metadata filter; says how many existed."""
        name, col = target
        if body.ids is not None and len(body.ids) > limits.max_ids:
            raise ApiError(413, "batch_too_large", f"{len(body.ids)} ids in one request; at most {limits.max_ids}")
        deleted = col.delete(body.ids, where=body.where)
        return m.DeleteResponse(collection=name, deleted=int(deleted))

    def get(body: m.GetRequest, target: tuple[str, Collection] = Target) -> m.GetResponse:
        """Documents by id (in the order asked; unknown ids left out) or by metadata filter."""
        name, col = target
        if body.ids is not None and len(body.ids) > limits.max_ids:
            raise ApiError(413, "batch_too_large", f"{len(body.ids)} ids in one request; at most {limits.max_ids}")
        limit = min(body.limit or limits.max_ids, limits.max_ids)
        docs: list[Document] = col.get(body.ids, where=body.where, limit=limit)
        return m.GetResponse(collection=name, documents=[m.DocumentOut(**d.to_dict()) for d in docs])

    router.add_api_route("" if router.prefix else "/info", info, methods=["GET"], response_model=m.CollectionInfo,
                         name=f"info{suffix}", operation_id=f"info{suffix}")
    # Writes are exactly the paths ending in security.WRITE_ACTIONS (the key gate relies on it).
    for path, endpoint, model in (
        ("/search", search, m.SearchResponse),
        ("/get", get, m.GetResponse),
        ("/add", add, m.WriteResponse),
        ("/upsert", upsert, m.WriteResponse),
        ("/delete", delete, m.DeleteResponse),
    ):
        op = f"{endpoint.__name__}{suffix}"
        router.add_api_route(path, endpoint, methods=["POST"], response_model=model, name=op, operation_id=op)


def _info(state: ServerState, name: str) -> m.CollectionInfo:
    col = state.collection(name)
    data = col.info()  # its "path" stays on the server: no need to tell clients where files live
    return m.CollectionInfo(
        name=name, default=name == state.default, documents=data["documents"], chunks=data["chunks"],
        model=data["model"], dimension=data["dimension"], index=data["index"], chunk_size=data["chunk_size"],
        chunk_overlap=data["chunk_overlap"], size_bytes=data.get("size_bytes"),
        search_options=list(SEARCH_OPTIONS), modes=list(MODES),
    )


def _warm_up(state: ServerState) -> None:
    """Load each model once, each vector index and in-memory BM25, so the first search is as fast as the rest."""
    try:
        for col in state.collections.values():
            col.warm_up()
    except Exception as exc:  # shown by /readyz; searches will report it too
        log.exception("warm-up failed")
        state.warmup_error = f"warm-up failed: {exc}"
    finally:
        state.ready.set()
