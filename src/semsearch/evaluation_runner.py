"""`semsearch eval`: index a BEIR dataset (or reuse its collection), run search methods, report.

Metrics come from :mod:`semsearch.evaluation` (trec_eval definitions); this module only
decides what to run and how to show it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidInputError
from .evaluation import DEFAULT_METRICS, BeirDataset, evaluate, run_from_hits

#: Method name -> Collection.search options (rerank adds the cross-encoder on top of hybrid).
METHODS: dict[str, dict[str, Any]] = {
    "dense": {"mode": "dense"},
    "lexical": {"mode": "lexical"},
    "hybrid": {"mode": "hybrid"},
    "rrf": {"mode": "hybrid", "fusion": "rrf"},
    "weighted": {"mode": "hybrid", "fusion": "weighted"},
    "rerank": {"mode": "hybrid"},
}
DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"


@dataclass
class MethodResult:
    """One method's mean metrics over the judged queries, and how long its searches took."""

    method: str
    metrics: dict[str, float]
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)


def parse_methods(spec: str) -> list[str]:
    """``"dense,lexical,hybrid"`` -> the method names, checked.

    Raises:
        InvalidInputError: an unknown or repeated method.
    """
    names = [m.strip().lower() for m in spec.split(",") if m.strip()]
    if not names:
        raise InvalidInputError(f"no methods in {spec!r}; use e.g. dense,lexical,hybrid")
    for name in names:
        if name not in METHODS:
            raise InvalidInputError(f"unknown method {name!r} in --compare; use some of {', '.join(METHODS)}")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"a method is listed twice in {spec!r}")
    return names


def document_text(doc: dict[str, str]) -> str:
    """A BEIR document as indexed: its title (when it has one) before its text."""
    title, text = (doc.get("title") or "").strip(), (doc.get("text") or "").strip()
    return f"{title}\n{text}" if title and text else (title or text)


def corpus_fingerprint(dataset: BeirDataset) -> str:
    """A hash of every document id and text: equal fingerprints mean the same corpus."""
    h = hashlib.blake2b(digest_size=16)
    for doc_id, doc in dataset.corpus.items():
        h.update(doc_id.encode("utf-8") + b"\0" + document_text(doc).encode("utf-8") + b"\0")
    return h.hexdigest()


def open_collection(dataset: BeirDataset, folder: Path, model: str | None, progress: bool | None) -> tuple[Any, bool]:
    """The dataset's collection at ``folder``: reused when it holds this corpus, else built.

    Returns (collection, reused). Raises InvalidInputError when the folder holds another
    corpus (it is never overwritten).
    """
    from .collection import Collection

    fingerprint = corpus_fingerprint(dataset)
    col = Collection(folder, model=model, progress=progress)
    recorded = col.manifest.get("eval_corpus")
    if recorded == fingerprint and col.count() == len(dataset.corpus):
        return col, True
    if col.count() > 0:
        col.close()
        raise InvalidInputError(
            f"{folder} already holds other documents than this dataset's corpus; give --collection a new folder"
        )
    ids = [d for d, doc in dataset.corpus.items() if document_text(doc)]
    col.add([document_text(dataset.corpus[d]) for d in ids], ids=ids)
    col.engine.update_manifest({"eval_corpus": fingerprint})
    col.flush()
    return col, False


def run_methods(
    col: Any, dataset: BeirDataset, methods: list[str], *, k: int = 100, reranker: str | None = None,
    rerank_top: int = 50, metrics: tuple[str, ...] = DEFAULT_METRICS,
) -> list[MethodResult]:
    """Search every judged query with each method (one batch per method) and evaluate it."""
    queries = dataset.judged_queries()
    qids, texts = list(queries), list(queries.values())
    if not qids:
        raise InvalidInputError("the dataset has no judged query with a relevant document; check its qrels")
    depth = max(k, *(int(m.split("@")[1]) for m in metrics))
    out = []
    for method in methods:
        options = dict(METHODS[method])
        if method == "rerank":
            options.update(rerank=reranker or DEFAULT_RERANKER, rerank_top=rerank_top)
        started = time.perf_counter()
        results = col.search(texts, k=depth, **options)
        seconds = time.perf_counter() - started
        # Ranks, not scores: after reranking, scores of reranked and first-stage hits differ in kind.
        ranked = [[(h.id, float(len(hits) - i)) for i, h in enumerate(hits)] for hits in results]
        out.append(MethodResult(method, evaluate(run_from_hits(qids, ranked), dataset.qrels, metrics), seconds, options))
    return out


def write_html_report(path: Path, dataset_name: str, info: dict[str, Any], results: list[MethodResult]) -> None:
    """A self-contained HTML page: the metrics table and a grouped bar chart (matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidInputError("--report needs matplotlib: pip install 'semsearch[report]'") from None
    names = list(results[0].metrics)
    fig, ax = plt.subplots(figsize=(2.6 + 1.4 * len(names), 4.2), dpi=110)
    width = 0.8 / len(results)
    for i, r in enumerate(results):
        xs = [j + (i - (len(results) - 1) / 2) * width for j in range(len(names))]
        bars = ax.bar(xs, [r.metrics[n] for n in names], width, label=r.method)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score (mean over judged queries)")
    ax.set_title(f"{dataset_name}: retrieval quality by method")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    chart = base64.b64encode(buf.getvalue()).decode("ascii")
    best = {n: max(r.metrics[n] for r in results) for n in names}
    rows = "".join(
        "<tr><th>" + html.escape(r.method) + "</th>"
        + "".join(
            f"<td{' class=best' if r.metrics[n] == best[n] else ''}>{r.metrics[n]:.4f}</td>" for n in names
        )
        + f"<td>{r.seconds:.2f}</td></tr>"
        for r in results
    )
    facts = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in info.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>semsearch eval: {html.escape(dataset_name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .7em;text-align:right}}th{{text-align:left}}.best{{font-weight:bold;background:#e8f4e8}}</style>
</head><body><h1>semsearch eval: {html.escape(dataset_name)}</h1><ul>{facts}</ul>
<table><tr><th>method</th>{''.join(f'<th>{html.escape(n)}</th>' for n in names)}<th>search s</th></tr>{rows}</table>
<p>Metrics follow trec_eval's definitions (graded gains; grade 0 = not relevant); the best value of each column is bold.</p>
<img alt="bar chart of the metrics by method" src="data:image/png;base64,{chart}"></body></html>"""
    path.write_text(page, encoding="utf-8")
