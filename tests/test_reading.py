"""Readers in every script, at every width and by keyboard, in a real headless Chromium: right to
left text, nothing wider than a phone, the "N new updates" button by Tab, axe-core's audit in
light and dark mode, and the small things a reader notices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from helpers import ROOT, TOKEN, LivefeedServer, auth, image_bytes, make_feed, publish, upload

pytestmark = pytest.mark.browser

AXE = ROOT / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
ARABIC = "عاجل: انقطاع الكهرباء عن العاصمة (تحديث ٣)"
HEBREW = "<p>הרשויות מסרו כי החשמל יחזור בשעה 18:00.</p>"


def rtl_feed(http: httpx.Client, language: str = "ar") -> str:
    slug = make_feed(http)
    response = http.patch(f"/api/feeds/{slug}", json={"language": language}, headers=auth())
    assert response.status_code == 200, response.text
    return slug


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A page 390 px wide that fails the test if it raised a JavaScript error."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the viewport (0 or less: no horizontal scroll)."""
    result: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return result


def direction(page: Page, selector: str) -> str:
    result: str = page.locator(selector).evaluate("(el) => getComputedStyle(el).direction")
    return result


def wait_live(page: Page) -> None:
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)


# --- scripts and widths -----------------------------------------------------------------------


def test_an_arabic_brief_reads_right_to_left_as_rendered_and_as_it_arrives(
    phone: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """Headline, body, author and tags of an RTL brief are laid out rtl on the server-rendered
    page and after arriving live, in a page whose lang is the feed's; nothing overflows 390 px."""
    slug = rtl_feed(http)
    fields: dict[str, Any] = {"body": HEBREW, "author": "مراسلنا", "tags": ["كهرباء"]}
    publish(http, slug, ARABIC, **fields)
    phone.goto(f"{server.base}/feeds/{slug}")
    wait_live(phone)
    assert phone.evaluate("document.documentElement.lang") == "ar"
    publish(http, slug, ARABIC + " — live", **fields)
    expect(phone.locator("#briefs > li.brief")).to_have_count(2, timeout=5000)
    for n, how in ((0, "arrived live"), (1, "server-rendered")):
        brief = f"#briefs > li.brief:nth-child({n + 1})"
        for part in (".brief-headline", ".brief-body", ".brief-author", ".brief-tags li"):
            assert direction(phone, f"{brief} {part}") == "rtl", (how, part)
    assert direction(phone, "#briefs > li.brief:first-child .brief-meta") == "ltr", (
        "the clock stays ltr"
    )
    assert overflow(phone) <= 0, "no horizontal scrolling at 390 px"


def test_long_unbroken_headline_tag_and_byline_wrap_on_a_phone_and_a_desktop(
    phone: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """A 300-character unbroken headline, a URL as a tag and a long byline wrap instead of
    widening the page, as rendered and as they arrive live, at 390 px and at 1280 px."""
    slug = make_feed(http)
    headline = "Donaudampfschifffahrtsgesellschaftskapitän" * 7 + "x" * 6
    assert len(headline) == 300 and " " not in headline
    fields: dict[str, Any] = {
        "author": "#" + "Berichterstattung" * 5,
        "tags": ["https://example.org/a/very/long/path/x"],
        "key_event": True,
        "body": "<p>https://example.org/" + "segment/" * 40 + "</p>",
    }
    publish(http, slug, headline, **fields)
    phone.goto(f"{server.base}/feeds/{slug}")
    wait_live(phone)
    publish(http, slug, headline, **fields)
    expect(phone.locator("#briefs > li.brief")).to_have_count(2, timeout=5000)
    expect(phone.locator(".key-event-list li")).to_have_count(2)
    for viewport in (PHONE, DESKTOP):
        phone.set_viewport_size(viewport)
        assert overflow(phone) <= 0, f"no horizontal scrolling at {viewport['width']} px"
        widths = phone.evaluate(
            """() => [...document.querySelectorAll('.brief-headline, .key-event-list a')]
                    .map((el) => el.scrollWidth - el.clientWidth)"""
        )
        assert max(widths) <= 0, f"headlines fit their column at {viewport['width']} px"


def test_the_timeline_dot_keeps_clear_of_the_headline(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """On a wide screen the dot on the timeline, ring included, stands apart from the text."""
    slug = make_feed(http)
    publish(http, slug, "Newest brief, whose dot has a ring")
    page.set_viewport_size(DESKTOP)
    page.goto(f"{server.base}/feeds/{slug}")
    gap = page.evaluate(
        """() => {
            const meta = document.querySelector('#briefs .brief-meta');
            const headline = document.querySelector('#briefs .brief-headline');
            const dot = getComputedStyle(meta, '::after');
            const ring = 5;  // the first brief's dot has a 5 px ring (box-shadow)
            const dotRight = meta.getBoundingClientRect().right - parseFloat(dot.right);
            return headline.getBoundingClientRect().left - (dotRight + ring);
        }"""
    )
    assert gap >= 6, f"the dot's ring is {gap:.1f} px from the headline"


# --- keyboard ---------------------------------------------------------------------------------


def test_tab_reaches_the_new_updates_button_and_enter_shows_the_pending_briefs(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """Scrolled down with briefs waiting, the first Tab focuses "N new updates" (it stays
    shown), and Enter puts the waiting briefs on the page with focus on the newest."""
    slug = make_feed(http)
    long_body = "\n\n".join(["A long paragraph of reporting that takes up room."] * 6)
    for n in range(10):
        publish(http, slug, f"Earlier brief {n}", body=long_body)
    page.goto(f"{server.base}/feeds/{slug}")
    wait_live(page)
    page.mouse.wheel(0, 2500)
    page.wait_for_function("() => window.scrollY > 1000")
    publish(http, slug, "Waiting one")
    publish(http, slug, "Waiting two")
    button = page.locator("#new-updates")
    expect(button).to_have_text("2 new updates", timeout=5000)

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "new-updates"
    expect(button).to_be_visible()
    assert page.evaluate("window.scrollY") > 1000, "focusing the button did not scroll"

    page.keyboard.press("Enter")
    expect(button).to_be_hidden()
    headlines = page.locator("#briefs > li.brief .brief-headline")
    expect(headlines.nth(0)).to_have_text("Waiting two")
    expect(headlines.nth(1)).to_have_text("Waiting one")
    focused = page.evaluate("document.activeElement.querySelector('.brief-headline')?.textContent")
    assert focused == "Waiting two", "focus is on the newest brief"


# --- axe-core ---------------------------------------------------------------------------------


def axe_problems(page: Page, label: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands, one line a node."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    lines = []
    for violation in results["violations"]:
        if violation["impact"] not in ("serious", "critical"):
            continue
        for node in violation["nodes"]:
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(
                f"{label}: {violation['impact']} {violation['id']} ({violation['help']}) at "
                f"{' '.join(map(str, node['target']))}: {summary}"
            )
    return lines


def audit(page: Page, label: str) -> list[str]:
    """The page in light and dark mode at desktop and phone width (no reload in between)."""
    problems = []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            problems += axe_problems(page, f"{label} {scheme} {name}")
    return problems


def test_axe_finds_nothing_serious_on_the_reader_day_editor_and_embed_pages(
    browser: Browser, server: LivefeedServer, http: httpx.Client
) -> None:
    """axe-core reports no serious or critical violation on the reader page (with "N new
    updates" shown, a pinned brief, key events, and a gallery of images and audio), the day page, the editor (signed out and
    signed in) and the embed, in light and dark mode, at 1280 and 390 px."""
    assert AXE.exists(), f"{AXE} is missing: run scripts/bootstrap dev"
    slug = make_feed(http)
    long_body = "\n\n".join(["A paragraph of reporting that takes up room."] * 6)
    key = publish(http, slug, "A key event", key_event=True, tags=["power"], body=long_body)
    photo, plain = upload(http, image_bytes(640, 480)), upload(http, image_bytes(320, 240, "PNG"))
    sound = upload(http, b"\xff\xfb\x90\x64" + bytes(413))  # one MP3 frame
    publish(http, slug, "Pictures and sound", gallery=True, media=[
        {"id": photo["id"], "alt": "A red box", "caption": "A box", "credit": "Photo: Desk"},
        {"id": plain["id"], "decorative": True}, {"id": sound["id"], "transcript": "Words."},
    ])  # fmt: skip
    for n in range(6):
        publish(http, slug, f"Brief {n}", body=long_body)
    assert http.put(
        f"/api/feeds/{slug}/pin", json={"brief_id": key["id"]}, headers=auth()
    ).is_success
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    # axe is injected as an inline script, which the pages' CSP (rightly) refuses.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.goto(f"{server.base}/feeds/{slug}")
        wait_live(page)
        page.mouse.wheel(0, 3000)
        page.wait_for_function("() => window.scrollY > 500")
        publish(http, slug, "Waiting for the reader")
        expect(page.locator("#new-updates")).to_be_visible(timeout=5000)
        problems += audit(page, "reader")

        page.goto(f"{server.base}/feeds/{slug}/days/{day}")
        expect(page.locator("#replay")).to_be_visible()
        problems += audit(page, "day")

        page.goto(f"{server.base}/embed/{slug}")
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
        problems += audit(page, "embed")

        page.goto(f"{server.base}/editor?feed={slug}")
        problems += audit(page, "editor, signed out")
        page.fill("#token", TOKEN)
        page.click("#sign-in")
        expect(page.locator("#recent li[data-id]").first).to_be_visible(timeout=10000)
        problems += audit(page, "editor, signed in")
    finally:
        context.close()
    assert not problems, "axe-core found:\n" + "\n".join(problems)


# --- small things -----------------------------------------------------------------------------


def test_the_reader_page_has_one_state_indicator(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """ "Live" is said once, by the connection state, which says "Coverage ended" once ended."""
    slug = make_feed(http)
    page.goto(f"{server.base}/feeds/{slug}")
    wait_live(page)
    masthead = page.locator(".masthead")
    said = masthead.evaluate("(el) => el.innerText.toLowerCase().split('live').length - 1")
    assert said == 1, masthead.inner_text()
    expect(page.locator(".live-badge")).to_have_count(0)
    assert http.patch(f"/api/feeds/{slug}", json={"status": "ended"}, headers=auth()).is_success
    expect(page.locator("#conn-status")).to_have_text("Coverage ended", timeout=5000)


def test_the_embed_shows_the_pinned_brief_and_follows_the_pin(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """The embed renders the pinned brief above the list, and pins and unpins live."""
    slug = make_feed(http)
    first = publish(http, slug, "Pinned from the start")
    second = publish(http, slug, "Pinned later")
    assert http.put(
        f"/api/feeds/{slug}/pin", json={"brief_id": first["id"]}, headers=auth()
    ).is_success
    page.goto(f"{server.base}/embed/{slug}")
    pinned = page.locator("#pinned")
    expect(pinned.locator(".brief-headline")).to_have_text("Pinned from the start")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    assert http.put(
        f"/api/feeds/{slug}/pin", json={"brief_id": second["id"]}, headers=auth()
    ).is_success
    expect(pinned.locator(".brief-headline")).to_have_text("Pinned later", timeout=5000)
    assert http.delete(f"/api/feeds/{slug}/pin", headers=auth()).is_success
    expect(pinned).to_be_hidden(timeout=5000)
    assert page.evaluate("window.livefeedEmbed.state().pinned") is None


def test_the_editor_names_a_feed_once_and_creates_one_with_a_language(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """A feed titled "… (slug)" is not listed as "… (slug) (slug)"; the new-feed form sets the
    language, and a malformed one is shown at its field."""
    slug = make_feed(http)
    title = f"Storm: live updates ({slug})"
    assert http.patch(f"/api/feeds/{slug}", json={"title": title}, headers=auth()).is_success
    page.goto(f"{server.base}/editor?feed={slug}")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    option = page.locator(f"#feed-select option[value='{slug}']")
    expect(option).to_have_text(title, timeout=10000)

    new_slug = slug + "-uk"
    page.locator("#new-feed summary").click()
    page.fill("#new-slug", new_slug)
    page.fill("#new-title", "Новини")
    page.fill("#new-timezone", "Europe/Kyiv")
    page.fill("#new-language", "ukrainian!")
    page.click("#create-feed")
    expect(page.locator("#new-language-error")).to_contain_text("BCP 47", timeout=5000)
    page.fill("#new-language", "uk")
    page.click("#create-feed")
    expect(page.locator("#feed-message")).to_contain_text("Created", timeout=5000)
    assert http.get(f"/api/feeds/{new_slug}").json()["language"] == "uk"


def test_no_page_asks_for_something_that_is_not_there(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """Loading the reader page fetches nothing that answers 404 (the favicon included)."""
    slug = make_feed(http)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(f"{server.base}/feeds/{slug}")
    wait_live(page)
    icon = page.evaluate("fetch('/favicon.ico').then((r) => r.status)")
    assert icon == 200
    assert missing == []


def test_a_language_change_reaches_an_open_reader_page(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """PATCH ``{"language": "he"}`` sets ``<html lang>`` on a page that is already open."""
    slug = make_feed(http)
    page.goto(f"{server.base}/feeds/{slug}")
    wait_live(page)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert http.patch(f"/api/feeds/{slug}", json={"language": "he"}, headers=auth()).is_success
    page.wait_for_function("() => document.documentElement.lang === 'he'", timeout=10000)
