"""``POST /ask`` and ``/collections/{name}/ask``: cited answers, as JSON or streamed (Server-Sent Events).

The server answers extractively (offline) unless it was started with a language model
(``--llm-url``); a request can ask for the extractive answer with ``"llm": false``. With
``"stream": true`` (or ``Accept: text/event-stream``) the answer comes as events:

- ``hits``: ``{"hits": [...]}``, the numbered passages' hits (``[n]`` cites ``hits[n-1]``);
  sent again, replacing the first, if the model's context window forced fewer passages;
- ``token``: ``{"text": "..."}``, the next piece of the answer (citations already checked);
- ``answer``: the complete answer, as the JSON response would be (``Answer.to_dict()``: the one
  serialisation ``semsearch ask --json`` and the MCP ``ask`` tool return too);
- ``error``: ``{"error": {"type", "message"}}`` if the model fails after the stream began.

Bad input is refused before any event (422, as every endpoint); authentication is the
other endpoints' (asking is a read).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..answer import ChatClient, ChatSettings, Done, Retrieved, Token
from ..answer.schema import AnswerData
from ..errors import ContextOverflowError, InvalidInputError, LLMError, LLMTimeoutError, LLMUnavailableError
from ..options import ASK, over_limit
from . import models as m
from .discovery import INSTANCE_HEADER
from .search_options import search_keywords

log = logging.getLogger(__name__)


class AskRequest(m.Request):
    """A question to answer from a collection's documents."""

    # Not NonEmptyText: an empty question gets the collection's message, the one every door gives.
    question: m.Text = Field(..., description="The question, in your own words.")
    k: int = m.option_field(ASK["k"])
    where: m.Metadata | None = m.option_field(ASK["where"])
    mode: str | None = m.option_field(ASK["mode"])
    rerank: bool | m.Text | None = m.option_field(ASK["rerank"])
    where_document: m.Metadata | None = m.option_field(ASK["where_document"])
    llm: bool | None = Field(
        None,
        description="false: the extractive answer even when the server has a language model (default: it, if any).",
    )
    context_tokens: int = m.option_field(ASK["context_tokens"])
    max_sentences: int = m.option_field(ASK["max_sentences"])
    min_relevance: float = m.option_field(ASK["min_relevance"])
    stream: bool = Field(False, description="Answer as Server-Sent Events (hits, token..., answer).")


class AskResponse(AnswerData):
    """``Answer.to_dict()``, with the collection's name and the time taken."""

    collection: str
    hits: list[m.HitOut]  # type: ignore[assignment]  # the same dicts, with the search endpoint's schema
    took_ms: float


class AskOptions(BaseModel):
    llm: bool = Field(description="The server answers with a language model (else extractively).")
    model: str | None


_LLM_ERRORS: list[tuple[type[LLMError], int, str]] = [
    (LLMUnavailableError, 502, "llm_unavailable"),
    (LLMTimeoutError, 504, "llm_timeout"),
    (ContextOverflowError, 502, "context_overflow"),
    (LLMError, 502, "llm_error"),
]


