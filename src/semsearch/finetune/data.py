"""Training data for fine-tuning: pairs/triplets files, BEIR datasets, and the held-out split.

Everything here is plain data (lists of strings and dicts), so preparing the data needs no
model and what is prepared can be saved as JSON and reused by a resumed run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, MissingPathError
from ..evaluation.beir import jsonl_objects

#: Accepted column names, first match wins; the file's own names are kept out of the model.
QUERY_COLUMNS = ("query", "anchor", "question")
POSITIVE_COLUMNS = ("positive", "pos", "document", "passage", "answer")
NEGATIVE_COLUMNS = ("negative", "neg")
PAIR_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}
#: The fewest held-out queries a run measures on: fewer give no verdict worth reporting, so at
#: least this many are held out whatever the fraction, and smaller data is refused.
MIN_HELDOUT = 5
#: Below this many judged queries a before/after verdict comes with a warning: with fewer, the
#: 95% interval of the nDCG@10 gain is often wider than the gain itself.
ADVISED_HELDOUT = 30
MIN_TRAIN_PAIRS = 2


@dataclass
class EvalSet:
    """Judged retrieval data: ``queries`` {id: text}, ``corpus`` {id: text}, ``qrels`` {qid: {doc id: grade}}."""

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass
class TrainingData:
    """What a run trains and evaluates on.

    ``train`` rows are ``[query, positive]`` or ``[query, positive, negative]``; ``heldout``
    is judged retrieval data whose queries never appear in ``train``; ``corpus`` holds every
    passage that may serve as a mined negative or an evaluation distractor; ``details`` is
    what the model card records about the data (counts, kind, method).
    """

    train: list[list[str]]
    heldout: EvalSet
    corpus: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingData:
        return cls(train=data["train"], heldout=EvalSet(**data["heldout"]), corpus=data["corpus"],
                   details=data["details"])


@dataclass
class QueryGroup:
    """One query with its relevant passages (grade > 0) and optional explicit negatives."""

    query: str
    positives: dict[str, int]  # passage text -> grade
    negatives: list[str] = field(default_factory=list)
    positive_for_eval: dict[str, int] | None = None  # when the judged text differs from the trained one (ICT)
    source: str | None = None  # the document it came from: its other passages never judge its held-out twin


def text_id(text: str) -> str:
    """A stable id for a passage: the same text always gets the same id."""
    return "p" + hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------------------
# Pairs and triplets files


def read_pairs_file(path: str | Path) -> list[QueryGroup]:
    """Read (query, positive[, negative]) rows from a JSONL, CSV or TSV file.

    Columns: ``query`` (or anchor, question), ``positive`` (or pos, document, passage, answer),
    optionally ``negative`` (or neg). Rows sharing a query become one group with several
    positives, so a query is never both trained on and held out.

    Raises:
        MissingPathError: the file does not exist.
        InvalidInputError: an unknown extension, an empty file, missing columns, a malformed
            line or an empty query/positive (the message names the file and line).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingPathError(f"{path}: no such file; give a JSONL/CSV/TSV file of query, positive[, negative] rows")
    kind = PAIR_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInputError(
            f"{path}: unknown file type {path.suffix!r}; training pairs come as .jsonl, .csv or .tsv "
            "(or give a BEIR folder or a collection)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-encode it as UTF-8") from exc
    rows = _jsonl_rows(path, text) if kind == "jsonl" else _csv_rows(path, text, "\t" if kind == "tsv" else ",")
    groups: dict[str, QueryGroup] = {}
    for number, row in rows:
        query, positive, negative = (_cell(path, number, row, names)
                                     for names in (QUERY_COLUMNS, POSITIVE_COLUMNS, NEGATIVE_COLUMNS))
        if not query or not positive:
            missing = "query" if not query else "positive"
            raise InvalidInputError(f"{path}:{number}: empty {missing}; every row needs a query and a positive text")
        group = groups.setdefault(query, QueryGroup(query, {}))
        group.positives[positive] = 1
        if negative:
            group.negatives.append(negative)
    if not groups:
        raise InvalidInputError(f"{path}: no rows; a pairs file needs query and positive columns and at least "
                                f"{MIN_TRAIN_PAIRS + MIN_HELDOUT} rows")
    return list(groups.values())


def _jsonl_rows(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    checked = False
    for number, obj in jsonl_objects(path, text):
        if not checked:
            _require_columns(path, list(obj), f"line {number}")
            checked = True
        yield number, obj


def _csv_rows(path: Path, text: str, delimiter: str) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        _require_columns(path, header, "the header line")
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InvalidInputError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}")
            yield number, dict(zip(header, row))
    except csv.Error as exc:
        kind = "TSV" if delimiter == chr(9) else "CSV"
        raise InvalidInputError(f"{path}:{reader.line_num}: malformed {kind} ({exc})") from exc


def _require_columns(path: Path, columns: Sequence[str], where: str) -> None:
    lowered = {c.lower() for c in columns}
    for role, names in (("query", QUERY_COLUMNS), ("positive", POSITIVE_COLUMNS)):
        if not lowered & set(names):
            raise InvalidInputError(
                f"{path}: no {role} column in {where} (found: {', '.join(columns) or 'none'}); a pairs file "
                f"needs columns query and positive, optionally negative ({role} may also be called "
                f"{', '.join(names[1:])})"
            )


