"""The front end's shared pieces in a real Chromium: every frame routed by web/js/frames.js (an
unknown type reported, never dropped in silence), the rolling list kept in stream order by
web/js/list.js, and the editor's limits taken from the model, not copied."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, WebSocketRoute, expect

from helpers import TOKEN, LivefeedServer, auth, make_feed, publish
from livefeed.model import schema

pytestmark = pytest.mark.browser

SOCKETS = re.compile(r"/ws/feeds/")
# Each limit the editor page names is the model's <NAME>_MAX.
_LIMITED = (
    "headline body author url tags tag title language slug media alt caption credit transcript "
    "standfirst summary_title summary_items summary_item embeds correction_note"
)
MODEL_LIMITS = {name: getattr(schema, f"{name.upper()}_MAX") for name in _LIMITED.split()}
HEADLINE_MAX: int = schema.HEADLINE_MAX


def relay_sockets(page: Page) -> list[WebSocketRoute]:
    """Pass the page's feed sockets through to the real server, so a test can add frames."""
    routes: list[WebSocketRoute] = []

    def relay(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket(SOCKETS, relay)
    return routes


def warnings_about_unknown_frames(page: Page) -> list[str]:
    """The page's console warnings that name an unknown frame type, as they come."""
    seen: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "warning" and "unknown frame type" in message.text:
            seen.append(message.text)

    page.on("console", note)
    return seen


# --- frames --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/feeds/{slug}", "/embed/{slug}"])
def test_a_frame_of_an_unknown_type_is_counted_warned_once_and_the_page_goes_on(
    page: Page, server: LivefeedServer, http: httpx.Client, path: str
) -> None:
    """Frames of types the page does not know are counted on <html>, warned once per type, and
    the briefs that follow them still appear."""
    slug = make_feed(http)
    sockets = relay_sockets(page)
    warnings = warnings_about_unknown_frames(page)
    page.goto(server.base + path.format(slug=slug))
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    assert len(sockets) == 1
    for frame in ({"type": "brief_moved"}, {"type": "brief_moved"}, {"type": "poll_opened"}):
        sockets[0].send(json.dumps(frame))
    root = page.locator("html")
    expect(root).to_have_attribute("data-unknown-frames", "3", timeout=5000)
    expect(root).to_have_attribute("data-unknown-frame-types", "brief_moved poll_opened")
    publish(http, slug, "After the unknown frames")
    expect(page.locator("#briefs .brief-headline")).to_have_text(
        ["After the unknown frames"], timeout=5000
    )
    expect(root).to_have_attribute("data-unknown-frames", "3")
    assert len(warnings) == 2, warnings


def test_a_replay_reports_a_frame_of_an_unknown_type_and_plays_on(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """The day page's replay socket goes through the same router: an unknown frame is counted
    and the day's brief is still replayed."""
    slug = make_feed(http, timezone="UTC")
    publish(http, slug, "Replayed brief")

    def relay_with_unknown_frame(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        ws.send(json.dumps({"type": "replay_rewound"}))

    page.route_web_socket(SOCKETS, relay_with_unknown_frame)
    page.goto(f"{server.base}/feeds/{slug}/days")
    page.locator("#replay-play").click()
    expect(page.locator("#replay-briefs .brief-headline")).to_have_text(
        ["Replayed brief"], timeout=10000
    )
    root = page.locator("html")
    expect(root).to_have_attribute("data-unknown-frames", "1")
    expect(root).to_have_attribute("data-unknown-frame-types", "replay_rewound")


def test_a_known_frame_is_not_counted_as_unknown(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """A feed's ordinary traffic (catch-up, live, briefs, a pin) leaves the unknown count unset."""
    slug = make_feed(http)
    first = publish(http, slug, "Before the page")
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    publish(http, slug, "While it is open")
    pin = http.put(f"/api/feeds/{slug}/pin", json={"brief_id": first["id"]}, headers=auth())
    assert pin.is_success, pin.text
    expect(page.locator("#pinned .brief-headline")).to_have_text("Before the page", timeout=5000)
    expect(page.locator("#briefs > li.brief")).to_have_count(2)
    assert page.locator("html").get_attribute("data-unknown-frames") is None


# --- the rolling list ----------------------------------------------------------------------------


def test_an_older_brief_arriving_late_takes_its_place_in_stream_order(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """On an embed that shows the latest two, a late frame for an older brief goes below them
    (and out, past the limit), instead of on top pushing the newest out."""
    slug = make_feed(http)
    oldest = publish(http, slug, "Oldest")
    publish(http, slug, "Middle")
    publish(http, slug, "Newest")
    sockets = relay_sockets(page)
    page.goto(f"{server.base}/embed/{slug}?limit=2")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    headlines = page.locator("#briefs .brief-headline")
    expect(headlines).to_have_text(["Newest", "Middle"])
    sockets[0].send(json.dumps({"type": "brief", "brief": oldest}))
    publish(http, slug, "Latest")
    expect(headlines).to_have_text(["Latest", "Newest"], timeout=5000)


# --- limits ----------------------------------------------------------------------------------------


def test_the_editor_page_carries_the_model_limits(http: httpx.Client) -> None:
    """The editor's <meta name="livefeed-limits"> and its maxlength attributes are the model's."""
    page = http.get("/editor").text
    meta = re.search(r"<meta name=\"livefeed-limits\" content='([^']*)'>", page)
    assert meta is not None, "the editor page names its limits"
    assert json.loads(html.unescape(meta.group(1))) == MODEL_LIMITS
    fields = {"headline": "headline", "author": "author", "url": "url", "new-title": "title",
              "new-language": "language", "new-slug": "slug"}  # fmt: skip
    for field, name in fields.items():
        limit = MODEL_LIMITS[name]
        tag = re.search(rf'<input id="{field}"[^>]*>', page)
        assert tag is not None and f'maxlength="{limit}"' in tag.group(0), field
    assert f"0 / {HEADLINE_MAX}" in page


def sign_in(page: Page, server: LivefeedServer, slug: str) -> None:
    page.goto(f"{server.base}/editor?feed={slug}")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    expect(page.locator("#editor-name")).to_have_text("Newsroom", timeout=10000)


def test_the_headline_counter_counts_to_the_server_limit(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """The counter reads "N / HEADLINE_MAX" and warns from 20 characters before the limit."""
    slug = make_feed(http)
    sign_in(page, server, slug)
    count = page.locator("#headline-count")
    expect(count).to_have_text(f"0 / {HEADLINE_MAX}")
    expect(page.locator("#headline")).to_have_attribute("maxlength", str(HEADLINE_MAX))
    page.fill("#headline", "x" * (HEADLINE_MAX - 20))
    expect(count).to_have_text(f"{HEADLINE_MAX - 20} / {HEADLINE_MAX}")
    expect(count).to_have_attribute("data-near", "false")
    page.locator("#headline").press("y")
    expect(count).to_have_text(f"{HEADLINE_MAX - 19} / {HEADLINE_MAX}")
    expect(count).to_have_attribute("data-near", "true")


def test_the_headline_counter_takes_its_limit_from_the_page_not_a_copy(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """Served with a limit of 12 in its meta, the editor counts to 12: the JS holds no number."""
    slug = make_feed(http)
    limits = {**MODEL_LIMITS, "headline": 12}

    def smaller_limits(route: Route) -> None:
        response = route.fetch()
        body = re.sub(
            r"(<meta name=\"livefeed-limits\" content=')[^']*'",
            lambda m: m.group(1) + html.escape(json.dumps(limits)) + "'",
            response.text(),
        )
        route.fulfill(response=response, body=body)

    page.route(re.compile(r"/editor\?"), smaller_limits)
    sign_in(page, server, slug)
    page.fill("#headline", "abc")
    expect(page.locator("#headline-count")).to_have_text("3 / 12")
    expect(page.locator("#headline-count")).to_have_attribute("data-near", "true")
