"""semsearch eval: retrieval quality on judged datasets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import (
    _run,
    app,
    err,
    out,
)


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
        from ..evaluation import load_beir
        from ..evaluation_runner import (
            corpus_fingerprint,
            open_collection,
            parse_methods,
            run_methods,
            write_html_report,
        )

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
