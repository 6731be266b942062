"""For search engines and other sites: JSON-LD, Open Graph, Atom and JSON Feed, permalinks, embeds.

The HTTP tests run against the session's livefeed server; the ``browser`` ones drive Chromium,
including a page served from another origin that embeds a feed with the README's snippet.
"""

from __future__ import annotations

import functools
import html
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect

from helpers import LivefeedServer, RedisProcess, auth, livefeed, make_feed, publish
from livefeed.model.text import plain_text
from livefeed.pages.structured import json_ld

HOSTILE = '</script><script>alert("ld")</script> & <!-- "quoted"'
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


# --- helpers ---------------------------------------------------------------------------------


def json_ld_of(page_html: str) -> dict[str, Any]:
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page_html, re.S)
    assert len(blocks) == 1, "one JSON-LD block"
    assert "</" not in blocks[0] and "<!--" not in blocks[0]
    data: dict[str, Any] = json.loads(blocks[0])
    return data


def meta_tags(page_html: str) -> dict[str, str]:
    pairs = re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">', page_html)
    return {name: html.unescape(content) for name, content in pairs}


def alternate_links(page_html: str) -> dict[str, list[str]]:
    links: dict[str, list[str]] = {}
    for kind, href in re.findall(
        r'<link rel="alternate" type="([^"]+)" title="[^"]*" href="([^"]+)"', page_html
    ):
        links.setdefault(kind, []).append(href)
    return links


def instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def story(http: httpx.Client) -> tuple[str, dict[str, dict[str, Any]]]:
    """A feed with a plain brief, a hostile one, a corrected one and a retracted one."""
    slug = make_feed(http)
    briefs = {
        "plain": publish(http, slug, "Bridge closed", body="<p>Police closed it.</p><p>Use the ferry &amp; the tram.</p>", author="Ana", tags=["traffic"]),
        "hostile": publish(http, slug, HOSTILE, body="<p>Body with </p><p>a &lt;/script&gt; in it</p>", url="https://source.example/a?b=1&c=2"),
        "corrected": publish(http, slug, "Typo in headlnie"),
        "retracted": publish(http, slug, "Wrong, retracted"),
    }  # fmt: skip
    fixed = http.patch(
        f"/api/feeds/{slug}/briefs/{briefs['corrected']['id']}",
        json={"headline": "Typo fixed"},
        headers=auth(),
    )
    assert fixed.status_code == 200, fixed.text
    briefs["corrected"] = fixed.json()
    gone = http.delete(f"/api/feeds/{slug}/briefs/{briefs['retracted']['id']}", headers=auth())
    assert gone.status_code == 204
    return slug, briefs


def assert_json_feed_1_1(doc: dict[str, Any]) -> None:
    """The JSON Feed 1.1 rules (https://jsonfeed.org/version/1.1) for what livefeed sends."""
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    for key in ("home_page_url", "feed_url"):
        assert doc[key].startswith("http")
    known = {"version", "title", "home_page_url", "feed_url", "description", "user_comment", "next_url", "icon", "favicon", "authors", "language", "expired", "hubs", "items"}  # fmt: skip
    assert set(doc) <= known, set(doc) - known
    for author in doc.get("authors", []):
        assert isinstance(author, dict) and isinstance(author.get("name"), str)
    assert isinstance(doc["items"], list)
    ids = [item["id"] for item in doc["items"]]
    assert len(ids) == len(set(ids)), "ids are unique"
    item_keys = {"id", "url", "external_url", "title", "content_html", "content_text", "summary", "image", "banner_image", "date_published", "date_modified", "authors", "tags", "language", "attachments"}  # fmt: skip
    for item in doc["items"]:
        assert set(item) <= item_keys, set(item) - item_keys
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        for key in ("date_published", "date_modified"):
            assert RFC3339.fullmatch(item[key]), item[key]
        assert all(isinstance(a.get("name"), str) for a in item.get("authors", []))
        assert all(isinstance(t, str) for t in item.get("tags", []))


# --- pure builders ---------------------------------------------------------------------------


def test_plain_text_drops_tags_decodes_entities_and_keeps_paragraphs() -> None:
    """articleBody is the sanitised body as text, one line per paragraph or list item."""
    body = '<p>One &amp; <strong>two</strong><br>three</p><ul><li>four</li><li><a href="https://x.example">five</a></li></ul>'
    assert plain_text(body) == "One & two\nthree\nfour\nfive"
    assert plain_text("") == ""


