"""Commands that search: search and demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import (
    BackendOpt,
    CollectionOpt,
    EngineOpt,
    PrecisionOpt,
    TokenOpt,
    UriOpt,
    WhereDocumentOpt,
    WhereOpt,
    app,
    default_collection,
    open_collection,
    out,
    run_command,
)

if TYPE_CHECKING:
    from ..ingest.files import Record

DEMO_QUERIES = [
    "how do I parse command line options",
    "compress a file so it takes less space",
    "send an email message",
    "run several tasks at the same time and wait for all of them",
    "generate a secure random token for a password reset link",
    "read a spreadsheet exported as comma separated values",
]


@app.command()
def search(
    queries: Annotated[
        list[str], typer.Argument(help="One or more queries, searched as one batch.", show_default=False)
    ],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of results per query.")] = 10,
    collection: CollectionOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (a list of {query, hits, no_good_match}) instead of a table.")
    ] = False,
    precision: PrecisionOpt = "auto",
    engine: EngineOpt = "auto",
    where: WhereOpt = None,
    where_document: WhereDocumentOpt = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="hybrid (meaning + words, fused; the default), dense (meaning) or lexical (BM25 "
                                    "words).", show_default=False),
    ] = None,
    fusion: Annotated[
        str, typer.Option("--fusion", help="Hybrid fusion: adaptive (per query), rrf or weighted.")
    ] = "adaptive",
    alpha: Annotated[float, typer.Option("--alpha", help="Dense weight for --fusion weighted (0..1).")] = 0.7,
    rrf_k: Annotated[float, typer.Option("--rrf-k", help="k of reciprocal rank fusion (--fusion rrf).")] = 60.0,
    candidates: Annotated[int, typer.Option(
        "--candidates", help="How many documents each retriever contributes to fusion and reranking.")] = 100,
    rerank: Annotated[
        str | None,
        typer.Option(
            "--rerank", help="Rerank with this CrossEncoder (name or path), e.g. cross-encoder/ms-marco-MiniLM-L-6-v2."
        ),
    ] = None,
    rerank_top: Annotated[int, typer.Option("--rerank-top", help="How many candidates the cross-encoder reads.")] = 50,
    threshold: Annotated[
        str | None,
        typer.Option(
            "--threshold",
            help="Drop hits whose relevance is below this (0..1), or auto: the calibrated no-good-match line.",
        ),
    ] = None,
    mmr: Annotated[
        float | None, typer.Option("--mmr", help="Diversify: MMR lambda in 0..1 (1 = relevance only).")
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each stage's score and rank for every hit.")] = False,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
    server: Annotated[str, typer.Option(
        "--server", envvar="SEMSEARCH_SERVER",
        help="auto: ask the `semsearch serve` running on this collection if there is one (same results, "
             "milliseconds instead of seconds), else search here; off: always search here; or the loopback URL "
             "of a server (http://127.0.0.1:8000\\[/collections/NAME]). Also $SEMSEARCH_SERVER.",
    )] = "auto",
) -> None:
    """Search a collection by meaning and words; prints rank, score, source and a snippet."""

    def go() -> None:
        options = {"where": where, "where_document": where_document, "mode": mode, "fusion": fusion, "alpha": alpha,
                   "rrf_k": rrf_k, "candidates": candidates, "rerank": rerank, "rerank_top": rerank_top,
                   "threshold": _threshold(threshold), "mmr": mmr}
        results = _through_server(server, collection, list(queries), k, options, backend=backend,
                                  forced=precision != "auto" or engine != "auto")
        if results is None:
            with open_collection(collection, create=False, precision=precision, engine=engine, backend=backend, uri=uri,
                       token=token) as col:
                results = col.search(list(queries), k=k, **options)
                line = col.no_match_threshold
        else:
            from ..options import NO_MATCH_THRESHOLD

            line = NO_MATCH_THRESHOLD  # Collection.no_match_threshold, the line the server answers by too
        if as_json:
            payload = [{"query": q, "hits": [h.to_dict() for h in hits], "no_good_match": no_good_match(hits, line)}
                       for q, hits in zip(queries, results)]
            sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
            return
        for q, hits in zip(queries, results):
            print_hits(q, hits, explain=explain, no_match_line=line)

    run_command(go)


def _through_server(server: str, collection: Path | None, queries: list[str], k: int, options: dict, *, backend: str,
                    forced: bool) -> list | None:
    """Hits per query from a running server (cli/remote.py), or None to search here.

    Automatic use needs a local collection and the encoder settings a server uses (auto), so the
    answer is the one this process would compute.
    """
    if server == "auto" and (backend != "local" or forced):
        return None
    if server == "off":
        return None
    from ..errors import SemsearchError
    from ..types import Hit
    from .remote import search_through_server

    results = search_through_server(server, collection or default_collection(), queries, k, options)
    if results is None:
        return None
    try:
        return [[Hit(**hit) for hit in hits] for hits in results]
    except TypeError:  # hits of another shape (another semsearch version): not the same output
        if server == "auto":
            return None
        raise SemsearchError(
            f"the server at {server} answers hits in another format (another semsearch version?)"
        ) from None


def _threshold(value: str | None) -> float | str | None:
    """A number, or the text as given: "auto", or anything else for the collection to refuse with
    the message every door gives."""
    try:
        return value if value is None else float(value)
    except ValueError:
        return value


def no_good_match(hits, line: float) -> bool:  # noqa: ANN001
    """Whether nothing answers the query: no hit, or a best hit below the calibrated line."""
    return not hits or hits[0].score < line


def _explain(scores: dict) -> str:  # noqa: ANN001
    parts = []
    for stage in ("dense", "lexical", "hybrid", "relevance", "rerank", "mmr"):
        if stage in scores:
            rank = scores.get(f"{stage}_rank")
            parts.append(f"{stage} {scores[stage]:.3f}" + (f" (#{int(rank)})" if rank else ""))
    if "dense_weight" in scores:
        parts.append(f"dense weight {scores['dense_weight']:.2f}")
    return "; ".join(parts)


def print_hits(query: str, hits, explain: bool = False, no_match_line: float | None = None) -> None:  # noqa: ANN001
    from rich.table import Table  # lazily: ~30 ms of start-up for every command
    table = Table(title=f"[bold]{query}[/]", title_justify="left", show_lines=False, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("source", overflow="fold", ratio=1)
    table.add_column("snippet", ratio=3)
    for rank, h in enumerate(hits, 1):
        if not h.source or h.id == h.source:
            source = _short(h.source or h.id)
        elif h.id.startswith(h.source):  # a row of a CSV/JSONL file: path#line
            source = _short(h.id)
        else:
            source = f"{h.id}\n[dim]{Path(h.source).name}[/]"
        snippet = " ".join(h.text.split())
        text = snippet[:240] + ("…" if len(snippet) > 240 else "")
        if explain:
            text += f"\n[dim]{_explain(h.scores)}[/]"
        table.add_row(str(rank), f"{h.score:.3f}", source, text)
    if not hits:
        table.add_row("", "", "", "[dim]no results[/]")
    out.print(table)
    if no_match_line is not None and not hits:
        out.print("[yellow]no good match:[/] nothing in the collection answers this query", highlight=False)
    elif no_match_line is not None and no_good_match(hits, no_match_line):
        out.print(f"[yellow]no good match:[/] nothing in the collection answers this well (best relevance "
                  f"{hits[0].score:.2f} < {no_match_line:.2f}); the closest hits are shown", highlight=False)


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@app.command()
def demo(
    collection: Annotated[
        Path | None,
        typer.Option(
            "--collection", "-c", help="Where to build the demo collection (default: a per-user data folder)."
        ),
    ] = None,
    query: Annotated[
        list[str] | None,
        typer.Option("--query", "-q", help="Your own query (repeatable); default: a few built-in ones."),
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Results per query.")] = 3,
    progress: Annotated[bool | None, typer.Option(help="Show progress bars (default: on a terminal).")] = None,
) -> None:
    """Index the docstrings of Python's standard library (no download), then search them by meaning."""

    def go() -> None:
        from platformdirs import user_data_dir

        from ..collection import Collection
        from ..ingest.stdlib import stdlib_docstrings

        folder = collection or Path(user_data_dir("semsearch")) / "demo"
        with Collection(folder, progress=progress) as col:
            records = stdlib_docstrings()
            have = set(d.id for d in col.get(_record_ids(records)))
            todo = [r for r in records if r.id not in have]
            if todo:
                out.print(f"indexing {len(todo)} docstrings of the Python {sys.version.split()[0]} "
                          f"standard library into {folder} …")
                col.add([r.text for r in todo], ids=_record_ids(todo), metadatas=[r.metadata for r in todo],
                        sources=[r.source for r in todo])
            else:
                out.print(f"reusing {folder} ({col.count()} docstrings)")
            col.flush()
            queries = list(query or DEMO_QUERIES)
            for q, hits in zip(queries, col.search(queries, k=k)):
                print_hits(q, hits)

    run_command(go)


def _record_ids(records: list[Record]) -> list[str]:
    """The ids of the demo's stdlib records, which name every docstring by its qualified name.

    Raises:
        RuntimeError: a record has no id (a bug in ``stdlib_docstrings``).
    """
    ids = [r.id for r in records if r.id is not None]
    if len(ids) != len(records):
        raise RuntimeError("a standard-library docstring record has no id; every one should be named")
    return ids
