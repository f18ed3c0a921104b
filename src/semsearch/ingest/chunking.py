"""Split document text into token-bounded chunks that the embedding model sees whole.

Chunk sizes count the model tokenizer's tokens *without* special tokens ([CLS]/[SEP]), so a
chunk_size of (max_seq_length - 2) fits the model exactly. Splitting prefers paragraph, then
line, then sentence, then word boundaries (semantic-text-splitter does the packing).

A heading never makes a chunk of its own, nor ends one: a long text is first cut before each
heading (:mod:`.headings`), consecutive sections that fit together share a chunk, and a
section too long for one chunk starts its first chunk with its heading (the text after it is
split to leave the heading room). A hit is then always text, with the title it sits under.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from semantic_text_splitter import TextSplitter

from ..embedding.tokens import PlainTokenizer
from ..errors import InvalidInputError
from .headings import Section, sections

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
        self._splitters: dict[int, TextSplitter] = {}  # smaller capacities, for a heading's first chunk

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
            for index, chunks in zip(long_indices, self._split_long([texts[i] for i in long_indices])):
                result[index] = chunks
        return result

    def _split_long(self, texts: list[str]) -> list[list[Chunk]]:
        """Chunks of texts longer than one chunk: by sections, so that every heading stays with its text."""
        plans = [sections(text) for text in texts]
        counts = iter(self.count_tokens([text[s.start:s.end] for text, plan in zip(texts, plans) for s in plan]))
        packed = [self._pack(text, plan, [next(counts) for _ in plan]) for text, plan in zip(texts, plans)]
        # Sections too long for one chunk go through the splitter in one parallel call.
        long = [(text, group[0]) for text, groups in zip(texts, packed) for group, fits in groups if not fits]
        split = iter(self._splitter.chunk_all_indices([text[s.start:s.end] for text, s in long]))
        out: list[list[Chunk]] = []
        for text, groups in zip(texts, packed):
            chunks: list[Chunk] = []
            for group, fits in groups:
                first, last = group[0], group[-1]
                if fits:
                    piece = _whole(text[first.start:last.end])
                    chunks.append(Chunk(piece.text, first.start + piece.start, first.start + piece.end, 0))
                else:
                    pieces = [Chunk(p, first.start + o, first.start + o + len(p), 0) for o, p in next(split)]
                    chunks.extend(self._with_heading(text, first, pieces))
            out.append([Chunk(c.text, c.start, c.end, position) for position, c in enumerate(chunks)])
        return out

    def _pack(self, text: str, plan: list[Section], counts: list[int]) -> list[tuple[list[Section], bool]]:
        """Consecutive sections grouped while their joined text fits in one chunk; each group says if it fits."""
        groups: list[tuple[list[Section], bool]] = []
        total = 0
        for section, count in zip(plan, counts):
            fits = count <= self.chunk_size
            if fits and groups and groups[-1][1] and total + count <= self.chunk_size:
                joined = self.count_tokens([text[groups[-1][0][0].start:section.end]])[0]
                if joined <= self.chunk_size:
                    groups[-1][0].append(section)
                    total = joined
                    continue
            groups.append(([section], fits))
            total = count
        return groups

    def _with_heading(self, text: str, section: Section, chunks: list[Chunk]) -> list[Chunk]:
        """A long section's chunks, its heading starting the first one (when the heading leaves room)."""
        if not section.headed or not chunks or chunks[0].end > section.heading_end:
            return chunks
        after = text[section.heading_end:section.end]
        body = section.heading_end + len(after) - len(after.lstrip())
        heading_tokens = self.count_tokens([text[section.start:section.heading_end]])[0]
        room = self.chunk_size - heading_tokens - 2  # the line break between them may cost a token or two
        for _ in range(3):
            if room < MIN_CHUNK_SIZE:
                return chunks  # a heading nearly as long as a chunk: it keeps one to itself
            pieces = self._spans(self._splitter_of(room), text, body, section.end)
            head = _whole(text[section.start:pieces[0].end])
            head = Chunk(head.text, section.start + head.start, section.start + head.end, 0)
            excess = self.count_tokens([head.text])[0] - self.chunk_size
            if excess <= 0:
                rest = self._spans(self._splitter, text, pieces[1].start, section.end) if len(pieces) > 1 else []
                return [head, *rest]
            room -= excess
        return chunks

    def _splitter_of(self, capacity: int) -> TextSplitter:
        if capacity not in self._splitters:
            self._splitters[capacity] = TextSplitter.from_huggingface_tokenizer(
                self._tokenizer.backend, capacity=capacity, overlap=min(self.overlap, capacity // 2))
        return self._splitters[capacity]

    @staticmethod
    def _spans(splitter: TextSplitter, text: str, start: int, end: int) -> list[Chunk]:
        return [Chunk(piece, start + offset, start + offset + len(piece), 0)
                for offset, piece in splitter.chunk_indices(text[start:end])]


def _whole(text: str) -> Chunk:
    stripped = text.strip()
    start = len(text) - len(text.lstrip())
    return Chunk(text=stripped, start=start, end=start + len(stripped), position=0)
