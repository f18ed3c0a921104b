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
    from ..answer.result import Answer
    from ..corpus.near_duplicates import DuplicateGroup
    from ..corpus.topic_model import Topic
    from ..types import Hit


T = TypeVar("T")


class Exploring:
    """Asking, more like this, near-duplicates and topics (see the modules each delegates to).

    Each reads stored vectors: after another process re-encoded the collection it is run once
    more with the new model (``_current_model``, the facade's), never on vectors of two models.
    """

    if TYPE_CHECKING:  # the facade's (collection/reindexing.py); a stub here would shadow it
        def _current_model(self, call: Callable[[], T]) -> T: ...

    def ask(self, question: str, **options: Any) -> Answer:
        """Answer a question from the documents, with numbered citations of the hits used; see
        :func:`semsearch.answer.ask` for the options (``llm=`` an OpenAI-compatible endpoint,
        else an extractive answer; search options pass through). When no hit passes the "no
        good match" line, the answer says the documents do not answer and no model is called."""
        from ..answer import ask

        return ask(self, question, **options)

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
                   exact: bool | None = None) -> list[DuplicateGroup]:
        """Groups of near-duplicate documents (cosine of their mean vectors >= ``threshold``),
        largest first, each with its ids and pairwise scores; exact up to 20,000 documents and
        by an IVF index above, unless ``exact`` says otherwise."""
        from ..corpus.explore import duplicates

        threshold, exact = DUPLICATES["threshold"].check(threshold), DUPLICATES["exact"].check(exact)
        return self._current_model(lambda: duplicates(self, threshold, where, exact))

    def topics(self, n: int | None = None, *, where: dict[str, Any] | str | None = None,
               plot: str | Path | None = None, assign: str | None = None) -> list[Topic]:
        """The collection's topics (k-means on document vectors, labelled by their most
        distinctive words), largest first; ``n=None`` chooses the number from the data. With
        ``plot`` a 2-D map is drawn to that image; with ``assign`` each document's topic id
        (and label) is written into its metadata under that key, so it becomes a filter."""
        from ..corpus.explore import topics

        n = TOPICS["n"].check(n)
        found = self._current_model(lambda: topics(self, n, where, plot=plot))
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
