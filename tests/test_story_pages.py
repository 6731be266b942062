"""The story so far on the pages: the lead and summary server-rendered, in JSON-LD and live."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, expect

from helpers import TOKEN, LivefeedServer, auth, image_bytes, make_feed, publish, upload
from livefeed.media.images import media_id

PHOTO = image_bytes(640, 360)
PHOTO_ID = media_id(PHOTO)
LEAD: dict[str, Any] = {
    "headline": "Storm reaches the coast",
    "standfirst": "Thousands without power as winds hit 120 km/h",
    "body": "<p>Roads are closed.</p><p>Schools stay <em>shut</em>.</p>",
    "media": [{"id": PHOTO_ID, "alt": "A flooded street", "caption": "Odesa",
               "credit": "Ana / AP"}],
}  # fmt: skip


@pytest.fixture(autouse=True)
def _photo(http: httpx.Client) -> None:
    """The lead's picture is uploaded (once: the same bytes again are known)."""
    upload(http, PHOTO)


def json_ld(html: str) -> dict[str, object]:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match, "no JSON-LD"
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_the_reader_page_renders_lead_then_summary_then_pin_then_key_events(
    http: httpx.Client, server: LivefeedServer
) -> None:
    """Without JS the page shows lead (its picture as a brief's: srcset, size, alt, credit),
    summary, pinned post, key events and briefs in that order; the lead's picture is the
    page's og:image and JSON-LD image (its crops) even when a brief has a picture too."""
    slug = make_feed(http)
    other = upload(http, image_bytes(500, 300))
    brief = publish(http, slug, "A key brief", key_event=True,
                    media=[{"id": other["id"], "alt": "A box", "role": "lead"}])  # fmt: skip
    assert http.put(
        f"/api/feeds/{slug}/pin", json={"brief_id": brief["id"]}, headers=auth()
    ).is_success
    assert http.put(f"/api/feeds/{slug}/lead", json=LEAD, headers=auth()).is_success
    summary = {"title": "What we know", "items": ["Winds of 120 km/h", "Schools closed"]}
    assert http.put(f"/api/feeds/{slug}/summary", json=summary, headers=auth()).is_success
    response = http.get(f"/feeds/{slug}")
    assert response.status_code == 200, response.text
    html = response.text
    marks = ['id="lead"', 'id="summary"', 'id="pinned"', 'id="key-events"', 'id="briefs"']
    assert all(mark in html for mark in marks), [m for m in marks if m not in html]
    positions = [html.index(mark) for mark in marks]
    assert positions == sorted(positions), "in the document's order, for who reads it in order"
    assert 'class="lead-headline" dir="auto" id="lead-headline">Storm reaches the coast<' in html
    assert "<p>Schools stay <em>shut</em>.</p>" in html
    assert '<span class="media-caption" dir="auto">Odesa</span>' in html
    lead_html = html[html.index('id="lead"') : html.index('id="summary"')]
    assert f'srcset="/media/{PHOTO_ID}/320.jpg 320w, /media/{PHOTO_ID}/640.jpg 640w"' in lead_html
    assert 'width="640" height="360"' in lead_html and 'alt="A flooded street"' in lead_html
    assert '<span class="media-credit" dir="auto">Ana / AP</span>' in lead_html
    assert f'<meta property="og:image" content="{server.base}/media/{PHOTO_ID}/16x9.jpg">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    crops = [f"{server.base}/media/{PHOTO_ID}/{c}.jpg" for c in ("16x9", "4x3", "1x1")]
    assert json_ld(html)["image"] == crops
    assert '<li dir="auto"><p>Schools closed</p></li>' in html
    assert f'<meta name="description" content="{LEAD["standfirst"]}">' in html


