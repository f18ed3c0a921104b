"""Fuzz the API from its own OpenAPI schema (schemathesis): no input may cause a 5xx."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from .conftest import API_KEY

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis fuzzes the API (test extra)")


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory, corpus_vectors):
    from semsearch import Collection
    from semsearch.server import Limits, create_app

    from .conftest import CORPUS

    col = Collection(tmp_path_factory.mktemp("fuzz") / "docs")
    col.add([t for _, t, _ in CORPUS], ids=[i for i, _, _ in CORPUS], metadatas=[m for _, _, m in CORPUS],
            embeddings=corpus_vectors)
    # Small caps keep generated batches cheap to encode on a CI machine; bigger ones get 413.
    limits = Limits(max_body_bytes=64 * 1024, max_documents=4, max_queries=4, max_k=20, max_ids=50, max_query_chars=500)
    app = create_app({"docs": col}, api_key=API_KEY, limits=limits, warm_up=False)
    yield app
    col.close()


def operations(app) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_is_fuzzed(fuzzed_app):
    # schemathesis' pytest plugin (from_fixture) does not work with this pytest; drive hypothesis directly.
    names = {f"{op.method.upper()} {op.path}" for op in operations(fuzzed_app)}
    assert {"POST /search", "POST /add", "POST /collections/{name}/delete", "GET /readyz"} <= names


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_request_makes_the_server_fail(fuzzed_app, mode):
    """Valid requests (positive) and requests that break the schema (negative) alike."""
    from schemathesis.generation import GenerationMode

    checked, statuses = 0, Counter()
    for op in operations(fuzzed_app):

        # Unknown collection names are tested elsewhere; here reach the collection's code.
        fixed = {"name": "docs"} if "{name}" in op.path else None

        @given(case=op.as_strategy(GenerationMode(mode), path_parameters=fixed))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def no_server_error(case) -> None:
            nonlocal checked
            checked += 1
            for headers in ({"Authorization": f"Bearer {API_KEY}"}, {}):
                response = case.call(headers=headers)
                statuses[response.status_code] += 1
                where = f"{case.method} {case.formatted_path} {case.body!r:.200}"
                assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
                if response.status_code >= 400:
                    error = response.json()["error"]
                    assert error["type"] and error["message"], where
                if not headers and case.path not in ("/healthz", "/readyz"):
                    assert response.status_code == 401, where

        try:
            no_server_error()
        except Unsatisfiable:  # an operation without inputs to break (GET /healthz) in negative mode
            assert mode == "negative"
    assert checked > 50
    if mode == "positive":
        print(mode, dict(statuses))
    print(mode, dict(statuses))
