"""The ``semsearch`` command line: index, search, info, delete, demo, serve."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import SemsearchError

app = typer.Typer(
    help="Semantic search over your documents: index files, then search them by meaning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DEMO_QUERIES = [
    "how do I parse command line options",
    "compress a file so it takes less space",
    "send an email message",
    "run several tasks at the same time and wait for all of them",
    "generate a secure random token for a password reset link",
    "read a spreadsheet exported as comma separated values",
]


def default_collection() -> Path:
    """$SEMSEARCH_COLLECTION, else a per-user data folder (so every command finds it)."""
    env = os.environ.get("SEMSEARCH_COLLECTION")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("semsearch")) / "default"


CollectionOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--collection", "-c",
        help="Collection folder. Default: $SEMSEARCH_COLLECTION, else a per-user data folder.",
        show_default=False,
    ),
]
LockTimeoutOpt = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait while another process writes to the collection.")
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help="Encoding precision: auto (the fastest that agrees with fp32: bf16 where the CPU or GPU has it), fp32, bf16, fp16.",
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Encoding engine: auto (OpenVINO on the CPU when installed and it agrees with torch), torch, openvino.",
    ),
]


WhereOpt = Annotated[
    Optional[str],
    typer.Option("--where", help='Metadata filter as JSON, e.g. \'{"topic": "ml", "year": {"$gte": 2020}}\'.', show_default=False),
]
WhereDocumentOpt = Annotated[
    Optional[str],
    typer.Option("--where-document", help='Document-text filter as JSON, e.g. \'{"$contains": "FAISS"}\'.', show_default=False),
]


BackendOpt = Annotated[
    str, typer.Option("--backend", help="Where the collection lives: local (a folder) or milvus (Milvus Lite file or cluster).")
]
UriOpt = Annotated[
    Optional[str],
    typer.Option("--uri", help="Milvus: ./milvus.db (Milvus Lite) or http://host:19530. Default ./milvus.db.", show_default=False),
]
TokenOpt = Annotated[
    Optional[str],
    typer.Option("--token", envvar="SEMSEARCH_MILVUS_TOKEN", help="Milvus credentials (user:password or API key); also $SEMSEARCH_MILVUS_TOKEN.", show_default=False),
]


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


INDEX_HELP = (
    "Vector index: auto (default: exact below 100k vectors, then IVF tuned to recall@10 >= 0.95; "
    "auto:2GB adds a memory budget), a FAISS index_factory string (Flat, IVF4096,Flat, IVF4096,PQ48, "
    "IVF4096,SQ8, HNSW32, HNSW32,SQ8, SQ8/int8, PQ48), or binary / binary,SQ8 (sign bits with rescoring)."
)


def _exists(path: Path | None) -> bool:
    return ((path or default_collection()) / "collection.sqlite3").exists()


def _open(path: Path | None, *, create: bool, lock_timeout: float = 60.0, backend: str = "local",
          uri: str | None = None, token: str | None = None, **kwargs):
    from .collection import Collection

    folder = path or default_collection()
    if backend != "local":
        from .backends import open_collection

        return open_collection(folder, backend=backend, uri=uri, token=token, create=create, lock_timeout=lock_timeout, **kwargs)
    if not create and not (folder / "collection.sqlite3").exists():
        hint = "" if path else " (the default collection)"
        _fail(f"no collection at {folder}{hint}; index documents first: semsearch index PATH")
    return Collection(folder, create=create, lock_timeout=lock_timeout, **kwargs)


def _run(fn):  # noqa: ANN001, ANN202
    """Turn semsearch errors into one-line messages and a non-zero exit code."""
    warnings.showwarning = _show_warning
    try:
        return fn()
    except SemsearchError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; everything acknowledged before this point is saved", code=130)


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to index (.txt .md .html .pdf .csv .jsonl).", show_default=False)],
    collection: CollectionOpt = None,
    model: Annotated[Optional[str], typer.Option(help="sentence-transformers model name or path (new collections; default all-MiniLM-L6-v2).")] = None,
    text_field: Annotated[str, typer.Option("--text-field", "--text-column", help="CSV column / JSONL field holding the text.")] = "text",
    id_field: Annotated[Optional[str], typer.Option("--id-field", "--id-column", help="CSV column / JSONL field holding the document id (default: _id or id when present).")] = None,
    title_field: Annotated[Optional[str], typer.Option("--title-field", help="CSV/JSONL field prepended to the text when present (BEIR's title).")] = "title",
    chunk_size: Annotated[Optional[int], typer.Option(help="Maximum tokens per chunk (new collections; default: what the model reads at once).")] = None,
    chunk_overlap: Annotated[Optional[int], typer.Option(help="Tokens shared by consecutive chunks (new collections; default chunk_size/8).")] = None,
    index_spec: Annotated[Optional[str], typer.Option("--index", help=INDEX_HELP + " New collections only; change an existing one with `semsearch reindex --index SPEC`.")] = None,
    prune: Annotated[bool, typer.Option(help="Remove documents of files that disappeared from an indexed folder.")] = True,
    precision: PrecisionOpt = "auto",
    engine: EngineOpt = "auto",
    progress: Annotated[Optional[bool], typer.Option(help="Show progress bars (default: on a terminal).")] = None,
    lock_timeout: LockTimeoutOpt = 60.0,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Index files and folders into a collection. Unchanged files are skipped, changed ones replaced."""

    def go() -> None:
        from .ingest.loaders import LoadOptions

        options = LoadOptions(text_field=text_field, id_field=id_field, title_field=title_field or None)
        with _open(
            collection, create=True, lock_timeout=lock_timeout, model=model, chunk_size=chunk_size,
            chunk_overlap=chunk_overlap, precision=precision, engine=engine, progress=progress, backend=backend, uri=uri, token=token,
            index=index_spec if index_spec and not _exists(collection) else None,
        ) as col:
            if index_spec and col.manifest["index"] != index_spec:
                _fail(
                    f"{col.path} already uses index {col.manifest['index']!r}; change it with "
                    f"`semsearch reindex --index {index_spec}` (rebuilds from stored vectors, no re-encoding)"
                )
            report = col.index_files(paths, options, prune=prune)
            for w in report.warnings:
                err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
            col.flush()
            out.print(
                f"indexed {report.documents} document(s) in {report.chunks} chunk(s) from "
                f"{report.files_added} new and {report.files_replaced} changed file(s); "
                f"{report.files_unchanged} unchanged, {report.files_removed} removed, "
                f"{len(report.warnings)} skipped ({report.seconds:.1f}s) -> {col.path}",
                highlight=False, soft_wrap=True,
            )

    _run(go)


