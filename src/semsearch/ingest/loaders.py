"""Turn files on disk into Records: one per document (txt, md, html, pdf) or per row/line (csv, jsonl).

Every failure a user can cause (missing path, binary file, malformed line...) is raised as an
InvalidInputError subclass whose one-line message names the file, the problem and the fix.
`EmptyDocumentError` and `UnreadableFileError` mark files a caller indexing a whole folder
should skip with a warning rather than abort on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import EmptyDocumentError, InvalidInputError, MissingPathError, UnreadableFileError

TEXT_SUFFIXES = {".txt": "txt", ".md": "md", ".markdown": "md"}
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".csv", ".jsonl"}
)
CSV_DELIMITERS = (",", ";", "\t", "|")
TEXT_OPTION_HINT = "--text-column NAME"


@dataclass
class Record:
    """One document to index.

    `source` is the absolute path of the file it came from; `position` is the 1-based line
    (JSONL) or starting line (CSV, header is line 1) within that file, and 0 for a whole file.
    `id` is None when the file supplies none and the caller must derive one.
    """

    text: str
    id: str | None
    metadata: dict[str, Any]
    source: str
    position: int


@dataclass
class LoadOptions:
    """How to read structured files and which suffixes folder discovery picks up.

    `text_field`/`id_field`/`title_field` name CSV columns or JSONL fields. With `id_field`
    None the id comes from "_id" or "id" when present. A non-empty `title_field` value is
    prepended to the text with a newline (BEIR corpora keep the title apart from the text).
    """

    text_field: str = "text"
    id_field: str | None = None
    title_field: str | None = "title"
    extensions: frozenset[str] = field(default_factory=lambda: SUPPORTED_SUFFIXES)


# ---------------------------------------------------------------------------------------------
# Discovery and hashing


def discover(paths: Iterable[str | Path], options: LoadOptions | None = None) -> list[Path]:
    """Expand files and folders into the absolute, de-duplicated list of files to load.

    Folders are walked recursively in sorted order, skipping hidden entries (.git, .semsearch...)
    and files whose suffix is not in `options.extensions`. A file named explicitly is kept
    whatever `options.extensions` says, as long as a loader exists for its suffix.

    Raises MissingPathError for a path that does not exist and InvalidInputError for an
    explicitly named file of an unsupported type.
    """
    options = options or LoadOptions()
    wanted = {suffix.lower() for suffix in options.extensions} & SUPPORTED_SUFFIXES
    found: dict[Path, None] = {}  # insertion-ordered set
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for file in _walk(path, wanted):
                found.setdefault(file, None)
        elif path.is_file():
            _require_supported(path)
            found.setdefault(path.resolve(), None)
        elif path.exists():
            raise InvalidInputError(f"{path}: not a regular file or folder; give a file or a folder")
        else:
            raise MissingPathError(f"{path}: no such file or folder; check the path")
    return list(found)


def _walk(folder: Path, wanted: set[str]) -> Iterator[Path]:
    # os.walk does not follow directory symlinks, so a link cycle cannot make this loop forever.
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            file = Path(root, name)
            if not name.startswith(".") and file.suffix.lower() in wanted and file.is_file():
                yield file.resolve()


def _require_supported(path: Path) -> None:
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        supported = " ".join(sorted(SUPPORTED_SUFFIXES))
        raise InvalidInputError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
            f"give a file ending in one of: {supported}"
        )


def file_hash(path: str | Path) -> str:
    """Return the sha256 hex digest of the file's bytes, read in blocks so large files are fine."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Dispatch


def load_file(path: str | Path, options: LoadOptions | None = None) -> list[Record]:
    """Read one file into Records, choosing the reader by suffix.

    Returns one Record per txt/md/html/pdf file, one per CSV row and one per JSONL line.
    Raises MissingPathError if the file does not exist, UnreadableFileError for binary,
    non-UTF-8, encrypted or corrupt files, EmptyDocumentError for files without text, and
    InvalidInputError for an unsupported suffix or a malformed row/line (naming its line).
    """
    options = options or LoadOptions()
    file = Path(path).expanduser()
    if not file.exists():
        raise MissingPathError(f"{file}: no such file or folder; check the path")
    if not file.is_file():
        raise InvalidInputError(f"{file}: not a regular file; give a file path")
    _require_supported(file)
    file = file.resolve()
    return LOADERS[file.suffix.lower()](file, options)


