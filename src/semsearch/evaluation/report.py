"""The HTML report of ``semsearch eval --report``: one self-contained page (charts inlined as PNG)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .runner import MethodResult

_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:64em}"
          "table{border-collapse:collapse;margin:1em 0}\n"
          "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}th{text-align:left}"
          ".best{font-weight:bold;background:#e8f4e8}\n"
          ".error{color:#a00}")


_COSTS = (
    "dim: the dimension searched. index MB: the vector index's estimated memory. index docs/s: documents indexed "
    "per second when the model's collection was built (chunking, encoding, storing). latency: one query searched "
    "alone (k=10), median/95th percentile in ms over up to 50 queries. search s: all queries in one batch."
)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidInputError("--report needs matplotlib: pip install 'semsearch[report]'") from None
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _metrics_chart(plt: Any, dataset_name: str, results: list[MethodResult]) -> str:
    names = list(results[0].metrics)
    fig, ax = plt.subplots(figsize=(2.6 + 1.4 * len(names), 4.2), dpi=110)
    width = 0.8 / len(results)
    for i, r in enumerate(results):
        xs = [j + (i - (len(results) - 1) / 2) * width for j in range(len(names))]
        bars = ax.bar(xs, [r.metrics[n] for n in names], width, label=r.method)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score (mean over searched judged queries)")
    ax.set_title(f"{dataset_name}: retrieval quality by method")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    chart = _png(fig)
    plt.close(fig)
    return chart


def _separation_chart(plt: Any, results: list[MethodResult]) -> str:
    """Per method, histograms of the top-1 scores of answerable and unanswerable queries."""
    import numpy as np

    rows = [r for r in results if r.separation is not None]
    fig, axes = plt.subplots(len(rows), 1, figsize=(7, 1.9 * len(rows) + 0.6), dpi=110, squeeze=False)
    for ax, r in zip(axes[:, 0], rows):
        sep = r.separation
        assert sep is not None
        finite = [s for s in sep.answerable + sep.unanswerable if np.isfinite(s)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
        ax.hist([s for s in sep.answerable if np.isfinite(s)], bins=bins, alpha=0.6, label="answerable (judged)")
        ax.hist([s for s in sep.unanswerable if np.isfinite(s)], bins=bins, alpha=0.6, label="unanswerable")
        ax.axvline(sep.verdicts.threshold, color="k", linestyle="--", linewidth=1, label="no-good-match threshold")
        ax.set_title(f"{r.method}: top-1 score, ROC AUC {sep.auc:.3f}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    chart = _png(fig)
    plt.close(fig)
    return chart


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_html_report(
    path: Path, dataset_name: str, info: dict[str, Any], results: list[MethodResult], note: str | None = None,
    extra: dict[str, dict[str, str]] | None = None,
) -> None:
    """Write the page: facts, the metrics table and bar chart of the methods that ran, each
    failed method with its error, and (when measured) the top-1 score distributions. ``extra``
    gives each row (by its method label) more columns after the metrics, already formatted
    (``eval --models``: dimension, index size, speed); it replaces the search seconds column.

    Raises:
        InvalidInputError: matplotlib is not installed (the message says how to install it).
    """
    plt = _pyplot()
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    facts = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in info.items())
    if note:
        facts += f"<li>note: {html.escape(note)}</li>"
    parts = [f"<h1>semsearch eval: {html.escape(dataset_name)}</h1><ul>{facts}</ul>"]
    if ok:
        names = list(ok[0].metrics)
        best = {n: max(r.metrics[n] for r in ok) for n in names}
        cells = {r.method: (extra or {}).get(r.method) or {"search s": f"{r.seconds:.2f}"} for r in ok}
        columns = list(cells[ok[0].method])
        rows = "".join(
            "<tr><th>" + html.escape(r.method) + "</th>"
            + "".join(f"<td{' class=best' if r.metrics[n] == best[n] else ''}>{r.metrics[n]:.4f}</td>" for n in names)
            + "".join(f"<td>{html.escape(cells[r.method].get(c, '-'))}</td>" for c in columns) + "</tr>"
            for r in ok
        )
        parts.append(
            f"<table><tr><th>method</th>{''.join(f'<th>{html.escape(n)}</th>' for n in names + columns)}</tr>"
            f"{rows}</table><p>Metrics follow trec_eval's definitions (graded gains; grade 0 = not relevant), averaged "
            "over the judged queries that were searched; the best value of each column is bold. Search seconds: all "
            "queries in one batch, with a warm model and an empty query-embedding cache for every method.</p>"
            '<img alt="bar chart of the metrics by method" '
            f'src="data:image/png;base64,{_metrics_chart(plt, dataset_name, ok)}">'
        )
        if extra:
            parts.append(f"<p>{_COSTS}</p>")
    if failed:
        items = "".join(f"<li><b>{html.escape(r.method)}</b>: {html.escape(r.error or '')}</li>" for r in failed)
        parts.append(f"<h2>Methods that failed</h2><ul class=error>{items}</ul>")
    separated = [r for r in ok if r.separation is not None]
    if separated:
        rows = "".join(
            f"<tr><th>{html.escape(r.method)}</th><td>{r.separation.auc:.3f}</td>"  # type: ignore[union-attr]
            f"<td>{r.separation.verdicts.threshold:.3f}</td><td>{_fmt(r.separation.verdicts.precision)}</td>"  # type: ignore[union-attr]
            f"<td>{_fmt(r.separation.verdicts.recall)}</td><td>{_fmt(r.separation.verdicts.answerable_kept)}</td></tr>"  # type: ignore[union-attr]
            for r in separated
        )
        parts.append(
            "<h2>Answerable vs unanswerable queries</h2><table><tr><th>method</th><th>ROC AUC of top-1 score</th>"
            "<th>no-good-match threshold</th><th>precision</th><th>recall</th><th>answerable kept</th></tr>"
            f"{rows}</table><p>ROC AUC: the chance that an answerable query's top-1 score is above an unanswerable "
            "one's. Precision / recall: of calling \"no good match\" when the top-1 score is below the threshold.</p>"
            f'<img alt="histograms of top-1 scores" src="data:image/png;base64,{_separation_chart(plt, separated)}">'
        )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>semsearch eval: {html.escape(dataset_name)}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
