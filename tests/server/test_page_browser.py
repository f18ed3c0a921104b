"""The search page in real headless Chromium (Debian's package), driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from .conftest import live_server

CHROMIUM = os.environ.get("SEMSEARCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
expect = None  # playwright's expect, set once playwright is known to be installed
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture()
def browser_page():
    global expect
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright drives the browser (test extra)")
    expect = sync_api.expect
    if not CHROMIUM:
        pytest.skip("no chromium on this machine (.ci/install-browser.sh installs Debian's)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            yield page
        finally:
            browser.close()


def test_page_searches_as_you_type_and_shows_markup_as_text(served, browser_page, tmp_path, request):
    from semsearch.server import create_app

    page = browser_page
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    app = create_app({"docs": served}, warm_up=False)
    with live_server(app) as url:
        page.goto(url + "/")
        page.wait_for_selector("#collection option", state="attached")
        page.locator("#query").press_sequentially("somewhere cheap to sleep near the sea", delay=15)
        first = page.locator("#results .hit").first
        first.wait_for(timeout=30_000)
        assert first.locator(".source").inner_text() == "hotel-1"
        assert float(first.locator(".score").inner_text().split()[-1]) > 0.3
        assert "sea" not in first.locator("mark").all_inner_texts()  # only words present get marked
        expect(page.locator("#status")).to_have_text(re.compile(r"^6 results in \d+ ms$"))

        # Fewer results via the k control: a new request replaces the old one.
        page.select_option("#k", "5")
        expect(page.locator("#results .hit")).to_have_count(5)

        # A document holding <script> is shown as text, and highlighting marks the query's words.
        page.locator("#query").fill("")
        page.locator("#query").press_sequentially("script markup", delay=15)
        expect(page.locator("#results .hit .source").first).to_have_text("xss-1", timeout=30_000)
        snippet = page.locator("#results .hit .snippet").first
        assert "<script>alert('pwned')</script>" in snippet.inner_text()
        assert page.locator("#results script").count() == 0
        marks = [m.lower() for m in snippet.locator("mark").all_inner_texts()]
        assert "script" in marks and "markup" in marks

        # The metadata filter narrows the results to the matching document.
        assert page.locator("#filter-key").is_enabled()
        page.locator("#query").fill("")
        page.locator("#query").press_sequentially("something to read", delay=15)
        page.fill("#filter-key", "topic")
        page.fill("#filter-value", "garden")
        expect(page.locator("#results .hit .source")).to_have_text(["garden-1"], timeout=30_000)
        page.fill("#filter-key", "")
        page.fill("#filter-value", "")
        page.locator("#query").fill("")
        page.locator("#query").press_sequentially("cheap hotel by the beach", delay=15)
        expect(page.locator("#results .hit .source").first).to_have_text("hotel-1", timeout=30_000)
        shot = tmp_path / "search-page.png"
        page.screenshot(path=str(shot), full_page=True)
        keep = os.environ.get("SEMSEARCH_SCREENSHOT_DIR")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
    assert shot.stat().st_size > 10_000
    assert console_errors == [], console_errors


def test_page_asks_for_the_key_when_the_server_needs_one(served, browser_page):
    from semsearch.server import create_app

    from .conftest import API_KEY

    page = browser_page
    app = create_app({"docs": served}, api_key=API_KEY, warm_up=False)
    with live_server(app) as url:
        page.goto(url + "/")
        page.wait_for_selector("#key-row:not([hidden])", timeout=30_000)
        page.fill("#api-key", API_KEY)
        page.press("#api-key", "Enter")
        page.wait_for_selector("#collection option", state="attached", timeout=30_000)
        page.locator("#query").press_sequentially("moon landing", delay=15)
        expect(page.locator("#results .hit .source").first).to_have_text("space-1", timeout=30_000)
