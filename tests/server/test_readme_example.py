"""The README's curl example is true for a plain `semsearch serve` (the default collection)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_curl_requests() -> list[tuple[str, dict]]:
    """(path, JSON body) of every `curl -s localhost:8000/...` call in the README's server section."""
    text = README.read_text().replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        if line.strip().startswith("curl -s localhost:8000/"):
            words = shlex.split(line)
            url = next(w for w in words if w.startswith("localhost:8000/"))
            calls.append((url.removeprefix("localhost:8000"), json.loads(words[words.index("-d") + 1])))
    return calls


def test_the_readme_curl_example_works_against_a_plain_serve(tmp_path, monkeypatch, minilm_path):
    from fastapi.testclient import TestClient

    from semsearch.cli.common import default_collection
    from semsearch.server import create_app

    monkeypatch.delenv("SEMSEARCH_COLLECTION", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # where platformdirs puts the default collection
    folder = default_collection()
    assert folder.name == "default" and tmp_path in folder.parents
    calls = readme_curl_requests()
    assert [path for path, _ in calls] == ["/search", "/collections/default/add"]
    from semsearch import Collection

    with Collection(folder) as col:  # what `semsearch index ...` made before the user serves it
        col.add(["Kayaking tours along the fjords of Norway."], ids=["kayak"])
    app = create_app([folder])  # what `semsearch serve` with no folder builds
    with TestClient(app) as client:
        for path, body in reversed(calls):  # add first, then search finds it
            response = client.post(path, json=body)
            assert response.status_code == 200, (path, response.text)
        search_path, search_body = calls[0]
        hits = client.post(search_path, json=search_body).json()["results"][0]["hits"]
    assert [h["id"] for h in hits] == ["hotel-1", "kayak"]
