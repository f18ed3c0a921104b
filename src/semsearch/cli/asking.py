"""Commands that answer questions: ask (for people) and mcp (for agents)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..options import ASK
from .common import (
    BackendOpt,
    CollectionOpt,
    LlmModelOpt,
    LlmTimeoutOpt,
    LlmUrlOpt,
    TokenOpt,
    UriOpt,
    WhereDocumentOpt,
    WhereOpt,
    app,
    default_collection,
    err,
    open_collection,
    out,
    run_command,
)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in your own words.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--k", help=ASK["k"].help)] = ASK["k"].default,
    collection: CollectionOpt = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the answer as one JSON object, the same as HTTP /ask and MCP ask return: "
                                    "answer, answered, grounded, warning, citations (each with the passage given "
                                    "and its span in the document), removed_citations, hits, model."),
    ] = False,
    llm_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    llm_timeout: LlmTimeoutOpt = 120.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens",
                                            help="Longest answer to ask the model for (tokens).")] = 512,
    context_tokens: Annotated[int, typer.Option("--context-tokens", help=ASK["context_tokens"].help)
                              ] = ASK["context_tokens"].default,
    min_relevance: Annotated[float, typer.Option("--min-relevance", help=ASK["min_relevance"].help)
                             ] = ASK["min_relevance"].default,
    max_sentences: Annotated[int, typer.Option("--max-sentences", "--sentences", help=ASK["max_sentences"].help)
                             ] = ASK["max_sentences"].default,
    where: WhereOpt = None,
    where_document: WhereDocumentOpt = None,
    mode: Annotated[str | None, typer.Option("--mode", help=ASK["mode"].help, show_default=False)] = None,
    rerank: Annotated[str | None, typer.Option("--rerank", help=ASK["rerank"].help)] = None,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
    server: Annotated[str, typer.Option(
        "--server", envvar="SEMSEARCH_SERVER",
        help="auto: let the `semsearch serve` running on this collection answer if there is one (the same answer, "
             "without loading anything here), else answer here; off: always here; or the loopback URL of a server. "
             "A --llm-url answer is always made here. Also $SEMSEARCH_SERVER.",
    )] = "auto",
) -> None:
    """Answer a question from your documents, citing them as [1], [2] ...

    Offline by default: the sentences of the best passages that answer the question, quoted exactly. With --llm-url, a language model writes the answer from the passages, streamed as it comes; citations of sources it was not given are removed, and an answer citing none is flagged. When nothing relevant is found it says so and asks no model.
    """  # noqa: E501 - typer prints a help docstring's line breaks as they are: one paragraph, one line

    def go() -> None:
        data = None
        if llm_url is None and (backend == "local" or server != "auto"):
            from .remote import ask_through_server

            data = ask_through_server(server, collection or default_collection(), {
                "question": question, "k": k, "llm": False, "context_tokens": context_tokens,
                "max_sentences": max_sentences, "min_relevance": min_relevance, "where": where,
                "where_document": where_document, "mode": mode, "rerank": rerank,
            })
            if data is not None and not as_json:
                sys.stdout.write(data["answer"] + "\n")
        if data is None:
            data = _answer_here(question, as_json=as_json, collection=collection, backend=backend, uri=uri,
                                token=token, llm=(llm_url, llm_model, llm_timeout, max_tokens), options={
                                    "k": k, "context_tokens": context_tokens, "max_sentences": max_sentences,
                                    "where": where, "where_document": where_document, "mode": mode,
                                    "rerank": rerank, "min_relevance": min_relevance})
        if as_json:
            sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
            return
        _print_sources(data)

    run_command(go)


def _answer_here(question: str, *, as_json: bool, collection: Path | None, backend: str, uri: str | None,
                 token: str | None, llm: tuple[str | None, str | None, float, int],
                 options: dict[str, Any]) -> dict[str, Any]:
    """Answer in this process (the text streamed to stdout unless ``as_json``); returns ``Answer.to_dict()``."""
    from ..answer import ChatSettings, Done, Token

    url, model, timeout, max_tokens = llm
    settings = ChatSettings(url, model=model, timeout=timeout, max_tokens=max_tokens) if url else None
    with open_collection(collection, create=False, backend=backend, uri=uri, token=token) as col:
        answer = None
        streamed = False
        for event in col.stream_ask(question, llm=settings, **options):
            if isinstance(event, Token) and not as_json:
                sys.stdout.write(event.text)  # as it arrives, flushed: the answer streams to the terminal
                sys.stdout.flush()
                streamed = True
            elif isinstance(event, Done):
                answer = event.answer
    assert answer is not None
    if streamed:
        sys.stdout.write("\n")
    return answer.to_dict()


def _print_sources(data: dict[str, Any]) -> None:
    if not data["citations"] and not data["removed_citations"] and not data["warning"]:
        return
    out.print()
    for c in data["citations"]:
        where = c.get("source") if c.get("source") and c.get("source") != c["id"] else ""
        out.print(f"[bold][{c['n']}][/] {c['id']}" + (f"  [dim]{where}[/]" if where else ""), highlight=False,
                  soft_wrap=True)
    if data["removed_citations"]:
        numbers = ", ".join(str(n) for n in data["removed_citations"])
        err.print(f"[yellow]note:[/] removed citations of sources the model was not given: {numbers}", highlight=False)
    if data["warning"]:
        err.print(f"[yellow]warning:[/] {data['warning']}; check it against the sources", highlight=False)


@app.command()
def mcp(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Collection folders to serve (default: the default collection). The first is the default.",
                       show_default=False),
    ] = None,
    allow_writes: Annotated[
        bool,
        typer.Option("--allow-writes", help="Also offer tools that add and delete documents (off: read-only)."),
    ] = False,
    llm_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    llm_timeout: LlmTimeoutOpt = 120.0,
) -> None:
    """Serve collections to LLM agents over the Model Context Protocol (stdio).

    Tools: search (with filters), get documents by id, ask (cited answers), list collections; add and delete only with --allow-writes. Configure your agent to run `semsearch mcp PATH`.
    """  # noqa: E501 - typer prints a help docstring's line breaks as they are: one paragraph, one line

    def go() -> None:
        from ..mcp_server import run_stdio

        folders = list(paths or [default_collection()])
        run_stdio(folders, allow_writes=allow_writes, llm_url=llm_url, llm_model=llm_model, llm_timeout=llm_timeout)

    run_command(go)
