"""Commands that answer questions: ask (for people) and mcp (for agents)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

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
    _open,
    _run,
    app,
    default_collection,
    err,
    out,
)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in your own words.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--k",
                                   help="Passages to retrieve (best first, within --context-tokens).")] = 5,
    collection: CollectionOpt = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: answer, answered, citations, hits, model."),
    ] = False,
    llm_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    llm_timeout: LlmTimeoutOpt = 120.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens",
                                            help="Longest answer to ask the model for (tokens).")] = 512,
    context_tokens: Annotated[int, typer.Option("--context-tokens",
                                                help="Tokens of passages the prompt carries.")] = 1200,
    min_relevance: Annotated[
        float | None,
        typer.Option("--min-relevance", help="Passages less relevant than this are left out; with none left, no answer "
                                             "(default: the model's measured cut).", show_default=False),
    ] = None,
    sentences: Annotated[int, typer.Option("--sentences", help="Sentences in an extractive answer.")] = 3,
    where: WhereOpt = None,
    where_document: WhereDocumentOpt = None,
    mode: Annotated[str, typer.Option("--mode", help="Retrieval: hybrid, dense or lexical.")] = "hybrid",
    rerank: Annotated[str | None,
                      typer.Option("--rerank", help="Rerank with this CrossEncoder (name or path).")] = None,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Answer a question from your documents, citing them as [1], [2] ...

    Offline by default: the sentences of the best passages that answer the question. With --llm-url, a language model writes the answer from the passages, streamed as it comes; citations of sources it was not given are removed. When nothing relevant is found it says so and asks no model.
    """  # noqa: E501 - typer prints a help docstring's line breaks as they are: one paragraph, one line

    def go() -> None:
        from ..answer import ChatSettings, Done, Token, stream_ask
        from ..answer.refusal import DENSE_COSINE_THRESHOLD

        llm = None
        if llm_url:
            llm = ChatSettings(llm_url, model=llm_model, timeout=llm_timeout, max_tokens=max_tokens)
        options: dict[str, Any] = {
            "k": k, "llm": llm, "context_tokens": context_tokens, "max_sentences": sentences, "where": where,
            "where_document": where_document, "mode": mode, "rerank": rerank,
            "min_relevance": DENSE_COSINE_THRESHOLD if min_relevance is None else min_relevance,
        }
        with _open(collection, create=False, backend=backend, uri=uri, token=token) as col:
            answer = None
            streamed = False
            for event in stream_ask(col, question, **options):
                if isinstance(event, Token) and not as_json:
                    sys.stdout.write(event.text)  # as it arrives, flushed: the answer streams to the terminal
                    sys.stdout.flush()
                    streamed = True
                elif isinstance(event, Done):
                    answer = event.answer
        assert answer is not None
        if as_json:
            sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2) + "\n")
            return
        if streamed:
            sys.stdout.write("\n")
        _print_sources(answer)

    _run(go)


def _print_sources(answer) -> None:
    if not answer.answered and not answer.passages:
        return
    cited = {c.n for c in answer.citations}
    out.print()
    for p in answer.passages:
        if p.n not in cited:
            continue
        where = p.source if p.source and p.source != p.id else ""
        out.print(f"[bold][{p.n}][/] {p.id}" + (f"  [dim]{where}[/]" if where else ""), highlight=False, soft_wrap=True)
    if answer.removed_citations:
        numbers = ", ".join(str(n) for n in answer.removed_citations)
        err.print(f"[yellow]note:[/] removed citations of sources the model was not given: {numbers}", highlight=False)
    if answer.answered and not answer.grounded:
        err.print("[yellow]note:[/] the answer cites none of the sources; check it against them", highlight=False)


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

    _run(go)
