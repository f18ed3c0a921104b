"""BEIR datasets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` in one folder."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, MissingPathError


@dataclass
class BeirDataset:
    """A BEIR dataset: its corpus, queries and relevance judgements of one split.

    ``corpus`` maps doc id to ``{"title": str, "text": str}`` in file order; ``queries`` maps
    query id to its text; ``qrels`` maps query id to ``{doc id: grade}``.
    """

    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    folder: Path | None = None
    split: str | None = None
    qrels_file: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def judged_queries(self) -> dict[str, str]:
        """The queries ``semsearch eval`` searches, in file order: those with a query text and
        at least one relevant (grade > 0) judgement."""
        return {
            qid: text for qid, text in self.queries.items()
            if text.strip() and any(g > 0 for g in self.qrels.get(qid, {}).values())
        }

    def coverage_note(self) -> str | None:
        """One line saying which judged queries are not searched and why, or None when all are.

        Metrics are averaged over the searched queries only (trec_eval without ``-c``), so a
        query the qrels judge but the queries file lacks is left out, never counted as 0.
        """
        no_text = [q for q in self.qrels if not self.queries.get(q, "").strip()]
        no_relevant = [q for q in self.qrels if q not in no_text and not any(g > 0 for g in self.qrels[q].values())]
        parts = []
        if no_text:
            parts.append(
                f"{len(no_text)} of the {len(self.qrels)} queries judged in {self._qrels_name()} have no text in "
                "queries.jsonl"
            )
        if no_relevant:
            parts.append(f"{len(no_relevant)} judged queries have no relevant document")
        if not parts:
            return None
        return (
            "; ".join(parts)
            + f": not searched and not averaged (metrics are over the {len(self.judged_queries())} searched)"
        )

    def _qrels_name(self) -> str:
        if self.qrels_file is None:
            return "the qrels"
        return f"qrels/{self.qrels_file.name}"


def load_beir(folder: str | Path, split: str | None = None) -> BeirDataset:
    """Read a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Without ``split``, ``qrels/test.tsv`` is used when present, else the only ``.tsv`` in
    ``qrels/``. Qrels lines are ``query-id TAB corpus-id TAB score`` (a 4-column TREC line
    ``qid iter docid score`` is accepted too); a header line is accepted but not required.

    Returns:
        A BeirDataset; corpus records hold ``title`` ("" when absent) and ``text``.

    Raises:
        MissingPathError: the folder, a file or the asked split does not exist (the message
            says which files a BEIR folder holds).
        InvalidInputError: a malformed line (the message names the file and line), several
            qrels files and no ``split`` to choose among them, or a duplicate id.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MissingPathError(
            f"{root}: no such folder; a BEIR dataset folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv"
        )
    qrels_file = _qrels_path(root, split)
    corpus = _read_corpus(_required(root / "corpus.jsonl", "the documents, one JSON object per line"))
    queries = _read_queries(_required(root / "queries.jsonl", "the queries, one JSON object per line"))
    qrels = read_qrels(qrels_file)
    return BeirDataset(corpus, queries, qrels, folder=root, split=qrels_file.stem, qrels_file=qrels_file)


def _required(path: Path, what: str) -> Path:
    if not path.is_file():
        raise MissingPathError(f"{path}: not found; a BEIR folder needs {path.name} ({what})")
    return path


def _qrels_path(root: Path, split: str | None) -> Path:
    qdir = root / "qrels"
    if not qdir.is_dir():
        raise MissingPathError(f"{qdir}: not found; a BEIR folder needs a qrels/ folder with <split>.tsv files")
    available = sorted(p.stem for p in qdir.glob("*.tsv"))
    if split is not None:
        path = qdir / f"{split}.tsv"
        if not path.is_file():
            raise MissingPathError(
                f"{path}: no qrels for split {split!r}; available: {', '.join(available) or 'none'}"
            )
        return path
    if (qdir / "test.tsv").is_file():
        return qdir / "test.tsv"
    if len(available) == 1:
        return qdir / f"{available[0]}.tsv"
    if not available:
        raise MissingPathError(f"{qdir}: no .tsv file; a BEIR folder needs qrels/test.tsv (query-id, corpus-id, score)")
    raise InvalidInputError(
        f"{qdir}: several qrels files ({', '.join(available)}) and no test.tsv; choose a split"
    )


def read_jsonl_objects(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, object) of every line of a UTF-8 JSONL file (see :func:`jsonl_objects`)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-encode it as UTF-8"
        ) from exc
    yield from jsonl_objects(path, text)


def jsonl_objects(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of JSONL ``text`` read from ``path``.

    Raises:
        InvalidInputError: a line that is not JSON, or not a JSON object (named by file and line).
    """
    # Split on "\n" only: JSON strings may hold U+2028, which str.splitlines breaks on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def _record_id(path: Path, number: int, obj: dict[str, Any]) -> str:
    raw = obj.get("_id", obj.get("id"))
    if raw is None or (isinstance(raw, str) and not raw.strip()) or isinstance(raw, (bool, dict, list)):
        raise InvalidInputError(f'{path}:{number}: no usable "_id" field; BEIR lines are {{"_id": ..., "text": ...}}')
    return str(raw)


def _string_field(path: Path, number: int, obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{path}:{number}: field {name!r} is {type(value).__name__}, not text")
    return value


def _read_corpus(path: Path) -> dict[str, dict[str, str]]:
    corpus: dict[str, dict[str, str]] = {}
    for number, obj in read_jsonl_objects(path):
        doc_id = _record_id(path, number, obj)
        if doc_id in corpus:
            raise InvalidInputError(f"{path}:{number}: document id {doc_id!r} appears twice; ids must be unique")
        corpus[doc_id] = {
            "title": _string_field(path, number, obj, "title"),
            "text": _string_field(path, number, obj, "text"),
        }
    return corpus


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, obj in read_jsonl_objects(path):
        qid = _record_id(path, number, obj)
        if qid in queries:
            raise InvalidInputError(f"{path}:{number}: query id {qid!r} appears twice; ids must be unique")
        queries[qid] = _string_field(path, number, obj, "text")
    return queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read one qrels file (BEIR TSV, header line optional, or 4-column TREC).

    Returns:
        ``{query id: {doc id: grade}}``; a pair listed twice keeps its last grade.

    Raises:
        MissingPathError: the file does not exist.
        InvalidInputError: a line (other than a first-line header) with the wrong number of
            fields or a grade that is not a whole number; the message names file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: not found; qrels files hold query-id, corpus-id, score per line")
    qrels: dict[str, dict[str, int]] = {}
    first = True
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            is_first, first = first, False
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [x.strip() for x in fields]
            if len(fields) == 4:  # TREC: qid iteration docid grade
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise InvalidInputError(
                    f"{path}:{number}: expected 3 tab-separated fields (query-id, corpus-id, score), "
                    f"got {len(fields)}: {line[:80]!r}"
                )
            qid, doc_id, raw = fields
            try:
                grade = int(raw)
            except ValueError:
                # The optional header line ("query-id corpus-id score"): only the first line, and
                # only a word there, so a malformed first judgement such as "q1 d1 1.5" still fails.
                if is_first and not any(c.isdigit() for c in raw):
                    continue
                raise InvalidInputError(
                    f"{path}:{number}: score {raw!r} is not a whole number; qrels grades are integers (0 = not "
                    "relevant)"
                ) from None
            if not qid or not doc_id:
                raise InvalidInputError(f"{path}:{number}: empty query id or corpus id")
            qrels.setdefault(qid, {})[doc_id] = grade
    return qrels