def test_json_ld_cannot_close_its_script_element() -> None:
    """``</script>``, ``<!--`` and ``&`` in the data are escaped, and the JSON still reads back."""
    data = {"headline": HOSTILE}
    markup = str(json_ld(data))
    inner = markup.removeprefix('<script type="application/ld+json">').removesuffix("</script>")
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert json.loads(inner) == data


# --- pages -----------------------------------------------------------------------------------


def test_reader_page_carries_a_live_blog_posting_with_every_brief_as_it_stands(
    http: httpx.Client, server: LivefeedServer
) -> None:
    """LiveBlogPosting: corrected briefs modified later, retracted ones absent, coverage end once ended."""
    slug, briefs = story(http)
    data = json_ld_of(http.get(f"/feeds/{slug}").text)
    page_url = f"{server.base}/feeds/{slug}"
    assert data["@context"] == "https://schema.org" and data["@type"] == "LiveBlogPosting"
    assert data["url"] == page_url and data["headline"] == f"Feed {slug}"
    assert data["description"] == f"Live updates: Feed {slug}"
    assert "coverageEndTime" not in data
    assert data["coverageStartTime"] == data["datePublished"]
    assert instant(data["dateModified"]) == instant(briefs["corrected"]["updated_at"])
    updates = {u["url"]: u for u in data["liveBlogUpdate"]}
    assert f"{page_url}#{briefs['retracted']['id']}" not in updates
    assert len(updates) == 3
    plain = updates[f"{page_url}#{briefs['plain']['id']}"]
    assert plain == {
        "@type": "BlogPosting",
        "@id": f"{page_url}#{briefs['plain']['id']}",
        "url": f"{page_url}#{briefs['plain']['id']}",
        "headline": "Bridge closed",
        "articleBody": "Police closed it.\nUse the ferry & the tram.",
        "datePublished": briefs["plain"]["published_at"],
        "dateModified": briefs["plain"]["published_at"],
        "author": {"@type": "Person", "name": "Ana"},
        "keywords": ["traffic"],
    }
    hostile = updates[f"{page_url}#{briefs['hostile']['id']}"]
    assert hostile["headline"] == HOSTILE
    assert hostile["articleBody"] == "Body with\na </script> in it"
    corrected = updates[f"{page_url}#{briefs['corrected']['id']}"]
    assert corrected["headline"] == "Typo fixed"
    assert instant(corrected["dateModified"]) > instant(corrected["datePublished"])
    assert data["liveBlogUpdate"][0]["url"].endswith(briefs["corrected"]["id"]), "newest first"

    ended = http.patch(f"/api/feeds/{slug}", json={"status": "ended"}, headers=auth()).json()
    data = json_ld_of(http.get(f"/feeds/{slug}").text)
    assert data["coverageEndTime"] == ended["ended_at"]
    assert instant(data["dateModified"]) == instant(ended["ended_at"])


def test_reader_and_day_pages_have_open_graph_twitter_card_and_feed_links(
    http: httpx.Client, server: LivefeedServer
) -> None:
    """og:*, twitter:card=summary, a canonical link and rel=alternate Atom and JSON Feed links."""
    slug = make_feed(http)
    publish(http, slug, 'Quote " and <angle>')
    page = http.get(f"/feeds/{slug}").text
    tags = meta_tags(page)
    feed_url = f"{server.base}/feeds/{slug}"
    assert tags["og:type"] == "article" and tags["twitter:card"] == "summary"
    assert tags["og:title"] == tags["twitter:title"] == f"Feed {slug}"
    assert tags["og:description"] == tags["twitter:description"] == f"Live updates: Feed {slug}"
    assert tags["og:url"] == feed_url
    assert f'<link rel="canonical" href="{feed_url}">' in page
    assert alternate_links(page) == {
        "application/atom+xml": [f"{feed_url}/atom.xml"],
        "application/feed+json": [f"{feed_url}/feed.json"],
    }
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    day_page = http.get(f"/feeds/{slug}/days/{day}").text
    tags = meta_tags(day_page)
    assert tags["og:url"] == f"{feed_url}/days/{day}" and tags["og:type"] == "article"
    assert tags["og:title"].startswith(f"Feed {slug} — ")
    assert alternate_links(day_page)["application/atom+xml"] == [
        f"{feed_url}/days/{day}/atom.xml",
        f"{feed_url}/atom.xml",
    ]
    data = json_ld_of(day_page)
    assert data["@type"] == "LiveBlogPosting" and data["url"] == f"{feed_url}/days/{day}"
    assert data["liveBlogUpdate"][0]["headline"] == 'Quote " and <angle>'
    assert data["liveBlogUpdate"][0]["url"].startswith(f"{feed_url}#"), "the brief's permalink"
    assert "coverageEndTime" not in data, "today is still being covered"


