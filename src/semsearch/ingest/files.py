"""What the file loaders share: the Record they produce, the options they take, and reading text.

Every failure a user can cause (binary file, malformed line...) is raised as an
InvalidInputError subclass whose one-line message names the file, the problem and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import EmptyDocumentError, UnreadableFileError

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


def read_utf8(path: Path) -> str:
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


def whole_file_record(path: Path, text: str, metadata: dict[str, Any]) -> list[Record]:
    if not text.strip():
        raise EmptyDocumentError(f"{path}: file has no text; skipped")
    return [Record(text=text, id=None, metadata=metadata, source=str(path), position=0)]
