"""`semsearch eval`: index a BEIR dataset (or reuse its collection), run search methods, measure.

Metrics come from :mod:`semsearch.evaluation.metrics` (trec_eval definitions) and the
answerable/unanswerable separation from :mod:`semsearch.evaluation.separation`; this module
decides what to run, keeps one method's failure from losing the others, and times methods on
equal terms.

Timing: before a method is timed it searches (up to 64 of) the queries once, untimed, so model
loading, the encoding engine's one-time calibration, a cross-encoder's loading and any lazily
built index are charged to no method; then the query-embedding cache is emptied, so every
method that encodes queries pays for encoding all of them (none reuses vectors an earlier
method left in the cache). What is timed is ``Collection.search`` over all judged queries in
one batch, with a warm model and a cold query cache.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, SemsearchError
from .beir import BeirDataset
from .metrics import DEFAULT_METRICS, evaluate, run_from_hits
from .separation import Separation, separation, top1_scores

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
#: Queries searched once, untimed, before a method is timed (loads and warms what it uses). A
#: handful was not enough: on msmarco-5k the first method timed still ran 1.3x slower than the
#: same search later, as the first batch of full size warms the encoder's shapes and threads.
WARMUP_QUERIES = 64


@dataclass
class MethodResult:
    """One method's outcome: its mean metrics and search time, or the error that stopped it.

    ``metrics`` is empty and ``seconds`` None when ``error`` is set. ``separation`` is set
    when unanswerable questions were given.
    """

    method: str
    metrics: dict[str, float]
    seconds: float | None
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    separation: Separation | None = None
    #: Median and 95th percentile milliseconds of one query searched alone (``latency_queries``).
    latency_ms: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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


def open_collection(
    dataset: BeirDataset, folder: Path, model: str | None, progress: bool | None, *,
    dimensions: int | None = None, index: str | None = None,
) -> tuple[Any, bool]:
    """The dataset's collection at ``folder``: reused when it holds this corpus, else built
    (with ``model``, ``dimensions`` and ``index`` when given). The seconds the build took are
    recorded in the manifest (``eval_indexing``), so a reused collection still reports them.

    Returns (collection, reused). Raises InvalidInputError when the folder holds another
    corpus (it is never overwritten).
    """
    from ..collection import Collection

    fingerprint = corpus_fingerprint(dataset)
    ids = [d for d, doc in dataset.corpus.items() if document_text(doc)]  # empty documents cannot be indexed
    col = Collection(folder, model=model, progress=progress, dimensions=dimensions, index=index)
    recorded = col.manifest.get("eval_corpus")
    if recorded == fingerprint and col.count() == len(ids):
        return col, True
    if col.count() > 0:
        col.close()
        raise InvalidInputError(
            f"{folder} already holds other documents than this dataset's corpus; give --collection a new folder"
        )
    started = time.perf_counter()
    col.add([document_text(dataset.corpus[d]) for d in ids], ids=ids)
    col.flush()
    seconds = time.perf_counter() - started
    indexing = {"documents": len(ids), "seconds": seconds}
    col.record({"eval_corpus": fingerprint, "eval_indexing": indexing})
    return col, False


def run_methods(
    col: Any, dataset: BeirDataset, methods: list[str], *, k: int = 100, reranker: str | None = None,
    rerank_top: int = 50, metrics: tuple[str, ...] = DEFAULT_METRICS, unanswerable: Sequence[str] | None = None,
    threshold: float | None = None, latency_queries: int = 0, step: Callable[[str], None] | None = None,
) -> list[MethodResult]:
    """Search every judged query with each method (one batch per method) and evaluate it.

    A method that fails (a cross-encoder that cannot be loaded offline, say) gets its error in
    its MethodResult and the other methods still run. With ``unanswerable`` questions, each
    method also searches them and reports how its top-1 score separates the two sets, and the
    verdicts of ``threshold`` (default: the calibrated "no good match" threshold). With
    ``latency_queries``, that many queries are also searched one at a time (k=10, as a user
    searches) for the method's per-query latency. ``step(text)`` is told what starts (to report progress).

    Raises:
        InvalidInputError: the dataset has no query to search.
    """
    queries = dataset.judged_queries()
    qids, texts = list(queries), list(queries.values())
    if not qids:
        raise InvalidInputError("the dataset has no judged query with a text and a relevant document; check its qrels")
    if threshold is None:
        from ..retrieval.calibration import NO_MATCH_THRESHOLD

        threshold = NO_MATCH_THRESHOLD
    depth = max(k, *(int(m.split("@")[1]) for m in metrics))
    out = []
    for method in methods:
        options = dict(METHODS[method])
        if method == "rerank":
            options.update(rerank=reranker or DEFAULT_RERANKER, rerank_top=rerank_top)
        try:
            if step is not None:
                step(f"{method}: searching {len(qids):,} queries" + (
                    f" and {len(unanswerable):,} unanswerable questions" if unanswerable else ""))
            result = _run_method(col, method, options, qids, texts, dataset, depth, metrics, unanswerable, threshold)
            if latency_queries:
                if step is not None:
                    step(f"{method}: {min(latency_queries, len(texts))} queries one at a time (latency)")
                result.latency_ms = single_query_latency(col, texts[:latency_queries], options)
            out.append(result)
        except Exception as exc:  # noqa: BLE001 -- one method's failure must not lose the others' results
            out.append(MethodResult(method, {}, None, options, error=describe_error(exc)))
    return out


def _run_method(
    col: Any, method: str, options: dict[str, Any], qids: list[str], texts: list[str], dataset: BeirDataset,
    depth: int, metrics: tuple[str, ...], unanswerable: Sequence[str] | None, threshold: float,
) -> MethodResult:
    col.search(texts[:WARMUP_QUERIES], k=depth, **options)  # untimed: loads and warms what the method uses
    clear_query_cache(col)
    started = time.perf_counter()
    results = col.search(texts, k=depth, **options)
    seconds = time.perf_counter() - started
    # Ranks, not scores: after reranking, scores of reranked and first-stage hits differ in kind.
    ranked = [[(h.id, float(len(hits) - i)) for i, h in enumerate(hits)] for hits in results]
    result = MethodResult(method, evaluate(run_from_hits(qids, ranked), dataset.qrels, metrics), seconds, options)
    if unanswerable:
        others = col.search(list(unanswerable), k=depth, **options)
        result.separation = separation(top1_scores(results), top1_scores(others), threshold)
    return result


def single_query_latency(col: Any, texts: list[str], options: dict[str, Any]) -> dict[str, float]:
    """Median and p95 milliseconds of ``col.search(text, k=10)`` for each text alone, warm model, cold query cache."""
    import numpy as np

    clear_query_cache(col)
    times = []
    for text in texts:
        started = time.perf_counter()
        col.search(text, k=10, **options)
        times.append(1000 * (time.perf_counter() - started))
    return {"median": float(np.median(times)), "p95": float(np.percentile(times, 95))}


def clear_query_cache(col: Any) -> None:
    """Empty the collection's in-memory query-embedding cache, where it has one."""
    cache = getattr(getattr(col, "embedder", None), "query_cache", None)
    if cache is not None:
        cache.clear()


def describe_error(exc: BaseException) -> str:
    """A one-line account of why a method failed."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, SemsearchError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
