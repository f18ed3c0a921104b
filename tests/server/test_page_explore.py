"""The page's "More like this" and topics views in real headless Chromium, against a small real collection."""

from __future__ import annotations

import re

import pytest

from .conftest import API_KEY, live_server
from .test_page_browser import browser_page  # noqa: F401  (the fixture)

# Four groups of four documents that MiniLM separates cleanly; web-1 holds markup that must stay text.
GROUPED = [
    ("hotel-1", "Budget-friendly lodging by the coast, five minutes from the sand.", "hotel"),
    ("hotel-2", "A cheap seaside hotel with sea-view rooms and breakfast included.", "hotel"),
    ("hotel-3", "Our hostel near the beach offers dorm beds for backpackers on a budget.", "hotel"),
    ("hotel-4", "Book a family room at this beachfront resort with a pool and free parking.", "hotel"),
    ("recipe-1", "A recipe for chocolate cake with dark cocoa and butter.", "recipe"),
    ("recipe-2", "Bake the sponge cake for thirty minutes, then cover it with chocolate frosting.", "recipe"),
    ("recipe-3", "Whisk eggs, sugar and flour into a batter for vanilla cupcakes.", "recipe"),
    ("recipe-4", "Melt butter and brown sugar to make soft chocolate chip cookies.", "recipe"),
    ("space-1", "Apollo 11 landed on the Moon in 1969 and Neil Armstrong walked on it.", "space"),
    ("space-2", "The Saturn V rocket launched the Apollo astronauts toward the Moon.", "space"),
    ("space-3", "Astronauts on the lunar surface collected Moon rocks for scientists on Earth.", "space"),
    ("space-4", "The lunar module Eagle touched down in the Sea of Tranquility.", "space"),
    ("web-1", "<script>alert('pwned')</script> Markup in a web page must show as text, not run as JavaScript.", "web"),
    ("web-2", "Escape HTML before inserting user input into a web page to prevent cross-site scripting.", "web"),
    ("web-3", "A Content-Security-Policy header stops inline JavaScript from running in the browser.", "web"),
    ("web-4", "Sanitize HTML markup from users so no script tag can run on your web page.", "web"),
]
MARKUP = "<script>alert('pwned')</script>"


@pytest.fixture(scope="module")
def grouped_vectors(minilm_path):
    from semsearch import Embedder

    return Embedder().encode_documents([text for _, text, _ in GROUPED])


@pytest.fixture()
def grouped(tmp_path, grouped_vectors):
    from semsearch import Collection

    col = Collection(tmp_path / "grouped")
    col.add([t for _, t, _ in GROUPED], ids=[i for i, _, _ in GROUPED], metadatas=[{"kind": k} for _, _, k in GROUPED],
            embeddings=grouped_vectors)
    yield col
    col.close()


def watch(page) -> tuple[list[str], list[str]]:
    """Collect the page's console errors and any dialog (alert) a document's markup would open."""
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def dialog(d) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    return errors, dialogs


