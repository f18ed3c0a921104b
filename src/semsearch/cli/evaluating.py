"""semsearch eval: retrieval quality on judged datasets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    app,
    err,
    fail,
    out,
    run_command,
)
from .pipes import print_table


# long: a command's signature declares each of its options; the body is short
@app.command("eval")
def eval_(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="A BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.", show_default=False
        ),
    ],
    compare: Annotated[
        str | None,
        typer.Option("--compare", help="Methods to compare, e.g. dense,lexical,hybrid,rerank (also rrf, weighted)."),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="The one method to run when --compare is not given.")] = "hybrid",
    split: Annotated[
        str | None, typer.Option("--split", help="qrels split (default: test, else the only one).")
    ] = None,
    collection: Annotated[
        Path | None,
        typer.Option(
            "--collection",
            "-c",
            help="Collection folder for the corpus (default: a per-user cache folder named by the corpus's hash; "
                 "reused when it matches).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="sentence-transformers model for a new collection (default all-MiniLM-L6-v2).")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Compare models: names or folders separated by commas, each indexed in its own cached collection "
                 "(under --collection when given); NAME@N truncates to N dimensions (Matryoshka models), NAME@pcaN "
                 "searches a PCA<N>,Flat index; 'default' is the default model. Reports index size, indexing speed and "
                 "per-query latency beside the metrics.",
            show_default=False,
        ),
    ] = None,
    rerank: Annotated[str | None, typer.Option("--rerank", help="CrossEncoder for the rerank method.")] = None,
    rerank_top: Annotated[int, typer.Option("--rerank-top", help="Candidates the cross-encoder reads.")] = 50,
    unanswerable: Annotated[
        Path | None,
        typer.Option(
            "--unanswerable",
            help="Questions the corpus does not answer (JSONL with \"text\", or one per line): report how well each "
                 "method's top-1 score separates them from the judged queries (ROC AUC) and the default no-good-match "
                 "threshold's precision/recall.",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Write an HTML report (table, bar chart, score distributions) here.", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    progress: Annotated[bool | None, typer.Option(help="Show progress bars (default: on a terminal).")] = None,
) -> None:
    """Measure retrieval quality on a judged BEIR dataset: nDCG@10, MRR@10, Recall@10/100, MAP@100.

    A method that fails (e.g. a reranker that cannot load) is reported with its error and the
    others still run; the exit code is non-zero only when every method failed.
    """

    def go() -> None:
        from .pipes import Heartbeat

        # Steps as they start, on a terminal too; "still running" lines only in a pipe or a log,
        # where no progress bar shows (--no-progress: neither).
        with Heartbeat(err, enabled=progress is not False, ticks=progress is True or not err.is_terminal) as beat:
            measure(beat)

    def measure(beat: Any) -> None:
        from ..evaluation import load_beir, read_questions
        from ..evaluation.runner import corpus_fingerprint, open_collection, parse_methods, run_methods

        methods = parse_methods(compare or mode)
        if models is not None:
            if model is not None or unanswerable is not None:
                fail("--models compares models on its own: leave out --model and --unanswerable")
            from ..evaluation.comparison import parse_models

            variants = parse_models(models)  # checked before the dataset is read
        data = load_beir(dataset, split)
        questions = read_questions(unanswerable) if unanswerable is not None else None
        note = data.coverage_note()
        if note:
            err.print(f"note: {note}", highlight=False, soft_wrap=True)
        folder = collection
        if folder is None:
            from platformdirs import user_cache_dir

            folder = (
                Path(user_cache_dir("semsearch")) / "eval" / f"{dataset.resolve().name}-{corpus_fingerprint(data)[:12]}"
            )
        if models is not None:
            _compare_models(dataset, data, variants, folder, methods, note=note, reranker=rerank, rerank_top=rerank_top,
                            report=report, as_json=as_json, progress=progress, beat=beat)
            return
        started = time.perf_counter()
        beat.step(f"opening (or indexing {len(data.corpus):,} documents into) {folder}")
        col, reused = open_collection(data, folder, model, progress)
        n_queries = len(data.judged_queries())
        with col:
            beat.done()
            err.print(
                f"{'reusing' if reused else 'indexed'} {col.count()} documents in {folder} "
                f"({time.perf_counter() - started:.1f}s); {n_queries} judged queries",
                highlight=False,
            )
            results = run_methods(col, data, methods, reranker=rerank, rerank_top=rerank_top, unanswerable=questions,
                                  step=beat.step)
            beat.done()
            model_name = col.manifest["model"]
        show_results(dataset, data, folder, model_name, n_queries, results, questions=questions,
                     unanswerable=unanswerable, note=note, report=report, as_json=as_json)

    run_command(go)


def show_results(dataset: Path, data: Any, folder: Path, model_name: str, n_queries: int, results: list[Any], *,
                 questions: Any, unanswerable: Path | None, note: str | None, report: Path | None,
                 as_json: bool) -> None:
    """Print what ``eval`` measured (JSON or tables), write the HTML report, and fail when no method ran."""
    ok = [r for r in results if r.ok]
    if as_json:
        payload: dict[str, Any] = {
            "dataset": str(dataset), "model": model_name, "queries": n_queries, "note": note,
            "results": {r.method: r.metrics for r in ok},
            "seconds": {r.method: r.seconds for r in ok},
            "errors": {r.method: r.error for r in results if not r.ok},
        }
        if questions is not None:
            payload["unanswerable_queries"] = len(questions)
            payload["separation"] = {r.method: r.separation.to_dict() for r in ok if r.separation is not None}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        _print_tables(dataset.name, n_queries, model_name, results)
    for r in results:
        if not r.ok:
            err.print(f"[bold red]error:[/] method {r.method} failed: {r.error}", highlight=False, soft_wrap=True)
    if report is not None:
        from ..evaluation.report import write_html_report

        info = {"dataset": str(dataset.resolve()), "split": data.split, "documents": len(data.corpus),
                "judged queries searched": n_queries, "model": model_name, "collection": str(folder)}
        if questions is not None:
            info["unanswerable questions"] = f"{len(questions)} from {unanswerable}"
        write_html_report(report, dataset.name, info, results, note)
        err.print(f"report written to {report}", highlight=False)
    if not ok:
        fail(f"every method failed ({', '.join(r.method for r in results)}); nothing was measured")


def _print_tables(name: str, n_queries: int, model_name: str, results: list[Any]) -> None:
    from rich.table import Table  # lazily: ~30 ms of start-up for every command

    ok = [r for r in results if r.ok]
    if ok:
        names = list(ok[0].metrics)
        table = Table(title=f"{name} ({n_queries} judged queries, {model_name})", title_justify="left")
        table.add_column("method")
        for n in names:
            table.add_column(n, justify="right")
        table.add_column("search s", justify="right")
        for r in results:
            if r.ok:
                table.add_row(r.method, *(f"{r.metrics[n]:.4f}" for n in names), f"{r.seconds:.2f}")
            else:
                table.add_row(r.method, *("failed" if i == 0 else "-" for i in range(len(names))), "-")
        print_table(out, table)
    separated = [r for r in ok if r.separation is not None]
    if separated:
        table = Table(title="answerable vs unanswerable: top-1 score", title_justify="left")
        for column in ("method", "ROC AUC", "threshold", "precision", "recall", "answerable kept"):
            table.add_column(column, justify="left" if column == "method" else "right")

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        for r in separated:
            v = r.separation.verdicts
            table.add_row(r.method, f"{r.separation.auc:.3f}", f"{v.threshold:.3f}", fmt(v.precision), fmt(v.recall),
                          fmt(v.answerable_kept))
        print_table(out, table)


def _compare_models(
    dataset: Path, data: Any, variants: list[Any], root: Path, methods: list[str], *, note: str | None,
    reranker: str | None, rerank_top: int, report: Path | None, as_json: bool, progress: bool | None, beat: Any,
) -> None:
    """``semsearch eval --models``: every method on every model, one table, one JSON document, one report."""
    from ..evaluation.comparison import run_models

    n_queries = len(data.judged_queries())

    def opened(run: Any, col: Any, folder: Path) -> None:
        beat.done()
        n = col.count()
        how = f"{n} documents with the vectors of {run.copied_from.name} (index rebuilt)" if run.copied_from else (
            f"{'reusing' if run.reused else 'indexed'} {n} documents")
        err.print(f"{run.variant.text}: {how} in {folder}; {n_queries} judged queries", highlight=False)

    runs = run_models(data, variants, root, methods, progress=progress, reranker=reranker, rerank_top=rerank_top,
                      opened=opened, step=beat.step)
    beat.done()
    if as_json:
        payload = {"dataset": str(dataset), "queries": n_queries, "note": note, "models": [r.to_dict() for r in runs]}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        _print_model_table(dataset.name, n_queries, runs)
    for run in runs:
        for r in [r for r in run.results if not r.ok]:
            err.print(f"[bold red]error:[/] {run.variant.text}: method {r.method} failed: {r.error}", highlight=False,
                      soft_wrap=True)
        if run.error:
            err.print(f"[bold red]error:[/] model {run.variant.text}: {run.error}", highlight=False, soft_wrap=True)
    if report is not None:
        from dataclasses import replace

        from ..evaluation.report import write_html_report

        rows, extra = [], {}
        for run in runs:
            for r in run.results:
                label = f"{run.variant.text} / {r.method}"
                rows.append(replace(r, method=label))
                extra[label] = _cost_cells(run, r)
        rows += [_failed_model(run) for run in runs if run.error]
        info = {"dataset": str(dataset.resolve()), "split": data.split, "documents": len(data.corpus),
                "judged queries searched": n_queries, "models": ", ".join(v.text for v in variants),
                "collections": str(root)}
        write_html_report(report, dataset.name, info, rows, note, extra=extra)
        err.print(f"report written to {report}", highlight=False)
    if not any(r.ok for run in runs for r in run.results):
        fail("no model and method could be measured; see the errors above")


_SHORT = {"index MB": "MB", "index docs/s": "docs/s", "latency ms (p50/p95)": "ms p50/p95", "search s": "batch s"}


def _cost_cells(run: Any, result: Any) -> dict[str, str]:
    """The cost columns of one (model, method) row, formatted."""
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    latency = result.latency_ms or {}
    return {
        "dim": fmt(run.dimension, "d"),
        "index MB": fmt(None if run.index_bytes is None else run.index_bytes / 1e6, ".1f"),
        "index docs/s": fmt(run.documents_per_second, ".0f"),
        "latency ms (p50/p95)": f"{latency['median']:.1f}/{latency['p95']:.1f}" if latency else "-",
        "search s": fmt(result.seconds, ".2f"),
    }


def _failed_model(run: Any) -> Any:
    from ..evaluation.runner import MethodResult

    return MethodResult(f"{run.variant.text} (model)", {}, None, error=run.error)


def _print_model_table(name: str, n_queries: int, runs: list[Any]) -> None:
    ok = [r for run in runs for r in run.results if r.ok]
    if not ok:
        return
    from rich import box

    names = list(ok[0].metrics)
    labels = _short_labels([run.variant.text for run in runs])
    # A terminal narrower than the table gets the two metrics that matter most; a pipe gets them all.
    narrow = out.is_terminal and out.width < 110 + max(map(len, labels)) and len(names) > 2
    if narrow:  # every metric does not fit beside the costs: the two that matter most (all are in --json/--report)
        names = [n for n in names if n in ("ndcg@10", "recall@100")] or names[:2]
    from rich.table import Table  # lazily: ~30 ms of start-up for every command
    table = Table(title=f"{name} ({n_queries} judged queries): models x methods", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("model", no_wrap=True)
    table.add_column("method", no_wrap=True)
    costs = list(_cost_cells(runs[0], ok[0]))
    for n in names + costs:
        table.add_column(_SHORT.get(n, n), justify="right", no_wrap=True, min_width=6)
    for run, label in zip(runs, labels):
        for r in run.results:
            cells = [f"{r.metrics[n]:.4f}" for n in names] if r.ok else ["failed", *("-" for _ in names[1:])]
            table.add_row(label, r.method, *cells, *_cost_cells(run, r).values())
        if run.error:
            table.add_row(label, "-", "failed", *("-" for _ in names[1:] + costs))
    print_table(out, table)
    out.print("MB: vector index memory; docs/s: indexing speed when the collection was built; ms: one query alone "
              "(median/p95); batch s: all queries in one call" + ("; every metric: a wider terminal, --json or "
              "--report" if narrow else ""), highlight=False, soft_wrap=True)
    if labels != [run.variant.text for run in runs]:
        out.print("models: " + "; ".join(f"{label} = {run.variant.text}" for label, run in zip(labels, runs)
                                          if label != run.variant.text), highlight=False, soft_wrap=True)


def _short_labels(texts: list[str]) -> list[str]:
    """Model folders by their last name (and variant) in the table, when that keeps them apart."""
    short = [Path(t.split("@")[0].rstrip("/")).name + (f"@{t.split('@', 1)[1]}" if "@" in t else "") for t in texts]
    return short if len(set(short)) == len(short) and all(short) else texts