def _read_utf8(path: Path) -> str:
    """Decode a file as UTF-8 (BOM accepted), newlines normalised to "\\n"."""
    data = path.read_bytes()
    if b"\x00" in data:
        # NUL never appears in real UTF-8 text; UTF-16 files and binaries both land here.
        raise UnreadableFileError(
            f"{path}: looks like a binary file (contains NUL bytes); skipped — "
            "if it is text, save it as UTF-8"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"{path}: is not valid UTF-8 (bad byte at offset {exc.start}); skipped — "
            "convert it to UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _whole_file_record(path: Path, text: str, metadata: dict[str, Any]) -> list[Record]:
    if not text.strip():
        raise EmptyDocumentError(f"{path}: file has no text; skipped")
    return [Record(text=text, id=None, metadata=metadata, source=str(path), position=0)]


# ---------------------------------------------------------------------------------------------
# Plain text and markdown

_FENCE = re.compile(r"^\s*(```|~~~)")


def load_text(path: Path, options: LoadOptions) -> list[Record]:
    """One Record for a .txt/.md/.markdown file; markdown's first "# " heading becomes the title."""
    text = _read_utf8(path)
    kind = TEXT_SUFFIXES[path.suffix.lower()]
    metadata: dict[str, Any] = {"format": kind}
    if kind == "md" and (title := _markdown_title(text)):
        metadata["title"] = title
    return _whole_file_record(path, text, metadata)


def _markdown_title(text: str) -> str | None:
    in_fence = False
    for line in text.split("\n"):
        # A "# comment" inside a fenced code block is code, not a heading.
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and line.startswith("# "):
            return line[2:].strip().rstrip("#").strip() or None
    return None


# ---------------------------------------------------------------------------------------------
# HTML

_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section "
    "summary table tbody td tfoot th thead tr ul".split()
)
# <head> itself is not dropped: html.parser does not close it implicitly, so in sloppy pages
# without </head> the whole body sits inside it. <title> goes; it is re-added in front.
_DROPPED_TAGS = ("script", "style", "noscript", "template", "title")
# Private-use characters mark structure while bs4 flattens the tree; they never occur in
# real text we care about and survive get_text() untouched.
_PARAGRAPH, _LINE = "\ue000", "\ue001"


def load_html(path: Path, options: LoadOptions) -> list[Record]:
    """One Record for an .html/.htm file: visible text, paragraphs kept, <title> as metadata."""
    from bs4 import BeautifulSoup  # bs4 is slow to import; only pay for it when HTML shows up

    data = path.read_bytes()
    if b"\x00" in data:
        raise UnreadableFileError(
            f"{path}: looks like a binary file (contains NUL bytes); skipped — "
            "if it is HTML, save it as UTF-8"
        )
    # Bytes, not str: bs4 then honours <meta charset> and falls back to detection.
    soup = BeautifulSoup(data, "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(_PARAGRAPH)
        tag.insert_after(_PARAGRAPH)
    for tag in soup.find_all("br"):
        tag.replace_with(_LINE)
    body = _collapse_html_whitespace(soup.get_text())

    metadata: dict[str, Any] = {"format": "html"}
    if title:
        metadata["title"] = title
        if not body.startswith(title):
            body = f"{title}\n{body}" if body else title
    return _whole_file_record(path, body, metadata)


def _collapse_html_whitespace(raw: str) -> str:
    paragraphs = []
    for block in raw.split(_PARAGRAPH):
        lines = (" ".join(line.split()) for line in block.split(_LINE))
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


# ---------------------------------------------------------------------------------------------
# PDF


def load_pdf(path: Path, options: LoadOptions) -> list[Record]:
    """One Record for a .pdf file: the text of each page, pages separated by blank lines."""
    import pypdf

    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFileError(
                f"{path}: PDF is encrypted with a password; skipped — save an unencrypted copy"
            )
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except UnreadableFileError:
        raise
    except Exception as exc:  # pypdf raises many exception types on malformed input
        raise UnreadableFileError(
            f"{path}: cannot read this PDF ({type(exc).__name__}: {exc}); skipped — "
            "check the file opens in a PDF viewer, or re-export it"
        ) from exc
    metadata: dict[str, Any] = {"format": "pdf", "pages": len(pages)}
    if isinstance(title, str) and title.strip():
        metadata["title"] = title.strip()
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise EmptyDocumentError(
            f"{path}: PDF has no extractable text (scanned images?); skipped — OCR it first"
        )
    return _whole_file_record(path, text, metadata)


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
    text = _read_utf8(path)
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
    text = _read_utf8(path)
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


Loader = Callable[[Path, LoadOptions], "list[Record]"]

LOADERS: dict[str, Loader] = {
    **{suffix: load_text for suffix in TEXT_SUFFIXES},
    **{suffix: load_html for suffix in HTML_SUFFIXES},
    ".pdf": load_pdf,
    ".csv": load_csv,
    ".jsonl": load_jsonl,
}
