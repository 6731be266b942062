"""The search box on the reader and day pages, in a real headless Chromium (Debian's)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from helpers import LivefeedServer, publish

pytestmark = pytest.mark.browser


def test_search_box_shows_highlighted_results_on_the_live_page(
    page: Page, server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    """Searching on the live page shows the hits above it, each match in a <mark>, without
    leaving the page; markup in a brief is shown as text, and the page stays live."""
    publish(http, feed, "<img src=x id=planted> Siren over Київ", body="<p>Air raid siren.</p>")
    publish(http, feed, "Calm evening")
    page.goto(f"{server.base}/feeds/{feed}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    page.fill("#search-q", "КИЇВ sir")
    page.press("#search-q", "Enter")
    hits = page.locator("#search-results .search-hit")
    expect(hits).to_have_count(1, timeout=5000)
    headline = hits.first.locator(".search-headline")
    expect(headline).to_have_text("<img src=x id=planted> Siren over Київ")
    expect(headline).to_have_attribute("dir", "auto")
    expect(headline.locator("mark")).to_have_text(["Siren", "Київ"])
    expect(hits.first.locator(".search-snippet mark")).to_have_text(["siren"])
    assert page.locator("#planted").count() == 0
    assert page.url == f"{server.base}/feeds/{feed}"
    publish(http, feed, "Published while searching")
    expect(page.locator("#briefs > li.brief").first.locator(".brief-headline")).to_have_text(
        "Published while searching", timeout=5000
    )
    page.click("#search-results .search-close")
    expect(page.locator("#search-results")).to_be_hidden()


def test_day_page_has_the_search_box(http: httpx.Client, feed: str) -> None:
    """The day page carries the same search form, a plain GET to the results page."""
    publish(http, feed, "On the day")
    day = http.get(f"/feeds/{feed}/days", follow_redirects=True)
    assert day.status_code == 200
    assert f'action="/feeds/{feed}/search"' in day.text and 'role="search"' in day.text


def test_embed_page_search_box_shows_highlighted_results(
    page: Page, server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    """The embed page has the search box; its hits show inside the frame, matches marked."""
    publish(http, feed, "Shelling near Харків", body="<p>Residents told to shelter.</p>")
    publish(http, feed, "Quiet morning")
    page.goto(f"{server.base}/embed/{feed}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    page.fill("#search-q", "ХАРКІВ")  # noqa: RUF001 (Cyrillic, upper case)
    page.press("#search-q", "Enter")
    hits = page.locator("#search-results .search-hit")
    expect(hits).to_have_count(1, timeout=5000)
    expect(hits.first.locator(".search-headline mark")).to_have_text(["Харків"])
    assert page.url == f"{server.base}/embed/{feed}"
