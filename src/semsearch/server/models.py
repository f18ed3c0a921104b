"""Pydantic models of every request and response of the HTTP API.

Requests forbid unknown fields (a typo like ``"top_k"`` is a 422 naming the field, not a
silently ignored option) and reject text SQLite cannot store (lone UTF-16 surrogates) at the
edge, so bad input never reaches the collection.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

SEARCH_MODES = ("dense", "lexical", "hybrid")


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


class SearchRequest(Request):
    """One query (``query``) or a batch (``queries``); results always come as one list per query."""

    query: NonEmptyText | None = Field(None, description="The text to search for.")
    queries: list[NonEmptyText] | None = Field(
        None, min_length=1, description="Several queries, searched as one batch."
    )
    k: int = Field(10, ge=1, description="Results per query (at most the server's max_k).")
    where: Metadata | None = Field(
        None, description='Metadata filter, ChromaDB style: {"lang": "en"}, {"year": {"$gte": 2020}}, {"$or": [...]}.'
    )
    mode: Literal["dense", "lexical", "hybrid"] | None = Field(
        None, description="dense (by meaning), lexical (BM25 keywords) or hybrid (both, fused). Default: hybrid."
    )
    rerank: bool | Text | None = Field(
        None, description="true: rerank with the server's cross-encoder; or the name of one the server allows."
    )
    threshold: float | Literal["auto"] | None = Field(
        None,
        description='Leave out hits whose relevance (0..1) is below this; "auto": the calibrated no-good-match line.',
    )
    where_document: Metadata | None = Field(
        None,
        description='Document-text filter: {"$contains": "FAISS"}, {"$not_contains": ...}, combined with $and / $or.',
    )
    fusion: Literal["adaptive", "rrf", "weighted"] | None = Field(
        None, description="How hybrid mode fuses dense and lexical rankings. Default: adaptive."
    )
    alpha: float | None = Field(None, ge=0, le=1, description="Dense weight of fusion=weighted. Default: 0.7.")
    rrf_k: float | None = Field(None, ge=0, description="k of reciprocal rank fusion (fusion=rrf). Default: 60.")
    candidates: int | None = Field(
        None,
        ge=1,
        description="Documents each retriever contributes to fusion (at most the server's max_candidates). "
        "Default: 100.",
    )
    rerank_top: int | None = Field(None, ge=1, description="How many candidates the cross-encoder reads. Default: 50.")
    mmr: float | None = Field(
        None, ge=0, le=1, description="Diversify: maximal marginal relevance lambda (1 = relevance only)."
    )

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
