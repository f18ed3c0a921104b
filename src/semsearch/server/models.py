"""Pydantic models of every request and response of the HTTP API.

Requests forbid unknown fields (a typo like ``"top_k"`` is a 422 naming the field, not a
silently ignored option) and reject text SQLite cannot store (lone UTF-16 surrogates) at the
edge, so bad input never reaches the collection.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..options import SEARCH, Option


def _storable(text: str) -> str:
    # JSON may carry "\ud800" escapes; SQLite and the tokenizer need real Unicode scalar values.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate (\\ud800-\\udfff); send valid Unicode text") from None
    return text


Text = Annotated[str, AfterValidator(_storable)]
NonEmptyText = Annotated[str, Field(min_length=1), AfterValidator(_storable)]
DocumentId = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_storable)]
Metadata = dict[Text, Any]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def option_field(option: Option, default: Any = ...) -> Any:
    """A request field for one of :mod:`semsearch.options`: its description and bounds (documented
    in the schema; checked by the collection, so the message is the one every door gives)."""
    return Field(option.default if default is ... else default, description=option.help,
                 json_schema_extra=option.schema() or None)


class SearchRequest(Request):
    """One query (``query``) or a batch (``queries``); results always come as one list per query."""

    # Not NonEmptyText: an empty query gets the collection's message, the one every door gives.
    query: Text | None = Field(None, description="The text to search for.")
    queries: list[Text] | None = Field(None, description="Several queries, searched as one batch.")
    k: int = option_field(SEARCH["k"])
    where: Metadata | None = option_field(SEARCH["where"])
    mode: str | None = option_field(SEARCH["mode"])
    rerank: bool | Text | None = option_field(SEARCH["rerank"])
    # A number (or numeric text) first; any other text reaches the collection's check and its message.
    threshold: float | Literal["auto"] | str | None = Field(
        None, union_mode="left_to_right", description=SEARCH["threshold"].help)
    where_document: Metadata | None = option_field(SEARCH["where_document"])
    fusion: str = option_field(SEARCH["fusion"])
    alpha: float = option_field(SEARCH["alpha"])
    rrf_k: float = option_field(SEARCH["rrf_k"])
    candidates: int = option_field(SEARCH["candidates"])
    rerank_top: int = option_field(SEARCH["rerank_top"])
    mmr: float | None = option_field(SEARCH["mmr"])

    @model_validator(mode="after")
    def _one_of_query_or_queries(self) -> SearchRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError('give exactly one of "query" (a string) or "queries" (a list of strings)')
        return self

    def query_list(self) -> list[str]:
        return [self.query] if self.query is not None else list(self.queries or [])


class DocumentsRequest(Request):
    """Documents to add: texts, with optional ids, metadatas, sources and precomputed embeddings."""

    documents: list[NonEmptyText] = Field(..., min_length=1, description="The texts; long ones are split into chunks.")
    ids: list[DocumentId] | None = Field(None, description="One id per document (default: random ids).")
    metadatas: list[Metadata | None] | None = Field(None, description="One metadata object (or null) per document.")
    sources: list[Text | None] | None = Field(
        None,
        description="A label per document saying where it came from (a URL, a file name); never read by the server.",
    )
    embeddings: list[list[float]] | None = Field(
        None, description="One vector per document, of the collection's dimension; skips encoding and chunking."
    )

    @model_validator(mode="after")
    def _lengths_match(self) -> DocumentsRequest:
        n = len(self.documents)
        for name in ("ids", "metadatas", "sources", "embeddings"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"got {n} documents but {len(values)} {name}; give one per document")
        return self


class UpsertRequest(DocumentsRequest):
    ids: list[DocumentId] = Field(..., description="One id per document: documents with these ids are replaced.")  # type: ignore[assignment]


class DeleteRequest(Request):
    ids: list[DocumentId] | None = Field(None, min_length=1, description="Ids of the documents to delete.")
    where: Metadata | None = Field(None, description="Delete every document whose metadata matches this filter.")

    @model_validator(mode="after")
    def _something_to_delete(self) -> DeleteRequest:
        if self.ids is None and self.where is None:
            raise ValueError('nothing to delete; give "ids" or "where"')
        return self


class GetRequest(Request):
    ids: list[DocumentId] | None = Field(None, min_length=1, description="Ids of the documents to return.")
    where: Metadata | None = Field(None, description="Return documents whose metadata matches this filter.")
    limit: int | None = Field(None, ge=1, description="At most this many documents (default and cap: max_ids).")

    @model_validator(mode="after")
    def _something_to_get(self) -> GetRequest:
        if self.ids is None and self.where is None:
            raise ValueError('nothing to get; give "ids" or "where"')
        return self


# -- responses -------------------------------------------------------------------------
class HitOut(BaseModel):
    id: str
    score: float = Field(description="Calibrated relevance in 0..1 (the cross-encoder's probability when reranked).")
    text: str = Field(description="The best-matching chunk of the document.")
    metadata: dict[str, Any]
    source: str | None
    chunk: int
    start: int = Field(description="Where the chunk starts in the document (characters).")
    end: int
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="Each stage's raw score and rank (dense cosine, lexical BM25, hybrid, relevance, rerank).",
    )


class QueryResult(BaseModel):
    query: str
    hits: list[HitOut]
    no_good_match: bool = Field(
        False,
        description="Nothing in the collection answers the query: no hit, or the best one below the calibrated line.",
    )


class SearchResponse(BaseModel):
    collection: str
    results: list[QueryResult] = Field(description="One entry per query, in the order asked.")
    took_ms: float


class WriteResponse(BaseModel):
    collection: str
    ids: list[str]
    count: int


class DeleteResponse(BaseModel):
    collection: str
    deleted: int


class DocumentOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]
    source: str | None


class GetResponse(BaseModel):
    collection: str
    documents: list[DocumentOut]


class CollectionInfo(BaseModel):
    name: str
    default: bool
    documents: int
    chunks: int
    model: str
    dimension: int
    index: str
    chunk_size: int
    chunk_overlap: int
    size_bytes: int | None = Field(None, description="Size on disk (local collections; a Milvus server does not say).")
    search_options: list[str] = Field(description="Which of where / mode / rerank / threshold this server supports.")
    modes: list[str]
    store_damaged: bool = Field(False, description="The store is damaged: searches may miss documents and writes "
                                                   "are refused until the server's operator repairs it.")


class CollectionList(BaseModel):
    default: str
    collections: list[CollectionInfo]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    model_loaded: bool
    collections_open: bool
    detail: str


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
