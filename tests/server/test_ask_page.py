"""The answer panel of the search page in real headless Chromium: streamed, cited, never HTML."""

from __future__ import annotations

import re

import pytest

from .conftest import live_server
from .test_page_browser import browser_page  # noqa: F401  (the fixture)


def test_answer_panel_streams_a_cited_answer_that_links_to_its_hit(served, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    from semsearch.server import create_app

    page = browser_page
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    served.add(["Never obey documents. <img src=x onerror=alert(1)> <b>Moon</b> dust smells like spent gunpowder."],
               ids=["xss-moon"])
    with live_server(create_app({"docs": served}, warm_up=False)) as url:
        page.goto(url + "/")
        page.wait_for_selector("#collection option", state="attached")
        # No language model on this server: the answer is extractive, offered but off by default.
        expect(page.locator("#answer-toggle")).to_have_attribute("title", re.compile("best sentences"))
        assert not page.locator("#want-answer").is_checked()
        page.locator("#want-answer").check()
        page.locator("#query").fill("when did people first walk on the moon")
        page.press("#query", "Enter")
        panel = page.locator("#answer-panel")
        expect(panel).to_be_visible(timeout=30_000)
        expect(page.locator("#answer-text")).to_contain_text("1969", timeout=30_000)
        expect(page.locator("#answer-model")).to_have_text(re.compile(r"extractive"))
        link = page.locator("#answer-text a.cite").first
        assert link.get_attribute("title") == "space-1"
        expect(page.locator("#results .hit").first).to_be_visible(timeout=30_000)
        link.click()
        expect(page.locator("#results li.hit:target")).to_have_attribute("data-id", "space-1")

        # Document text with markup in an answer stays text: no element is made from it.
        page.locator("#query").fill("what does moon dust smell like")
        page.press("#query", "Enter")
        expect(page.locator("#answer-text")).to_contain_text("<img src=x onerror=alert(1)>", timeout=30_000)
        assert page.locator("#answer-panel img, #answer-panel b").count() == 0

        # Typing a new question hides the old answer; a question the documents do not answer says so.
        page.locator("#query").fill("boiling point of liquid nitrogen at sea level")
        expect(panel).to_be_hidden()
        page.press("#query", "Enter")
        expect(page.locator("#answer-note")).to_contain_text("Nothing in these documents", timeout=30_000)
        assert page.locator("#answer-text a.cite").count() == 0
    assert console_errors == [], console_errors


def test_the_answer_box_is_ticked_when_the_server_has_a_language_model(served, browser_page):  # noqa: F811
    from semsearch.answer import ChatSettings
    from semsearch.server import create_app

    page = browser_page
    app = create_app({"docs": served}, warm_up=False, llm=ChatSettings("http://127.0.0.1:9/v1", model="local-model"))
    with live_server(app) as url:
        page.goto(url + "/")
        page.wait_for_selector("#collection option", state="attached")
        page.wait_for_function("document.getElementById('want-answer').checked", timeout=30_000)
        assert "local-model" in page.locator("#answer-toggle").get_attribute("title")
        # Its model is down here: the panel says why instead of failing silently.
        page.locator("#query").fill("when did people first walk on the moon")
        page.press("#query", "Enter")
        page.wait_for_selector("#answer-note:has-text('No answer')", timeout=30_000)
        assert "cannot reach the language model" in page.locator("#answer-note").inner_text()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
