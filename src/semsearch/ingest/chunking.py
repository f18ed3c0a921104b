"""Split document text into token-bounded chunks that the embedding model sees whole.

Chunk sizes count the model tokenizer's tokens *without* special tokens ([CLS]/[SEP]), so a
chunk_size of (max_seq_length - 2) fits the model exactly. Splitting prefers paragraph, then
line, then sentence, then word boundaries (semantic-text-splitter does the packing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from semantic_text_splitter import TextSplitter

from ..embedding.tokens import PlainTokenizer
from ..errors import InvalidInputError

MIN_CHUNK_SIZE = 16


def check_chunking(chunk_size: object, overlap: object) -> None:
    """Raise InvalidInputError unless ``chunk_size`` >= MIN_CHUNK_SIZE and 0 <= ``overlap`` < ``chunk_size``."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < MIN_CHUNK_SIZE:
        raise InvalidInputError(
            f"chunk size {chunk_size!r} is too small; use an integer of at least {MIN_CHUNK_SIZE} tokens"
        )
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < chunk_size:
        raise InvalidInputError(
            f"chunk overlap {overlap!r} must be an integer from 0 to {chunk_size - 1} "
            f"(below the chunk size {chunk_size}); lower the overlap"
        )


@dataclass
class Chunk:
    """A piece of a document.

    `start`/`end` are character (code point) offsets into the text given to the Chunker, and
    `original[start:end] == text` holds exactly: chunks carry no leading or trailing whitespace.
    `position` is the chunk's 0-based index within its document.
    """

    text: str
    start: int
    end: int
    position: int


class Chunker:
    """Token-aware splitter bound to one model's tokenizer.

    `tokenizer` is a transformers tokenizer (as in `SentenceTransformer(...).tokenizer`), a
    `tokenizers.Tokenizer` or a PlainTokenizer; the chunker counts with a private copy, so
    the model's tokenizer is never changed. Chunks hold at most `chunk_size` tokens (special
    tokens not counted). Consecutive chunks share at most `overlap` tokens: the splitter
    overlaps whole sentences when they fit in the budget, so the overlap is an upper bound,
    not a guarantee — a boundary sentence longer than `overlap` tokens is not repeated.

    Raises InvalidInputError if chunk_size < MIN_CHUNK_SIZE or overlap is not in [0, chunk_size).
    """

    def __init__(self, tokenizer: Any, chunk_size: int, overlap: int) -> None:
        check_chunking(chunk_size, overlap)
        self.chunk_size = chunk_size
        self.overlap = overlap
        self._tokenizer = PlainTokenizer(tokenizer)
        self._splitter = TextSplitter.from_huggingface_tokenizer(
            self._tokenizer.backend, capacity=chunk_size, overlap=overlap
        )

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Return each text's token count, without special tokens and without truncation."""
        return self._tokenizer.count(texts)

    def split(self, text: str) -> list[Chunk]:
        """Return the chunks of one text in order; a blank text gives no chunks."""
        return self.split_many([text])[0]

    def split_many(self, texts: Sequence[str]) -> list[list[Chunk]]:
        """Return the chunks of each text, in input order; a blank text gives an empty list.

        Texts that already fit in chunk_size become one chunk without running the splitter:
        one parallel batch-tokenize decides, which keeps short-passage corpora fast.
        """
        texts = list(texts)
        result: list[list[Chunk]] = [[] for _ in texts]
        long_indices: list[int] = []
        for index, (text, count) in enumerate(zip(texts, self.count_tokens(texts))):
            if not text.strip():
                continue
            if count <= self.chunk_size:
                result[index] = [_whole(text)]
            else:
                long_indices.append(index)
        if long_indices:
            pieces = self._splitter.chunk_all_indices([texts[i] for i in long_indices])
            for index, spans in zip(long_indices, pieces):
                result[index] = [
                    Chunk(text=piece, start=start, end=start + len(piece), position=position)
                    for position, (start, piece) in enumerate(spans)
                ]
        return result


def _whole(text: str) -> Chunk:
    stripped = text.strip()
    start = len(text) - len(text.lstrip())
    return Chunk(text=stripped, start=start, end=start + len(stripped), position=0)
