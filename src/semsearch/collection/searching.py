"""A search as every door runs it: check, encode the queries, one engine call, the stages, hits.

:class:`Searcher` is the facade's search room. Python's ``Collection.search``, the CLI, the
HTTP server's batched workers and the MCP tools all end here, so they rank the same way and
give the same hits. The steps:

1. check the query and options (:class:`~semsearch.retrieval.options.SearchOptions`);
2. encode query texts, each exactly as it would be encoded alone: texts of the same token
   length share a model call (no padding, so no text's vector depends on the others), texts of
   other lengths get calls of their own (:meth:`Searcher.encode`);
3. one :meth:`~semsearch.engine.Engine.retrieve` call with the plan the options need
   (:func:`~semsearch.retrieval.pipeline.plan_for`);
4. the ranking stages on that data (:func:`~semsearch.retrieval.pipeline.rank`);
5. the hits, reading the chunks the engine did not already return (at most one more call).

When another process re-encoded the collection meanwhile, the engine says so
(EmbeddingsReplacedError): the searcher has the facade reopen itself, encodes again with the
new model and retries once, so no door ever serves stale vectors or a 5xx.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..embedding import Embedder
from ..engine import Engine
from ..errors import EmbeddingsReplacedError
from ..retrieval import calibration
from ..retrieval.options import SearchOptions
from ..retrieval.pipeline import Ranked, Reranker, plan_for, rank
from ..types import Hit, Retrieved, StoredChunk
from ..validation import check_query_vectors, check_texts


class SearchTarget(Protocol):
    """What a searcher needs of its collection: the current engine and embedder, and a way to
    reopen after another process re-encoded the collection."""

    @property
    def engine(self) -> Engine: ...

    @property
    def embedder(self) -> Embedder: ...

    def reopen(self) -> None: ...


@dataclass(frozen=True)
class EncodedQueries:
    """Query vectors and the embedder that made them (vectors of a replaced model are made again)."""

    vectors: np.ndarray
    embedder: Embedder


class Searcher:
    """Searches of one collection (see the module docstring)."""

    def __init__(self, target: SearchTarget) -> None:
        self.target = target
        #: Model calls made for queries, and queries they encoded (queries per call = how much
        #: encoding together shared; read by the server's benchmark and tests).
        self.model_calls = 0
        self.encoded_queries = 0
        self._lock = threading.Lock()

    # -- entry points ------------------------------------------------------------------------
    def search(self, query: Any, k: Any, **options: Any) -> tuple[list[list[Hit]], bool]:
        """(one list of hits per query, whether a single query was given); see ``Collection.search``.

        Raises:
            InvalidInputError: k < 1, an empty query, a bad option or filter.
            DimensionMismatchError: a query embedding of the wrong dimension.
        """
        texts, vectors, single = self.check_query(query)
        opts = SearchOptions.checked(k=k, has_text=texts is not None, **options)
        encoded = None if vectors is None else EncodedQueries(vectors, self.target.embedder)
        return self.run(texts, encoded, opts), single

    def checked(self, queries: Sequence[str], k: Any, **options: Any) -> tuple[list[str], SearchOptions]:
        """Text queries and search options as :meth:`run` takes them (options not given take their
        defaults: :data:`semsearch.options.SEARCH`).

        Raises:
            InvalidInputError: an empty query, k < 1, a bad option or filter.
        """
        texts = check_texts(list(queries))
        return texts, SearchOptions.checked(k=k, has_text=True, **options)

    def check_query(self, query: Any) -> tuple[list[str] | None, np.ndarray | None, bool]:
        """(texts, vectors, single): a string, a list of strings, or a 1-D/2-D array of embeddings."""
        if isinstance(query, np.ndarray):
            manifest = self.target.engine.manifest
            assert manifest is not None
            return None, check_query_vectors(query, int(manifest["dimension"])), query.ndim == 1
        return check_texts(query), None, isinstance(query, str)

    def run(self, texts: list[str] | None, encoded: EncodedQueries | None, opts: SearchOptions) -> list[list[Hit]]:
        """Hits for checked queries and options; ``encoded`` holds their vectors when already made
        (by :meth:`encode`, or given as embeddings). Retried once with the new model if another
        process re-encoded the collection meanwhile."""
        try:
            return self._run(texts, encoded, opts)
        except EmbeddingsReplacedError:
            if texts is None:  # embeddings given by the caller cannot be made again
                raise
            self.target.reopen()
            return self._run(texts, None, opts)

    def encode(self, texts: Sequence[str]) -> EncodedQueries:
        """The query vectors of ``texts``, each exactly what encoding it alone gives."""
        embedder = self.target.embedder
        texts = list(texts)
        out = np.empty((len(texts), embedder.dimension), dtype=np.float32)
        groups = same_length_groups(embedder, texts)
        for rows in groups:
            out[rows] = embedder.encode_queries([texts[i] for i in rows])
        with self._lock:
            self.model_calls += len(groups)
            self.encoded_queries += len(texts)
        return EncodedQueries(out, embedder)

    # -- the steps ---------------------------------------------------------------------------
    def _run(self, texts: list[str] | None, encoded: EncodedQueries | None, opts: SearchOptions) -> list[list[Hit]]:
        embedder = self.target.embedder
        vectors = None
        if opts.mode != "lexical":
            if encoded is None or (texts is not None and encoded.embedder is not embedder):
                encoded = self.encode(texts or [])
            vectors = encoded.vectors
        engine = self.target.engine
        retrieved = engine.retrieve(plan_for(texts, vectors, opts))
        manifest = engine.manifest
        assert manifest is not None
        reranker = None
        if opts.rerank:
            name, device = opts.rerank, embedder.device

            def reranker() -> Reranker:
                from ..retrieval.rerank import load_cross_encoder, rerank_heads

                model = load_cross_encoder(name, device)
                return lambda queries, heads, passages: rerank_heads(model, queries, heads, passages)

        ranked = rank(retrieved, texts, vectors, opts, tokenizer=lambda: embedder.plain_tokenizer,
                      bounds=calibration.cosine_bounds(manifest["model"]), reranker=reranker)
        return hits_of(engine, ranked, retrieved)


def same_length_groups(embedder: Embedder, texts: Sequence[str]) -> list[list[int]]:
    """Positions of ``texts`` grouped by how many tokens each is encoded as (query prompt and
    special tokens included, truncated as the model truncates): a group needs no padding."""
    if len(texts) <= 1:
        return [list(range(len(texts)))]
    prompt = embedder.prompts.get("query") or ""
    encodings = embedder.plain_tokenizer.backend.encode_batch([prompt + t for t in texts], add_special_tokens=True)
    limit = embedder.max_seq_length
    groups: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(encodings):
        groups[min(len(e), limit)].append(i)
    return list(groups.values())


def hits_of(engine: Engine, ranked: Sequence[Sequence[Ranked]], retrieved: Sequence[Retrieved] = ()) -> list[list[Hit]]:
    """The hits of rankings (one list per query), from the chunks the engine already returned and
    one read of the others. A chunk deleted since it was ranked is left out."""
    chunks: dict[int, StoredChunk] = {}
    for got in retrieved:
        chunks.update(got.chunks)
    missing = sorted({r.chunk_id for rs in ranked for r in rs} - chunks.keys())
    if missing:
        chunks.update(engine.chunks(missing))
    return [
        [Hit(c.doc_id, float(r.score), c.text, c.metadata, c.source, c.position, c.start, c.end, dict(r.scores))
         for r in rs if (c := chunks.get(r.chunk_id)) is not None]
        for rs in ranked
    ]
