"""Concurrent searches answered in shared batches, each with exactly the hits it would get alone.

Encoding the query is about half of a search's CPU (measured on the 100k bench collection:
~13 ms for one MiniLM query alone, ~5 ms each in a batch of 8; ranking ~8 ms), and a model
call on several texts costs little more than on one. So the server does not run each request
on its own thread; searches go through two stages, each fed by a queue, and both call the
collection's own :class:`~semsearch.collection.searching.Searcher` (the path every door takes):

1. one encoding thread takes every request waiting (up to ``max_queries`` queries, optionally
   waiting ``window`` seconds for more) and encodes their queries with one
   ``Searcher.encode`` call per collection: texts of the same token length share a model call,
   so each vector is exactly the one the query gets alone (no padding).
2. ``rankers`` threads rank each request on its own with ``Searcher.run`` and its options:
   one engine call, the stages, the hits, then its response. A lone request with nothing else
   waiting is ranked by the encoding thread itself (one thread hop fewer). If another process
   re-encoded the collection meanwhile, ``run`` reopens it and encodes again: no stale vectors.

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
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..collection import Collection, EncodedQueries, SearchOptions
from ..types import Hit

log = logging.getLogger(__name__)


@dataclass
class SearchJob:
    """One request's search: already checked, waiting for a worker.

    ``finish`` runs in the worker on the request's hits (one list per query), e.g. to
    serialise the response off the event loop; the future receives what it returns.
    """

    collection: Collection
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
        self._encoded: queue.SimpleQueue[tuple[SearchJob, EncodedQueries | None] | None] = queue.SimpleQueue()
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
            by_collection[id(job.collection)].append(job)
        for group in by_collection.values():
            dense = [job for job in group if job.options.mode != "lexical"]
            try:
                encoded = group[0].collection.searcher.encode([t for job in dense for t in job.texts]) if dense \
                    else None
            except Exception as exc:  # noqa: BLE001 - every request of the group gets the error
                for job in group:
                    job.future.set_exception(exc)
                continue
            found: dict[int, EncodedQueries] = {}
            start = 0
            for job in dense:
                assert encoded is not None
                found[id(job)] = EncodedQueries(encoded.vectors[start:start + len(job.texts)], encoded.embedder)
                start += len(job.texts)
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

    def _answer(self, job: SearchJob, encoded: EncodedQueries | None) -> None:
        try:
            job.future.set_result(job.finish(job.collection.searcher.run(job.texts, encoded, job.options)))
        except Exception as exc:  # noqa: BLE001 - this request's own error (a busy collection...)
            job.future.set_exception(exc)