def test_json_ld_has_the_lead_as_article_body_the_summary_as_abstract_and_a_description(
    http: httpx.Client, server: LivefeedServer
) -> None:
    """LiveBlogPosting: articleBody is the lead as text, abstract the summary's items, one a
    line; the feed's description is the page's description (meta, og: and JSON-LD)."""
    slug = make_feed(http)
    assert http.put(f"/api/feeds/{slug}/lead", json=LEAD, headers=auth()).is_success
    items = ["Winds of <strong>120</strong> km/h", "Schools\nclosed"]
    assert http.put(f"/api/feeds/{slug}/summary", json={"items": items}, headers=auth()).is_success
    described = "Flooding on the Black Sea coast, as it happens"
    patch = http.patch(f"/api/feeds/{slug}", json={"description": described}, headers=auth())
    assert patch.status_code == 200 and patch.json()["description"] == described
    html = http.get(f"/feeds/{slug}").text
    posting = json_ld(html)
    assert posting["articleBody"] == (
        "Thousands without power as winds hit 120 km/h\nRoads are closed.\nSchools stay shut."
    )
    assert posting["abstract"] == "Winds of 120 km/h\nSchools closed"
    assert posting["description"] == described
    assert f'<meta property="og:description" content="{described}">' in html
    assert http.delete(f"/api/feeds/{slug}/lead", headers=auth()).status_code == 204
    assert http.delete(f"/api/feeds/{slug}/summary", headers=auth()).status_code == 204
    posting = json_ld(http.get(f"/feeds/{slug}").text)
    assert "articleBody" not in posting and "abstract" not in posting