def open_with_key(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#key-row:not([hidden])", timeout=30_000)
    page.fill("#api-key", API_KEY)
    page.press("#api-key", "Enter")
    page.wait_for_selector("#collection option", state="attached", timeout=30_000)


def sources(page, scope: str) -> list[str]:
    return page.locator(f"{scope} .hit .source").all_inner_texts()


def test_more_like_this_lists_the_nearest_documents_and_leads_back_to_the_search(grouped, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    from semsearch.corpus import similar
    from semsearch.server import create_app

    page = browser_page
    with live_server(create_app({"docs": grouped}, api_key=API_KEY, warm_up=False)) as url:
        open_with_key(page, url + "/")  # every request of the new views carries the key too
        errors, dialogs = watch(page)  # from here: the first, keyless request was refused (logged as an error)
        page.locator("#query").press_sequentially("cheap place to stay by the beach", delay=10)
        expect(page.locator("#results .hit").first).to_be_visible(timeout=30_000)
        expect(page.locator("#status")).to_have_text(re.compile(r"^\d+ results in \d+ ms$"))
        search_status = page.locator("#status").inner_text()
        search_hits = sources(page, "#results")

        page.locator('#results li.hit[data-id="hotel-1"] a.more').click()
        expect(page.locator("#explore-title")).to_have_text("Documents like hotel-1")
        expect(page.locator("#status")).to_have_text(
            re.compile(r"^10 documents like hotel-1 in \d+ ms$"), timeout=30_000
        )
        expected = [h.id for h in similar(grouped, "hotel-1", k=10)]
        assert sources(page, "#explore-list") == expected  # the API's answer, in its order
        assert set(expected[:3]) == {"hotel-2", "hotel-3", "hotel-4"}
        assert page.locator("#explore-lead .origin .source").inner_text() == "hotel-1"
        assert page.locator("#explore-list .hit .score").first.inner_text().startswith("similarity ")
        assert "similar=hotel-1" in page.url
        expect(page.locator("#results")).to_be_hidden()

        # More like one of those: the Back button names where it returns, then returns there.
        page.locator('#explore-list li.hit[data-id="hotel-2"] a.more').click()
        expect(page.locator("#explore-title")).to_have_text("Documents like hotel-2")
        expect(page.locator("#back")).to_have_text("← Back to documents like hotel-1")
        expect(page.locator("#explore-list .hit").first).to_be_visible(timeout=30_000)
        assert "hotel-2" not in sources(page, "#explore-list")
        page.locator("#back").click()
        expect(page.locator("#explore-title")).to_have_text("Documents like hotel-1")
        expect(page.locator("#back")).to_have_text("← Back to search results")

        # Escape leaves the view: the same results and status, focus on the link that was followed.
        expect(page.locator("#explore-title")).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator("#results")).to_be_visible()
        expect(page.locator("#explore-list")).to_be_hidden()
        assert sources(page, "#results") == search_hits
        expect(page.locator("#status")).to_have_text(search_status)
        link = page.locator('#results li.hit[data-id="hotel-1"] a.more')
        expect(link).to_be_focused()
        page.keyboard.press("Enter")  # the keyboard follows it as well
        expect(page.locator("#explore-title")).to_have_text("Documents like hotel-1")
        page.go_back()  # and so does the browser's Back button
        expect(page.locator("#results")).to_be_visible()
        assert page.locator("#query").input_value() == "cheap place to stay by the beach"

        # A document holding <script> is shown as text, in the document itself and among its neighbours.
        page.locator("#query").fill("")
        page.locator("#query").press_sequentially("script markup", delay=10)
        expect(page.locator("#results .hit .source").first).to_have_text("web-1", timeout=30_000)
        page.locator('#results li.hit[data-id="web-1"] a.more').click()
        expect(page.locator("#explore-lead .origin .snippet")).to_contain_text(MARKUP, timeout=30_000)
        expect(page.locator("#status")).to_have_text(re.compile(r"documents like web-1"), timeout=30_000)
        assert set(sources(page, "#explore-list")[:3]) == {"web-2", "web-3", "web-4"}
        page.locator('#explore-list li.hit[data-id="web-2"] a.more').click()
        expect(page.locator("#explore-list li.hit").first).to_be_visible(timeout=30_000)
        expect(page.locator('#explore-list li.hit[data-id="web-1"] .snippet')).to_contain_text(MARKUP)
        assert page.locator("script:not([src])").count() == 0

        # The metadata filter of the controls applies here too, and the view follows it as it changes.
        page.fill("#filter-key", "kind")
        page.fill("#filter-value", "recipe")
        expect(page.locator("#explore-note")).to_contain_text("kind = recipe")
        expect(page.locator("#explore-list .hit .source")).to_have_text(
            [h.id for h in similar(grouped, "web-2", k=10, where={"kind": "recipe"})], timeout=30_000)
        assert all(s.startswith("recipe-") for s in sources(page, "#explore-list"))

        # Typing a query goes back to searching.
        page.fill("#filter-key", "")
        page.locator("#query").fill("")
        page.locator("#query").press_sequentially("moon landing", delay=10)
        expect(page.locator("#results .hit .source").first).to_have_text(re.compile(r"^space-"), timeout=30_000)
        expect(page.locator("#explore-head")).to_be_hidden()
        assert errors == [] and dialogs == [], (errors, dialogs)  # before the 422 below, which Chromium logs

        # An unknown document (a stale link) is an error in the status line.
        page.goto(url + "/?similar=nope")
        expect(page.locator("#status.error")).to_contain_text("no document with id 'nope'", timeout=30_000)


def test_topics_view_shows_labels_sizes_and_central_documents_and_filters_once_assigned(grouped, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    from semsearch.corpus import assign_topics, topics
    from semsearch.server import create_app

    page = browser_page
    found = topics(grouped)  # what /topics answers, computed here to check the page shows it all
    assert len(found) == 4
    with live_server(create_app({"docs": grouped}, api_key=API_KEY, warm_up=False)) as url:
        open_with_key(page, url + "/")
        errors, dialogs = watch(page)
        page.locator("#view-topics").click()
        expect(page.locator("#view-topics")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#explore-title")).to_have_text("Topics of docs")
        cards = page.locator("#explore-list li.topic")
        expect(cards).to_have_count(4, timeout=60_000)
        expect(page.locator("#status")).to_have_text(re.compile(r"^4 topics among 16 documents in \d+ ms$"))
        for card, topic in zip(cards.all(), found):
            assert card.locator(".topic-open").inner_text() == topic.label
            assert card.locator(".topic-size").inner_text() == "4 documents · 25%"
            words = ", ".join(topic.words)  # all its distinctive words, unless the label already says them all
            assert card.locator(".topic-words").all_inner_texts() == ([] if words == topic.label else [words])
            central = [li.get_attribute("data-id") for li in card.locator(".central li").all()]
            assert central == topic.ids[:3]
            assert len({i.split("-")[0] for i in central}) == 1  # each topic is one of the planted groups
        # Nothing was assigned: no filter to offer, and the page says how to get one.
        assert page.locator(".search-topic").count() == 0
        expect(page.locator("#explore-note")).to_contain_text("semsearch topics --assign")

        # The number of topics can be chosen.
        page.select_option("#topic-count", "2")
        expect(cards).to_have_count(2, timeout=60_000)
        sizes = [int(s.split()[0]) for s in page.locator(".topic-size").all_inner_texts()]
        assert sum(sizes) == 16 and "n=2" in page.url
        page.select_option("#topic-count", "")
        expect(cards).to_have_count(4, timeout=60_000)

        # Choosing a topic lists its documents, most central first, markup shown as text.
        web = next(t for t in found if t.ids[0].startswith("web-"))
        page.locator("#explore-list .topic-open", has_text=web.label).click()
        expect(page.locator("#explore-title")).to_have_text(f"Topic: {web.label}")
        expect(page.locator("#explore-list .hit .source")).to_have_text(web.ids, timeout=30_000)
        expect(page.locator("#status")).to_have_text("4 documents, the most central first")
        expect(page.locator('#explore-list li.hit[data-id="web-1"] .snippet')).to_contain_text(MARKUP)
        assert page.locator("script:not([src])").count() == 0
        expect(page.locator("#back")).to_have_text("← Back to topics")
        page.locator("#back").click()
        expect(cards).to_have_count(4)
        expect(page.locator("#status")).to_have_text("4 topics among 16 documents")  # kept, not recomputed

        # Once topics are written into metadata, each topic filters the search to its documents.
        assert assign_topics(grouped, found) == 16
        page.locator("#view-topics").click()  # asks the server again
        expect(page.locator("#explore-list .search-topic")).to_have_count(4, timeout=60_000)
        expect(page.locator("#explore-note")).not_to_contain_text("--assign")
        hotels = next(t for t in found if t.ids[0].startswith("hotel-"))
        page.locator(f'#explore-list li.topic[data-topic="{hotels.id}"] .search-topic').click()
        expect(page.locator("#explore-head")).to_be_hidden()
        expect(page.locator("#view-search")).to_have_attribute("aria-pressed", "true")
        assert page.locator("#filter-key").input_value() == "topic"
        assert page.locator("#filter-value").input_value() == str(hotels.id)
        expect(page.locator("#status")).to_contain_text(f"Searching topic “{hotels.label}” only")
        expect(page.locator("#query")).to_be_focused()
        page.keyboard.type("chocolate cake recipe", delay=10)
        expect(page.locator("#status")).to_have_text(re.compile(r"results in"), timeout=30_000)
        assert sorted(sources(page, "#results")) == ["hotel-1", "hotel-2", "hotel-3", "hotel-4"]
    assert errors == [] and dialogs == [], (errors, dialogs)
