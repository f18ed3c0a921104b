"""Commands that describe a collection's contents: similar, duplicates, topics.

``--json`` output (stable):

- ``similar``: a list of hits, each as ``search --json`` prints a hit (``Hit.to_dict()``).
- ``duplicates``: a list of groups, largest first: ``{"ids", "size", "min_score",
  "max_score", "pairs": [{"a", "b", "score"}], "keep", "delete"}``; ``ids`` oldest first.
- ``topics``: a list of topics, largest first: ``{"id", "label", "words", "size", "ids"}``,
  ``ids`` most central first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import BackendOpt, CollectionOpt, TokenOpt, UriOpt, WhereOpt, _fail, _open, _run, app, err, out

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
) -> None:
    """More like this: the documents nearest in meaning to a stored one (itself left out); nothing is re-encoded.

    --json prints a list of hits shaped as `search --json` prints them.
    """

    def go() -> None:
        from .searching import _print_hits

        with _open(collection, create=False, backend=backend, uri=uri, token=token) as col:
            hits = col.similar(doc_id, k=k, where=where, query=query)
        if as_json:
            _dump([h.to_dict() for h in hits])
        else:
            _print_hits(f"more like {doc_id}", hits)

    _run(go)


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
) -> None:
    """Find groups of near-duplicate documents and print the ids to delete (one per line), keeping one per group.

    --json prints a list of groups: {ids, size, min_score, max_score, pairs: [{a, b, score}], keep, delete}.
    """

    def go() -> None:
        from ..options import DUPLICATES

        DUPLICATES["keep"].check(keep)
        with _open(collection, create=False, backend=backend, uri=uri, token=token) as col:
            groups = col.duplicates(threshold=threshold, where=where, exact=exact)
            doomed = [i for g in groups for i in g.to_delete(keep)]
            if as_json:
                _dump([g.to_dict(keep) for g in groups])
            else:
                for g in groups:
                    err.print(f"[dim]group of {len(g.ids)} (cosine {g.min_score:.3f}-{g.max_score:.3f}): "
                              f"keep {g.keeper(keep)}[/]", highlight=False, soft_wrap=True)
                for doc_id in doomed:
                    sys.stdout.write(doc_id + "\n")
                err.print(f"{len(groups)} group(s) of near-duplicates at cosine >= {threshold}; "
                          f"{len(doomed)} document(s) to delete", highlight=False)
            if not delete or not doomed:
                return
            if not yes:
                if not sys.stdin.isatty():
                    _fail("--delete asks for confirmation on a terminal; add --yes to delete without asking")
                if not typer.confirm(f"delete {len(doomed)} document(s)?", default=False, err=True):
                    err.print("nothing deleted")
                    return
            n = col.delete(doomed)
        err.print(f"deleted {n} document(s)")

    _run(go)


@app.command()
def topics(
    n: Annotated[int | None,
                 typer.Option("--n", "-n", help="Number of topics (default: chosen from the data by silhouette).",
                              show_default=False)] = None,
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
) -> None:
    """Cluster the documents into topics, each labelled by its most distinctive words.

    --json prints a list of topics: {id, label, words, size, ids} (ids most central first).
    """

    def go() -> None:
        with _open(collection, create=False, backend=backend, uri=uri, token=token) as col:
            found = col.topics(n=n, where=where, plot=plot)
            changed = col.assign_topics(found, key, where=where) if assign else None
            texts: dict[str, str] = {}
            if not as_json:
                texts = {d.id: d.text for d in col.get([i for t in found for i in t.central(central)])}
        if as_json:
            _dump([t.to_dict() for t in found])
        else:
            _print_topics(found, texts, central)
        if plot is not None:
            err.print(f"map written to {plot}")
        if changed is not None:
            err.print(f"wrote {key} and {key}_label into the metadata of {changed} document(s); "
                      f"filter with --where '{{\"{key}\": 0}}'", highlight=False)

    _run(go)


def _print_topics(found, texts: dict[str, str], central: int) -> None:
    from rich.table import Table  # lazily: ~30 ms of start-up for every command
    table = Table(title=f"[bold]{len(found)} topics[/]", title_justify="left", expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("words", ratio=2)
    table.add_column("central documents", ratio=3)
    for t in found:
        docs = []
        for doc_id in t.central(central):
            snippet = " ".join(texts.get(doc_id, "").split())
            docs.append(f"[bold]{doc_id}[/] {snippet[:90]}{'…' if len(snippet) > 90 else ''}")
        table.add_row(str(t.id), str(t.size), ", ".join(t.words), "\n".join(docs))
    if not found:
        table.add_row("", "", "[dim]no documents[/]", "")
    out.print(table)
