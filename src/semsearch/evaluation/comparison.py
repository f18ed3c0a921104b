"""`semsearch eval --models`: one judged dataset indexed with each of several models (or smaller-vector
variants of one), every method run on each, with what each model costs beside its quality.

A model is named as ``--model`` takes it (a sentence-transformers name or a model folder, e.g. one
``semsearch finetune`` wrote), optionally with a variant:

* ``NAME@N``: vectors truncated to N dimensions (``dimensions=N``; Matryoshka models only);
* ``NAME@pcaN``: full vectors searched through a ``PCA<N>,Flat`` index (any model);
* ``default``: the default model.

Each variant gets its own cached collection (one folder per variant under the cache root, named
by the model and a hash of the variant), reused on later runs while it holds the same corpus. A
variant that differs from an earlier one only by its index (``NAME@pcaN`` after ``NAME``) starts
from a copy of that collection: the vectors are encoded once and only the index is rebuilt.
Costs reported per model: the dimension searched, the vector index's estimated RAM, the documents
indexed per second when its collection was built (chunking, encoding and storing, recorded in the
collection so a reused one still reports it), and per-query latency of each method.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..index.spec import reduced_dimension
from .beir import BeirDataset
from .runner import MethodResult, describe_error, open_collection, run_methods

#: Queries each method searches one at a time for its latency.
LATENCY_QUERIES = 50
_VARIANT = re.compile(r"^(?P<model>.+?)@(?P<pca>pca)?(?P<n>\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class ModelVariant:
    """A model as ``--models`` names it: the text given, the model (None: the default) and its variant."""

    text: str
    model: str | None
    dimensions: int | None = None
    pca: int | None = None

    @property
    def index(self) -> str | None:
        """The index spec this variant asks for (None: the collection's default)."""
        return f"PCA{self.pca},Flat" if self.pca else None


@dataclass
class ModelRun:
    """One model's collection and results; ``error`` says why it could not be measured at all."""

    variant: ModelVariant
    results: list[MethodResult] = field(default_factory=list)
    model: str | None = None
    dimension: int | None = None
    index_type: str | None = None
    index_bytes: float | None = None
    documents: int = 0
    indexing_seconds: float | None = None
    reused: bool = False
    folder: Path | None = None
    copied_from: Path | None = None  # the collection whose vectors this one started from (same model, other index)
    error: str | None = None

    @property
    def documents_per_second(self) -> float | None:
        return self.documents / self.indexing_seconds if self.indexing_seconds else None

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form of one model's run (see README, ``eval --models``)."""
        ok = [r for r in self.results if r.ok]
        return {
            "model": self.variant.text, "name": self.model, "dimension": self.dimension, "index": self.index_type,
            "index_bytes": self.index_bytes, "documents": self.documents, "indexing_seconds": self.indexing_seconds,
            "documents_per_second": self.documents_per_second, "reused": self.reused, "error": self.error,
            "collection": None if self.folder is None else str(self.folder),
            "vectors_from": None if self.copied_from is None else str(self.copied_from),
            "results": {r.method: r.metrics for r in ok}, "seconds": {r.method: r.seconds for r in ok},
            "latency_ms": {r.method: r.latency_ms for r in ok if r.latency_ms is not None},
            "errors": {r.method: r.error for r in self.results if not r.ok},
        }


def parse_models(spec: str) -> list[ModelVariant]:
    """``"default,my-model@pca128,./tuned"`` -> the variants, checked.

    Raises:
        InvalidInputError: no model, a repeated one, or a variant that is not ``@N`` / ``@pcaN``.
    """
    variants = []
    for text in (t.strip() for t in spec.split(",")):
        if not text:
            continue
        m = _VARIANT.match(text)
        if "@" in text and not m:
            raise InvalidInputError(
                f"--models: cannot read {text!r}; write NAME, NAME@N (Matryoshka truncation to N dimensions) "
                "or NAME@pcaN (a PCA<N>,Flat index)"
            )
        name = m.group("model") if m else text
        model = None if name.lower() == "default" else name
        n = int(m.group("n")) if m else None
        if n is not None and n < 1:
            raise InvalidInputError(f"--models: {text!r} asks for {n} dimensions; give a positive number")
        pca = n if m and m.group("pca") else None
        variants.append(ModelVariant(text, model, dimensions=None if pca else n, pca=pca))
    if not variants:
        raise InvalidInputError(f"no model in --models {spec!r}; use e.g. --models default,./finetuned,default@pca128")
    if len({v.text for v in variants}) != len(variants):
        raise InvalidInputError(f"a model is listed twice in --models {spec!r}")
    return variants


def variant_folder(root: Path, variant: ModelVariant) -> Path:
    """The cached collection folder of one variant under ``root``: readable name, hash of the variant."""
    model = variant.model or "default"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model.rstrip("/\\")).name or model).strip("-.")[:40]
    where = str(Path(model).resolve()) if Path(model).exists() else model  # a folder named twice is one model
    key = f"{where}\0{variant.dimensions}\0{variant.pca}"
    return root / f"{readable or 'model'}-{hashlib.blake2b(key.encode(), digest_size=4).hexdigest()}"


