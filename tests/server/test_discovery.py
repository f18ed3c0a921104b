"""server.json and the CLI's client: found only when live and on loopback, verified, and never trusted blindly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from .conftest import API_KEY, live_server


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_file(folder, **fields) -> None:
    data = {"url": "http://127.0.0.1:9", "collection": "docs", "pid": os.getpid(), "instance": "abc", "api_key": False,
            "format": 1, **fields}
    (folder / "server.json").write_text(json.dumps(data))


def test_find_accepts_only_a_live_loopback_server(tmp_path):
    from semsearch.server.discovery import find

    assert find(tmp_path) is None  # no file
    (tmp_path / "server.json").write_text("{not json")
    assert find(tmp_path) is None
    write_file(tmp_path, url="http://10.1.2.3:8000")
    assert find(tmp_path) is None  # not loopback
    write_file(tmp_path, url="http://localhost:8000")
    assert find(tmp_path) is None  # a name, not an IP: names can be made to resolve elsewhere
    write_file(tmp_path, url="https://127.0.0.1:8000")
    assert find(tmp_path) is None
    write_file(tmp_path, collection="../admin")
    assert find(tmp_path) is None
    write_file(tmp_path, pid=dead_pid())
    assert find(tmp_path) is None  # a killed server's file
    write_file(tmp_path, url="http://[::1]:8000")
    found = find(tmp_path)
    assert found is not None and found.url == "http://[::1]:8000" and found.search_path == "/collections/docs/search"


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:8000"), ("0.0.0.0", "http://127.0.0.1:8000"), ("::", "http://[::1]:8000"),
    ("::1", "http://[::1]:8000"), ("localhost", "http://127.0.0.1:8000"), ("192.168.1.20", None), ("example.org", None),
])
def test_only_servers_reachable_over_loopback_are_announced(host, url):
    from semsearch.server.discovery import connect_url

    assert connect_url(host, 8000) == url


def test_announce_and_withdraw_leave_another_servers_file_alone(tmp_path):
    from semsearch.server.discovery import ServerAddress, find, withdraw, write_address

    mine = ServerAddress("http://127.0.0.1:8001", "docs", os.getpid(), "mine", False)
    assert write_address(tmp_path, mine) == tmp_path / "server.json"
    assert find(tmp_path) == mine
    theirs = ServerAddress("http://127.0.0.1:8002", "docs", os.getpid(), "theirs", False)
    write_address(tmp_path, theirs)
    withdraw(tmp_path, "mine")
    assert find(tmp_path) == theirs
    withdraw(tmp_path, "theirs")
    assert not (tmp_path / "server.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file left behind


def test_a_stale_file_is_ignored_without_connecting(tmp_path):
    """A killed server's file points at a port where something now accepts and never answers."""
    from semsearch.cli.remote import search_through_server

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        write_file(tmp_path, url=f"http://127.0.0.1:{listener.getsockname()[1]}", pid=dead_pid())
        assert search_through_server("auto", tmp_path, ["anything"], 3, {}) is None
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected


def test_the_cli_client_gets_the_servers_exact_hits_and_checks_who_answers(tmp_path, served, monkeypatch):
    from semsearch.cli.remote import search_through_server
    from semsearch.embedding.caches import QueryCache
    from semsearch.errors import SemsearchError
    from semsearch.server import create_app

    folder = tmp_path / "announced"
    folder.mkdir()
    options = {"mode": "hybrid", "where": '{"year": {"$gte": 2000}}', "threshold": None}
    served.embedder.query_cache = QueryCache(0)  # every expected answer computed as by a fresh process
    expected = [[h.to_dict() for h in hits] for hits in served.search(["where to stay by the sea", "cake"], k=3,
                                                                      mode="hybrid", where={"year": {"$gte": 2000}})]
    cake = [[h.to_dict() for h in served.search("cake", k=3, where={"year": {"$gte": 2000}})]]
    app = create_app({"docs": served}, warm_up=False)
    instance = app.state.semsearch.instance
    with live_server(app) as url:
        write_file(folder, url=url, instance=instance)
        assert search_through_server("auto", folder, ["where to stay by the sea", "cake"], 3, options) == expected
        assert search_through_server(url, folder, ["where to stay by the sea", "cake"], 3, options) == expected
        assert search_through_server(url + "/collections/docs", folder, ["cake"], 3, options) == cake
        write_file(folder, url=url, instance="another-server")
        assert search_through_server("auto", folder, ["cake"], 3, options) is None  # someone else on that port
        write_file(folder, url=url, instance=instance, collection="gone")
        assert search_through_server("auto", folder, ["cake"], 3, options) is None  # 404: searched locally
        with pytest.raises(SemsearchError, match="no collection named 'gone'"):
            search_through_server(url + "/collections/gone", folder, ["cake"], 3, options)
    with pytest.raises(SemsearchError, match="did not answer"):
        search_through_server(url, folder, ["cake"], 3, options)
    with pytest.raises(SemsearchError, match="loopback"):
        search_through_server("http://192.168.1.20:8000", folder, ["cake"], 3, options)


def test_a_server_that_needs_a_key_is_used_only_with_it(tmp_path, served, monkeypatch):
    from semsearch.cli.remote import search_through_server
    from semsearch.server import create_app

    monkeypatch.delenv("SEMSEARCH_API_KEY", raising=False)
    app = create_app({"docs": served}, api_key=API_KEY, warm_up=False)
    expected = [[h.to_dict() for h in served.search("cake", k=2)]]
    with live_server(app) as url:
        write_file(tmp_path, url=url, instance=app.state.semsearch.instance, api_key=True)
        assert search_through_server("auto", tmp_path, ["cake"], 2, {}) is None
        monkeypatch.setenv("SEMSEARCH_API_KEY", API_KEY)
        assert search_through_server("auto", tmp_path, ["cake"], 2, {}) == expected