@app.command()
def search(
    queries: Annotated[list[str], typer.Argument(help="One or more queries, searched as one batch.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of results per query.")] = 10,
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (a list of {query, hits}) instead of a table.")] = False,
    precision: PrecisionOpt = "auto",
    engine: EngineOpt = "auto",
    where: WhereOpt = None,
    where_document: WhereDocumentOpt = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid (meaning + words, fused), dense (meaning) or lexical (BM25 words).")] = "hybrid",
    fusion: Annotated[str, typer.Option("--fusion", help="Hybrid fusion: adaptive (per query), rrf or weighted.")] = "adaptive",
    alpha: Annotated[float, typer.Option("--alpha", help="Dense weight for --fusion weighted (0..1).")] = 0.7,
    rrf_k: Annotated[float, typer.Option("--rrf-k", help="k of reciprocal rank fusion (--fusion rrf).")] = 60.0,
    rerank: Annotated[Optional[str], typer.Option("--rerank", help="Rerank with this CrossEncoder (name or path), e.g. cross-encoder/ms-marco-MiniLM-L-6-v2.")] = None,
    rerank_top: Annotated[int, typer.Option("--rerank-top", help="How many candidates the cross-encoder reads.")] = 50,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Drop hits whose score is below this.")] = None,
    mmr: Annotated[Optional[float], typer.Option("--mmr", help="Diversify: MMR lambda in 0..1 (1 = relevance only).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each stage's score and rank for every hit.")] = False,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
) -> None:
    """Search a collection by meaning and words; prints rank, score, source and a snippet."""

    def go() -> None:
        with _open(collection, create=False, precision=precision, engine=engine, backend=backend, uri=uri, token=token) as col:
            results = col.search(
                list(queries), k=k, where=where, where_document=where_document, mode=mode, fusion=fusion,
                alpha=alpha, rrf_k=rrf_k, rerank=rerank, rerank_top=rerank_top, threshold=threshold, mmr=mmr,
            )
        if as_json:
            payload = [{"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in zip(queries, results)]
            sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
            return
        for q, hits in zip(queries, results):
            _print_hits(q, hits, explain=explain)

    _run(go)


def _explain(scores: dict) -> str:  # noqa: ANN001
    parts = []
    for stage in ("dense", "lexical", "hybrid", "rerank", "mmr"):
        if stage in scores:
            rank = scores.get(f"{stage}_rank")
            parts.append(f"{stage} {scores[stage]:.3f}" + (f" (#{int(rank)})" if rank else ""))
    if "dense_weight" in scores:
        parts.append(f"dense weight {scores['dense_weight']:.2f}")
    return "; ".join(parts)


def _print_hits(query: str, hits, explain: bool = False) -> None:  # noqa: ANN001
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


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


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
        with _open(collection, create=False, backend=backend, uri=uri, token=token) as col:
            data = col.info()
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        table = Table(show_header=False, box=None)
        for key, value in data.items():
            if key == "size_bytes":
                key, value = "size on disk", f"{value / 1e6:.1f} MB"
            if key == "index_details":
                key, value = "index details", (f"{value.get('type')}: " + _index_summary(value)) if value else "not built yet"
            table.add_row(f"[bold]{key}[/]", str(value))
        out.print(table)

    _run(go)


@app.command()
def reindex(
    index_spec: Annotated[str, typer.Option("--index", help=INDEX_HELP, show_default=False)],
    collection: CollectionOpt = None,
    lock_timeout: LockTimeoutOpt = 60.0,
) -> None:
    """Change a collection's vector index: rebuilds it from the stored vectors (nothing is re-encoded)."""

    def go() -> None:
        import time

        started = time.perf_counter()
        with _open(collection, create=False, lock_timeout=lock_timeout, index=index_spec) as col:
            col.flush()
            details = col.info()["index_details"]
        out.print(f"index {index_spec} ({details.get('type')}) ready in {time.perf_counter() - started:.1f}s: "
                  f"{_index_summary(details)}", highlight=False)

    _run(go)


def _index_summary(details: dict) -> str:
    parts = [f"{details.get('vectors', 0)} vectors"]
    if "bytes_per_vector" in details:
        parts.append(f"~{details['bytes_per_vector']:.0f} bytes/vector in RAM")
    tuning = details.get("tuning")
    if tuning:
        knob = f"{tuning['param']}={tuning['value']}, " if tuning.get("param") else ""
        parts.append(f"{knob}recall@10 {tuning['recall_at_10']:.3f} (target {tuning['target']})")
    if details.get("note"):
        parts.append(details["note"])
    return "; ".join(parts)


@app.command()
def delete(
    ids: Annotated[Optional[list[str]], typer.Argument(help="Ids of the documents to delete.", show_default=False)] = None,
    source: Annotated[Optional[list[Path]], typer.Option("--source", help="Delete every document indexed from this file (repeatable).")] = None,
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
            _fail("nothing to delete; give document ids, --where FILTER or --source FILE")
        with _open(collection, create=False, lock_timeout=lock_timeout, backend=backend, uri=uri, token=token) as col:
            n = col.delete(ids or None, where=where, where_document=where_document) if (ids or where or where_document) else 0
            for s in source or []:
                n += col.delete_source(s)
            col.flush()
        out.print(f"deleted {n} document(s)")

    _run(go)


@app.command()
def migrate(
    src: Annotated[str, typer.Argument(help="Source: a collection folder, or a Milvus collection name with --src-uri.", show_default=False)],
    dst: Annotated[str, typer.Argument(help="Target: a folder, or a Milvus collection name with --dst-uri (created if new).", show_default=False)],
    src_uri: Annotated[Optional[str], typer.Option("--src-uri", help="The source is in Milvus at this uri (./milvus.db or http://host:19530).", show_default=False)] = None,
    dst_uri: Annotated[Optional[str], typer.Option("--dst-uri", help="The target is in Milvus at this uri.", show_default=False)] = None,
    src_token: Annotated[Optional[str], typer.Option("--src-token", envvar="SEMSEARCH_MILVUS_SRC_TOKEN", show_default=False)] = None,
    dst_token: Annotated[Optional[str], typer.Option("--dst-token", envvar="SEMSEARCH_MILVUS_DST_TOKEN", show_default=False)] = None,
    index: Annotated[Optional[str], typer.Option("--index", help="Index spec of a new target (default: the source's).", show_default=False)] = None,
    batch: Annotated[int, typer.Option("--batch", help="Documents per batch.")] = 1000,
) -> None:
    """Copy a collection between backends (local <-> Milvus) with its stored vectors; counts are verified."""

    def go() -> None:
        from .backends import open_collection
        from .migrate import migrate as copy

        source = open_collection(Path(src) if src_uri is None else src, backend="milvus" if src_uri else "local",
                                 uri=src_uri, token=src_token, create=False)
        with source:
            m = source.manifest
            target = open_collection(
                Path(dst) if dst_uri is None else dst, m["model"], backend="milvus" if dst_uri else "local", uri=dst_uri,
                token=dst_token, index=index or _target_spec(m["index"], int(m["dimension"]), milvus=dst_uri is not None),
                chunk_size=m["chunk_size"], chunk_overlap=m["chunk_overlap"],
            )
            with target:
                report = copy(source, target, batch=batch)
                if dst_uri is None:
                    target.flush()
        out.print(
            f"copied {report.documents} document(s), {report.chunks} chunk(s), {report.sources} file hash(es) "
            f"in {report.seconds:.1f}s; counts verified -> {target.path}", highlight=False,
        )

    _run(go)


def _target_spec(spec: str, dim: int, *, milvus: bool) -> str:
    """The source's index spec if the target backend has it, else Flat (with a warning; --index chooses)."""
    try:
        if milvus:
            from .backends.milvus import milvus_index

            milvus_index(spec)
        else:
            from .index import make_index

            make_index(spec, dim)
        return spec
    except (SemsearchError, ValueError, RuntimeError):
        where = "Milvus" if milvus else "the local backend"
        err.print(f"[yellow]warning:[/] index {spec!r} is not available on {where}; the copy uses Flat (choose with --index)")
        return "Flat"


@app.command()
def demo(
    collection: Annotated[Optional[Path], typer.Option("--collection", "-c", help="Where to build the demo collection (default: a per-user data folder).")] = None,
    query: Annotated[Optional[list[str]], typer.Option("--query", "-q", help="Your own query (repeatable); default: a few built-in ones.")] = None,
    k: Annotated[int, typer.Option("-k", help="Results per query.")] = 3,
    progress: Annotated[Optional[bool], typer.Option(help="Show progress bars (default: on a terminal).")] = None,
) -> None:
    """Index the docstrings of Python's standard library (no download), then search them by meaning."""

    def go() -> None:
        from platformdirs import user_data_dir

        from .collection import Collection
        from .ingest.stdlib import stdlib_docstrings

        folder = collection or Path(user_data_dir("semsearch")) / "demo"
        with Collection(folder, progress=progress) as col:
            records = stdlib_docstrings()
            have = set(d.id for d in col.get([r.id for r in records]))
            todo = [r for r in records if r.id not in have]
            if todo:
                out.print(f"indexing {len(todo)} docstrings of the Python {sys.version.split()[0]} standard library into {folder} …")
                col.add([r.text for r in todo], ids=[r.id for r in todo], metadatas=[r.metadata for r in todo],
                        sources=[r.source for r in todo])
            else:
                out.print(f"reusing {folder} ({col.count()} docstrings)")
            col.flush()
            queries = list(query or DEMO_QUERIES)
            for q, hits in zip(queries, col.search(queries, k=k)):
                _print_hits(q, hits)

    _run(go)


@app.command()
def serve(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Collection folders to serve (default: the default collection). The first is the default at /search.", show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="SEMSEARCH_API_KEY", help="Bearer token every request must carry (all but /, /healthz, /readyz, /docs). Prefer $SEMSEARCH_API_KEY: a command line is visible to other users.", show_default=False)] = None,
    public_reads: Annotated[bool, typer.Option("--public-reads", help="With --api-key: let search, get and info through without the key (writes still need it).")] = False,
    cors_origin: Annotated[Optional[list[str]], typer.Option("--cors-origin", help="An origin allowed to call the API from a browser (repeatable). Default: CORS off.", show_default=False)] = None,
    reranker: Annotated[Optional[list[str]], typer.Option("--reranker", help="A cross-encoder model requests may ask to rerank with (repeatable; the first is rerank=true).", show_default=False)] = None,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body accepted, in MB.")] = 8.0,
    max_documents: Annotated[int, typer.Option("--max-documents", help="Most documents per add/upsert request.")] = 1000,
    max_k: Annotated[int, typer.Option("--max-k", help="Most hits per query.")] = 100,
    backend: BackendOpt = "local",
    uri: UriOpt = None,
    token: TokenOpt = None,
    torch_threads: Annotated[int, typer.Option("--torch-threads", help="Threads one request's encoding may use; concurrency comes from parallel requests.")] = 1,
) -> None:
    """Serve collections over HTTP: a JSON API (docs at /docs) and a search page at /."""

    def go() -> None:
        from .server.cli_serve import serve_collections
        from .server.security import check_bind

        check_bind(host, api_key or None)  # before anything else: refuse an unsafe bind first
        folders = list(paths or [default_collection()])
        if backend == "local":
            for folder in folders:
                if not (folder / "collection.sqlite3").exists():
                    _fail(f"no collection at {folder}; index documents first: semsearch index PATH -c {folder}")
            sources: list = folders
        else:  # the same API over Milvus collections, opened here with the same options as the CLI's
            sources = [_open(folder, create=False, backend=backend, uri=uri, token=token) for folder in folders]
        serve_collections(
            sources, host=host, port=port, api_key=api_key or None, public_reads=public_reads,
            cors_origins=cors_origin or [], rerankers=reranker or [], max_body_bytes=int(max_body_mb * 1024 * 1024),
            max_documents=max_documents, max_k=max_k, torch_threads=torch_threads, announce=lambda text: out.print(text, highlight=False, soft_wrap=True),
        )

    _run(go)


@app.command("eval")
def eval_(
    dataset: Annotated[Path, typer.Argument(help="A BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.", show_default=False)],
    compare: Annotated[Optional[str], typer.Option("--compare", help="Methods to compare, e.g. dense,lexical,hybrid,rerank (also rrf, weighted).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="The one method to run when --compare is not given.")] = "hybrid",
    split: Annotated[Optional[str], typer.Option("--split", help="qrels split (default: test, else the only one).")] = None,
    collection: Annotated[Optional[Path], typer.Option("--collection", "-c", help="Collection folder for the corpus (default: a per-user cache folder named by the corpus's hash; reused when it matches).", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option(help="sentence-transformers model for a new collection (default all-MiniLM-L6-v2).")] = None,
    rerank: Annotated[Optional[str], typer.Option("--rerank", help="CrossEncoder for the rerank method.")] = None,
    rerank_top: Annotated[int, typer.Option("--rerank-top", help="Candidates the cross-encoder reads.")] = 50,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write an HTML report (table and bar chart) here.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    progress: Annotated[Optional[bool], typer.Option(help="Show progress bars (default: on a terminal).")] = None,
) -> None:
    """Measure retrieval quality on a judged BEIR dataset: nDCG@10, MRR@10, Recall@10/100, MAP@100."""

    def go() -> None:
        from .evaluation import load_beir
        from .evaluation_runner import corpus_fingerprint, open_collection, parse_methods, run_methods, write_html_report

        methods = parse_methods(compare or mode)
        data = load_beir(dataset, split)
        folder = collection
        if folder is None:
            from platformdirs import user_cache_dir

            folder = Path(user_cache_dir("semsearch")) / "eval" / f"{dataset.resolve().name}-{corpus_fingerprint(data)[:12]}"
        started = time.perf_counter()
        col, reused = open_collection(data, folder, model, progress)
        with col:
            err.print(
                f"{'reusing' if reused else 'indexed'} {col.count()} documents in {folder} "
                f"({time.perf_counter() - started:.1f}s); {len(data.judged_queries())} judged queries",
                highlight=False,
            )
            results = run_methods(col, data, methods, reranker=rerank, rerank_top=rerank_top)
            model_name = col.manifest["model"]
        if as_json:
            payload = {"dataset": str(dataset), "model": model_name, "queries": len(data.judged_queries()),
                       "results": {r.method: r.metrics for r in results}}
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            names = list(results[0].metrics)
            table = Table(title=f"{dataset.name} ({len(data.judged_queries())} judged queries, {model_name})", title_justify="left")
            table.add_column("method")
            for n in names:
                table.add_column(n, justify="right")
            table.add_column("search s", justify="right")
            for r in results:
                table.add_row(r.method, *(f"{r.metrics[n]:.4f}" for n in names), f"{r.seconds:.2f}")
            out.print(table)
        if report is not None:
            info = {"dataset": str(dataset.resolve()), "split": data.split, "documents": len(data.corpus),
                    "judged queries": len(data.judged_queries()), "model": model_name, "collection": str(folder)}
            write_html_report(report, dataset.name, info, results)
            err.print(f"report written to {report}", highlight=False)

    _run(go)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
