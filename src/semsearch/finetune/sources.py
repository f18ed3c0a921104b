"""Where training data comes from: a pairs file, a BEIR folder or a collection, read and prepared.

Reading (:func:`read_source`) needs no model, so bad input fails at once, before a model
loads or a folder is created. Preparing (:func:`prepare_data`) holds queries out, makes
pseudo-queries and mines negatives with the base model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, MissingPathError
from .data import EvalSet, QueryGroup, TrainingData, read_beir_groups, read_pairs_file, require_enough, split_heldout
from .negatives import MiningSettings, mine


@dataclass
class SourceData:
    """What a source holds before preparation: query groups (pairs, BEIR) or documents (collection)."""

    kind: str
    label: str
    groups: list[QueryGroup] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)  # SourceDocument, for label-free training
    passages: list[str] = field(default_factory=list)  # extra negative candidates / distractors
    chunk_size: int | None = None


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_source(train: Any) -> tuple[str, Any, dict[str, Any]]:
    """(kind, the thing itself, its identity for the resume fingerprint) of a training source.

    Kinds: "pairs" (a JSONL/CSV/TSV file), "beir" (a BEIR folder), "collection" (label-free).

    Raises:
        MissingPathError: the path does not exist.
        InvalidInputError: a folder that is neither a BEIR dataset nor a collection.
    """
    if not isinstance(train, (str, os.PathLike)):
        if hasattr(train, "get") and hasattr(train, "manifest"):
            return "collection", train, {"collection": str(getattr(train, "path", "")), "documents": train.count()}
        raise InvalidInputError(f"cannot train from {type(train).__name__}; give a pairs file, a BEIR folder or a "
                                "collection")
    path = Path(train).expanduser().resolve()
    if path.is_file():
        return "pairs", path, {"file": str(path), "sha256": _file_digest(path)}
    if not path.exists():
        raise MissingPathError(f"{path}: no such file or folder; give a pairs file (.jsonl/.csv/.tsv), a BEIR folder "
                               "or a collection")
    if (path / "collection.sqlite3").exists():
        return "collection", path, {"collection": str(path)}
    if (path / "corpus.jsonl").exists() or (path / "qrels").exists() or (path / "queries.jsonl").exists():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return "beir", path, {"beir": str(path), "files": [[str(p.relative_to(path)), p.stat().st_size] for p in files]}
    raise InvalidInputError(
        f"{path} is a folder but neither a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/) nor a semsearch "
        "collection; give a pairs file, a BEIR folder, or a collection for label-free training"
    )


def open_collection(source: Any) -> tuple[Any, bool]:
    """(collection, whether we opened it and must close it) for a path or a collection object."""
    if not isinstance(source, Path):
        return source, False
    from ..collection import Collection

    return Collection(source, create=False), True


def collection_model(source: Any) -> str:
    """The model a collection was built with."""
    col, opened = open_collection(source)
    try:
        return str(col.manifest["model"])
    finally:
        if opened:
            col.close()


def collection_texts(source: Any) -> list[str]:
    """Every document text of a collection (path or object)."""
    col, opened = open_collection(source)
    try:
        return [d.text for d in col.get(where={})]
    finally:
        if opened:
            col.close()


def read_source(kind: str, source: Any, split: str | None) -> SourceData:
    """Read a source's queries or documents; raises the loaders' clear errors on bad input."""
    label = str(getattr(source, "path", source))
    if kind == "pairs":
        groups = read_pairs_file(source)
        require_enough(groups, f"{label}: ")
        return SourceData(kind, label, groups=groups)
    if kind == "beir":
        try:
            groups, passages = read_beir_groups(source, split)
        except MissingPathError as exc:
            raise MissingPathError(
                f"{exc}. Fine-tuning on a BEIR folder needs its qrels (which documents answer which query); "
                "without judgements, index the corpus into a collection and fine-tune on that (label-free)"
            ) from exc
        require_enough(groups, f"{label}: ")
        return SourceData(kind, label, groups=groups, passages=passages)
    from .pseudo_queries import SourceDocument

    col, opened = open_collection(source)
    try:
        documents = []
        for doc in col.get(where={}):
            title = doc.metadata.get("title") if isinstance(doc.metadata, dict) else None
            title = title.strip() if isinstance(title, str) and title.strip() else None
            documents.append(SourceDocument(doc.text, title))
        chunk_size = col.manifest.get("chunk_size")
    finally:
        if opened:
            col.close()
    if not documents:
        raise InvalidInputError(f"{label}: the collection holds no documents; index some first")
    return SourceData("label-free", label, documents=documents, chunk_size=int(chunk_size) if chunk_size else None)


def prepare_data(data: SourceData, model: Any, *, negatives_from: Any, mining: MiningSettings, heldout: float,
                 eval_corpus_size: int, max_pairs: int | None, seed: int) -> TrainingData:
    """Hold queries out, make pseudo-queries (label-free) and mine negatives with the base ``model``."""
    groups, passages = data.groups, list(data.passages)
    counts = None
    if data.kind == "label-free":
        from ..ingest.chunking import Chunker
        from .pseudo_queries import pseudo_query_groups

        window = model.max_seq_length - 2
        chunker = Chunker(model.tokenizer, min(data.chunk_size or window, window), 0)

        def split_passages(texts: list[str]) -> list[list[str]]:
            return [[c.text for c in chunks] for chunks in chunker.split_many(texts)]

        groups, passages, counts = pseudo_query_groups(data.documents, split_passages, seed=seed, max_pairs=max_pairs)
        if not groups:
            raise InvalidInputError(
                f"{data.label}: no pseudo-queries could be made (documents need a title or at least two sentences)"
            )
    if negatives_from is not None:
        passages.extend(collection_texts(negatives_from))
    prepared = split_heldout(groups, fraction=heldout, seed=seed, eval_corpus_size=eval_corpus_size,
                             extra_corpus=passages, max_pairs=max_pairs)
    prepared.train, negative_counts = mine(prepared.train, prepared.corpus, model, mining)
    prepared.details.update(kind=data.kind, source=data.label, negatives=negative_counts)
    if counts is not None:
        prepared.details["pseudo_queries"] = counts
    if negatives_from is not None:
        prepared.details["negatives_from"] = str(getattr(negatives_from, "path", negatives_from))
    return prepared


def load_eval_sets(folders: Sequence[str | os.PathLike[str]]) -> dict[str, EvalSet]:
    """Judged BEIR datasets to measure before and after (full corpus, judged queries)."""
    from ..evaluation import load_beir
    from ..evaluation.runner import document_text

    sets: dict[str, EvalSet] = {}
    for folder in folders:
        data = load_beir(Path(folder))
        corpus = {d: document_text(doc) for d, doc in data.corpus.items() if document_text(doc)}
        name = Path(folder).expanduser().resolve().name
        if name == "heldout" or name in sets:
            name = f"{name}-{len(sets) + 1}"
        sets[name] = EvalSet(data.judged_queries(), corpus, data.qrels)
    return sets
