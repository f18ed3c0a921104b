"""What users do with a collection beyond adding and searching: ask it, find what is like a
document, its near-duplicates and its topics. Mixed into :class:`semsearch.Collection`; every
method is built on the facade (search, get, the engine's reads), so each backend has them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .answer.result import Answer
    from .corpus.near_duplicates import DuplicateGroup
    from .corpus.topic_model import Topic
    from .types import Hit


class Exploring:
    """Asking, more like this, near-duplicates and topics (see the modules each delegates to)."""

    def ask(self, question: str, **options: Any) -> Answer:
        """Answer a question from the documents, with numbered citations of the hits used; see
        :func:`semsearch.answer.ask` for the options (``llm=`` an OpenAI-compatible endpoint,
        else an extractive answer; search options pass through). When no hit passes the "no
        good match" line, the answer says the documents do not answer and no model is called."""
        from .answer import ask

        return ask(self, question, **options)

    def similar(self, doc_id: str, k: int = 10, *, where: dict[str, Any] | str | None = None,
                query: str = "mean") -> list[Hit]:
        """The k documents most like a stored one (itself left out), best first, as hits; the
        query is the document's stored vectors (``"mean"`` of its chunks, or each of its
        ``"chunks"``), nothing is encoded.

        Raises:
            UnknownDocumentError: no document has this id.
        """
        from .corpus.explore import similar

        return similar(self, doc_id, k, where, query=query)

    def duplicates(self, threshold: float = 0.95, *, where: dict[str, Any] | str | None = None,
                   exact: bool | None = None, text_threshold: float | None = 0.6) -> list[DuplicateGroup]:
        """Groups of near-duplicate documents, largest first, each with its ids and the cosine
        and textual similarity of every pair; every two members of a group have a cosine (of
        their mean vectors) >= ``threshold`` and a word-triple Jaccard >= ``text_threshold``
        (``None``: the cosine alone). Exact up to 20,000 documents and by an IVF index above,
        unless ``exact`` says otherwise."""
        from .corpus.explore import duplicates

        return duplicates(self, threshold, where, exact, text_threshold=text_threshold)

    def topics(self, n: int | None = None, *, where: dict[str, Any] | str | None = None,
               plot: str | Path | None = None, assign: str | None = None, outliers: bool = True) -> list[Topic]:
        """The collection's topics (communities of the documents' neighbour graph, or ``n``
        k-means clusters), labelled by their most distinctive words, largest first, then the
        outlier topic (id -1) of documents that belong to none (``outliers=False``: none). With
        ``plot`` a 2-D map is drawn to that image; with ``assign`` each document's topic id
        (and label) is written into its metadata under that key, so it becomes a filter."""
        from .corpus.explore import assign_topics, topics

        found = topics(self, n, where, plot=plot, outliers=outliers)
        if assign:
            assign_topics(self, found, assign, where)
        return found
