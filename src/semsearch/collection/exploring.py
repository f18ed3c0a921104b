"""What users do with a collection beyond adding and searching: ask it, find what is like a
document, its near-duplicates and its topics. Mixed into :class:`semsearch.Collection`; every
method is built on the facade (search, get, the engine's reads), so each backend has them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..options import DUPLICATES, SIMILAR, TOPICS

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ..answer.result import Answer, AnswerEvent
    from ..corpus.near_duplicates import DuplicateGroup
    from ..corpus.topic_model import Topic
    from ..engine import Engine
    from ..types import DocumentChunks, Hit


T = TypeVar("T")


class Exploring:
    """Asking, more like this, near-duplicates and topics (see the modules each delegates to).

    Each reads stored vectors: after another process re-encoded the collection it is run once
    more with the new model (``_current_model``, the facade's), never on vectors of two models.
    """

    if TYPE_CHECKING:  # the facade's (collection/reindexing.py); a stub here would shadow it
        def _current_model(self, call: Callable[[], T]) -> T: ...

    @property
    def engine(self) -> Engine:
        raise NotImplementedError  # the facade's

    def chunks_of(self, ids: Sequence[str], *, vectors: bool = False) -> dict[str, DocumentChunks]:
        """The stored chunks of these documents (unknown ids left out): their spans in position
        order and, with ``vectors``, their stored vectors; nothing is encoded. What an answer
        grows a passage by."""
        import numpy as np

        from ..types import DocumentChunks

        chunk_ids = self.engine.chunk_ids_of(list(ids))
        stored = self.engine.chunks([c for cs in chunk_ids.values() for c in cs])
        out = {doc: DocumentChunks([(stored[c].start, stored[c].end) for c in cs if c in stored])
               for doc, cs in chunk_ids.items()}
        if vectors:
            wanted = np.asarray([c for cs in chunk_ids.values() for c in cs if c in stored], dtype=np.int64)
            found, rows = self.engine.vectors(wanted)
            row_of = {int(c): i for i, c in enumerate(found)}
            for doc, cs in chunk_ids.items():
                present = [row_of[c] for c in cs if c in stored and c in row_of]
                if len(present) == len(out[doc].spans):
                    out[doc].vectors = rows[present]
        return out

    def ask(self, question: str, **options: Any) -> Answer:
        """Answer a question from the documents, with numbered citations of the hits used; see
        :func:`semsearch.answer.ask` for the options (``llm=`` an OpenAI-compatible endpoint,
        else an extractive answer; search options pass through). When no hit passes the "no
        good match" line, the answer says the documents do not answer and no model is called."""
        from ..answer import ask

        return ask(self, question, **options)

    def stream_ask(self, question: str, **options: Any) -> Iterator[AnswerEvent]:
        """:meth:`ask` as it happens: ``Retrieved`` (the passages), ``Token`` pieces of the answer,
        then ``Done`` with the :class:`~semsearch.answer.Answer` (see :func:`semsearch.answer.stream_ask`)."""
        from ..answer import stream_ask

        return stream_ask(self, question, **options)

    def similar(self, doc_id: str, k: int = 10, *, where: dict[str, Any] | str | None = None,
                query: str = "mean") -> list[Hit]:
        """The k documents most like a stored one (itself left out), best first, as hits; the
        query is the document's stored vectors (``"mean"`` of its chunks, or each of its
        ``"chunks"``), nothing is encoded.

        Raises:
            UnknownDocumentError: no document has this id.
        """
        from ..corpus.explore import similar

        k, query = SIMILAR["k"].check(k), SIMILAR["query"].check(query)
        return self._current_model(lambda: similar(self, doc_id, k, where, query=query))

    def duplicates(self, threshold: float = 0.95, *, where: dict[str, Any] | str | None = None,
                   exact: bool | None = None, text_threshold: float | None = 0.6) -> list[DuplicateGroup]:
        """Groups of near-duplicate documents, largest first, each with its ids and the cosine
        and textual similarity of every pair; every two members of a group have a cosine (of
        their mean vectors) >= ``threshold`` and a word-triple Jaccard >= ``text_threshold``
        (``None``: the cosine alone). Exact up to 20,000 documents and by an IVF index above,
        unless ``exact`` says otherwise."""
        from ..corpus.explore import duplicates

        threshold, exact = DUPLICATES["threshold"].check(threshold), DUPLICATES["exact"].check(exact)
        text_threshold = DUPLICATES["text_threshold"].check(text_threshold)
        return self._current_model(lambda: duplicates(self, threshold, where, exact, text_threshold=text_threshold))

    def topics(self, n: int | None = None, *, where: dict[str, Any] | str | None = None,
               plot: str | Path | None = None, assign: str | None = None, outliers: bool = True) -> list[Topic]:
        """The collection's topics (communities of the documents' neighbour graph, or ``n``
        k-means clusters), labelled by their most distinctive words, largest first, then the
        outlier topic (id -1) of documents that belong to none (``outliers=False``: none). With
        ``plot`` a 2-D map is drawn to that image; with ``assign`` each document's topic id
        (and label) is written into its metadata under that key, so it becomes a filter."""
        from ..corpus.explore import topics

        n, outliers = TOPICS["n"].check(n), TOPICS["outliers"].check(outliers)
        found = self._current_model(lambda: topics(self, n, where, plot=plot, outliers=outliers))
        if assign:
            self.assign_topics(found, assign, where=where)
        return found

    def assign_topics(self, found: list[Topic], key: str = "topic", *,
                      where: dict[str, Any] | str | None = None) -> int:
        """Write each document's topic id (``key``) and label (``key_label``) into its metadata, for
        the documents matching ``where``; returns how many changed. Then ``where={key: 3}`` filters
        searches to a topic.

        Raises:
            InvalidInputError: an empty key.
        """
        from ..corpus.explore import assign_topics

        return assign_topics(self, found, key, where)
