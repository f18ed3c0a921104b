"""Commands that change or describe a collection: index, info, verify, delete, migrate (reindex: reindexing.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

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
    WhereDocumentOpt,
    WhereOpt,
    app,
    collection_exists,
    err,
    fail,
    open_collection,
    out,
    run_command,
)


# long: a command's signature declares each of its options; the body is short
@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to index (.txt .md .html .pdf .csv .jsonl).",
                                                show_default=False)],
    collection: CollectionOpt = None,
    model: Annotated[str | None,
                     typer.Option(help="sentence-transformers model name or path (new collections; default "
                                       "all-MiniLM-L6-v2).")] = None,
    dimensions: Annotated[int | None, typer.Option("--dimensions",
                                                   help="Truncate vectors to this many dimensions (new collections; "
                                                        "Matryoshka models only, unless --force-dimensions). Change an "
                                                        "existing collection's with `semsearch reindex --dimensions "
                                                        "N`.", show_default=False)] = None,
    force_dimensions: Annotated[bool, typer.Option("--force-dimensions",
                                                   help="Truncate a model that was not trained for it (quality "
                                                        "drops).")] = False,
    text_field: Annotated[str, typer.Option("--text-field", "--text-column",
                                            help="CSV column / JSONL field holding the text.")] = "text",
    id_field: Annotated[str | None, typer.Option("--id-field", "--id-column",
                                                 help="CSV column / JSONL field holding the document id (default: _id "
                                                      "or id when present).")] = None,
    title_field: Annotated[str | None, typer.Option("--title-field",
                                                    help="CSV/JSONL field prepended to the text when present (BEIR's "
                                                         "title).")] = "title",
    chunk_size: Annotated[int | None,
                          typer.Option(help="Maximum tokens per chunk (new collections; default: what the model reads "
                                            "at once).")] = None,
    chunk_overlap: Annotated[int | None,
                             typer.Option(help="Tokens shared by consecutive chunks (new collections; default "
                                               "chunk_size/8).")] = None,
    index_spec: Annotated[str | None, typer.Option("--index",
                                                   help=INDEX_HELP + " New collections only; change an existing one "
                                                                     "with `semsearch reindex --index SPEC`.")] = None,
    prune: Annotated[bool,
                     typer.Option(help="Remove documents of files that disappeared from an indexed folder.")] = True,
    precision: PrecisionOpt = "auto",
    engine: EngineOpt = "auto",
    progress: Annotated[bool | None,
                        typer.Option(help="Progress: a bar on a terminal, else one line per batch (default); "
                                          "--no-progress prints only the final line.")] = None,
    as_json: Annotated[bool, typer.Option("--json",
                                          help="Progress as JSON Lines on stdout (start, batch, finish events; with "
                                               "--watch also watching, sync, notice, stopped).")] = False,
    watch_: Annotated[bool, typer.Option("--watch",
                                         help="After indexing, keep the collection in sync with these paths (new, "
                                              "changed, deleted files) until Ctrl-C.")] = False,
    settle: Annotated[float, typer.Option("--settle",
                                          help="With --watch: seconds a file must stay unchanged before it is indexed "
                                               "(so a file being written is never indexed half-written).",
                                          min=0.0)] = 1.0,
    commit_every: Annotated[int, typer.Option("--commit-every",
                                              help="At most this many chunks per committed batch (a batch is also "
                                                   "committed every 10 s of work); an interrupted run resumes after "
                                                   "the last committed batch.", min=1)] = 8192,
    lock_timeout: LockTimeoutOpt = 60.0,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Index files and folders into a collection. Unchanged files are skipped, changed ones replaced.

    With --watch it then keeps watching: new, changed and deleted files are applied within seconds,
    until Ctrl-C (everything applied by then is committed).
    """

    def go() -> None:
        from ..ingest.loaders import LoadOptions
        from ..ingest.progress import choose_reporter
        from .watching import index_with_progress, watch

        options = LoadOptions(text_field=text_field, id_field=id_field, title_field=title_field or None)
        with open_collection(
            collection, create=True, lock_timeout=lock_timeout, model=model, chunk_size=chunk_size,
            chunk_overlap=chunk_overlap, precision=precision, engine=engine, progress=progress, backend=backend,
            uri=uri, token=token,
            index=index_spec if index_spec and not collection_exists(collection) else None,
            dimensions=dimensions, force_dimensions=force_dimensions,
        ) as col:
            if index_spec and col.manifest["index"] != index_spec:
                fail(
                    f"{col.path} already uses index {col.manifest['index']!r}; change it with "
                    f"`semsearch reindex --index {index_spec}` (rebuilds from stored vectors, no re-encoding)"
                )

            def run() -> None:
                reporter = choose_reporter(as_json=as_json, progress=progress, where=str(col.path), stderr=err,
                                           stdout=out)
                report = index_with_progress(col, paths, options, prune=prune, reporter=reporter,
                                             batch_chunks=commit_every)
                if not as_json:  # JSON gets them in the finish event
                    for w in report.warnings:
                        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
                col.flush()
                reporter.finish(report)

            if watch_:  # the watch starts first, so nothing changed during the run is missed
                watch(col, paths, options, prune=prune, settle=settle, as_json=as_json, first=run)
            else:
                run()

    run_command(go)