def run_models(
    dataset: BeirDataset, variants: list[ModelVariant], root: Path, methods: list[str], *,
    progress: bool | None = None, reranker: str | None = None, rerank_top: int = 50,
    latency_queries: int = LATENCY_QUERIES, opened: Callable[[ModelRun, Any, Path], None] | None = None,
    step: Callable[[str], None] | None = None,
) -> list[ModelRun]:
    """Index ``dataset`` with each variant (or reuse its cached collection) and run ``methods`` on it.

    ``opened(run, collection, folder)`` is called once each collection is ready, ``step(text)``
    when a step starts (both to report progress).
    A model that cannot be loaded or indexed gets its error in its ModelRun; the others still run.
    """
    def say(text: str, prefix: str = "") -> None:
        if step is not None:
            step(prefix + text)

    runs = []
    encoded: dict[tuple[str | None, int | None], Path] = {}
    for variant in variants:
        run = ModelRun(variant)
        runs.append(run)
        folder = run.folder = variant_folder(root, variant)
        same_vectors = encoded.get((variant.model, variant.dimensions))
        if same_vectors is not None and not folder.exists():
            # Another index over the same model's vectors: encode once, copy, rebuild only the index.
            shutil.copytree(same_vectors, folder)
            run.copied_from = same_vectors
        say(f"{variant.text}: opening (or indexing {len(dataset.corpus):,} documents into) {folder}")
        try:
            col, run.reused = open_collection(dataset, folder, variant.model, progress, dimensions=variant.dimensions,
                                              index=variant.index)
        except Exception as exc:  # noqa: BLE001 -- one model's failure must not lose the others' results
            run.error = describe_error(exc)
            continue
        encoded.setdefault((variant.model, variant.dimensions), folder)
        with col:
            info = col.info()
            details = info.get("index_details") or {}
            timing = col.manifest.get("eval_indexing") or {}
            run.model, run.index_type = col.manifest["model"], details.get("type")
            projected = reduced_dimension(str(run.index_type or "")) if not details.get("note") else 0  # trained PCA
            run.dimension = projected or col.dimension  # the dimension searched
            run.documents, run.indexing_seconds = int(timing.get("documents", col.count())), timing.get("seconds")
            if details.get("bytes_per_vector") is not None:
                run.index_bytes = float(details["bytes_per_vector"]) * int(details.get("vectors", 0))
            if opened is not None:
                opened(run, col, folder)
            run.results = run_methods(col, dataset, methods, reranker=reranker, rerank_top=rerank_top,
                                      latency_queries=latency_queries, step=partial(say, prefix=f"{variant.text}: "))
    return runs
