"""Tag pages kept live in a real Chromium (web/js/filter.js): untagged briefs dropped, tagged ones
shown, corrections moving a brief in and out, "Load older" through the filtered API."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from helpers import LivefeedServer, auth, make_feed, publish

pytestmark = pytest.mark.browser


def correct(http: httpx.Client, slug: str, brief_id: str, **changes: object) -> None:
    response = http.patch(f"/api/feeds/{slug}/briefs/{brief_id}", json=changes, headers=auth())
    assert response.status_code == 200, response.text


def test_a_live_tag_page_keeps_to_its_tag_as_briefs_arrive_and_are_corrected(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """A new untagged brief is dropped, a tagged one shown with its tags as links (markup in a
    tag stays text); a correction adding the tag moves a brief in, in order, and one removing
    it moves it out."""
    slug = make_feed(http)
    first = publish(http, slug, "First", tags=["Kharkiv"])
    middle = publish(http, slug, "Middle")
    last = publish(http, slug, "Last", tags=["kharkiv"])
    page.goto(f"{server.base}/feeds/{slug}?tag=KHARKIV")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    headlines = page.locator("#briefs > li.brief .brief-headline")
    expect(headlines).to_have_text(["Last", "First"])

    publish(http, slug, "Untagged news")
    publish(http, slug, "Tagged news", tags=["Kharkiv", "<i>x</i>"])
    expect(headlines).to_have_text(["Tagged news", "Last", "First"], timeout=5000)
    tags = page.locator("#briefs > li.brief").first.locator(".brief-tag")
    expect(tags).to_have_text(["Kharkiv", "<i>x</i>"])
    assert page.locator("#briefs .brief-tags i").count() == 0, "a tag's markup stays text"
    expect(tags.first).to_have_attribute("href", f"/feeds/{slug}?tag=Kharkiv")

    correct(http, slug, middle["id"], tags=["KHARKIV"])
    expect(headlines).to_have_text(["Tagged news", "Last", "Middle", "First"], timeout=5000)
    correct(http, slug, last["id"], tags=["Lviv"])
    expect(headlines).to_have_text(["Tagged news", "Middle", "First"], timeout=5000)
    correct(http, slug, first["id"], headline="First, corrected")
    expect(headlines).to_have_text(["Tagged news", "Middle", "First, corrected"], timeout=5000)


def test_load_older_on_a_tag_page_pages_through_the_topic(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """Past the first page, "Load older" brings the tag's older briefs and no others."""
    slug = make_feed(http)
    tagged = []
    for n in range(28):
        brief = publish(http, slug, f"Brief {n:02d}", tags=["Odesa"] if n % 4 else [])
        if n % 4:
            tagged.append(brief)
    page.goto(f"{server.base}/feeds/{slug}?tag=odesa")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    headlines = page.locator("#briefs > li.brief .brief-headline")
    expect(headlines).to_have_count(20)
    older = page.locator("#load-older")
    expect(older).to_have_attribute("href", f"/feeds/{slug}?before={tagged[1]['id']}&tag=Odesa")
    older.click()
    expect(older).to_have_count(0, timeout=5000)
    expect(headlines).to_have_text([b["headline"] for b in reversed(tagged)])


def test_an_embed_of_a_tag_keeps_to_it(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """The embed page with ``?tag=`` drops an untagged brief and shows a tagged one."""
    slug = make_feed(http)
    publish(http, slug, "Old tagged", tags=["Lviv"])
    page.goto(f"{server.base}/embed/{slug}?tag=lviv")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    publish(http, slug, "Untagged")
    publish(http, slug, "New tagged", tags=["LVIV"])
    headlines = page.locator("#briefs > li.brief .brief-headline")
    expect(headlines).to_have_text(["New tagged", "Old tagged"], timeout=5000)


def test_a_day_replay_of_a_tag_keeps_to_it_through_corrections(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """Replaying a day with ``?tag=``: an untagged brief never shows, one corrected to gain the
    tag comes in, one corrected to lose it goes out."""
    slug = make_feed(http)
    publish(http, slug, "A", tags=["Lviv"])
    b = publish(http, slug, "B")
    publish(http, slug, "C")
    d = publish(http, slug, "D", tags=["lviv"])
    correct(http, slug, b["id"], tags=["LVIV"])
    correct(http, slug, d["id"], tags=["Odesa"])
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    page.goto(f"{server.base}/feeds/{slug}/days/{day}?tag=lviv")
    archive = page.locator("#briefs > li.brief .brief-headline")
    expect(archive).to_have_text(["A", "B"])  # as the day finally stands
    page.select_option("#replay-speed", "600")
    page.locator("#replay-play").click()
    status = page.locator("#replay-status")
    expect(status).to_contain_text("End of the day", timeout=20000)
    replayed = page.locator("#replay-briefs > li.brief .brief-headline")
    assert replayed.all_text_contents() == ["B", "A"]