@app.command()
def info(
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show what a collection holds: counts, model, index type, size on disk."""

    def go() -> None:
        with open_collection(collection, create=False, backend=backend, uri=uri, token=token) as col:
            data = col.info()
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        from rich.table import Table  # lazily: ~30 ms of start-up for every command
        table = Table(show_header=False, box=None)
        for key, value in data.items():
            if key == "size_bytes":
                key, value = "size on disk", f"{value / 1e6:.1f} MB"
            if key == "index_details":
                key, value = "index details", (f"{value.get('type')}: "
                                               "" + index_summary(value)) if value else "not built yet"
            if key == "lexical_details":
                key, value = "BM25 arrays", (f"{value['postings']:,} postings of {value['terms']:,} terms, "
                                             f"{value['file_bytes'] / 1e6:.1f} MB, {value['changes_behind']} changes "
                                             "behind") if value else "not saved yet (FTS5 answers)"
            if key == "query_path":
                key, value = "query path", f"{value['path']}: {value['reason']}"
            table.add_row(f"[bold]{key}[/]", str(value))
        out.print(table)

    run_command(go)


@app.command()
def verify(
    collection: CollectionOpt = None,
    repair: Annotated[bool, typer.Option(
        "--repair",
        help="Repair a damaged store: copy every readable document into a fresh store (the damaged file is kept "
             "aside), encode again documents that lost vectors, index lost documents again from their files, and "
             "list what could not be brought back.")] = False,
    text_field: Annotated[str, typer.Option("--text-field", "--text-column",
                                            help="With --repair: the CSV column / JSONL field the lost documents' "
                                                 "files were indexed with.")] = "text",
    id_field: Annotated[str | None, typer.Option("--id-field", "--id-column",
                                                 help="With --repair: the id field they were indexed with.")] = None,
    title_field: Annotated[str | None, typer.Option("--title-field",
                                                    help="With --repair: the title field they were indexed with.")
                           ] = "title",
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    lock_timeout: LockTimeoutOpt = 60.0,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Check a collection: the store's integrity, the vector index files' checksums and contents;
    repairs what can be rebuilt from the store. Exits non-zero when the store itself is damaged
    (it is then marked so: commands warn, writes are refused) until `verify --repair` repairs it."""

    def go() -> None:
        from ..ingest.loaders import LoadOptions

        with open_collection(collection, create=False, lock_timeout=lock_timeout, backend=backend, uri=uri,
                             token=token) as col:
            if repair:
                options = LoadOptions(text_field=text_field, id_field=id_field, title_field=title_field or None)
                _print_repair(col.repair(options).to_dict(), as_json)
                return
            found = col.verify()
        if as_json:
            sys.stdout.write(json.dumps(found, indent=2) + "\n")
        else:
            for problem in found.get("problems", []):
                err.print(f"[yellow]found:[/] {problem}", highlight=False, soft_wrap=True)
            for fix in found.get("repaired", []):
                out.print(f"repaired: {fix}", highlight=False, soft_wrap=True)
            if found.get("consistent"):
                out.print(f"ok: {found.get('chunks')} chunk(s), store and vector index agree", highlight=False)
        if found.get("store", "ok") != "ok":
            where = f" -c {collection}" if collection else ""
            fail("the store itself is damaged (SQLite integrity check: "
                  f"{'; '.join(found['store'][:3])}); until it is repaired commands warn and writes are refused. "
                  f"Repair it: semsearch verify --repair{where}")

    run_command(go)


def _print_repair(report: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    if not report["repaired"]:
        out.print(f"nothing to repair: the store is sound ({report['documents']} document(s))", highlight=False)
        return
    for problem in report["problems"][:5]:
        err.print(f"[yellow]found:[/] {problem}", highlight=False, soft_wrap=True)
    out.print(f"repaired: {report['documents']} document(s) in the new store; the damaged file is kept as "
              f"{report['damaged_copy']}", highlight=False, soft_wrap=True)
    if report["encoded_again"]:
        out.print(f"encoded again from their stored text: {len(report['encoded_again'])} document(s)", highlight=False)
    if report["restored_from_files"]:
        out.print(f"indexed again from their files: {', '.join(report['restored_from_files'])}", highlight=False,
                  soft_wrap=True)
    for doc_id in report["lost"]:
        source = report["lost_sources"].get(doc_id)
        err.print(f"[red]lost:[/] {doc_id}" + (f" (from {source})" if source else ""), highlight=False, soft_wrap=True)
    if report["lost_without_id"]:
        err.print(f"[red]lost:[/] {report['lost_without_id']} document(s) whose id could not be read either",
                  highlight=False)
    for note in report["notes"]:
        err.print(f"note: {note}", highlight=False, soft_wrap=True)
    lost = len(report["lost"]) + report["lost_without_id"]
    out.print(f"{lost} document(s) could not be brought back" + ("; add them again" if lost else ""),
              highlight=False)


def index_summary(details: dict) -> str:
    parts = [f"{details.get('vectors', 0)} vectors"]
    if details.get("projected_dimension"):
        parts.append(f"searched as {details['projected_dimension']}-dimensional PCA projections")
    if "bytes_per_vector" in details:
        parts.append(f"~{details['bytes_per_vector']:.0f} bytes/vector in RAM")
    if details.get("trained_on"):
        parts.append(f"trained on {details['trained_on']:,} vectors")
    tuning = details.get("tuning")
    if tuning:
        knob = f"{tuning['param']}={tuning['value']}, " if tuning.get("param") else ""
        at = f" at {details['tuned_on']:,} vectors" if details.get("tuned_on") else ""
        parts.append(f"{knob}recall@10 {tuning['recall_at_10']:.3f}{at} (target {tuning['target']})")
    if details.get("note"):
        parts.append(details["note"])
    return "; ".join(parts)


@app.command()
def delete(
    ids: Annotated[list[str] | None, typer.Argument(help="Ids of the documents to delete.", show_default=False)] = None,
    source: Annotated[list[Path] | None, typer.Option("--source",
                                                      help="Delete every document indexed from this file "
                                                           "(repeatable).")] = None,
    where: WhereOpt = None,
    where_document: WhereDocumentOpt = None,
    collection: CollectionOpt = None,
    lock_timeout: LockTimeoutOpt = 60.0,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Delete documents by id, by filter (--where), or every document that came from a file."""

    def go() -> None:
        if not ids and not source and not where and not where_document:
            fail("nothing to delete; give document ids, --where FILTER or --source FILE")
        with open_collection(collection, create=False, lock_timeout=lock_timeout, backend=backend, uri=uri,
                             token=token) as col:
            unknown = [] if not ids else [i for i in dict.fromkeys(ids) if i not in {d.id for d in col.get(ids)}]
            n = col.delete(ids or None, where=where,
                           where_document=where_document) if (ids or where or where_document) else 0
            unmatched = []
            for s in source or []:
                deleted = col.delete_source(s)
                if not deleted:
                    unmatched.append(str(s))
                n += deleted
            col.flush()
        out.print(f"deleted {n} document(s)")
        missing = []
        if unknown:
            missing.append(f"no document with id {', '.join(map(repr, unknown))} in this collection (check the ids: "
                           "`semsearch search` and `--json` outputs show them)")
        if unmatched:
            missing.append(f"no documents from source {', '.join(unmatched)} in this collection; give the file's path "
                           "as it was indexed (relative to where you run this, or absolute), or check `semsearch info`")
        if missing and n == 0:
            fail("; ".join(missing))
        for message in missing:
            err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    run_command(go)


@app.command()
def migrate(
    src: Annotated[str, typer.Argument(help="Source: a collection folder, or a Milvus collection name with --src-uri.",
                                       show_default=False)],
    dst: Annotated[str,
                   typer.Argument(help="Target: a folder, or a Milvus collection name with --dst-uri (created if new).",
                                  show_default=False)],
    src_uri: Annotated[str | None, typer.Option("--src-uri",
                                                help="The source is in Milvus at this uri (./milvus.db or "
                                                     "http://host:19530).", show_default=False)] = None,
    dst_uri: Annotated[str | None, typer.Option("--dst-uri", help="The target is in Milvus at this uri.",
                                                show_default=False)] = None,
    src_token: Annotated[str | None, typer.Option("--src-token", envvar="SEMSEARCH_MILVUS_SRC_TOKEN",
                                                  help="Credentials of the source Milvus; also "
                                                       "$SEMSEARCH_MILVUS_SRC_TOKEN.", show_default=False)] = None,
    dst_token: Annotated[str | None, typer.Option("--dst-token", envvar="SEMSEARCH_MILVUS_DST_TOKEN",
                                                  help="Credentials of the target Milvus; also "
                                                       "$SEMSEARCH_MILVUS_DST_TOKEN.", show_default=False)] = None,
    index: Annotated[str | None, typer.Option("--index", help="Index spec of a new target (default: the source's).",
                                              show_default=False)] = None,
    batch: Annotated[int, typer.Option("--batch", help="Documents per batch.")] = 1000,
) -> None:
    """Copy a collection between backends (local <-> Milvus) with its stored vectors; counts are verified."""

    def go() -> None:
        from ..collection import migrate_between

        report, where = migrate_between(src, dst, src_uri=src_uri, dst_uri=dst_uri, src_token=src_token,
                                        dst_token=dst_token, index=index, batch=batch)
        out.print(
            f"copied {report.documents} document(s), {report.chunks} chunk(s), {report.sources} file hash(es) "
            f"in {report.seconds:.1f}s; counts verified -> {where}", highlight=False,
        )

    run_command(go)
