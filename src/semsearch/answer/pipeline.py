"""ask: retrieve with the collection's own search, refuse or answer, cite, stream.

Built only on the public collection API (``search``, ``get``, ``chunks_of``, ``embedder``,
``no_match_threshold``), so every backend, and every door, answers the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ..errors import ContextOverflowError, InvalidInputError
from ..options import ASK
from .chat import ChatClient, ChatSettings
from .citations import CitationFilter
from .context import assemble_context
from .extractive import extract_answer, format_extracts
from .prompt import build_messages, says_no_answer
from .refusal import Relevance, calibrated_score, good_matches, refusal_for
from .result import NO_ANSWER, Answer, AnswerEvent, Citation, Done, Passage, Retrieved, Token

#: Tokens of passages a prompt carries by default: fits a 2,048-token model with room to answer.
DEFAULT_CONTEXT_TOKENS: int = ASK["context_tokens"].default
#: Another chunk of a hit's document is worth a passage of its own when its stored vector's cosine
#: with the question is within this of the best chunk's.
EXTRA_CHUNK_MARGIN = 0.05
#: Each retry after a context overflow keeps this share of the previous budget.
_SHRINK = 0.5
_RETRIES = 2


def ask(collection: Any, question: str, **options: Any) -> Answer:
    """Answer ``question`` from the collection's documents, with citations.

    Takes the options of :func:`stream_ask`; returns the :class:`Answer` its last event carries.
    """
    answer = None
    for event in stream_ask(collection, question, **options):
        if isinstance(event, Done):
            answer = event.answer
    assert answer is not None
    return answer


def warm_up(collection: Any) -> None:
    """Answer one question offline, so that a server's first ``ask`` pays no first-use cost (the
    sentence splitter, the sentence encoder, the chunk reads) on top of a search's."""
    ask(collection, "warm up", k=1, min_relevance=0.0)


def stream_ask(
    collection: Any,
    question: str,
    *,
    k: int = ASK["k"].default,
    llm: ChatSettings | ChatClient | str | None = None,
    context_tokens: int = ASK["context_tokens"].default,
    min_relevance: float | None = ASK["min_relevance"].default,
    relevance: Relevance | None = None,
    max_sentences: int = ASK["max_sentences"].default,
    neighbours: bool = True,
    **search_options: Any,
) -> Iterator[AnswerEvent]:
    """Answer ``question`` as a stream: :class:`Retrieved`, then :class:`Token` pieces, then :class:`Done`.

    Args:
        collection: a :class:`semsearch.Collection` (any backend).
        k: hits to retrieve; their passages fill the context best first.
        llm: None for the offline extractive answer; else an OpenAI-compatible endpoint (its
            URL, :class:`ChatSettings`, or a :class:`ChatClient` to reuse).
        context_tokens: tokens of passages the prompt may carry (counted with the
            collection's tokenizer). If the model's server still reports an overflow, the
            budget is halved and the question asked again (twice at most), before any text
            is streamed; a second ``Retrieved`` event then replaces the first.
        min_relevance: hits under this relevance (0..1) are left out; with none left, the answer
            is a refusal and no model is asked (default: the calibrated "no good match" line,
            ``NO_MATCH_THRESHOLD``, the one cut every door uses; None: the collection's
            ``no_match_threshold``).
        relevance: hits -> one relevance each (default: ``hit.score``, the calibrated relevance;
            :func:`semsearch.answer.refusal.dense_relevance` gives the dense cosine instead).
        max_sentences: sentences in an extractive answer.
        neighbours: grow each passage by its document's neighbouring chunks within the budget,
            and add other chunks of a hit's document that match the question nearly as well.
        search_options: passed to ``collection.search`` (where, where_document, mode, rerank...).

    Raises:
        InvalidInputError: an empty question, a bad option or filter (before anything is streamed).
        LLMUnavailableError, LLMTimeoutError, ContextOverflowError, LLMError: the model failed.
    """
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError("the question is empty; ask something in words")
    context_tokens = ASK["context_tokens"].check(context_tokens)
    max_sentences = ASK["max_sentences"].check(max_sentences)
    if min_relevance is not None:
        min_relevance = ASK["min_relevance"].check(min_relevance)
    if isinstance(llm, str):
        llm = ChatSettings(llm)  # a bad URL is refused before anything else happens
    started = time.perf_counter()
    timings: dict[str, float] = {}
    hits = collection.search(question, k=k, **search_options)
    timings["search"] = _ms(started)
    scored = (relevance or calibrated_score)(hits) if hits else []
    cut = collection.no_match_threshold if min_relevance is None else min_relevance
    good = good_matches(hits, scored, cut)
    if not good:
        refusal = refusal_for(question)
        yield Retrieved(hits=list(hits), passages=[])
        yield Token(refusal)
        timings["first_token"] = timings["total"] = _ms(started)
        yield Done(Answer(question, refusal, False, [], list(hits), None, timings=timings))
        return
    relevance_of = {id(h): s for h, s in zip(hits, scored)}
    documents, spans, extra = _read_documents(collection, question, good) if neighbours else ({}, {}, [])

    def context(budget: int) -> list[Passage]:
        return assemble_context(good, budget_tokens=budget, count_tokens=collection.embedder.count_tokens,
                                documents=documents, spans=spans, extra=extra, neighbours=neighbours)

    if llm is None:
        yield from _extractive(question, collection, context(context_tokens), [relevance_of[id(h)] for h in good],
                               good, max_sentences, started, timings)
        return
    yield from _generate(question, llm, context, context_tokens, started, timings)