def _cell(path: Path, number: int, row: dict[str, Any], names: Sequence[str]) -> str:
    lowered = {str(k).lower(): v for k, v in row.items()}
    for name in names:
        if name in lowered:
            value = lowered[name]
            if value is None:
                return ""
            if not isinstance(value, str):
                raise InvalidInputError(f"{path}:{number}: field {name!r} is {type(value).__name__}, not text")
            return value.strip()
    return ""


# ---------------------------------------------------------------------------------------------
# BEIR datasets


def read_beir_groups(folder: str | Path, split: str | None = None) -> tuple[list[QueryGroup], list[str]]:
    """Query groups from a BEIR folder's qrels (grade > 0 = positive) and its corpus texts.

    Returns (groups, corpus texts). Raises what :func:`semsearch.evaluation.load_beir` raises,
    and InvalidInputError when no query has a relevant document.
    """
    from ..evaluation import load_beir
    from ..evaluation.runner import document_text

    data = load_beir(folder, split)
    texts = {doc_id: document_text(doc) for doc_id, doc in data.corpus.items()}
    groups = []
    for qid, judged in data.qrels.items():
        query = (data.queries.get(qid) or "").strip()
        positives = {texts[d]: g for d, g in judged.items() if g > 0 and texts.get(d)}
        if query and positives:
            groups.append(QueryGroup(query, positives))
    if not groups:
        raise InvalidInputError(
            f"{folder}: no query in qrels/{data.split}.tsv has a relevant document in corpus.jsonl; "
            "check that the qrels ids match the corpus and queries ids"
        )
    return groups, [t for t in texts.values() if t]


# ---------------------------------------------------------------------------------------------
# Held-out split


def require_enough(groups: Sequence[QueryGroup], where: str = "") -> None:
    """Raise InvalidInputError when there are too few distinct queries to train and hold some out."""
    if len(groups) < MIN_TRAIN_PAIRS + MIN_HELDOUT:
        raise InvalidInputError(
            f"{where}only {len(groups)} distinct queries; fine-tuning needs at least {MIN_TRAIN_PAIRS + MIN_HELDOUT} "
            f"({MIN_HELDOUT} are held out to measure the model before and after, {MIN_TRAIN_PAIRS} to train on); "
            "add query-passage pairs"
        )


def split_heldout(
    groups: Sequence[QueryGroup],
    *,
    fraction: float,
    seed: int,
    eval_corpus_size: int,
    extra_corpus: Iterable[str] = (),
    max_heldout: int = 1000,
    max_pairs: int | None = None,
) -> TrainingData:
    """Hold out a fraction of the queries (whole groups) and build the training rows.

    The held-out queries are judged against their own positives plus distractors drawn from
    every other passage, up to ``eval_corpus_size`` passages in all. Training rows are one per
    (query, positive), plus the group's explicit negatives in turn.

    Raises:
        InvalidInputError: a fraction outside (0, 0.5], or too few queries to hold any out
            and still train.
    """
    if not 0 < fraction <= 0.5:
        raise InvalidInputError(f"held-out fraction {fraction!r} must be above 0 and at most 0.5 (e.g. 0.1)")
    require_enough(groups)
    rng = random.Random(seed)
    order = list(range(len(groups)))
    rng.shuffle(order)
    n_heldout = min(max_heldout, max(MIN_HELDOUT, round(len(groups) * fraction)))
    held, kept = [groups[i] for i in order[:n_heldout]], [groups[i] for i in order[n_heldout:]]

    train: list[list[str]] = []
    for group in kept:
        for i, positive in enumerate(group.positives):
            row = [group.query, positive]
            if group.negatives:
                row.append(group.negatives[i % len(group.negatives)])
            train.append(row)
    if max_pairs is not None and len(train) > max_pairs:
        train = rng.sample(train, max_pairs)
    if len(train) < MIN_TRAIN_PAIRS:
        raise InvalidInputError(f"only {len(train)} training pairs after holding out {n_heldout} queries; add more "
                                "pairs")

    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    corpus: dict[str, str] = {}
    for number, group in enumerate(held):
        qid = f"q{number}"
        queries[qid] = group.query
        judged = group.positive_for_eval if group.positive_for_eval is not None else group.positives
        qrels[qid] = {}
        for text, grade in judged.items():
            corpus[text_id(text)] = text
            qrels[qid][text_id(text)] = grade
    heldout_texts = {t for g in held for t in (g.positive_for_eval or g.positives)}
    held_sources = {g.source for g in held if g.source is not None}
    kept_positives = (p for g in kept if g.source is None or g.source not in held_sources for p in g.positives)
    pool = dict.fromkeys(
        t for t in (*kept_positives, *(n for g in groups for n in g.negatives), *extra_corpus)
        if t and t not in heldout_texts
    )
    pool_list = list(pool)
    room = max(0, eval_corpus_size - len(corpus))
    for text in rng.sample(pool_list, min(room, len(pool_list))):
        corpus[text_id(text)] = text
    details = {
        "queries": len(groups),
        "train_queries": len(kept),
        "train_rows": len(train),
        "heldout_queries": len(held),
        "heldout_corpus": len(corpus),
        "explicit_negatives": sum(len(g.negatives) for g in groups),
    }
    return TrainingData(train=train, heldout=EvalSet(queries, corpus, qrels), corpus=pool_list, details=details)
