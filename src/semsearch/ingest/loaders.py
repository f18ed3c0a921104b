"""Turn files on disk into Records: find them, hash them, and read each with its format's loader
(:mod:`.documents`: txt, md, html, pdf, one Record per file; :mod:`.structured`: csv, jsonl, one per row).

Every failure a user can cause (missing path, binary file, malformed line...) is raised as an
InvalidInputError subclass whose one-line message names the file, the problem and the fix.
`EmptyDocumentError` and `UnreadableFileError` mark files a caller indexing a whole folder
should skip with a warning rather than abort on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from semsearch.errors import EmptyDocumentError, InvalidInputError, MissingPathError, UnreadableFileError

from .documents import load_html, load_pdf, load_text
from .files import HTML_SUFFIXES, SUPPORTED_SUFFIXES, TEXT_SUFFIXES, LoadOptions, Record
from .structured import load_csv, load_jsonl, parse_scalar

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


Loader = Callable[[Path, LoadOptions], "list[Record]"]

LOADERS: dict[str, Loader] = {
    **{suffix: load_text for suffix in TEXT_SUFFIXES},
    **{suffix: load_html for suffix in HTML_SUFFIXES},
    ".pdf": load_pdf,
    ".csv": load_csv,
    ".jsonl": load_jsonl,
}


__all__ = [
    "LOADERS", "SUPPORTED_SUFFIXES", "EmptyDocumentError", "LoadOptions", "Record", "UnreadableFileError", "discover",
    "file_hash", "load_csv", "load_file", "load_html", "load_jsonl", "load_pdf", "load_text", "parse_scalar",
]