def test_a_past_day_page_says_its_coverage_ended_at_the_end_of_the_day(
    http: httpx.Client, server: LivefeedServer, redis_server: RedisProcess, tmp_path: Path
) -> None:
    """A finished day: coverageStartTime and coverageEndTime are the day's bounds in the feed's zone."""
    slug = make_feed(http, timezone="Europe/Kyiv")
    path = tmp_path / "day.jsonl"
    path.write_text(
        json.dumps({"published_at": "2024-05-01T09:00:00.000Z", "headline": "Morning"}) + "\n"
    )
    done = livefeed(
        "import", slug, str(path), "--redis-url", redis_server.url, "--key-prefix", server.prefix
    )
    assert done.returncode == 0, done.stderr
    data = json_ld_of(http.get(f"/feeds/{slug}/days/2024-05-01").text)
    # The feed was created today, after the day it covers: the day's own bounds still hold.
    assert instant(data["coverageEndTime"]) == instant("2024-05-01T20:59:59.999Z")
    assert [u["headline"] for u in data["liveBlogUpdate"]] == ["Morning"]
    live = json_ld_of(http.get(f"/feeds/{slug}").text)
    assert live["coverageStartTime"] == "2024-05-01T09:00:00.000Z", "imported history counts"
    atom = feedparser.parse(http.get(f"/feeds/{slug}/days/2024-05-01/atom.xml").content)
    assert [e.title for e in atom.entries] == ["Morning"]
    response = http.get(f"/feeds/{slug}/days/2024-05-01/feed.json")
    assert response.headers["cache-control"] == "public, max-age=60", "a finished day may be cached"


# --- Atom and JSON Feed ----------------------------------------------------------------------


