"""The data that crosses boundaries: what users get back (hits, documents, reports) and what the
collection facade and its storage engines hand each other (rows, chunks, candidates).

Plain dataclasses with no behaviour beyond conversion, so every layer can import them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:  # annotations only: importing numpy costs a CLI ~0.1 s it may not need
    import numpy as np

    from .filters import Node


@dataclass
class Hit:
    """One search result. ``score`` is a similarity: higher is better, always."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    source: str | None
    chunk: int = 0
    start: int = 0
    end: int = 0
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Document:
    """A stored document, as ``get`` returns it."""

    id: str
    text: str
    metadata: dict[str, Any]
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexReport:
    """What ``index_files`` did."""

    files_added: int = 0
    files_replaced: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    files_resumed: int = 0
    documents: int = 0
    documents_unchanged: int = 0
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ReindexReport:
    """What ``Collection.reindex`` did: the model and dimension now in use, the chunks re-encoded
    (``resumed`` of them were already encoded by an interrupted earlier run), and how long it took.
    ``rechunked``: the documents were cut again from their stored text into chunks of at most
    ``chunk_size`` tokens (the new model reads less than the old chunks held, or another size was asked)."""

    model: str
    dimension: int
    chunks: int = 0
    encoded: int = 0
    resumed: int = 0
    truncated_chunks: int = 0  # chunks longer than the new model reads (their ends are not encoded)
    index: str = ""
    changed: bool = True
    seconds: float = 0.0
    chunk_size: int | None = None
    rechunked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LostDocument:
    """A document whose stored row could not be read back from a damaged store.

    ``id`` is None when even its id was unreadable (then ``row`` is all that is known);
    ``source`` is the file it was indexed from, when that is known.
    """

    id: str | None
    source: str | None = None
    row: int | None = None


@dataclass
class StoreSalvage:
    """What the engine's repair of a damaged store did (see ``RepairReport`` for the whole repair).

    ``to_encode`` are documents whose text, metadata and source survived but some of whose
    chunks (vectors) did not: the collection encodes them again from their stored text.
    ``lost`` are documents whose row is gone. ``damaged_copy`` is where the damaged file was kept.
    """

    repaired: bool
    problems: list[str] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    to_encode: list[str] = field(default_factory=list)
    lost: list[LostDocument] = field(default_factory=list)
    damaged_copy: str | None = None
    source_hashes: dict[str, str] = field(default_factory=dict)  # recorded hashes of the lost documents' files
    notes: list[str] = field(default_factory=list)


@dataclass
class RepairReport:
    """What ``Collection.repair`` did to a damaged store.

    ``documents`` are the documents the repaired store holds; ``encoded_again`` those whose
    vectors were lost and were encoded again from their stored text; ``restored_from_files``
    lost documents indexed again from their source files; ``lost`` the ids still missing (add
    them again yourself), ``lost_without_id`` how many lost documents had an unreadable id too.
    """

    repaired: bool
    problems: list[str] = field(default_factory=list)
    documents: int = 0
    encoded_again: list[str] = field(default_factory=list)
    restored_from_files: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    lost_without_id: int = 0
    lost_sources: dict[str, str | None] = field(default_factory=dict)  # id -> its file, for the lost ones
    damaged_copy: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChunkRow:
    """One chunk to store: where it sits in its document (character offsets) and its embedding."""

    position: int
    start: int
    end: int
    embedding: np.ndarray | None = None


@dataclass
class DocumentRow:
    """One document to store with its chunks (whose embeddings are filled in before writing)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    chunks: list[ChunkRow] = field(default_factory=list)


@dataclass
class DocumentChunks:
    """A stored document's chunks in position order: their (start, end) character offsets into its
    text and, when asked for, their stored vectors (one row per chunk)."""

    spans: list[tuple[int, int]]
    vectors: np.ndarray | None = None


@dataclass
class StoredChunk:
    """A chunk as read back for a search hit: its text and its document's id, metadata and source."""

    chunk_id: int
    doc_id: str
    text: str
    metadata: dict[str, Any]
    source: str | None
    position: int
    start: int
    end: int


@dataclass
class Candidate:
    """A document found by one retriever, through its best-scoring chunk."""

    doc_id: str
    chunk_id: int
    score: float


@dataclass
class TermStatistics:
    """What adaptive fusion reads to tell how much of a query the best lexical hit matched:
    how many chunks contain each query term, how many chunks there are (0 = unknown: every
    term weighs the same), and the terms of the hit's chunk."""

    frequencies: dict[str, int]
    total: int
    hit_terms: set[str]


@dataclass(frozen=True)
class FileState:
    """What to record about an indexed file: its content hash and, once every document of the
    file is written, the ids of all of them (documents of that source not among them are removed)."""

    digest: str
    ids: frozenset[str] | None = None


@dataclass(frozen=True)
class RetrievalPlan:
    """What one search needs from the engine, asked in one call (:meth:`semsearch.engine.Engine.retrieve`).

    ``texts`` and/or ``vectors`` hold the queries (one entry or row each). The engine returns,
    per query, the ``dense`` best documents by the vector index and the ``lexical`` best by BM25
    (0: that retriever does not run), each through its best chunk, the true top-n among the
    documents matching ``where``; with ``statistics`` the query terms' document frequencies and
    the terms of BM25's best hit; the stored vectors of the candidates named by ``vectors_of``
    ("lexical": those only BM25 found, "all", "none"); with ``chunks`` every candidate's chunk.
    """

    texts: Sequence[str] | None = None
    vectors: np.ndarray | None = None
    where: Node | None = None
    dense: int = 0
    lexical: int = 0
    statistics: bool = False
    vectors_of: str = "none"
    chunks: bool = False

    @property
    def queries(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.vectors) if self.vectors is not None else 0


@dataclass
class Retrieved:
    """One query's candidates and what the ranking stages read about them (see :class:`RetrievalPlan`).

    An engine may return more than asked (e.g. chunks its search returned anyway): stages use
    what is there and the facade reads what is missing.
    """

    dense: list[Candidate] = field(default_factory=list)
    lexical: list[Candidate] = field(default_factory=list)
    statistics: TermStatistics | None = None
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    chunks: dict[int, StoredChunk] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """A filter as one engine prepared it for one search (each engine subclasses it).

    ``empty`` says that nothing matches, so no retriever needs to run.
    """

    empty: bool = False


__all__ = [
    "Candidate",
    "ChunkRow",
    "Document",
    "DocumentRow",
    "FileState",
    "Hit",
    "IndexReport",
    "ReindexReport",
    "RetrievalPlan",
    "Retrieved",
    "Scope",
    "StoredChunk",
    "TermStatistics",
]


class SearchArguments(TypedDict, total=False):
    """The keyword arguments of :meth:`semsearch.Collection.search`, for type checkers (what each
    does, its default and bounds: :data:`semsearch.options.SEARCH`; checked, they become a
    :class:`semsearch.retrieval.options.SearchOptions`)."""

    where: dict[str, Any] | str | None
    where_document: dict[str, Any] | str | None
    mode: str | None
    fusion: str
    alpha: float
    rrf_k: float
    candidates: int
    rerank: str | None
    rerank_top: int
    threshold: float | str | None
    mmr: float | None
