"""The server-rendered reader page: readable without JavaScript, in the feed's time zone."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from helpers import auth, make_feed, publish


def test_reader_page_lists_latest_briefs_newest_first_with_local_time(http: httpx.Client) -> None:
    slug = make_feed(http, timezone="Asia/Tokyo")
    first = publish(http, slug, "First brief", author="Kenji")
    second = publish(http, slug, "Second brief")
    page = http.get(f"/feeds/{slug}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.index("Second brief") < html.index("First brief")
    published = datetime.fromisoformat(first["published_at"].replace("Z", "+00:00"))
    local = published.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    assert f'datetime="{first["published_at"]}">{local}</time>' in html
    assert "JST (Asia/Tokyo)" in html
    assert "Kenji" in html
    assert f'data-last-event-id="{second["id"]}"' in html
    assert f'id="{first["id"]}"' in html


def test_reader_page_escapes_headlines_and_keeps_only_sanitised_body(http: httpx.Client) -> None:
    slug = make_feed(http)
    publish(
        http, slug, "<script>alert(1)</script>", body='<p>ok <img src=x onerror="alert(2)"></p>'
    )
    html = http.get(f"/feeds/{slug}").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "onerror" not in html


def test_reader_page_sends_a_strict_content_security_policy(http: httpx.Client, feed: str) -> None:
    response = http.get(f"/feeds/{feed}")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    # JSON-LD is a data block, never run (tests/test_syndication.py checks it in Chromium).
    inline = r"<script(?![^>]*\b(?:src=|type=\"application/ld\+json\"))"
    assert not re.search(inline, response.text), "no inline scripts"


def test_older_briefs_are_reachable_without_javascript(http: httpx.Client) -> None:
    slug = make_feed(http)
    briefs = [publish(http, slug, f"Brief number {n:02d}") for n in range(25)]
    html = http.get(f"/feeds/{slug}").text
    assert "Brief number 24" in html and "Brief number 04" not in html
    match = re.search(r'id="load-older"[^>]*href="([^"]+)"', html)
    assert match, "a plain link to older briefs"
    older = http.get(match.group(1)).text
    assert "Brief number 04" in older and "Brief number 00" in older
    assert "Brief number 05" not in older
    assert briefs[0]["id"] in older


def test_unknown_feed_page_is_404(http: httpx.Client) -> None:
    response = http.get("/feeds/does-not-exist")
    assert response.status_code == 404
    assert "Not found" in response.text


def test_index_lists_feeds_and_static_assets_are_served(http: httpx.Client, feed: str) -> None:
    assert f'href="/feeds/{feed}"' in http.get("/").text
    js = http.get("/static/feed.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert http.get("/static/feed.css").status_code == 200


def test_reader_page_shows_pin_key_events_corrections_and_coverage_end(http: httpx.Client) -> None:
    slug = make_feed(http)
    key = publish(http, slug, "Key moment", key_event=True)
    fixed = publish(http, slug, "Typo in headlnie")
    http.patch(
        f"/api/feeds/{slug}/briefs/{fixed['id']}", json={"headline": "Typo fixed"}, headers=auth()
    )
    http.put(f"/api/feeds/{slug}/pin", json={"brief_id": key["id"]}, headers=auth())
    http.patch(f"/api/feeds/{slug}", json={"status": "ended"}, headers=auth())
    html = http.get(f"/feeds/{slug}").text
    pinned = html[html.index('id="pinned"') : html.index('id="key-events"')]
    assert "Key moment" in pinned and "hidden" not in pinned.split(">")[0]
    assert f' id="{key["id"]}"' not in pinned, "the pinned copy does not repeat the permalink id"
    keys = html[html.index('id="key-events"') : html.index('id="briefs"')]
    assert "Key moment" in keys and "Typo" not in keys
    assert "Typo fixed" in html and "headlnie" not in html
    assert 'class="brief-updated">Updated' in html
    assert 'data-version="2"' in html
    banner = html[html.index('id="coverage-ended"') :].split(">")[0]
    assert "hidden" not in banner and "Coverage has ended" in html


def test_editor_page_is_served_with_a_strict_policy(http: httpx.Client) -> None:
    response = http.get("/editor")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert 'src="/static/editor.js"' in response.text
