"""semsearch serve: the HTTP API and search page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    BackendOpt,
    LlmModelOpt,
    LlmTimeoutOpt,
    LlmUrlOpt,
    TokenOpt,
    UriOpt,
    app,
    default_collection,
    fail,
    open_collection,
    out,
    run_command,
)


# long: a command's signature declares each of its options; the body is short
@app.command()
def serve(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Collection folders to serve (default: the default collection). The first is the default at /search.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on. Anything but loopback needs --api-key.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="SEMSEARCH_API_KEY",
            help="Bearer token every request must carry (all but /, /healthz, /readyz, /docs). "
            "Prefer $SEMSEARCH_API_KEY: a command line is visible to other users.",
            show_default=False,
        ),
    ] = None,
    public_reads: Annotated[
        bool,
        typer.Option(
            "--public-reads",
            help="With --api-key: let search, get and info through without the key (writes still need it).",
        ),
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="An origin allowed to call the API from a browser (repeatable). Default: CORS off.",
            show_default=False,
        ),
    ] = None,
    reranker: Annotated[
        list[str] | None,
        typer.Option(
            "--reranker",
            help="A cross-encoder model requests may ask to rerank with (repeatable; the first is rerank=true).",
            show_default=False,
        ),
    ] = None,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body accepted, in MB.")] = 8.0,
    max_documents: Annotated[
        int, typer.Option("--max-documents", help="Most documents per add/upsert request.")
    ] = 1000,
    max_k: Annotated[int, typer.Option("--max-k", help="Most hits per query.")] = 100,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
    torch_threads: Annotated[
        int,
        typer.Option(
            "--torch-threads", help="Threads one request's encoding may use; concurrency comes from parallel requests."
        ),
    ] = 1,
    watch: Annotated[
        list[Path] | None,
        typer.Option(
            "--watch",
            help="Keep the default (first) collection in sync with this folder or file while serving (repeatable): "
            "new, changed and deleted files are searchable within seconds.",
            show_default=False,
        ),
    ] = None,
    llm_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    llm_timeout: LlmTimeoutOpt = 120.0,
) -> None:
    """Serve collections over HTTP: a JSON API (docs at /docs) and a search page at /."""

    def go() -> None:
        from ..server.cli_serve import serve_collections
        from ..server.security import check_bind

        check_bind(host, api_key or None)  # before anything else: refuse an unsafe bind first
        folders = list(paths or [default_collection()])
        if backend == "local":
            for folder in folders:
                if not (folder / "collection.sqlite3").exists():
                    fail(f"no collection at {folder}; index documents first: semsearch index PATH -c {folder}")
            sources: list = folders
        else:  # the same API over Milvus collections, opened here with the same options as the CLI's
            sources = [open_collection(folder, create=False, backend=backend, uri=uri, token=token)
                       for folder in folders]
        llm = None
        if llm_url:
            from ..answer import ChatSettings

            llm = ChatSettings(llm_url, model=llm_model, timeout=llm_timeout)
        serve_collections(
            sources, llm=llm, host=host, port=port, api_key=api_key or None, public_reads=public_reads,
            cors_origins=cors_origin or [], rerankers=reranker or [], max_body_bytes=int(max_body_mb * 1024 * 1024),
            max_documents=max_documents, max_k=max_k, torch_threads=torch_threads,
            announce=lambda text: out.print(text, highlight=False, soft_wrap=True),
            watch=watch or [],
        )

    run_command(go)