def mount_ask(app: FastAPI, state: Any, llm: ChatSettings | None = None) -> None:
    """Add the ask endpoints to ``app`` (``state`` is its ServerState; ``llm`` its language model, if any)."""
    client = ChatClient(llm) if llm is not None else None
    limits = state.limits

    def answer(name: str, body: AskRequest, request: Request, response: Response) -> Any:
        # The instance id lets `semsearch ask` trust that its announced server answered (discovery.py).
        response.headers[INSTANCE_HEADER] = state.instance
        col = state.collection(name)
        if len(body.question) > limits.max_query_chars:
            raise InvalidInputError(
                f"the question has {len(body.question)} characters; at most {limits.max_query_chars}"
            )
        if body.k > limits.max_k:
            raise over_limit("k", body.k, limits.max_k, "this server retrieves")
        options = {"where": body.where, "where_document": body.where_document, "mode": body.mode,
                   "rerank": body.rerank}
        default_reranker = state.rerankers[0] if state.rerankers else None
        kwargs = search_keywords(options, state.rerankers, default_reranker=default_reranker)
        use = client if body.llm is not False else None
        started = time.perf_counter()
        events = col.stream_ask(body.question, k=body.k, llm=use, context_tokens=body.context_tokens,
                            max_sentences=body.max_sentences, min_relevance=body.min_relevance, **kwargs)
        try:
            first = next(events)  # retrieval and input checks happen here: errors get a plain JSON status
        except LLMError as exc:
            return _llm_error(exc)
        wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
        if wants_stream:
            return StreamingResponse(_sse(name, first, events, started), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                              INSTANCE_HEADER: state.instance})
        try:
            for event in events:
                if isinstance(event, Done):
                    return _response(name, event.answer, started)
        except LLMError as exc:
            return _llm_error(exc)
        raise AssertionError("stream_ask ended without an answer")

    def ask_named(name: str, body: AskRequest, request: Request, response: Response) -> Any:
        """Answer a question from this collection's documents, citing them as [n] (streamed with "stream": true)."""
        return answer(name, body, request, response)

    def ask_default(body: AskRequest, request: Request, response: Response) -> Any:
        """Answer a question from the default collection's documents, citing them as [n]."""
        return answer(state.default, body, request, response)

    def options() -> AskOptions:
        """Whether this server answers with a language model, and which."""
        return AskOptions(llm=client is not None, model=llm.model if llm is not None else None)

    responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/event-stream": {}}, "description": "The answer (JSON, or events when streamed)"},
        502: {"model": m.ErrorResponse, "description": "The language model failed or is unreachable"},
        504: {"model": m.ErrorResponse, "description": "The language model timed out"},
    }
    router = APIRouter(tags=["ask"])
    router.add_api_route("/collections/{name}/ask", ask_named, methods=["POST"], response_model=AskResponse,
                         responses=responses, name="ask", operation_id="ask")
    router.add_api_route("/ask", ask_default, methods=["POST"], response_model=AskResponse, responses=responses,
                         name="ask_default", operation_id="ask_default")
    router.add_api_route("/ask/options", options, methods=["GET"], response_model=AskOptions, name="ask_options",
                         operation_id="ask_options")
    app.include_router(router)
    # The client's connection pool lives as long as the app (httpx closes it when collected).


def _response(name: str, answer: Any, started: float) -> AskResponse:
    return AskResponse(**answer.to_dict(), collection=name, took_ms=round((time.perf_counter() - started) * 1000, 3))


def _error_body(exc: LLMError) -> tuple[int, dict[str, Any]]:
    for cls, status, kind in _LLM_ERRORS:
        if isinstance(exc, cls):
            return status, {"error": {"type": kind, "message": str(exc)}}
    raise AssertionError(exc)


def _llm_error(exc: LLMError) -> JSONResponse:
    status, body = _error_body(exc)
    log.warning("ask: %s", exc)
    return JSONResponse(body, status_code=status)


def _event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sse(name: str, first: Any, events: Iterator[Any], started: float) -> Iterator[str]:
    # A plain (sync) generator: Starlette runs it in its thread pool, next to the model calls it waits on.
    def render(event: Any) -> str | None:
        if isinstance(event, Retrieved):
            return _event("hits", {"hits": [m.HitOut(**h.to_dict()).model_dump() for h in event.hits]})
        if isinstance(event, Token):
            return _event("token", {"text": event.text})
        if isinstance(event, Done):
            return _event("answer", _response(name, event.answer, started).model_dump())
        return None

    try:
        shown = render(first)
        if shown:
            yield shown
        for event in events:
            shown = render(event)
            if shown:
                yield shown
    except LLMError as exc:
        log.warning("ask (streaming): %s", exc)
        yield _event("error", _error_body(exc)[1])
    except Exception:  # the status line is sent: the client learns of the failure from an event
        log.exception("ask (streaming) failed")
        message = "the server failed while answering; see its log"
        yield _event("error", {"error": {"type": "internal_error", "message": message}})
