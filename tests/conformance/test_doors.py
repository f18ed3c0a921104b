"""One path, four doors (issue 24): the same question through Python, the CLI, HTTP and MCP gets the
same answer, or the same refusal with the same message.

Each case is asked of every door that offers the operation and all of the case's options
(:data:`OFFERS`, and each option's ``doors`` in :mod:`semsearch.options`); ``cli-server`` is
``semsearch COMMAND --server URL``, the CLI asking the running HTTP server.

- A case with ``refused`` states the error: every door must refuse with that message, as the
  door translates the exception (Python's class, the CLI's exit code 1 and ``error:`` line,
  HTTP's status and type, MCP's tool error).
- Any other case is answered by the first of ``python, cli, http, mcp`` that offers it (the
  reference), and every other door must answer the same: the same hits in the same order (the
  fields a door shows, scores to 1e-6: JSON carries floats through decimal text), the same answer
  text, citations and refusal, the same groups and topics.

The search cases are also asked of a Milvus Lite collection holding the same documents, through
the doors that open one (Python, the CLI with ``--backend milvus``, HTTP serving it).

Nothing here depends on a tie: hits whose reference scores are within 1e-4 of each other are
compared as a set, and the last of a list cut at k only by score (the next one, left out, may tie).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from semsearch import errors
from semsearch.options import ASK, DUPLICATES, SEARCH, SIMILAR, TOPICS

from .conftest import DOCS, UNANSWERABLE
from .doors import CliDoor, HttpDoor, McpDoor, PythonDoor, Refused, differences, live_server

DOORS = ("python", "cli", "cli-server", "http", "mcp")
#: The operations each door offers (MCP: what an agent needs to search, read and answer).
OFFERS = {
    "python": {"search", "ask", "get", "similar", "duplicates", "topics"},
    "cli": {"search", "ask", "similar", "duplicates", "topics"},
    "cli-server": {"search", "ask", "similar", "duplicates", "topics"},
    "http": {"search", "ask", "get", "similar", "duplicates", "topics"},
    "mcp": {"search", "ask", "get"},
}
#: Each operation's options and the doors that offer each (get's ``where`` is the facade's own).
OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "search": {name: o.doors for name, o in SEARCH.items()},
    "ask": {name: o.doors for name, o in ASK.items()},
    "similar": {name: o.doors for name, o in SIMILAR.items()},
    "duplicates": {name: o.doors for name, o in DUPLICATES.items()},
    "topics": {name: o.doors for name, o in TOPICS.items()},
    "get": {"where": ("python", "http")},
}
#: How many hits an operation returns by default (a list that long may have been cut at k).
DEFAULT_K = {"search": SEARCH["k"].default, "ask": ASK["k"].default, "similar": SIMILAR["k"].default}


@dataclass(frozen=True)
class Case:
    op: str
    name: str
    args: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)
    #: (the Python exception class, its message) every door refuses with; None: an answer.
    refused: tuple[str, str] | None = None

    def offered_by(self, door: str) -> bool:
        base = "cli" if door == "cli-server" else door
        return self.op in OFFERS[door] and all(base in OPTIONS[self.op][name] for name in self.options)

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"

    @property
    def k(self) -> int | None:
        return self.options.get("k", DEFAULT_K.get(self.op))


def bad(op: str, name: str, args: tuple[Any, ...], options: dict[str, Any], message: str,
        error: str = "InvalidInputError") -> Case:
    return Case(op, name, args, options, (error, message))


MOON = "when did people first walk on the moon"
BOGUS_WHERE = "where.year.$bogus: unknown operator '$bogus'; use one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin"
SEARCHES = [
    Case("search", "hybrid", (MOON,), {"k": 3}),
    Case("search", "default-k", ("plants in the garden",)),
    Case("search", "k-beyond-the-collection", ("kitchen",), {"k": 20}),
    Case("search", "dense", ("a telescope in orbit",), {"k": 4, "mode": "dense"}),
    Case("search", "lexical", ("kettle receipt",), {"k": 3, "mode": "lexical"}),
    Case("search", "where", (MOON,), {"k": 3, "where": {"topic": "garden"}}),
    Case("search", "where-range", ("landing",), {"k": 5, "where": {"year": {"$gte": 2020}}, "mode": "dense"}),
    Case("search", "where-document", ("how long does it last",), {"k": 5, "where_document": {"$contains": "kettle"}}),
    Case("search", "where-nothing", (MOON,), {"where": {"topic": "sports"}}),
    Case("search", "rrf", (MOON,), {"k": 4, "fusion": "rrf", "rrf_k": 30.0}),
    Case("search", "weighted", (MOON,), {"k": 4, "fusion": "weighted", "alpha": 0.3}),
    Case("search", "candidates", (MOON,), {"k": 3, "candidates": 2}),
    Case("search", "threshold-auto", ("chocolate dessert recipe",), {"threshold": "auto"}),
    Case("search", "threshold", ("chocolate dessert recipe",), {"threshold": 0.01}),
    Case("search", "mmr", ("space exploration",), {"k": 4, "mmr": 0.5}),
    Case("search", "no-good-match", (UNANSWERABLE,), {"k": 2}),
    bad("search", "k-zero", (MOON,), {"k": 0}, "k must be a whole number of at least 1, got 0"),
    bad("search", "k-negative", (MOON,), {"k": -5}, "k must be a whole number of at least 1, got -5"),
    bad("search", "empty-query", ("",), {}, "query 0 is empty; give some text to search for"),
    bad("search", "blank-query", ("   ",), {}, "query 0 is empty; give some text to search for"),
    bad("search", "bad-mode", (MOON,), {"mode": "semantic"},
        "mode must be one of dense, lexical, hybrid, got 'semantic'"),
    bad("search", "bad-where", (MOON,), {"where": {"year": {"$bogus": 1}}},
        BOGUS_WHERE, "FilterError"),
    bad("search", "bad-where-document", (MOON,), {"where_document": {"$has": "moon"}},
        "where_document: unknown operator '$has'; use $contains, $not_contains, $and or $or", "FilterError"),
    bad("search", "bad-fusion", (MOON,), {"fusion": "sum"}, "fusion must be one of adaptive, rrf, weighted, got 'sum'"),
    bad("search", "alpha-above-1", (MOON,), {"fusion": "weighted", "alpha": 2.0},
        "alpha must be a number from 0 to 1, got 2.0"),
    bad("search", "candidates-zero", (MOON,), {"candidates": 0}, "candidates must be a whole number of at least 1, "
                                                                 "got 0"),
    bad("search", "rerank-top-zero", (MOON,), {"rerank_top": 0}, "rerank_top must be a whole number of at least 1, "
                                                                 "got 0"),
    bad("search", "mmr-above-1", (MOON,), {"mmr": 1.5}, "mmr must be a number from 0 to 1, got 1.5"),
    bad("search", "threshold-not-a-number", (MOON,), {"threshold": "high"},
        "threshold must be a number or \"auto\", got 'high'"),
]
TOMATO = "How often should I water tomato plants?"
LANDED = "What landed on the Moon and on Mars?"  # answered from two passages, each cited
#: The best passage's relevance (~0.41) is under the calibrated line (0.5) and over 0.35.
BETWEEN_CUTS = "Tell me about space missions to the Moon and Mars"
ASKS = [
    Case("ask", "answer", (TOMATO,)),
    Case("ask", "two-sources", (LANDED,)),
    Case("ask", "refusal", (UNANSWERABLE,)),
    Case("ask", "refusal-between-cuts", (BETWEEN_CUTS,)),
    Case("ask", "where", (LANDED,), {"where": {"topic": "space"}}),
    Case("ask", "where-refusal", (LANDED,), {"where": {"topic": "garden"}}),
    Case("ask", "lexical", (TOMATO,), {"mode": "lexical", "k": 2}),
    Case("ask", "one-sentence", (LANDED,), {"max_sentences": 1}),
    Case("ask", "small-context", (LANDED,), {"context_tokens": 64}),
    Case("ask", "strict-relevance", (LANDED,), {"min_relevance": 0.9}),
    bad("ask", "empty-question", ("",), {}, "the question is empty; ask something in words"),
    bad("ask", "k-zero", (TOMATO,), {"k": 0}, "k must be a whole number of at least 1, got 0"),
    bad("ask", "bad-where", (TOMATO,), {"where": {"year": {"$bogus": 1}}}, BOGUS_WHERE, "FilterError"),
    bad("ask", "context-tokens-too-small", (TOMATO,), {"context_tokens": 10},
        "context_tokens must be a whole number of at least 64, got 10"),
    bad("ask", "min-relevance-above-1", (TOMATO,), {"min_relevance": 1.5},
        "min_relevance must be a number from 0 to 1, got 1.5"),
    bad("ask", "max-sentences-zero", (TOMATO,), {"max_sentences": 0},
        "max_sentences must be a whole number of at least 1, got 0"),
]
GETS = [
    Case("get", "ids", (["tomato", "nope", "apollo"],)),
    Case("get", "where", (["tomato", "apollo", "mars"],), {"where": {"topic": "space"}}),
    bad("get", "bad-where", (["tomato"],), {"where": {"year": {"$bogus": 1}}},
        BOGUS_WHERE, "FilterError"),
]
SIMILARS = [
    Case("similar", "mean", ("warranty",), {"k": 3}),
    Case("similar", "where", ("apollo",), {"k": 3, "where": {"topic": "space"}}),
    Case("similar", "chunks", ("tomato",), {"k": 3, "query": "chunks"}),
    bad("similar", "unknown-id", ("nope",), {},
        "no document with id 'nope' in this collection; check the id (semsearch search shows ids)",
        "UnknownDocumentError"),
    bad("similar", "k-zero", ("warranty",), {"k": 0}, "k must be a whole number of at least 1, got 0"),
    bad("similar", "bad-query", ("warranty",), {"query": "median"}, "query must be one of mean, chunks, got 'median'"),
]
DUPLICATE_CASES = [
    Case("duplicates", "default", ()),
    Case("duplicates", "lower", (), {"threshold": 0.8}),
    Case("duplicates", "where", (), {"where": {"topic": "garden"}}),
    Case("duplicates", "keep-newest", (), {"keep": "newest"}),
    Case("duplicates", "exact", (), {"exact": True}),
    bad("duplicates", "threshold-zero", (), {"threshold": 0.0},
        "threshold must be a number above 0 and at most 1, got 0.0"),
    bad("duplicates", "threshold-above-1", (), {"threshold": 1.5},
        "threshold must be a number above 0 and at most 1, got 1.5"),
    bad("duplicates", "bad-keep", (), {"keep": "oldest"}, "keep must be one of first, longest, newest, got 'oldest'"),
]
TOPIC_CASES = [
    Case("topics", "three", (), {"n": 3}),
    Case("topics", "chosen", ()),
    Case("topics", "where", (), {"n": 2, "where": {"topic": {"$in": ["space", "garden"]}}}),
    bad("topics", "n-zero", (), {"n": 0}, "n must be a whole number of at least 1, got 0"),
]
CASES = SEARCHES + ASKS + GETS + SIMILARS + DUPLICATE_CASES + TOPIC_CASES


# -- the doors ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def doors(corpus_path):
    from semsearch import Collection
    from semsearch.server import create_app

    col = Collection(corpus_path, create=False)
    app = create_app({"docs": corpus_path}, warm_up=False)
    mcp = McpDoor(str(corpus_path))
    try:
        with live_server(app) as url:
            http = HttpDoor(url)
            yield {"python": PythonDoor(col), "cli": CliDoor(corpus_path, "--server", "off"),
                   "cli-server": CliDoor(corpus_path, "--server", f"{url}/collections/docs"), "http": http,
                   "mcp": mcp}
            http.close()
    finally:
        mcp.close()
        col.close()


@pytest.fixture(scope="module")
def answers(doors):
    """What each door answered to each case (asked once: the reference is read by every door's test)."""
    cache: dict[tuple[str, str], Any] = {}

    def answer(case: Case, door: str) -> Any:
        if (case.id, door) not in cache:
            cache[case.id, door] = getattr(doors[door], case.op)(*case.args, **case.options)
        return cache[case.id, door]

    return answer


def reference_door(case: Case) -> str:
    return next(door for door in DOORS if case.offered_by(door))


def http_error(error: str) -> str:
    """The status and type the HTTP API answers a semsearch error with (server/error_responses.py)."""
    cls = getattr(errors, error)
    for kind, status, name in ((errors.DuplicateIdError, 409, "duplicate_id"),
                               (errors.UnsupportedOptionError, 422, "unsupported_option"),
                               (errors.InvalidInputError, 422, "invalid_input"),
                               (errors.CollectionBusyError, 503, "collection_busy")):
        if issubclass(cls, kind):
            return f"{status} {name}"
    return f"500 {error}"


def translated(error: str, door: str) -> str:
    """How ``door`` reports the semsearch exception class named ``error``."""
    return {"python": error, "cli": "exit 1", "cli-server": "exit 1", "http": http_error(error),
            "mcp": "tool error"}[door]


def agrees(case: Case, door: str, answers: Any) -> None:
    if not case.offered_by(door):
        pytest.skip(f"{door} does not offer {case.op} with {', '.join(case.options) or 'these arguments'}")
    got = answers(case, door)
    if case.refused is not None:
        error, message = case.refused
        assert got == Refused(translated(error, door), message)
        return
    ref_door = reference_door(case)
    expected = answers(case, ref_door)
    assert not isinstance(expected, Refused), f"the reference ({ref_door}) refused: {expected}"
    assert not isinstance(got, Refused), f"{ref_door} answered, {door} refused: {got}"
    assert differences(expected, got, k=case.k) == []


def case_params(cases: list[Case], xfails: dict[tuple[str, str], str] | None = None) -> list[Any]:
    params = []
    for case in cases:
        for door in DOORS:
            reason = (xfails or {}).get((case.name, door))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(case, door, marks=marks, id=f"{case.name}-{door}"))
    return params


