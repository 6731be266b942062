"""Since you were last here, on the reader page in a real Chromium: the line, its links, and
the briefs published since marked new until seen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from helpers import LivefeedServer, auth, make_feed, publish

pytestmark = pytest.mark.browser

AT = r"Since you were here at (\d{1,2} \w{3} )?\d{2}:\d{2}: "


@contextmanager
def reader(browser: Browser) -> Iterator[BrowserContext]:
    """One reader's browser profile (its localStorage shared by its tabs); fails on JS errors."""
    context = browser.new_context(viewport={"width": 800, "height": 700})
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield context
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_live(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10_000)
    return page


def test_a_returning_reader_sees_one_line_of_what_they_missed_and_can_jump_to_it(
    browser: Browser, server: LivefeedServer, http: httpx.Client
) -> None:
    """After the tab closed and briefs, a key event and a correction of a read brief were
    published, a new tab shows the line with the right counts and links, headlines as text; the
    key-event link jumps to it, the correction link opens what changed, new briefs are marked
    "New" until they have been in view."""
    slug = make_feed(http)
    read = publish(http, slug, "Bridge open")
    with reader(browser) as context:
        first = open_live(context, f"{server.base}/feeds/{slug}")
        first.close()
        publish(http, slug, "<img src=x onerror=alert(1)> Roads")
        key = publish(http, slug, "Key <b>moment</b>", key_event=True)
        publish(http, slug, "Third")
        fixed = http.patch(
            f"/api/feeds/{slug}/briefs/{read['id']}",
            json={"headline": "Bridge closed", "correction_note": "It was closed"},
            headers=auth(),
        )
        assert fixed.status_code == 200, fixed.text
        summary = {"items": ["Bridge closed"]}
        assert http.put(f"/api/feeds/{slug}/summary", json=summary, headers=auth()).is_success

        back = open_live(context, f"{server.base}/feeds/{slug}")
        line = back.locator("#since-line")
        expect(line).to_have_text(re.compile(AT + "1 key event, 3 updates, 1 correction to "
                                             "something you read, summary updated$"))  # fmt: skip
        assert back.locator("#feed > *").first.get_attribute("id") == "since-line"
        assert back.locator("#since-line img, #since-line b").count() == 0
        unseen = back.locator("#briefs > li.brief--unseen")
        expect(unseen).to_have_count(3)
        expect(unseen.locator(".brief-new-label")).to_have_text(["New"] * 3)
        expect(back.locator(f'[id="{read["id"]}"] .brief-new-label')).to_have_count(0)
        key_link = line.locator(".since-key-events")
        expect(key_link).to_have_attribute("title", "Key <b>moment</b>")
        expect(key_link).to_have_attribute("href", f"#{key['id']}")

        newest = back.locator("#briefs > li.brief").first  # in view: seen after a few seconds
        expect(newest).not_to_have_class(re.compile("brief--unseen"), timeout=15_000)
        expect(newest.locator(".brief-new-label")).to_have_count(0)
        key_link.click()
        expect(back).to_have_url(re.compile(f"#{key['id']}$"))
        expect(back.locator(f'[id="{key["id"]}"]')).to_be_in_viewport()

        changes = line.locator(".since-corrections")
        expect(changes).to_have_attribute("href", f"/feeds/{slug}/briefs/{read['id']}/changes")
        changes.click()
        expect(back.locator(".change-note")).to_have_text("It was closed")


def test_a_first_visit_has_no_line_and_a_permalink_visit_or_since_parameter_has_one(
    browser: Browser, server: LivefeedServer, http: httpx.Client
) -> None:
    """A first visit asks nothing and shows no line; a later permalink visit (what a push alert
    opens) shows it with the brief in view; ``?since=<id>`` shows it in a fresh profile."""
    slug = make_feed(http)
    before = publish(http, slug, "Before")
    with reader(browser) as context:
        first = open_live(context, f"{server.base}/feeds/{slug}")
        asked: list[str] = []
        first.on("request", lambda request: asked.append(request.url))
        first.reload()
        expect(first.locator("#conn-status")).to_have_attribute("data-state", "live")
        assert (
            not [url for url in asked if "/since/" in url]
            and first.locator("#since-line").count() == 0
        )
        first.close()
        key = publish(http, slug, "Alert-worthy", key_event=True)
        permalink = open_live(context, f"{server.base}/feeds/{slug}#{key['id']}")
        expect(permalink.locator("#since-line")).to_have_text(
            re.compile(AT + "1 key event, 1 update$")
        )
        expect(permalink.locator(f'[id="{key["id"]}"]')).to_be_in_viewport()
    with reader(browser) as fresh:
        shared = open_live(fresh, f"{server.base}/feeds/{slug}?since={before['id']}")
        expect(shared.locator("#since-line")).to_have_text(
            re.compile(AT + "1 key event, 1 update$")
        )


def test_a_tab_back_online_after_a_long_gap_shows_what_happened_meanwhile(
    browser: Browser, server: LivefeedServer, http: httpx.Client
) -> None:
    """A tab that was offline for over 15 minutes (its clock moved on: Playwright's fake clock)
    shows the line for what was published meanwhile once it is live again."""
    slug = make_feed(http)
    publish(http, slug, "Before the gap")
    with reader(browser) as context:
        page = context.new_page()
        page.clock.install()
        page.goto(f"{server.base}/feeds/{slug}")
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10_000)
        context.set_offline(True)
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "offline")
        publish(http, slug, "During the gap", key_event=True)
        page.clock.fast_forward("16:00")
        context.set_offline(False)
        expect(page.locator("#since-line")).to_have_text(
            re.compile(AT + "1 key event, 1 update$"), timeout=15_000
        )
