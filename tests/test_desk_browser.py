"""The desk on the editor page in a real headless Chromium: roles, the review queue, presence."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect

from helpers import TOKEN, LivefeedServer, auth, image_bytes, make_feed, publish, upload
from livefeed.storage.connect import connect
from livefeed.storage.store import Store

pytestmark = pytest.mark.browser


def make_token(server: LivefeedServer, name: str, role: str) -> str:
    async def create() -> str:
        redis = connect(server.redis_url, timeout=5, pool_size=2)
        try:
            return await Store(redis, server.prefix).tokens.create(name, role)
        finally:
            await redis.aclose()

    # Playwright's sync API holds this thread's event loop: the store runs in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create()).result(timeout=30)


class Desks:
    """Browser contexts opened by a test, each signed in to the editor page; all closed after."""

    def __init__(self, browser: Browser, server: LivefeedServer) -> None:
        self.browser, self.server = browser, server
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def page(self, path: str, width: int = 1200) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": 900})
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.goto(self.server.base + path)
        return page

    def editor(self, slug: str, token: str = TOKEN, width: int = 1200) -> Page:
        page = self.page(f"/editor?feed={slug}", width)
        page.fill("#token", token)
        page.click("#sign-in")
        expect(page.locator("#desk-status")).to_have_attribute("data-state", "live")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def desks(browser: Browser, server: LivefeedServer) -> Iterator[Desks]:
    opened = Desks(browser, server)
    try:
        yield opened
    finally:
        opened.close()
    assert not opened.errors, f"JavaScript errors on a page: {opened.errors}"


def test_a_contributor_on_a_phone_is_offered_drafts_not_publishing(
    desks: Desks, server: LivefeedServer, http: httpx.Client
) -> None:
    """A contributor's page says who they are and their role, offers Save draft and Submit for
    review, never Publish, and hides the editor-only controls; it fits a phone's width. A draft
    edited in the composer shows the images it has, and keeps them when saved."""
    slug = make_feed(http)
    publish(http, slug, "Opening brief")
    name = f"Reporter {uuid.uuid4().hex[:4]}"
    token = make_token(server, name, "contributor")
    photo = upload(http, image_bytes(64, 48))["id"]
    drafts = f"/api/feeds/{slug}/drafts"
    made = http.post(drafts, headers=auth(token), json={
        "headline": "Draft with a photo", "media": [{"id": photo, "alt": "A photo"}]})  # fmt: skip
    assert made.status_code == 201, made.text
    page = desks.editor(slug, token, width=360)
    expect(page.locator("#editor-name")).to_have_text(name)
    expect(page.locator("#editor-role")).to_have_text("contributor")
    expect(page.locator("#submit-draft")).to_be_visible()
    expect(page.locator("#save-draft")).to_be_visible()
    for hidden in ("#publish", "#coverage-toggle", "#new-feed", "#key-event", "#story-panel",
                   "#review-queue", "#recent li[data-id] .edit", "#recent li[data-id] .pin"):  # fmt: skip
        expect(page.locator(hidden)).to_be_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px screen"

    page.locator("#my-drafts li .edit").click()
    expect(page.locator("#headline")).to_have_value("Draft with a photo")
    expect(page.locator("#media-list > li")).to_have_attribute("data-id", photo)
    page.fill("#headline", "Draft with a photo, retitled")
    page.click("#save-draft")
    expect(page.locator("#compose-message")).to_contain_text("Draft saved")
    saved = http.get(f"{drafts}/{made.json()['id']}", headers=auth(token)).json()
    assert saved["headline"] == "Draft with a photo, retitled"
    assert [m["id"] for m in saved["media"]] == [photo]


def test_presence_is_shown_warned_and_cleared_when_the_tab_closes(
    desks: Desks, server: LivefeedServer, http: httpx.Client
) -> None:
    """An editor opening a brief's form shows "Olena K is editing" on another editor's list and
    warns them in the form; closing that tab clears it within seconds."""
    slug = make_feed(http)
    publish(http, slug, "Shared brief")
    olena = f"Olena K {uuid.uuid4().hex[:4]}"
    first = desks.editor(slug, make_token(server, olena, "editor"))
    second = desks.editor(slug)
    first.locator("#recent li[data-id] .edit").click()
    item = second.locator("#recent li[data-id]")
    expect(item.locator(".badge-editing")).to_have_text(f"{olena} is editing")
    item.locator(".edit").click()
    expect(item.locator(".editing-warning")).to_contain_text(f"{olena} is editing this brief too")
    expect(first.locator("#recent li[data-id] .badge-editing")).to_have_text("Newsroom is editing")
    first.context.close()
    # At once when the node sees the socket close; at the latest when the entry lapses (10 s).
    expect(item.locator(".badge-editing")).to_have_count(0, timeout=30_000)
    expect(item.locator(".editing-warning")).to_have_count(0)


HOSTILE_HEADLINE = '<img src=x onerror="alert(1)"> Bridge <b>closed</b>'
HOSTILE_NOTE = '<script>alert(2)</script> check the <i onmouseover="alert(3)">name</i>'


def test_a_contributors_draft_is_reviewed_live_and_only_the_published_brief_is_public(
    desks: Desks, server: LivefeedServer, http: httpx.Client
) -> None:
    """A contributor submits a draft; it arrives live in an editor's queue, goes back with a
    note and returns, is scheduled and unscheduled; the editor publishes it and readers see
    that brief alone. Markup in the
    headline, body and note shows as text in the queue and the lists, and runs nothing."""
    slug = make_feed(http)
    reporter = desks.editor(
        slug, make_token(server, f"Reporter {uuid.uuid4().hex[:4]}", "contributor"), 390
    )
    editor = desks.editor(slug)
    dialogs: list[str] = []

    def ran(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    for page in (reporter, editor):
        page.on("dialog", ran)

    reporter.fill("#headline", "Secret draft marker")
    reporter.click("#save-draft")
    expect(reporter.locator("#my-drafts li")).to_have_count(1)
    reporter.click("#new-instead")
    reporter.fill("#headline", HOSTILE_HEADLINE)
    reporter.fill("#body", "<p>Police <script>alert(4)</script>closed it.</p>")
    reporter.click("#submit-draft")
    expect(reporter.locator("#compose-message")).to_contain_text("Submitted for review")

    queued = editor.locator("#review-queue li")
    expect(queued).to_have_count(1)
    expect(queued.locator(".recent-headline")).to_have_text(HOSTILE_HEADLINE)
    expect(queued.locator(".draft-body")).to_contain_text("Police closed it.")
    queued.locator(".send-back").click()
    queued.locator(".draft-input").fill(HOSTILE_NOTE)
    queued.locator(".draft-form button").click()
    expect(queued).to_have_count(0)

    mine = reporter.locator("#my-drafts li", has_text="Bridge")
    expect(mine.locator(".draft-note")).to_contain_text(HOSTILE_NOTE)
    mine.locator(".submit").click()
    expect(queued).to_have_count(1)
    queued.locator(".schedule").click()
    queued.locator(".draft-input").fill("2099-01-01T09:00")
    queued.locator(".draft-form button").click()
    scheduled = editor.locator("#schedule-list li")
    expect(scheduled.locator("time")).to_have_attribute("datetime", re.compile("^2099-01-01"))
    scheduled.locator(".unschedule").click()
    expect(scheduled).to_have_count(0)
    queued.locator(".publish").click()
    expect(queued).to_have_count(0)
    expect(editor.locator("#recent li[data-id] .recent-headline")).to_have_text([HOSTILE_HEADLINE])
    expect(reporter.locator("#my-drafts li")).to_have_count(1)  # the unsubmitted one stays

    reader = desks.page(f"/feeds/{slug}")
    expect(reader.locator("#briefs .brief-headline")).to_have_text([HOSTILE_HEADLINE])
    assert "Secret draft marker" not in reader.content()
    for page in (reporter, editor, reader):
        assert (
            page.locator(
                "#review-queue img, #my-drafts img, #my-drafts i, .brief-headline img"
            ).count()
            == 0
        )
    assert not dialogs, f"markup ran: {dialogs}"
