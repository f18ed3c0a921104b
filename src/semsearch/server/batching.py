"""Concurrent searches answered in shared batches, each with exactly the hits it would get alone.

Encoding the query is about half of a search's CPU (measured on the 100k bench collection:
~13 ms for one MiniLM query alone, ~5 ms each in a batch of 8; ranking ~8 ms), and a model
call on several texts costs little more than on one. So the server does not run each request
on its own thread; searches go through two stages, each fed by a queue:

1. one encoding thread takes every request waiting (up to ``max_queries`` queries, optionally
   waiting ``window`` seconds for more) and encodes, in one model call, the single queries
   that have the same number of tokens. Without padding a text's vector does not depend on
   the others in its batch (checked bit for bit; a batch of different lengths is padded, and
   its vectors differ in the last bits). A request with several queries is encoded in a call
   of its own, as ``Collection.search`` does. Vectors of single queries are cached (always
   the vector the query gets alone).
2. ``rankers`` threads rank each request on its own: dense and lexical candidates, fusion,
   rerank, MMR, the same ``retrieval.pipeline.rank`` call ``Collection.search`` makes with the
   request's options, then its hits and its response. A lone request with nothing else
   waiting is ranked by the encoding thread itself (one thread hop fewer).

While the encoder waits for the model (without the GIL) the rankers run, and while they rank
the next requests queue up for the encoder, so batches grow with the load and a lone client
waits for nobody (``window`` 0 by default).

The dense search is not shared: one FAISS call for several queries re-searches all of them
when one needs more candidates, which can reorder exactly tied documents, and it would save
~0.4 ms of ~20 (measured). Threads keep FAISS's default OpenMP thread count, as any fresh
thread or process has: a single-query FAISS search rounds its scores differently with
another thread count (measured), which would change the last bits of the answers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..collection.searching import hits_of
from ..embedding.caches import QueryCache
from ..retrieval.options import SearchOptions
from ..retrieval.pipeline import rank
from ..types import Hit

log = logging.getLogger(__name__)


class QueryEncoder:
    """Query vectors for one collection, each exactly what encoding that query alone gives.

    It encodes with its own copy of the collection's embedder (same model, engine and
    precision, sharing the loaded model) whose cache is off, and keeps its own cache of
    single-query vectors: the collection's cache may hold vectors computed in a padded batch
    of several queries, which differ from the single query's in the last bits.
    """

    def __init__(self, collection: Any, cache_size: int = 4096) -> None:
        self.collection = collection
        self.cache = QueryCache(cache_size)
        #: Model calls made and queries they encoded (queries per call = how much batching shared).
        self.encode_calls = 0
        self.encoded_queries = 0
        self._lock = threading.Lock()
        self._embedder: Any = None

    @property
    def embedder(self) -> Any:
        """The uncached embedder (made on first use: resolving the engine loads the model)."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from ..embedding import Embedder

                    own = self.collection.embedder
                    self._embedder = Embedder(
                        own.name, device=own.device, precision=own.precision, engine=own.engine,
                        batch_size=own.batch_size, expect_dimension=self.collection.dimension, query_cache=0,
                    )
        return self._embedder

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """The number of tokens each text is encoded as (query prompt and special tokens
        included, truncated as the model truncates): equal lengths mean no padding."""
        embedder = self.collection.embedder
        prompt = embedder.prompts.get("query") or ""
        backend = embedder.plain_tokenizer.backend
        encodings = backend.encode_batch([prompt + t for t in texts], add_special_tokens=True)
        limit = embedder.max_seq_length
        return [min(len(e), limit) for e in encodings]

    def encode_many(self, requests: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One (n_queries, dim) array per request, each as encoding that request alone gives."""
        out: list[np.ndarray | None] = [None] * len(requests)
        singles: dict[str, list[int]] = defaultdict(list)  # text -> the requests asking for it alone
        for i, texts in enumerate(requests):
            if len(texts) > 1:
                out[i] = self._encode(list(texts))
            elif (cached := self.cache.get_many([_key(texts[0])])[0]) is not None:
                out[i] = cached[None, :]
            else:
                singles[texts[0]].append(i)
        if singles:
            texts = list(singles)
            by_length: dict[int, list[str]] = defaultdict(list)
            # One text alone needs no grouping (and no extra tokenisation pass to find its length).
            for text, length in zip(texts, self.lengths(texts) if len(texts) > 1 else [0]):
                by_length[length].append(text)
            for group in by_length.values():
                vectors = self._encode(group)
                self.cache.put_many([_key(t) for t in group], vectors)
                for text, vector in zip(group, vectors):
                    for i in singles[text]:
                        out[i] = vector[None, :]
        return out  # type: ignore[return-value]

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.embedder.encode_queries(texts)
        with self._lock:
            self.encode_calls += 1
            self.encoded_queries += len(texts)
        return vectors


def _key(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@dataclass
class SearchJob:
    """One request's search: already checked, waiting for a worker.

    ``finish`` runs in the worker on the request's hits (one list per query), e.g. to
    serialise the response off the event loop; the future receives what it returns.
    """

    encoder: QueryEncoder
    texts: list[str]
    options: SearchOptions
    finish: Callable[[list[list[Hit]]], Any] = lambda hits: hits
    future: Future = field(default_factory=Future)


class SearchBatcher:
    """An encoding thread and ``rankers`` threads answering queued :class:`SearchJob` s.

    Args:
        rankers: threads ranking encoded requests (2: one ranks while the other waits on SQLite
            or numpy without the GIL; measured in bench/RESULTS.md).
        max_queries: at most this many queries encoded in one pass.
        window: seconds the encoder waits for more requests once it has one (0: take what is
            waiting, never wait; under load requests queue while it is busy).
    """

    def __init__(self, rankers: int = 2, max_queries: int = 32, window: float = 0.0) -> None:
        if rankers < 1 or max_queries < 1 or window < 0:
            raise ValueError("rankers and max_queries must be at least 1, window at least 0")
        self.rankers, self.max_queries, self.window = rankers, max_queries, window
        self._jobs: queue.SimpleQueue[SearchJob | None] = queue.SimpleQueue()
        self._encoded: queue.SimpleQueue[tuple[SearchJob, np.ndarray | None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        #: How many requests each encoding pass took (the last 10,000), for the benchmark and tests.
        self.batch_sizes: list[int] = []

    def submit(self, job: SearchJob) -> Future:
        """Queue ``job``; its future gets ``job.finish(hits)`` or the exception its search raised."""
        with self._lock:
            if not self._threads:  # started on first use, and again after close()
                self._start(threading.Thread(target=self._encode_loop, name="semsearch-encode", daemon=True))
                for n in range(self.rankers):
                    self._start(threading.Thread(target=self._rank_loop, name=f"semsearch-rank-{n}", daemon=True))
            self._jobs.put(job)
        return job.future

    def search(self, job: SearchJob, timeout: float | None = None) -> Any:
        """Submit and wait (for callers on a plain thread)."""
        return self.submit(job).result(timeout)

    def close(self) -> None:
        """Stop the threads once the jobs already queued are answered (a later submit starts them again)."""
        with self._lock:
            threads, self._threads = self._threads, []
            if threads:
                self._jobs.put(None)  # the encoder passes it on to every ranker
        for thread in threads:
            thread.join(timeout=60)

    def _start(self, thread: threading.Thread) -> None:
        thread.start()
        self._threads.append(thread)

    # -- stage 1: encode what is waiting ----------------------------------------------------
    def _encode_loop(self) -> None:
        while True:
            first = self._jobs.get()
            jobs, stop = ([], True) if first is None else self._collect(first)
            try:
                self._encode(jobs)
            except Exception as exc:  # a failure belongs to the requests, not the thread
                log.exception("encoding a batch of searches failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
            if stop:
                for _ in range(self.rankers):
                    self._encoded.put(None)
                return

    def _collect(self, first: SearchJob) -> tuple[list[SearchJob], bool]:
        """``first`` and whatever else is waiting, up to ``max_queries`` queries (or the window's end)."""
        jobs, count = [first], len(first.texts)
        deadline = time.monotonic() + self.window
        while count < self.max_queries:
            try:
                if self.window > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    job = self._jobs.get(timeout=remaining)
                else:
                    job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            count += len(job.texts)
        return jobs, False

    def _encode(self, jobs: list[SearchJob]) -> None:
        # From here on a job's future cannot be cancelled (a client that left before is skipped).
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        with self._lock:
            self.batch_sizes.append(len(jobs))
            del self.batch_sizes[:-10_000]
        by_collection: dict[int, list[SearchJob]] = defaultdict(list)
        for job in jobs:
            by_collection[id(job.encoder)].append(job)
        for group in by_collection.values():
            dense = [job for job in group if job.options.mode != "lexical"]
            try:
                vectors = group[0].encoder.encode_many([job.texts for job in dense]) if dense else []
            except Exception as exc:  # noqa: BLE001 - every request of the group gets the error
                for job in group:
                    job.future.set_exception(exc)
                continue
            found = dict(zip(map(id, dense), vectors))
            if len(jobs) == 1 and self._jobs.empty():
                # A lone request with nobody waiting: ranked here, saving a thread hop (each costs
                # a wake-up, milliseconds on a busy CPU). Under load batches hold several requests.
                self._answer(jobs[0], found.get(id(jobs[0])))
                continue
            for job in group:
                self._encoded.put((job, found.get(id(job))))

    # -- stage 2: rank each request ---------------------------------------------------------
    def _rank_loop(self) -> None:
        while (item := self._encoded.get()) is not None:
            self._answer(*item)

    def _answer(self, job: SearchJob, vectors: np.ndarray | None) -> None:
        try:
            job.future.set_result(job.finish(self._rank(job, vectors)))
        except Exception as exc:  # noqa: BLE001 - this request's own error (a busy collection...)
            job.future.set_exception(exc)

    @staticmethod
    def _rank(job: SearchJob, vectors: np.ndarray | None) -> list[list[Hit]]:
        collection = job.encoder.collection
        embedder = collection.embedder
        ranked = rank(collection.engine, job.texts, vectors, job.options, tokenizer=lambda: embedder.plain_tokenizer,
                      device=embedder.device if job.options.rerank else None)
        return hits_of(collection.engine, ranked)
