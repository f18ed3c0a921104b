"""Safety: API keys, bind checks, body/batch/k limits, CORS, headers on the page."""

from __future__ import annotations

import re

import pytest

from .conftest import API_KEY, CORPUS, error_of

WRITE = ("/add", {"documents": ["a new document"], "ids": ["new-1"]})
READ = ("/search", {"query": "hotel", "k": 1})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("headers", [{}, bearer("wrong-key-0123456789abcdef"), {"Authorization": API_KEY},
                                     {"Authorization": f"Basic {API_KEY}"}, bearer(API_KEY[:-1])])
def test_writes_and_reads_need_the_key_when_one_is_set(make_client, served, headers):
    client = make_client(api_key=API_KEY)
    for path, body in (WRITE, READ, ("/delete", {"ids": ["hotel-1"]}), ("/get", {"ids": ["hotel-1"]})):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert error_of(r)["type"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/collections", headers=headers).status_code == 401
    assert served.count() == len(CORPUS)


def test_the_right_key_opens_everything(make_client, served):
    client = make_client(api_key=API_KEY)
    assert client.post(*WRITE[:1], json=WRITE[1], headers=bearer(API_KEY)).status_code == 200
    assert client.post(READ[0], json=READ[1], headers=bearer(API_KEY)).status_code == 200
    assert client.get("/collections", headers={"authorization": f"bearer {API_KEY}"}).status_code == 200
    assert served.count() == len(CORPUS) + 1


def test_public_reads_open_search_but_not_writes(make_client, served):
    client = make_client(api_key=API_KEY, public_reads=True)
    assert client.post(READ[0], json=READ[1]).status_code == 200
    assert client.get("/collections").status_code == 200
    assert client.post(WRITE[0], json=WRITE[1]).status_code == 401
    assert served.count() == len(CORPUS)


def test_health_page_and_docs_need_no_key(make_client):
    client = make_client(api_key=API_KEY)
    for path in ("/healthz", "/", "/static/app.js", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_without_a_key_everything_is_open_on_loopback(client):
    assert client.post(WRITE[0], json=WRITE[1]).status_code == 200


def test_a_short_key_is_refused():
    from semsearch.server import UnsafeBindError, create_app

    with pytest.raises(UnsafeBindError, match="too short"):
        create_app({}, api_key="secret")


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("10.0.0.1", False), ("no-such-host.invalid", False),
])
def test_only_loopback_binds_without_a_key(host, loopback):
    from semsearch.server import UnsafeBindError, check_bind, is_loopback

    assert is_loopback(host) is loopback
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(UnsafeBindError, match="--api-key"):
            check_bind(host, None)
    check_bind(host, API_KEY)


def test_serve_refuses_a_public_bind_without_a_key_before_loading_anything(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from semsearch.cli import app

    monkeypatch.delenv("SEMSEARCH_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nothing-here"), "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "refusing to listen on 0.0.0.0 without an API key" in result.output
    assert not (tmp_path / "nothing-here").exists()


# -- limits ----------------------------------------------------------------------------
def small_limits(**overrides):
    from semsearch.server import Limits

    values = dict(max_body_bytes=4096, max_documents=3, max_queries=2, max_k=5, max_ids=4)
    values.update(overrides)
    return Limits(**values)


def test_a_body_over_the_limit_is_413_before_parsing(make_client, served):
    client = make_client(limits=small_limits())
    r = client.post("/add", json={"documents": ["x" * 5000]})
    assert r.status_code == 413
    assert error_of(r)["type"] == "payload_too_large" and "4096" in error_of(r)["message"]
    assert served.count() == len(CORPUS)


def test_a_chunked_body_without_length_is_counted_too(make_client):
    client = make_client(limits=small_limits())

    def chunks():
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and error_of(r)["type"] == "payload_too_large"


def test_batch_and_k_limits(make_client, served):
    client = make_client(limits=small_limits())
    r = client.post("/add", json={"documents": ["a", "b", "c", "d"]})
    assert r.status_code == 413 and error_of(r)["type"] == "batch_too_large" and "at most 3" in error_of(r)["message"]
    r = client.post("/search", json={"queries": ["a", "b", "c"]})
    assert r.status_code == 413 and "at most 2" in error_of(r)["message"]
    r = client.post("/search", json={"query": "a", "k": 6})
    assert r.status_code == 422 and "at most 5" in error_of(r)["message"]
    r = client.post("/get", json={"ids": list("abcde")})
    assert r.status_code == 413
    r = client.post("/delete", json={"ids": list("abcde")})
    assert r.status_code == 413
    r = client.post("/search", json={"query": "q" * 5000})
    assert r.status_code in (413, 422)
    assert served.count() == len(CORPUS)
    assert client.post("/search", json={"query": "a", "k": 5}).status_code == 200


# -- browsers --------------------------------------------------------------------------
def test_cors_is_off_unless_configured(make_client):
    client = make_client()
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    r = client.options("/search", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = client.post("/search", json=READ[1], headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_only_the_configured_origins(make_client):
    client = make_client(cors_origins=["https://app.example"])
    ok = client.options("/search", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization,content-type"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
    bad = client.options("/search", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert bad.headers.get("access-control-allow-origin") != "https://evil.example"


def test_page_is_served_with_a_strict_content_security_policy(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    scripts = re.findall(r'<script src="(/static/[\w.-]+\.js)"', r.text)
    assert "/static/app.js" in scripts and "<script>" not in r.text and " style=" not in r.text
    for path in scripts:  # none of the page's scripts turns text into HTML
        script = client.get(path).text
        assert script, path
        assert ".innerHTML" not in script and "outerHTML" not in script and "insertAdjacentHTML" not in script, path
        assert (
            "document.write" not in script and "DOMParser" not in script and "createContextualFragment" not in script
        ), path


def test_static_files_cannot_escape_their_folder(client):
    for path in ("/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e/%2e%2e/collection.py"):
        r = client.get(path)
        assert r.status_code == 404, path


def test_unauthenticated_requests_get_401_before_the_body_is_parsed(make_client):
    client = make_client(api_key=API_KEY)
    r = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 401
    r = client.post("/add", content=b"x" * 10_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 401
    r = client.get("/no-such-endpoint")
    assert r.status_code == 401  # nothing about the API is revealed without the key
