"""A search as a collection runs it: check the query, encode it, rank, and turn rankings into hits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine import Engine
from ..retrieval.options import SearchOptions
from ..retrieval.pipeline import Ranked, rank
from ..types import Hit
from ..validation import check_k, check_query_vectors, check_texts


def search(engine: Engine, embedder: Any, query: Any, k: Any, **options: Any) -> tuple[list[list[Hit]], bool]:
    """(one list of hits per query, whether a single query was given); see ``Collection.search``.

    ``embedder`` encodes query texts (``encode_queries``) and gives the model's tokenizer and device.

    Raises:
        InvalidInputError: k < 1, an empty query, a bad option or filter.
        DimensionMismatchError: a query embedding of the wrong dimension.
    """
    k = check_k(k)
    texts: list[str] | None = None
    vectors: np.ndarray | None = None
    if isinstance(query, np.ndarray):
        single = query.ndim == 1
        assert engine.manifest is not None
        vectors = check_query_vectors(query, int(engine.manifest["dimension"]))
    else:
        single = isinstance(query, str)
        texts = check_texts(query)
    opts = SearchOptions.checked(k=k, has_text=texts is not None, **options)
    if vectors is None and opts.mode != "lexical":
        vectors = embedder.encode_queries(texts)
    ranked = rank(engine, texts, vectors, opts, tokenizer=lambda: embedder.plain_tokenizer,
                  device=embedder.device if opts.rerank else None)
    return hits_of(engine, ranked), single


def hits_of(engine: Engine, ranked: Sequence[Sequence[Ranked]]) -> list[list[Hit]]:
    """The hits of rankings (one list per query), every ranked chunk read back in one call.

    A chunk deleted since it was ranked is left out.
    """
    chunks = engine.chunks(sorted({r.chunk_id for rs in ranked for r in rs}))
    return [
        [Hit(c.doc_id, float(r.score), c.text, c.metadata, c.source, c.position, c.start, c.end, dict(r.scores))
         for r in rs if (c := chunks.get(r.chunk_id)) is not None]
        for rs in ranked
    ]
