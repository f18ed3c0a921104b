"""The routes of one collection: info, search, get, add, upsert, delete.

Mounted twice: under ``/collections/{name}`` and, for the default collection, at the top level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends

from ..collection import Collection
from ..options import MODES, over_limit
from ..types import Document
from . import models as m
from .discovery import INSTANCE_HEADER
from .error_responses import ApiError
from .search_options import SEARCH_OPTIONS, search_keywords
from .searching import answer_search
from .state import ServerState


# The resolvers are async (a dict lookup): FastAPI would run a plain def in its thread pool.
def by_name(state: ServerState) -> Callable[..., Any]:
    async def resolve(name: str) -> tuple[str, Collection]:
        return name, state.collection(name)

    return resolve


def default_collection(state: ServerState) -> Callable[..., Any]:
    async def resolve() -> tuple[str, Collection]:
        return state.default, state.collection(state.default)

    return resolve


def collection_routes(
    router: APIRouter, state: ServerState, resolve: Callable[..., tuple[str, Collection]], suffix: str
) -> None:
    limits = state.limits
    Target = Depends(resolve)

    def info(target: tuple[str, Collection] = Target) -> m.CollectionInfo:
        """What the collection holds, how it was built, and which search options it takes."""
        return collection_info(state, target[0])

    async def search(body: m.SearchRequest, target: tuple[str, Collection] = Target) -> Any:
        """The k documents most similar in meaning to each query."""
        name = target[0]
        queries = body.query_list()
        check_search_limits(body, queries, limits)
        options = {option: getattr(body, option) for option in SEARCH_OPTIONS}
        default_reranker = state.rerankers[0] if state.rerankers else None
        kwargs = search_keywords(options, state.rerankers, default_reranker=default_reranker)
        # Queued for a worker that encodes it with concurrent requests' queries (server/batching.py).
        return await answer_search(state.batcher, target[1], name, queries, body.k, kwargs,
                                   headers={INSTANCE_HEADER: state.instance})

    def write(body: m.DocumentsRequest, target: tuple[str, Collection], replace: bool) -> m.WriteResponse:
        name, col = target
        if len(body.documents) > limits.max_documents:
            raise ApiError(
                413, "batch_too_large",
                f"{len(body.documents)} documents in one request; this server takes at most "
                f"{limits.max_documents} (split the batch)",
            )
        if body.embeddings is not None and len({len(v) for v in body.embeddings}) > 1:
            raise ApiError(422, "invalid_input", "embeddings have different lengths; "
                           "give one vector of the collection's dimension per document")
        if not replace:
            ids = col.add(body.documents, ids=body.ids, metadatas=body.metadatas, embeddings=body.embeddings,
                          sources=body.sources)
        elif body.ids is None:  # UpsertRequest requires ids; this is the same 422 Collection.upsert would give
            raise ApiError(422, "invalid_input", "upsert needs ids: they say which documents to replace")
        else:
            ids = col.upsert(body.documents, ids=body.ids, metadatas=body.metadatas, embeddings=body.embeddings,
                             sources=body.sources)
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


def check_search_limits(body: m.SearchRequest, queries: list[str], limits: Any) -> None:
    """Refuse a search over this server's caps (queries per request, k, query length, candidates).

    Raises:
        ApiError: 413 for too many queries; InvalidInputError (422) for the others.
    """
    if len(queries) > limits.max_queries:
        raise ApiError(413, "batch_too_large",
                       f"{len(queries)} queries in one request; this server takes at most {limits.max_queries}")
    if body.k > limits.max_k:
        raise over_limit("k", body.k, limits.max_k, "this server returns")
    for i, q in enumerate(queries):
        if len(q) > limits.max_query_chars:
            raise ApiError(422, "invalid_input", f"query {i} has {len(q)} characters; at most {limits.max_query_chars}")
    for option in ("candidates", "rerank_top"):
        if (value := getattr(body, option)) is not None and value > limits.max_candidates:
            raise over_limit(option, value, limits.max_candidates, "this server reads")


def collection_info(state: ServerState, name: str) -> m.CollectionInfo:
    col = state.collection(name)
    data = col.info()  # its "path" stays on the server: no need to tell clients where files live
    return m.CollectionInfo(
        name=name, default=name == state.default, documents=data["documents"], chunks=data["chunks"],
        model=data["model"], dimension=data["dimension"], index=data["index"], chunk_size=data["chunk_size"],
        chunk_overlap=data["chunk_overlap"], size_bytes=data.get("size_bytes"),
        search_options=list(SEARCH_OPTIONS), modes=list(MODES), store_damaged="store_damaged" in data,
    )
