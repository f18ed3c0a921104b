"""semsearch reindex: change a collection's vector index, or re-encode it with another model or dimension."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from .common import (
    INDEX_HELP,
    BackendOpt,
    CollectionOpt,
    EngineOpt,
    LockTimeoutOpt,
    PrecisionOpt,
    TokenOpt,
    UriOpt,
    app,
    err,
    fail,
    open_collection,
    out,
    run_command,
)
from .documents import index_summary


# long: a command's signature declares each of its options; the body is short
@app.command()
def reindex(
    index_spec: Annotated[str | None, typer.Option("--index", help=INDEX_HELP, show_default=False)] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Re-encode every chunk with this sentence-transformers model (name or folder, e.g. one made by "
                 "`semsearch finetune`). The old vectors serve searches until the new set is complete; an interrupted "
                 "run resumes.",
            show_default=False,
        ),
    ] = None,
    dimensions: Annotated[
        int | None,
        typer.Option(
            "--dimensions",
            help="Re-encode at this many dimensions (truncated and re-normalised; Matryoshka models only, unless "
                 "--force-dimensions).",
            show_default=False,
        ),
    ] = None,
    force_dimensions: Annotated[
        bool,
        typer.Option(
            "--force-dimensions",
            help="Truncate a model that was not trained for it (quality drops: measure it with `semsearch eval`).",
        ),
    ] = False,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            "--chunk-size",
            help="Cut every document again from its stored text into chunks of at most this many tokens (local "
                 "collections). Without it, documents are cut again only when the new model reads fewer tokens than "
                 "the collection's chunks hold.",
            show_default=False,
        ),
    ] = None,
    chunk_overlap: Annotated[
        int | None,
        typer.Option("--chunk-overlap", help="Tokens shared by consecutive chunks when cutting again (default: the "
                                             "collection's, in proportion to the new chunk size).", show_default=False),
    ] = None,
    batch: Annotated[
        int,
        typer.Option("--batch", help="Chunks encoded and committed per batch (what an interrupted run keeps).", min=1),
    ] = 4096,
    collection: CollectionOpt = None,
    precision: PrecisionOpt = "auto",
    engine: EngineOpt = "auto",
    progress: Annotated[bool | None, typer.Option(help="Show a progress bar (default: on a terminal).")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Progress and the result as JSON Lines: {"event": "batch", "done", "total"} per batch (chunks; '
                 'documents when re-chunking), then {"event": "finish", ...}.',
        ),
    ] = False,
    lock_timeout: LockTimeoutOpt = 60.0,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Change a collection's vector index (rebuilt from the stored vectors), or re-encode it with
    another model (--model), dimension (--dimensions) or chunking (--chunk-size) from the stored text."""

    def go() -> None:
        rechunking = chunk_size is not None or chunk_overlap is not None
        if index_spec is None and model is None and dimensions is None and not rechunking:
            fail("nothing to do; give --model NAME_OR_DIR, --dimensions N, --chunk-size N and/or --index SPEC")
        started = time.perf_counter()
        if model is None and dimensions is None and not rechunking:
            with open_collection(collection, create=False, lock_timeout=lock_timeout, index=index_spec,
                                 backend=backend, uri=uri, token=token) as col:
                col.flush()
                info = col.info()
            details = info.get("index_details") or {"type": info.get("milvus_index", {}).get("type")}
            out.print(f"index {index_spec} ({details.get('type')}) ready in {time.perf_counter() - started:.1f}s: "
                      f"{index_summary(details)}", highlight=False)
            return
        with open_collection(collection, create=False, lock_timeout=lock_timeout, precision=precision, engine=engine,
                   backend=backend, uri=uri, token=token) as col:
            before = f"{col.manifest['model']} ({col.manifest['dimension']} dimensions)"
            chunked_at, documents = int(col.manifest["chunk_size"]), col.count()
            report = _with_progress(col, as_json, progress, model=model, dimensions=dimensions,
                                    force_dimensions=force_dimensions, index=index_spec, chunk_size=chunk_size,
                                    chunk_overlap=chunk_overlap, batch_chunks=batch)
        if as_json:
            _emit("finish", **report.to_dict(), previous=before, previous_chunk_size=chunked_at)
            return
        if not report.changed:
            out.print(
                f"{col.path} already holds {report.model} vectors of {report.dimension} dimensions in chunks of "
                f"{report.chunk_size} tokens; nothing re-encoded", highlight=False, soft_wrap=True,
            )
            return
        resumed = f" ({report.resumed} kept from an interrupted run)" if report.resumed else ""
        done = f"re-encoded {report.chunks} chunk(s)"
        if report.rechunked:
            why = "" if chunk_size is not None else f": {report.model} reads at most {report.chunk_size}"
            done = (f"re-chunked {documents} document(s) from their stored text into {report.chunks} chunk(s) of at "
                    f"most {report.chunk_size} tokens (were {chunked_at}{why}) and re-encoded them")
        out.print(
            f"{done} with {report.model} ({report.dimension} dimensions, was {before}){resumed} in "
            f"{report.seconds:.1f}s; index {report.index}",
            highlight=False,
            soft_wrap=True,
        )
        if report.truncated_chunks:
            err.print(f"[yellow]warning:[/] {report.truncated_chunks} chunk(s) are longer than {report.model} reads; "
                      "their ends are not in their vectors", highlight=False, soft_wrap=True)

    run_command(go)


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _with_progress(col: Any, as_json: bool, progress: bool | None, **options: Any) -> Any:
    """``col.reindex(**options)`` with a bar on a terminal, JSON lines with --json, else nothing."""
    if as_json:
        return col.reindex(**options, progress=lambda done, total: _emit("batch", done=done, total=total))
    if progress is False or (progress is None and not err.is_terminal):
        return col.reindex(**options)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("re-encoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("chunks", total=None)
        return col.reindex(**options, progress=lambda done, total: bar.update(task, completed=done, total=total))