def test_lead_and_summary_update_live_on_an_open_page_with_a_polite_announcement(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """An open reader page shows a new lead and summary, their changes and their clearing, and
    says "Summary updated HH:MM" in its polite live region."""
    slug = make_feed(http)
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    expect(page.locator("#lead")).to_be_hidden()
    expect(page.locator("#summary")).to_be_hidden()
    assert http.put(f"/api/feeds/{slug}/lead", json=LEAD, headers=auth()).is_success
    lead = page.locator("#lead")
    expect(lead.locator(".lead-headline")).to_have_text(LEAD["headline"], timeout=5000)
    expect(lead.locator(".lead-body em")).to_have_text("shut")
    expect(lead.locator(".media-credit")).to_have_text("Ana / AP")
    expect(lead.locator("img")).to_have_attribute("alt", "A flooded street")
    expect(lead.locator("img")).to_have_attribute("srcset", re.compile(f"/media/{PHOTO_ID}/640"))
    lead_rendered = lead.evaluate("(el) => el.innerHTML.replace(/\\s+</g, '<').trim()")
    summary: dict[str, Any] = {"items": ["Winds of 120 km/h"]}
    put = http.put(f"/api/feeds/{slug}/summary", json=summary, headers=auth())
    assert put.is_success
    box = page.locator("#summary")
    expect(box.locator(".summary-title")).to_have_text("What we know", timeout=5000)
    expect(page.locator("#announcer")).to_have_text(re.compile(r"^Summary updated \d\d:\d\d$"))
    summary = {"items": ["Winds of 120 km/h", "Schools closed"], "version": 1}
    assert http.put(f"/api/feeds/{slug}/summary", json=summary, headers=auth()).is_success
    expect(box.locator(".summary-items li")).to_have_text(
        ["Winds of 120 km/h", "Schools closed"], timeout=5000
    )
    expect(box).to_have_attribute("data-version", "2")
    # The server-rendered page and the one feed.js built show the same markup.
    rendered = box.evaluate("(el) => el.innerHTML.replace(/\\s+</g, '<').trim()")
    page.reload()
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    served = page.locator("#summary").evaluate("(el) => el.innerHTML.replace(/\\s+</g, '<').trim()")
    assert served == rendered
    assert lead.evaluate("(el) => el.innerHTML.replace(/\\s+</g, '<').trim()") == lead_rendered
    assert http.delete(f"/api/feeds/{slug}/lead", headers=auth()).status_code == 204
    expect(lead).to_be_hidden(timeout=5000)


def test_the_embed_shows_the_summary_and_follows_it(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """The embed renders the summary above the pinned brief and keeps it live; it has no lead."""
    slug = make_feed(http)
    first = {"items": ["Winds of 120 km/h"]}
    assert http.put(f"/api/feeds/{slug}/summary", json=first, headers=auth()).is_success
    assert http.put(f"/api/feeds/{slug}/lead", json=LEAD, headers=auth()).is_success
    page.goto(f"{server.base}/embed/{slug}")
    box = page.locator("#summary")
    expect(box.locator(".summary-items li")).to_have_text(["Winds of 120 km/h"])
    expect(page.locator("#lead")).to_have_count(0)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    second = {"items": ["Winds of 120 km/h", "Schools closed"]}
    assert http.put(f"/api/feeds/{slug}/summary", json=second, headers=auth()).is_success
    expect(box.locator(".summary-items li")).to_have_count(2, timeout=5000)
    assert http.delete(f"/api/feeds/{slug}/summary", headers=auth()).status_code == 204
    expect(box).to_be_hidden(timeout=5000)


def test_the_editor_writes_reorders_and_clears_the_summary_and_handles_412(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """From the editor page: a lead (its picture uploaded from the panel, alt text asked for)
    and a summary (a point added, moved up) are saved; a save based on a version someone else
    replaced gets 412, shown with their version and ours."""
    slug = make_feed(http)
    page.goto(f"{server.base}/editor?feed={slug}")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    expect(page.locator("#summary-state")).to_have_text("(none)", timeout=10000)
    page.locator("#lead-editor summary").click()
    page.fill("#lead-headline", "")
    page.click("#lead-save")
    expect(page.locator("#lead-headline-error")).not_to_be_empty(timeout=5000)
    page.fill("#lead-headline", "Storm reaches the coast")
    page.click("#lead-media")
    chosen: FilePayload = {"name": "lead.jpg", "mimeType": "image/jpeg", "buffer": PHOTO}
    page.locator("#lead-media-list .media-upload").set_input_files(files=[chosen])
    expect(page.locator("#lead-media-list .media-id")).to_have_value(PHOTO_ID, timeout=10000)
    expect(page.locator("#lead-media-list img.media-thumb")).to_be_visible()
    page.locator("#lead-media-list .media-caption-input").fill("Odesa")
    page.click("#lead-save")
    expect(page.locator("#lead-media-error")).to_contain_text("alt text", timeout=5000)
    page.locator("#lead-media-list .media-alt").fill("A flooded street")
    page.click("#lead-save")
    expect(page.locator("#lead-message")).to_contain_text("version 1", timeout=5000)
    lead = http.get(f"/api/feeds/{slug}/lead").json()["lead"]
    assert lead["headline"] == "Storm reaches the coast" and lead["media"][0]["caption"] == "Odesa"

    page.locator("#summary-editor summary").click()
    page.locator("#summary-items-list .summary-point").first.fill("Schools closed")
    page.click("#summary-items")
    page.locator("#summary-items-list .summary-point").nth(1).fill("Winds of 120 km/h")
    page.locator("#summary-items-list li").nth(1).get_by_role(
        "button", name="Move point up"
    ).click()
    page.click("#summary-save")
    expect(page.locator("#summary-message")).to_contain_text("version 1", timeout=5000)
    items = http.get(f"/api/feeds/{slug}/summary").json()["summary"]["items"]
    assert items == ["<p>Winds of 120 km/h</p>", "<p>Schools closed</p>"]

    page.locator("#summary-items-list .summary-point").first.fill("Ours")
    theirs = {"items": ["Theirs"], "version": 1}
    assert http.put(f"/api/feeds/{slug}/summary", json=theirs, headers=auth()).is_success
    expect(page.locator("#summary-state")).to_contain_text("now version 2", timeout=5000)
    page.click("#summary-save")
    expect(page.locator("#summary-message")).to_contain_text("Someone else changed", timeout=5000)
    expect(page.locator("#summary-items-list .summary-point")).to_have_value("Theirs")
    expect(page.locator("#summary-form .your-draft")).to_contain_text("Ours")
    page.click("#summary-clear")
    expect(page.locator("#summary-message")).to_contain_text("Cleared", timeout=5000)
    assert http.get(f"/api/feeds/{slug}/summary").json() == {"summary": None, "version": 3}


def test_replaying_the_day_rebuilds_the_summary_box_and_back_hides_it(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """The day page's replay shows the summary box as its events change it (the last version
    at the end), and "Back to the full day" leaves the day's briefs alone again."""
    slug = make_feed(http)
    publish(http, slug, "Before")
    assert http.put(
        f"/api/feeds/{slug}/summary", json={"items": ["One"]}, headers=auth()
    ).is_success
    publish(http, slug, "After")
    two = {"items": ["One", "Two"]}
    assert http.put(f"/api/feeds/{slug}/summary", json=two, headers=auth()).is_success
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    page.goto(f"{server.base}/feeds/{slug}/days/{day}")
    expect(page.locator("#summary")).to_be_hidden()
    page.locator("#replay-speed").select_option("600")
    page.locator("#replay-play").click()
    expect(page.locator("#replay-status")).to_contain_text("End of the day", timeout=15000)
    expect(page.locator("#summary .summary-items li")).to_have_text(["One", "Two"])
    page.locator(".replay-stop").click()
    expect(page.locator("#summary")).to_be_hidden()