def _extractive(question: str, collection: Any, passages: list[Passage], relevances: list[float], good: list[Any],
                max_sentences: int, started: float, timings: dict[str, float]) -> Iterator[AnswerEvent]:
    """The offline answer's events: the passages, the quoted sentences (or a refusal), the answer."""
    yield Retrieved(hits=[p.hit for p in passages], passages=passages)
    relevance_of = {id(h): r for h, r in zip(good, relevances)}
    extracts = extract_answer(question, passages, collection.embedder, [relevance_of[id(p.hit)] for p in passages],
                              max_sentences=max_sentences)
    # No sentence worth quoting (every one a heading or an instruction-like sentence): a refusal.
    text = format_extracts(extracts) if extracts else refusal_for(question)
    timings["first_token"] = _ms(started)
    yield Token(text)
    citations = _citations([e.n for e in extracts], passages)
    timings["total"] = _ms(started)
    yield Done(Answer(question, text, bool(extracts), citations, [p.hit for p in passages],
                      f"extractive:{collection.embedder.name}", grounded=bool(citations), passages=passages,
                      timings=timings))


def _generate(question: str, llm: ChatSettings | ChatClient, context: Any, budget: int, started: float,
              timings: dict[str, float]) -> Iterator[AnswerEvent]:
    owned = not isinstance(llm, ChatClient)
    client = llm if isinstance(llm, ChatClient) else ChatClient(llm)
    try:
        for attempt in range(_RETRIES + 1):
            passages = context(budget)
            yield Retrieved(hits=[p.hit for p in passages], passages=passages)
            checker = CitationFilter(p.n for p in passages)
            pieces: list[str] = []
            report: dict[str, Any] = {}
            try:
                for delta in client.stream(build_messages(question, passages), report):
                    shown = checker.feed(delta)
                    if shown:
                        timings.setdefault("first_token", _ms(started))
                        pieces.append(shown)
                        yield Token(shown)
            except ContextOverflowError as exc:
                if pieces or attempt == _RETRIES or len(passages) == 0:
                    raise ContextOverflowError(
                        f"the prompt does not fit the language model's context window even with {budget} tokens "
                        f"of passages ({exc}); lower context_tokens (--context-tokens) or use a model with a longer "
                        "context"
                    ) from None
                budget = max(64, int(budget * _SHRINK))
                continue
            rest = checker.finish()
            if rest:
                timings.setdefault("first_token", _ms(started))
                pieces.append(rest)
                yield Token(rest)
            break
        text = "".join(pieces).strip()
        citations = _citations(checker.cited, passages)
        answered = bool(text) and not says_no_answer(text)
        timings["total"] = _ms(started)
        yield Done(Answer(
            question, text or NO_ANSWER, answered, citations, [p.hit for p in passages], client.model,
            grounded=bool(citations), removed_citations=list(checker.removed), passages=passages, timings=timings,
            cut_short=report.get("finish_reason") == "length",
        ))
    finally:
        if owned:
            client.close()


def _citations(numbers: list[int], passages: list[Passage]) -> list[Citation]:
    by_n = {p.n: p for p in passages}
    out: list[Citation] = []
    for n in numbers:
        citation = Citation(n, by_n[n].id)
        if citation not in out:
            out.append(citation)
    return out


def _read_documents(collection: Any, question: str, hits: list[Any]) -> tuple[dict[str, str], dict[str, Any],
                                                                            list[tuple[Any, int]]]:
    """The hits' documents (id -> text), their chunk spans, and their other chunks worth a passage.

    The other chunks are ranked by their stored vectors' cosine with the question (the query
    vector the search just made, from the query cache): nothing is encoded for them.
    """
    import numpy as np

    ids = list(dict.fromkeys(h.id for h in hits))
    documents = {d.id: d.text for d in collection.get(ids)}
    layout = collection.chunks_of(ids, vectors=True)
    spans = {doc: chunks.spans for doc, chunks in layout.items()}
    candidates: list[tuple[float, Any, int]] = []
    several = [h for h in hits if h.id in layout and len(layout[h.id].spans) > 1 and layout[h.id].vectors is not None]
    if several:
        q = collection.embedder.encode_queries([question])[0]
        for hit in several:
            cosines = layout[hit.id].vectors @ q
            best = float(cosines[hit.chunk]) if hit.chunk < len(cosines) else float(cosines.max())
            for position in np.flatnonzero(cosines >= best - EXTRA_CHUNK_MARGIN):
                if int(position) != hit.chunk:
                    candidates.append((float(cosines[position]), hit, int(position)))
    candidates.sort(key=lambda c: -c[0])
    return documents, spans, [(hit, position) for _, hit, position in candidates]


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