def test_atom_feed_parses_with_corrections_as_updated_entries_and_no_retractions(
    http: httpx.Client, server: LivefeedServer
) -> None:
    """Atom: permalink ids and links, sanitised HTML content, updated > published after a correction."""
    slug, briefs = story(http)
    response = http.get(f"/feeds/{slug}/atom.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    page_url = f"{server.base}/feeds/{slug}"
    assert parsed.feed.title == f"Feed {slug}"
    assert parsed.feed.link == page_url
    assert any(
        link.rel == "self" and link.href == f"{page_url}/atom.xml" for link in parsed.feed.links
    )
    entries = {e.id: e for e in parsed.entries}
    assert set(entries) == {
        f"{page_url}#{briefs[k]['id']}" for k in ("plain", "hostile", "corrected")
    }
    plain = entries[f"{page_url}#{briefs['plain']['id']}"]
    assert plain.link == plain.id
    assert plain.content[0].type == "text/html"
    assert plain.content[0].value == briefs["plain"]["body"]
    assert plain.author == "Ana" and [t.term for t in plain.tags] == ["traffic"]
    assert plain.published_parsed == plain.updated_parsed
    hostile = entries[f"{page_url}#{briefs['hostile']['id']}"]
    assert hostile.title == HOSTILE
    assert [link.href for link in hostile.links] == [hostile.id], "one link: the permalink"
    corrected = entries[f"{page_url}#{briefs['corrected']['id']}"]
    assert corrected.title == "Typo fixed"
    assert instant(corrected.updated) == instant(briefs["corrected"]["updated_at"])
    assert instant(corrected.updated) > instant(corrected.published)
    assert corrected.author == "Newsroom", "the token's editor name by default"
    assert parsed.feed.author == f"Feed {slug}"


def test_json_feed_follows_version_1_1_with_corrections_and_no_retractions(
    http: httpx.Client, server: LivefeedServer
) -> None:
    """JSON Feed 1.1: required fields, permalink ids and urls, date_modified after a correction."""
    slug, briefs = story(http)
    response = http.get(f"/feeds/{slug}/feed.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/feed+json; charset=utf-8"
    doc = response.json()
    assert_json_feed_1_1(doc)
    page_url = f"{server.base}/feeds/{slug}"
    assert doc["home_page_url"] == page_url and doc["feed_url"] == f"{page_url}/feed.json"
    items = {item["id"]: item for item in doc["items"]}
    assert list(items) == [
        f"{page_url}#{briefs[k]['id']}" for k in ("corrected", "hostile", "plain")
    ]
    plain = items[f"{page_url}#{briefs['plain']['id']}"]
    assert plain["url"] == plain["id"] and plain["content_html"] == briefs["plain"]["body"]
    assert plain["authors"] == [{"name": "Ana"}] and plain["tags"] == ["traffic"]
    assert plain["date_modified"] == plain["date_published"]
    assert (
        items[f"{page_url}#{briefs['hostile']['id']}"]["external_url"]
        == "https://source.example/a?b=1&c=2"
    )
    corrected = items[f"{page_url}#{briefs['corrected']['id']}"]
    assert corrected["title"] == "Typo fixed"
    assert corrected["content_html"] == "<p>Body.</p>"
    assert instant(corrected["date_modified"]) > instant(corrected["date_published"])


def test_day_feeds_list_that_day_and_bad_days_or_feeds_are_refused(http: httpx.Client) -> None:
    """Per-day Atom and JSON Feed; an impossible date is 400 bad_date, an unknown feed 404."""
    slug, _ = story(http)
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    doc = http.get(f"/feeds/{slug}/days/{day}/feed.json").json()
    assert_json_feed_1_1(doc)
    assert len(doc["items"]) == 3 and doc["feed_url"].endswith(f"/days/{day}/feed.json")
    parsed = feedparser.parse(http.get(f"/feeds/{slug}/days/{day}/atom.xml").content)
    assert not parsed.bozo and len(parsed.entries) == 3
    assert http.get(f"/feeds/{slug}/days/2024-02-30/atom.xml").json()["error"]["code"] == "bad_date"
    assert http.get("/feeds/no-such-feed/feed.json").status_code == 404
    assert http.get("/feeds/no-such-feed/days/2024-01-01/atom.xml").status_code == 404


def test_feeds_answer_if_none_match_with_304_until_something_changes(http: httpx.Client) -> None:
    """Polling readers cost little: same ETag, 304; a new brief changes the ETag."""
    slug = make_feed(http)
    publish(http, slug, "First")
    for path in (f"/feeds/{slug}/atom.xml", f"/feeds/{slug}/feed.json"):
        first = http.get(path)
        etag = first.headers["etag"]
        again = http.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
    publish(http, slug, "Second")
    assert http.get(f"/feeds/{slug}/feed.json", headers={"If-None-Match": etag}).status_code == 200


# --- embed page ------------------------------------------------------------------------------


def test_embed_page_is_frameable_by_anyone_while_other_pages_are_not(http: httpx.Client) -> None:
    """/embed/{feed}: frame-ancestors * and the strict script policy; the reader page stays 'self'."""
    slug = make_feed(http)
    publish(http, slug, "In the embed")
    response = http.get(f"/embed/{slug}")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert csp.endswith("; frame-ancestors *") and "script-src 'self'" in csp
    assert "In the embed" in response.text and 'src="/static/embed.js"' in response.text
    assert "frame-ancestors 'self'" in http.get(f"/feeds/{slug}").headers["content-security-policy"]
    missing = http.get("/embed/no-such-feed")
    assert (
        missing.status_code == 404
        and "frame-ancestors *" in missing.headers["content-security-policy"]
    )
    loader = http.get("/static/embed-loader.js")
    assert loader.status_code == 200 and "javascript" in loader.headers["content-type"]


def test_embed_ancestors_can_be_narrowed_by_the_operator(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """LIVEFEED_EMBED_ANCESTORS replaces the * of /embed pages."""
    narrow = LivefeedServer(
        redis_server.url,
        "embed-" + uuid.uuid4().hex[:6],
        LIVEFEED_EMBED_ANCESTORS="https://cms.example",
    )
    narrow.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=narrow.base) as client:
            slug = make_feed(client)
            csp = client.get(f"/embed/{slug}").headers["content-security-policy"]
            assert csp.endswith("; frame-ancestors https://cms.example")
    finally:
        narrow.stop()


# --- in Chromium -----------------------------------------------------------------------------


class Watched:
    """A page whose script errors and CSP violations (in any frame) are collected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)
        # Runs in every frame before the page's own scripts, whatever the CSP says.
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', (e) =>"
            " console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));"
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            self.errors.append(f"{message.text} ({message.location['url']})")


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 800, "height": 700})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert not watched.errors, f"errors or CSP violations: {watched.errors}"


@pytest.mark.browser
def test_json_ld_reports_no_csp_violation_and_reads_back_in_chromium(
    watched: Watched, server: LivefeedServer, http: httpx.Client
) -> None:
    """The data block is not script: no violation under script-src 'self', and JSON.parse gets the text."""
    slug = make_feed(http)
    publish(http, slug, HOSTILE)
    page = watched.page
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    data = page.evaluate(
        "JSON.parse(document.querySelector('script[type=\"application/ld+json\"]').textContent)"
    )
    assert data["liveBlogUpdate"][0]["headline"] == HOSTILE
    assert page.locator("script").count() == 3, "feed.js, search.js and the data block, no more"
    assert dialogs == []


@pytest.mark.browser
def test_a_permalink_to_an_older_brief_opens_the_page_that_holds_it(
    watched: Watched, server: LivefeedServer, http: httpx.Client
) -> None:
    """#<id> of a brief past the first page (typed, or a key-event link) goes to ?before=… and marks it."""
    slug = make_feed(http)
    briefs = [publish(http, slug, f"Brief {n:02d}", key_event=n in (0, 3)) for n in range(25)]
    page = watched.page
    page.goto(f"{server.base}/feeds/{slug}#{briefs[1]['id']}")
    page.wait_for_url(re.compile(r"\?before="))
    target = page.locator(":target")
    expect(target).to_have_attribute("id", briefs[1]["id"])
    expect(target.locator(".brief-headline")).to_have_text("Brief 01")
    expect(target).to_be_in_viewport()
    expect(page.locator("#briefs > li.brief").first).to_have_attribute("id", briefs[1]["id"])

    # On the live page, the key events list links to an older brief: the same happens.
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    page.locator(f'#key-events a[href$="#{briefs[3]["id"]}"]').click()
    page.wait_for_url(re.compile(r"\?before="))
    expect(page.locator(":target .brief-headline")).to_have_text("Brief 03")

    # A brief on the first page: it stays the live page, scrolled to it and marked.
    page.goto(f"{server.base}/feeds/{slug}#{briefs[10]['id']}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    assert "before=" not in page.url
    expect(page.locator(":target .brief-headline")).to_have_text("Brief 10")
    expect(page.locator(":target")).to_be_in_viewport()


@pytest.fixture
def other_origin(tmp_path: Path, server: LivefeedServer) -> Iterator[tuple[str, str]]:
    """A plain HTML page with the README's snippet, served by a static server on another port."""
    slug = "embed-" + uuid.uuid4().hex[:8]
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>A CMS article</title></head><body>"
        "<h1>Our story</h1><p>Text above the live blog.</p>"
        f'<div data-livefeed="{server.base}/embed/{slug}"></div>'
        f'<script src="{server.base}/static/embed-loader.js" async></script>'
        "<p id=after>Text below the live blog.</p></body></html>"
    )

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html", slug
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.browser
def test_a_page_on_another_origin_embeds_the_feed_live_and_sizes_the_iframe(
    watched: Watched, server: LivefeedServer, http: httpx.Client, other_origin: tuple[str, str]
) -> None:
    """The snippet inserts the iframe; a new brief appears in it at once and the iframe grows to fit."""
    cms_page, slug = other_origin
    http.post(
        "/api/feeds",
        json={"slug": slug, "title": "Embedded story", "timezone": "UTC"},
        headers=auth(),
    ).raise_for_status()
    first = publish(http, slug, "First in the embed")
    page = watched.page
    page.goto(cms_page)
    iframe = page.locator("iframe")
    expect(iframe).to_have_count(1)
    embed = page.frame_locator("iframe")
    expect(embed.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    expect(embed.locator("#briefs > li.brief")).to_have_count(1)

    def fitted() -> int:
        return int(iframe.evaluate("f => f.getBoundingClientRect().height"))

    inner = embed.locator("html")  # measured by the frame itself: the parent cannot look inside
    page.wait_for_function("() => document.querySelector('iframe').style.height !== '400px'")
    before = fitted()
    assert abs(before - inner.evaluate("h => Math.ceil(h.getBoundingClientRect().height)")) <= 1

    publish(
        http,
        slug,
        "Second, published while embedded",
        body="\n\n".join(["A paragraph of news."] * 3),
    )
    expect(embed.locator("#briefs > li.brief").first.locator(".brief-headline")).to_have_text(
        "Second, published while embedded", timeout=1000
    )
    page.wait_for_function(
        f"() => document.querySelector('iframe').getBoundingClientRect().height > {before}"
    )
    grown = fitted()
    assert abs(grown - inner.evaluate("h => Math.ceil(h.getBoundingClientRect().height)")) <= 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # A retraction leaves the embed at once, too.
    http.delete(f"/api/feeds/{slug}/briefs/{first['id']}", headers=auth()).raise_for_status()
    expect(embed.locator("#briefs > li.brief")).to_have_count(1, timeout=1000)
    page.wait_for_function(
        f"() => document.querySelector('iframe').getBoundingClientRect().height < {grown}"
    )
    grown = fitted()

    # The loader believes only the livefeed iframe: the host page cannot resize it by messaging itself.
    page.evaluate("window.postMessage({type: 'livefeed:height', height: 5}, '*')")
    page.wait_for_timeout(200)
    assert fitted() == grown