@pytest.mark.parametrize(("case", "door"), case_params(SEARCHES))
def test_search(case, door, answers):
    agrees(case, door, answers)


@pytest.mark.parametrize(("case", "door"), case_params(ASKS))
def test_ask(case, door, answers):
    agrees(case, door, answers)


@pytest.mark.parametrize(("case", "door"), case_params(GETS))
def test_get(case, door, answers):
    agrees(case, door, answers)


@pytest.mark.parametrize(("case", "door"), case_params(SIMILARS))
def test_similar(case, door, answers):
    agrees(case, door, answers)


@pytest.mark.parametrize(("case", "door"), case_params(DUPLICATE_CASES))
def test_duplicates(case, door, answers):
    agrees(case, door, answers)


@pytest.mark.parametrize(("case", "door"), case_params(TOPIC_CASES))
def test_topics(case, door, answers):
    agrees(case, door, answers)


MILVUS_DOORS = ("python", "cli", "http")  # `semsearch mcp` serves collection folders only


@pytest.fixture(scope="module")
def milvus_answers(milvus_uri, minilm_path):
    """The search cases asked of a Milvus Lite collection holding the same documents, through the
    doors that open Milvus collections."""
    from semsearch import Collection
    from semsearch.server import create_app

    from .conftest import DOCS

    col = Collection("conformance_doors", backend="milvus", uri=milvus_uri)
    col.add([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadatas=[m for _, _, m in DOCS])
    cache: dict[tuple[str, str], Any] = {}
    try:
        with live_server(create_app({"docs": col}, warm_up=False)) as url, HttpDoor(url) as http:
            doors = {"python": PythonDoor(col), "http": http,
                     "cli": CliDoor(col.name, "--server", "off", "--backend", "milvus", "--uri", milvus_uri)}

            def answer(case: Case, door: str) -> Any:
                if (case.id, door) not in cache:
                    cache[case.id, door] = getattr(doors[door], case.op)(*case.args, **case.options)
                return cache[case.id, door]

            yield answer
    finally:
        col.drop()


@pytest.mark.parametrize(("case", "door"), [p for p in case_params(SEARCHES) if p.values[1] in MILVUS_DOORS])
def test_search_on_milvus(case, door, milvus_answers):
    agrees(case, door, milvus_answers)


def test_the_milvus_cases_find_what_the_local_ones_find(milvus_answers):
    by = {c.name: c for c in SEARCHES}
    assert [h["id"] for h in milvus_answers(by["hybrid"], "python")["hits"]][0] == "apollo"
    assert milvus_answers(by["where-nothing"], "python")["hits"] == []
    assert {h["id"] for h in milvus_answers(by["where-document"], "python")["hits"]} == {"warranty", "warranty-copy"}


def test_the_cases_show_what_they_are_named_for(answers):
    """The answers compared above are real: hits that answer, a refusal, filters that filter, a duplicate pair."""
    by = {c.id: c for c in CASES}

    def ref(case_id: str) -> Any:
        case = by[case_id]
        return answers(case, reference_door(case))

    def ids(case_id: str) -> list[str]:
        return [h["id"] for h in ref(case_id)["hits"]]

    topic = {i: m["topic"] for i, _, m in DOCS}
    assert ids("search-hybrid")[0] == "apollo" and ref("search-hybrid")["no_good_match"] is False
    assert len(ids("search-default-k")) == 10 and ids("search-default-k")[0] in ("tomato", "roses", "compost")
    assert len(ids("search-k-beyond-the-collection")) == len(DOCS)
    assert ids("search-dense")[0] == "hubble"
    assert set(ids("search-lexical")[:2]) == {"warranty", "warranty-copy"}
    assert ids("search-where") and {topic[i] for i in ids("search-where")} == {"garden"}
    assert ids("search-where-range") and all(h["metadata"]["year"] >= 2020 for h in ref("search-where-range")["hits"])
    assert set(ids("search-where-document")) == {"warranty", "warranty-copy"}
    assert ids("search-where-nothing") == []
    assert len(ids("search-candidates")) == 3
    assert ids("search-threshold-auto") == ["cake"]  # the only good match; the rest fall under the line
    assert ref("search-no-good-match")["no_good_match"] is True
    assert ref("ask-answer")["answered"] is True and "twice a week" in ref("ask-answer")["answer"]
    assert [c["id"] for c in ref("ask-answer")["citations"]] == ["tomato"]
    for refusal in ("ask-refusal", "ask-refusal-between-cuts", "ask-where-refusal", "ask-strict-relevance"):
        assert ref(refusal)["answered"] is False and ref(refusal)["citations"] == [], refusal
    assert [c["id"] for c in ref("ask-two-sources")["citations"]] == ["apollo", "mars"]
    assert [c["id"] for c in ref("ask-small-context")["citations"]] == ["apollo"]  # mars's passage did not fit
    assert ref("ask-one-sentence")["answer"].count(". ") < ref("ask-two-sources")["answer"].count(". ")
    assert [d["id"] for d in ref("get-ids")] == ["tomato", "apollo"]
    assert [d["id"] for d in ref("get-where")] == ["apollo", "mars"]
    assert [h["id"] for h in ref("similar-mean")][0] == "warranty-copy"
    assert {topic[h["id"]] for h in ref("similar-where")} == {"space"}
    assert [g["ids"] for g in ref("duplicates-default")] == [["warranty", "warranty-copy"]]
    assert ref("duplicates-keep-newest")[0]["keep"] == "warranty-copy"
    assert ref("duplicates-where") == []
    assert len(ref("topics-three")) == 3 and sum(t["size"] for t in ref("topics-three")) == len(DOCS)
    assert {topic[i] for t in ref("topics-where") for i in t["ids"]} == {"space", "garden"}


def test_door_caps_are_refused_with_one_message(doors):
    """A door's own cap (a server's max_k, MCP's 20 hits) is refused, never clamped, in one wording."""
    over = "k is 101; this server returns at most 100"
    assert doors["http"].search(MOON, k=101) == Refused("422 invalid_input", over)
    assert doors["cli-server"].search(MOON, k=101) == Refused("exit 1", over)
    assert doors["http"].similar("apollo", k=101) == Refused("422 invalid_input", over)
    assert doors["mcp"].search(MOON, k=21) == Refused("tool error", "k is 21; this server returns at most 20")
