"""Loaders of whole documents: plain text, Markdown, HTML and PDF, one Record per file."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from semsearch.errors import EmptyDocumentError, UnreadableFileError

from .files import TEXT_SUFFIXES, LoadOptions, Record, read_utf8, whole_file_record

# ---------------------------------------------------------------------------------------------
# Plain text and markdown

_FENCE = re.compile(r"^\s*(```|~~~)")


def load_text(path: Path, options: LoadOptions) -> list[Record]:
    """One Record for a .txt/.md/.markdown file; markdown's first "# " heading becomes the title."""
    text = read_utf8(path)
    kind = TEXT_SUFFIXES[path.suffix.lower()]
    metadata: dict[str, Any] = {"format": kind}
    if kind == "md" and (title := _markdown_title(text)):
        metadata["title"] = title
    return whole_file_record(path, text, metadata)


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
    return whole_file_record(path, body, metadata)


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
    """One Record for a .pdf file: the text of each page, pages separated by blank lines.

    What pypdf reports about the file (repairs, unreadable parts) is never printed on its own:
    it goes into the UnreadableFileError of a file that cannot be read, or into one
    ``warnings.warn`` naming a file that was read in spite of it.
    """
    import pypdf

    from .pdf_log import collected

    with collected() as messages:
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
                f"{path}: cannot read this PDF ({type(exc).__name__}: {exc}{_reported(messages)}); skipped — "
                "check the file opens in a PDF viewer, or re-export it"
            ) from exc
    metadata: dict[str, Any] = {"format": "pdf", "pages": len(pages)}
    if isinstance(title, str) and title.strip():
        metadata["title"] = title.strip()
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise EmptyDocumentError(
            f"{path}: PDF has no extractable text (scanned images?){_reported(messages)}; skipped — OCR it first"
        )
    if messages:
        warnings.warn(f"{path}: read in spite of problems{_reported(messages)}; some of its text may be missing",
                      UserWarning, stacklevel=2)
    return whole_file_record(path, text, metadata)


def _reported(messages: list[str], shown: int = 3) -> str:
    """``"; pypdf: first; second (+2 more)"`` for what pypdf logged, or ``""``."""
    if not messages:
        return ""
    more = f" (+{len(messages) - shown} more)" if len(messages) > shown else ""
    return "; pypdf: " + "; ".join(" ".join(m.split()) for m in messages[:shown]) + more
