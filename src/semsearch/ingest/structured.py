"""Loaders of structured files: CSV and JSONL, one Record per row or line, sharing field handling."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from semsearch.errors import EmptyDocumentError, InvalidInputError

from .files import CSV_DELIMITERS, TEXT_OPTION_HINT, LoadOptions, Record, read_utf8

# ---------------------------------------------------------------------------------------------
# Structured files: CSV and JSONL share field handling


def _id_and_title(
    fields: dict[str, Any], options: LoadOptions
) -> tuple[str | None, str | None, str | None]:
    """Return (id, id field used, title) for a row/object; title is None when absent or empty."""
    if options.id_field is not None:
        id_key: str | None = options.id_field
    else:
        id_key = next((key for key in ("_id", "id") if key in fields), None)
    raw_id = fields.get(id_key) if id_key is not None else None
    record_id = None if raw_id is None or str(raw_id).strip() == "" else str(raw_id).strip()
    title = None
    if options.title_field is not None:
        raw_title = fields.get(options.title_field)
        if isinstance(raw_title, str) and raw_title.strip():
            title = raw_title.strip()
    return record_id, id_key, title


def _with_title(text: str, title: str | None) -> str:
    return f"{title}\n{text}" if title else text


def _missing_field(
    where: str, kind: str, name: str, available: Iterable[str], role: str = "text"
) -> str:
    names = ", ".join(repr(a) for a in available) or "none"
    fix = (
        f"choose the {kind} holding the text with {TEXT_OPTION_HINT}"
        if role == "text"
        else f"choose an existing {kind} as the {role}"
    )
    return f"{where}: no {kind} {name!r} (available: {names}); {fix}"


_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")


def parse_scalar(value: str) -> str | int | float:
    """Return a CSV cell as int or float when it spells a finite number, else unchanged.

    Leading zeros ("007", zip codes) stay strings, since turning them into 7 loses data.
    """
    stripped = value.strip()
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped) and not re.match(r"[+-]?0[0-9]", stripped):
        number = float(stripped)
        if math.isfinite(number):
            return number
    return value


def load_csv(path: Path, options: LoadOptions) -> list[Record]:
    """One Record per CSV row; position is the row's starting line (header is line 1).

    Raises InvalidInputError naming the available columns when the text (or id) column is
    missing, and naming the line of a row with too many fields or an empty text.
    """
    text = read_utf8(path)
    if not text.strip():
        raise EmptyDocumentError(f"{path}: file is empty; skipped")
    delimiter, header = _choose_delimiter(text, options.text_field)
    for wanted, role in ((options.text_field, "text"), (options.id_field, "id")):
        if wanted is not None and wanted not in header:
            raise InvalidInputError(_missing_field(str(path), "column", wanted, header, role))

    # No cell is longer than the file, and long texts are chunked anyway: lift the csv module's
    # 128 KiB default cell limit (process-wide, and only ever raised) to the file's length.
    if len(text) >= csv.field_size_limit():
        csv.field_size_limit(min(len(text) + 1, sys.maxsize))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(reader)
    records: list[Record] = []
    last_line = reader.line_num
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:  # a row the csv module rejects
            raise InvalidInputError(
                f"{path}:{last_line + 1}: cannot parse this CSV row ({exc}); "
                "fix the quoting or split very long texts into several rows"
            ) from exc
        if row is None:
            break
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise InvalidInputError(
                f"{path}:{line}: row has {len(row)} fields but the header has {len(header)}; "
                "quote values that contain the delimiter"
            )
        # Short rows (trailing cells left off) read as empty cells, like spreadsheets do.
        fields = dict(zip(header, row + [""] * (len(header) - len(row))))
        records.append(_structured_record(path, line, fields, options, parse=True))
    if not records:
        raise EmptyDocumentError(f"{path}: CSV has a header but no rows; skipped")
    return records


def _choose_delimiter(text: str, text_field: str) -> tuple[str, list[str]]:
    # The header is the most reliable witness: the delimiter that yields a header containing
    # the text column wins. csv.Sniffer guesses wrong on one-column files and on text cells
    # full of commas, so it is not used.
    headers = {
        delimiter: next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        for delimiter in CSV_DELIMITERS
    }
    for delimiter, header in headers.items():
        if text_field in header:
            return delimiter, header
    # No candidate has the column; report the split with the most columns as "available".
    return max(headers.items(), key=lambda item: len(item[1]))


def load_jsonl(path: Path, options: LoadOptions) -> list[Record]:
    """One Record per non-blank JSONL line; position is the 1-based line number.

    A BEIR corpus line ({"_id", "title", "text", "metadata"}) gives id `_id`, text
    "title\\ntext" and its `metadata` object merged into the Record's metadata.
    Raises InvalidInputError naming the line for malformed JSON, a non-object, or a missing,
    non-string or empty text field.
    """
    text = read_utf8(path)
    records: list[Record] = []
    # Split on "\n" only: JSON strings may legally hold U+2028, which str.splitlines breaks on.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "fix or remove that line"
            ) from exc
        if not isinstance(obj, dict):
            raise InvalidInputError(
                f"{where}: expected a JSON object, got {type(obj).__name__}; "
                "write one object per line"
            )
        records.append(_structured_record(path, line_number, obj, options, parse=False))
    if not records:
        raise EmptyDocumentError(f"{path}: file has no lines; skipped")
    return records


def _structured_record(
    path: Path, line: int, fields: dict[str, Any], options: LoadOptions, *, parse: bool
) -> Record:
    where = f"{path}:{line}"
    kind = "column" if parse else "field"
    if options.text_field not in fields:
        raise InvalidInputError(_missing_field(where, kind, options.text_field, fields))
    if options.id_field is not None and options.id_field not in fields:
        raise InvalidInputError(_missing_field(where, kind, options.id_field, fields, "id"))
    body = fields[options.text_field]
    if not isinstance(body, str):
        raise InvalidInputError(
            f"{where}: {kind} {options.text_field!r} is {type(body).__name__}, not text; "
            "make it a string"
        )
    if not body.strip():
        raise InvalidInputError(
            f"{where}: {kind} {options.text_field!r} is empty; fill it in or remove that "
            f"{'row' if parse else 'line'}"
        )
    record_id, id_key, title = _id_and_title(fields, options)
    metadata: dict[str, Any] = {}
    nested = fields.get("metadata")
    if not parse and isinstance(nested, dict):
        metadata.update(nested)  # BEIR keeps extra attributes in a nested "metadata" object
    for key, value in fields.items():
        if key in (options.text_field, id_key) or (key == "metadata" and isinstance(value, dict)):
            continue
        if parse:
            if value.strip() == "":
                continue  # an empty cell means "no value", not the empty string
            value = parse_scalar(value)
        metadata[key] = value
    return Record(
        text=_with_title(body, title),
        id=record_id,
        metadata=metadata,
        source=str(path),
        position=line,
    )
