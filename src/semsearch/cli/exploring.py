"""Commands that describe a collection's contents: similar, duplicates, topics.

``--json`` output (stable):

- ``similar``: a list of hits, each as ``search --json`` prints a hit (``Hit.to_dict()``).
- ``duplicates``: a list of groups, largest first: ``{"ids", "size", "min_score",
  "max_score", "min_text", "pairs": [{"a", "b", "score", "text"}], "keep", "delete"}``; ``ids``
  oldest first; ``score`` is a pair's cosine, ``text`` its textual similarity (word-triple Jaccard).
- ``topics``: a list of topics, largest first: ``{"id", "label", "words", "size", "ids"}``,
  ``ids`` most central first; then, when some documents belong to no topic, the outlier topic
  ``{"id": -1, "label": "outliers", "words": [], ...}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    BackendOpt,
    CollectionOpt,
    ServerOpt,
    TokenOpt,
    UriOpt,
    WhereOpt,
    app,
    default_collection,
    err,
    fail,
    open_collection,
    out,
    run_command,
)

JsonOpt = Annotated[bool, typer.Option("--json",
                                       help="Print JSON instead of a table (see the command's help for its shape).")]


def _dump(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")


@app.command()
def similar(
    doc_id: Annotated[str, typer.Argument(help="Id of a stored document to find more like.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of similar documents.")] = 10,
    where: WhereOpt = None,
    query: Annotated[str, typer.Option(
        "--query", help="mean: compare documents as wholes (their mean vectors); chunks: by their best chunk pair.",
    )] = "mean",
    as_json: JsonOpt = False,
    collection: CollectionOpt = None,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = "auto",
) -> None:
    """More like this: the documents nearest in meaning to a stored one (itself left out); nothing is re-encoded.

    --json prints a list of hits shaped as `search --json` prints them.
    """

    def go() -> None:
        from ..types import Hit
        from .searching import print_hits

        body = {"id": doc_id, "k": k, "where": where, "query": query}
        answer = through(server, collection, backend, "similar", body)
        if answer is not None:
            hits = [Hit(**h) for h in answer["hits"]]
        else:
            with open_collection(collection, create=False, backend=backend, uri=uri, token=token) as col:
                hits = col.similar(doc_id, k=k, where=where, query=query)
        if as_json:
            _dump([h.to_dict() for h in hits])
        else:
            print_hits(f"more like {doc_id}", hits)

    run_command(go)


@app.command()
def duplicates(
    threshold: Annotated[
        float,
        typer.Option("--threshold", "-t",
                     help="Cosine similarity at or above which two documents are near-duplicates."),
    ] = 0.95,
    exact: Annotated[
        bool | None,
        typer.Option("--exact/--approximate",
                     help="Compare exactly, or through an IVF index (default: exact up to 20,000 documents).",
                     show_default=False),
    ] = None,
    text_threshold: Annotated[
        float,
        typer.Option("--text-threshold",
                     help="Textual similarity (Jaccard of word triples, case and punctuation ignored) at or above "
                          "which two documents also read alike; edited copies score 0.6-1.0, template-made sister "
                          "articles (different entities) lower."),
    ] = 0.6,
    semantic: Annotated[
        bool,
        typer.Option("--semantic",
                     help="Group by the cosine alone, without the textual test: also groups different documents "
                          "about one subject and sister articles made from one template. Check before --delete."),
    ] = False,
    keep: Annotated[
        str,
        typer.Option("--keep", help="Which member of each group to keep: first (oldest), longest or newest."),
    ] = "first",
    where: WhereOpt = None,
    delete: Annotated[bool, typer.Option("--delete",
                                         help="Delete the other members of each group (asks first).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --delete: do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
    collection: CollectionOpt = None,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = "auto",
) -> None:
    """Find groups of near-duplicate documents and print the ids to delete (one per line), keeping one per group.

    Every two members of a group score at least --threshold (cosine) and read alike (--text-threshold),
    so deleting all but one never removes a document unlike the one kept; --semantic drops the textual test.
    --json prints a list of groups: {ids, size, min_score, max_score, min_text, pairs: [{a, b, score, text}],
    keep, delete}.
    """

    def go() -> None:
        from ..options import DUPLICATES

        DUPLICATES["keep"].check(keep)
        text_bound = None if semantic else text_threshold
        body = {"threshold": threshold, "text_threshold": text_bound, "semantic": semantic, "where": where,
                "exact": exact, "keep": keep}
        answer = None if delete else through(server, collection, backend, "duplicates", body)
        if answer is not None:
            show_groups(answer["groups"], threshold, text_bound, as_json)
            return
        with open_collection(collection, create=False, backend=backend, uri=uri, token=token) as col:
            groups = [g.to_dict(keep) for g in col.duplicates(threshold=threshold, where=where, exact=exact,
                                                               text_threshold=text_bound)]
            doomed = show_groups(groups, threshold, text_bound, as_json)
            if not delete or not doomed:
                return
            if not yes:
                if not sys.stdin.isatty():
                    fail("--delete asks for confirmation on a terminal; add --yes to delete without asking")
                if not typer.confirm(f"delete {len(doomed)} document(s)?", default=False, err=True):
                    err.print("nothing deleted")
                    return
            n = col.delete(doomed)
        err.print(f"deleted {n} document(s)")

    run_command(go)


def show_groups(groups: list[dict], threshold: float, text_threshold: float | None, as_json: bool) -> list[str]:
    """Print groups (as ``DuplicateGroup.to_dict`` gives them): JSON, or the ids to delete on stdout
    and each group on stderr; returns the ids to delete."""
    doomed = [i for g in groups for i in g["delete"]]
    if as_json:
        _dump(groups)
        return doomed
    for g in groups:
        text = "" if g.get("min_text") is None else f", text {g['min_text']:.2f}+"
        err.print(f"[dim]group of {len(g['ids'])} (cosine {g['min_score']:.3f}-{g['max_score']:.3f}{text}): "
                  f"keep {g['keep']}[/]", highlight=False, soft_wrap=True)
    for doc_id in doomed:
        sys.stdout.write(doc_id + "\n")
    test = "" if text_threshold is None else f" reading alike (text >= {text_threshold})"
    err.print(f"{len(groups)} group(s) of near-duplicates at cosine >= {threshold}{test}; "
              f"{len(doomed)} document(s) to delete", highlight=False)
    return doomed


def through(server: str, collection: Path | None, backend: str, operation: str, body: dict) -> dict | None:
    """The answer of a running server for a local collection (None: do it here)."""
    if backend != "local":
        return None
    from .remote import through_server

    return through_server(server, collection or default_collection(), operation, body)


@app.command()
def topics(
    n: Annotated[int | None,
                 typer.Option("--n", "-n", help="Number of topics, as k-means clusters (default: the communities of "
                                                "the documents' neighbour graph, however many there are).",
                              show_default=False)] = None,
    outliers: Annotated[bool, typer.Option("--outliers/--no-outliers",
                                           help="Put documents that belong to no topic in the outlier topic -1 "
                                                "(--no-outliers: every document in its nearest topic).")] = True,
    where: WhereOpt = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a 2-D map of the documents coloured by topic to this image (PNG, SVG, PDF).",
                     show_default=False),
    ] = None,
    assign: Annotated[
        bool,
        typer.Option("--assign", help="Write each document's topic into its metadata (keys topic, topic_label) so it "
                                      "can be filtered on."),
    ] = False,
    key: Annotated[str, typer.Option("--key", help="Metadata key --assign writes (and KEY_label).")] = "topic",
    central: Annotated[int, typer.Option("--central",
                                         help="How many central documents to show per topic in the table.")] = 3,
    as_json: JsonOpt = False,
    collection: CollectionOpt = None,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = "auto",
) -> None:
    """Cluster the documents into topics, each labelled by its most distinctive words; documents that
    belong to none form the outlier topic -1.

    --json prints a list of topics: {id, label, words, size, ids} (ids most central first), the outlier topic
    (id -1) last.
    """

    def go() -> None:
        changed = None
        body = {"n": n, "where": where, "outliers": outliers, "max_ids": 1_000_000_000}
        answer = None if plot is not None or assign else through(server, collection, backend, "topics", body)
        if answer is not None:
            found = answer["topics"]
            texts = {} if as_json else read_texts(server, collection, backend,
                                                  [i for t in found for i in t["ids"][:central]])
        else:
            with open_collection(collection, create=False, backend=backend, uri=uri, token=token) as col:
                topics_found = col.topics(n=n, where=where, plot=plot, outliers=outliers)
                changed = col.assign_topics(topics_found, key, where=where) if assign else None
                found = [t.to_dict() for t in topics_found]
                texts = {} if as_json else {d.id: d.text for d in
                                            col.get([i for t in found for i in t["ids"][:central]])}
        if as_json:
            _dump(found)
        else:
            _print_topics(found, texts, central)
        if plot is not None:
            err.print(f"map written to {plot}")
        if changed is not None:
            err.print(f"wrote {key} and {key}_label into the metadata of {changed} document(s); "
                      f"filter with --where '{{\"{key}\": 0}}'", highlight=False)

    run_command(go)


def read_texts(server: str, collection: Path | None, backend: str, ids: list[str]) -> dict[str, str]:
    """The texts of these documents from the server that answered (empty if it does not now)."""
    answer = through(server, collection, backend, "get", {"ids": ids}) if ids else None
    return {d["id"]: d["text"] for d in (answer or {}).get("documents", [])}


def _print_topics(found: list[dict], texts: dict[str, str], central: int) -> None:
    from rich.table import Table  # lazily: ~30 ms of start-up for every command
    named = sum(1 for t in found if t["id"] >= 0)
    alone = sum(t["size"] for t in found if t["id"] < 0)
    title = f"[bold]{named} topics[/]" + (f" and {alone} document(s) in none (topic -1)" if alone else "")
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("words", ratio=2)
    table.add_column("central documents", ratio=3)
    for t in found:
        docs = []
        for doc_id in t["ids"][:central]:
            snippet = " ".join(texts.get(doc_id, "").split())
            docs.append(f"[bold]{doc_id}[/] {snippet[:90]}{'…' if len(snippet) > 90 else ''}")
        words = ", ".join(t["words"]) if t["id"] >= 0 else "[dim]outliers: documents that belong to no topic[/]"
        table.add_row(str(t["id"]), str(t["size"]), words, "\n".join(docs))
    if not found:
        table.add_row("", "", "[dim]no documents[/]", "")
    out.print(table)
