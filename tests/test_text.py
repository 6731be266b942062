"""Hostile text and hostile tags, against a real server and Redis: the text rule on every way in,
old data that broke it on every way out, the tag caps, and an event loop that never stalls."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import feedparser
import httpx
import orjson
import pytest
import redis
from playwright.sync_api import Page, expect
from websockets.sync.client import connect as ws_connect

from helpers import (
    ROOT,
    TOKEN,
    LivefeedServer,
    RedisProcess,
    auth,
    make_feed,
    publish,
    stream_length,
)
from livefeed.errors import ValidationFailed
from livefeed.model.feed import parse_new_feed
from livefeed.model.ids import ZERO_ID, now_ms
from livefeed.model.schema import BODY_MAX, TAG_MAX, TAGS_MAX
from livefeed.newsroom.transfer import ImportRejected, parse_import
from livefeed.storage.keys import Keys

# One of each kind the rule forbids: C0 controls (the U+0001 and U+001B), DEL, a C1
# control, non-characters in the BMP and beyond it.
FORBIDDEN = ["\x01", "\x1b", "\x7f", "\x85", "\ufdd0", "\ufffe", "\U0001ffff"]
BRIEF_FIELDS: dict[str, Any] = {
    "headline": lambda c: f"Bridge{c} closed",
    "body": lambda c: f"<p>Ferry{c} runs</p>",
    "author": lambda c: f"Ana{c}",
    "url": lambda c: f"https://example.org/{c}a",
    "tags": lambda c: ["roads", f"tr{c}affic"],
}
# The rule as the README states it, written out here rather than taken from livefeed.model.schema.
FORBIDDEN_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)
_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


# --- helpers ---------------------------------------------------------------------------------


def redis_client(redis_server: RedisProcess) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


def assert_refused(response: httpx.Response, field: str, code: str = "invalid_text") -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["field"] == field, error
    assert FORBIDDEN_TEXT.search(error["message"]) is None, "the message names code points only"


def forbidden_in_markup(text: str) -> list[str]:
    """Forbidden characters in a document, as they are or written as character references."""
    found = FORBIDDEN_TEXT.findall(text)
    for hexa, dec in _REFERENCE.findall(text):
        point = int(hexa, 16) if hexa else int(dec)
        if point <= 0x10FFFF and FORBIDDEN_TEXT.search(chr(point)):
            found.append(chr(point))
    return found


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def json_ld_of(page_html: str) -> dict[str, Any]:
    (block,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page_html, re.S)
    data: dict[str, Any] = json.loads(block)
    return data


def livefeed_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livefeed", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip


# --- the rule, on every way in ---------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(BRIEF_FIELDS))
def test_a_forbidden_character_in_a_new_brief_is_refused_and_changes_nothing(
    http: httpx.Client, feed: str, field: str, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    """Each kind of forbidden character in each brief field: 422 invalid_text, nothing stored."""
    before = stream_length(redis_server, server, feed)
    for char in FORBIDDEN:
        payload = {"headline": "Bridge closed", field: BRIEF_FIELDS[field](char)}
        for path in (f"/api/feeds/{feed}/briefs", f"/api/feeds/{feed}/briefs/preview"):
            assert_refused(http.post(path, json=payload, headers=auth()), field)
    assert stream_length(redis_server, server, feed) == before
    assert http.get(f"/api/feeds/{feed}/briefs").json()["briefs"] == []


@pytest.mark.parametrize("field", sorted(BRIEF_FIELDS))
def test_a_forbidden_character_in_a_correction_is_refused_and_changes_nothing(
    http: httpx.Client, feed: str, field: str
) -> None:
    """A correction carrying a forbidden character is refused; the brief stays at version 1."""
    brief = publish(http, feed, "Bridge closed", author="Ana", tags=["roads"])
    for char in FORBIDDEN:
        response = http.patch(
            f"/api/feeds/{feed}/briefs/{brief['id']}",
            json={field: BRIEF_FIELDS[field](char)},
            headers=auth(),
        )
        assert_refused(response, field)
    assert http.get(f"/api/feeds/{feed}/briefs/{brief['id']}").json() == brief


def test_a_forbidden_character_in_a_feed_title_is_refused_on_create_and_retitle(
    http: httpx.Client, feed: str
) -> None:
    """Feed titles follow the rule when a feed is made and when it is renamed."""
    title = http.get(f"/api/feeds/{feed}").json()["title"]
    for n, char in enumerate(FORBIDDEN):
        slug = f"{feed}-bad-{n}"
        created = http.post(
            "/api/feeds",
            json={"slug": slug, "title": f"Election{char} night", "timezone": "UTC"},
            headers=auth(),
        )
        assert_refused(created, "title")
        assert http.get(f"/api/feeds/{slug}").status_code == 404
        renamed = http.patch(
            f"/api/feeds/{feed}", json={"title": f"Election{char} night"}, headers=auth()
        )
        assert_refused(renamed, "title")
    assert http.get(f"/api/feeds/{feed}").json()["title"] == title


def test_a_lone_surrogate_is_refused_as_json_and_by_the_model(
    http: httpx.Client, feed: str
) -> None:
    """``\\ud800`` over HTTP is not valid JSON (400); where a str can hold one (the CLI's
    arguments), the model refuses it with invalid_text."""
    response = http.post(
        f"/api/feeds/{feed}/briefs",
        content=b'{"headline": "Bridge \\ud800 closed"}',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert http.get(f"/api/feeds/{feed}/briefs").json()["briefs"] == []
    with pytest.raises(ValidationFailed) as refused:
        parse_new_feed({"slug": "s", "title": "T\udcff", "timezone": "UTC"}, now_ms())
    assert refused.value.code == "invalid_text" and "U+DCFF" in refused.value.message


def test_an_import_line_with_a_forbidden_character_is_refused_by_line() -> None:
    """Imports validate with the same model: the whole import is refused, naming the line."""
    good = {"published_at": "2024-03-30T10:00:00Z", "headline": "Fine"}
    for field, make in BRIEF_FIELDS.items():
        bad = {**good, "headline": "Fine", field: make("\x1b")}
        lines = [orjson.dumps(good), orjson.dumps(bad)]
        with pytest.raises(ImportRejected) as refused:
            parse_import(lines, after=ZERO_ID)
        assert refused.value.line == 2 and "U+001B" in refused.value.message, field


def test_an_editor_name_with_a_control_character_gets_no_token(
    redis_server: RedisProcess, server: LivefeedServer
) -> None:
    """``livefeed token create`` refuses a name with an escape sequence in it."""
    common = ["--redis-url", redis_server.url, "--key-prefix", server.prefix]
    created = livefeed_cli("token", "create", "\x1b[31mMallory", *common)
    assert created.returncode == 1 and "U+001B" in created.stderr
    assert "Mallory" not in livefeed_cli("token", "list", *common).stdout


def test_references_to_forbidden_characters_are_dropped_from_a_body(
    http: httpx.Client, feed: str
) -> None:
    """``&#1;`` is not a forbidden character as sent, but sanitising would make it one: dropped."""
    brief = publish(http, feed, "Refs", body="<p>a&#1;b&#x1B;c&#xFDD0;d&#x85;e&#x1FFFE;f</p>")
    assert brief["body"] == "<p>abcd\u2026ef</p>"  # U+0085 is NEL; as a reference, "…" (HTML)


def test_tab_line_breaks_and_unusual_but_allowed_characters_are_accepted(
    http: httpx.Client, feed: str
) -> None:
    """The rule forbids only what it names: tab, CR, LF, emoji, U+FFFD, NBSP pass."""
    brief = publish(
        http, feed, "Kyiv \U0001f1fa\U0001f1e6 \ufffd\u00a0\u200bok", body="one\ttwo\r\n\r\nthree"
    )
    assert brief["headline"] == "Kyiv \U0001f1fa\U0001f1e6 \ufffd \u200bok"  # NBSP: whitespace
    assert brief["body"] == "<p>one\ttwo</p><p>three</p>"


def test_the_rule_is_one_definition_that_check_and_clean_agree_on() -> None:
    """check_text refuses exactly what clean_text removes, and that is what the rule names."""
    from livefeed.model.text import check_text, clean_text

    for point in [*range(0x3000), *range(0xD7F0, 0x10000), *range(0x1FFF0, 0x110000, 0xFFFF)]:
        char = chr(point)
        for value in (char, f"ab{char}", f"\u044f{char}", f"\U0001f600{char}"):
            try:
                check_text(value, "x")
                refused = False
            except ValidationFailed:
                refused = True
            assert refused == (clean_text(value) != value), hex(point)
            assert refused == (FORBIDDEN_TEXT.search(value) is not None), hex(point)


# --- old data, on every way out --------------------------------------------------------------


def test_a_brief_stored_before_the_rule_breaks_no_output(
    http: httpx.Client, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    """Control characters written straight into Redis (as old data holds them) are gone from
    Atom, JSON Feed, the reader, day and embed pages, their JSON-LD and the export; no 500."""
    slug = make_feed(http)
    brief = publish(http, slug, "Placeholder")
    dirty = {
        **brief,
        "headline": "Bridge\x01 closed\x1b",
        "body": "<p>Ferry\x01 runs\x7f \x85every \ufdd0hour\U0001fffe</p>",
        "author": "Ana\x1b[31m",
        "url": "https://example.org/\x01a",
        "tags": ["traffic\x01", "\x1b"],
    }
    client = redis_client(redis_server)
    try:
        client.hset(Keys(server.prefix).states(slug), brief["id"], orjson.dumps(dirty))
        record_key = Keys(server.prefix).feed(slug)
        record = orjson.loads(client.get(record_key) or b"{}")
        client.set(record_key, orjson.dumps({**record, "title": "Election\x01 night"}))
    finally:
        client.close()
    log_start = len(server.log())
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]

    for path in (f"/feeds/{slug}/atom.xml", f"/feeds/{slug}/days/{day}/atom.xml"):
        response = http.get(path)
        assert response.status_code == 200, path
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert parsed.feed.author == "Election night"
        (entry,) = parsed.entries
        assert entry.title == "Bridge closed" and entry.author == "Ana[31m"
        assert [t.term for t in entry.tags] == ["traffic"]
        assert entry.content[0].value == "<p>Ferry runs every hour</p>"
        assert forbidden_in_markup(response.text) == [], path

    for path in (f"/feeds/{slug}/feed.json", f"/feeds/{slug}/days/{day}/feed.json"):
        document = http.get(path).json()
        (item,) = document["items"]
        assert item["title"] == "Bridge closed" and item["external_url"] == "https://example.org/a"
        assert item["tags"] == ["traffic"]
        assert not [s for s in strings_in(document) if FORBIDDEN_TEXT.search(s)], path

    for path in (f"/feeds/{slug}", f"/feeds/{slug}/days/{day}", f"/embed/{slug}"):
        response = http.get(path)
        assert response.status_code == 200, path
        assert "Bridge closed" in html.unescape(response.text), path
        assert forbidden_in_markup(response.text) == [], path
        if not path.startswith("/embed"):
            posting = json_ld_of(response.text)
            assert posting["liveBlogUpdate"][0]["headline"] == "Bridge closed"
            assert posting["liveBlogUpdate"][0]["articleBody"] == "Ferry runs every hour"

    common = ["--redis-url", redis_server.url, "--key-prefix", server.prefix]
    exported = livefeed_cli("export", slug, *common)
    assert exported.returncode == 0, exported.stderr
    (line,) = [orjson.loads(raw) for raw in exported.stdout.splitlines()]
    assert line["headline"] == "Bridge closed" and line["tags"] == ["traffic"]
    assert not [s for s in strings_in(line) if FORBIDDEN_TEXT.search(s)]

    new_log = server.log()[log_start:]
    assert "Traceback" not in new_log and " 500 " not in new_log, new_log[-2000:]


def test_a_correction_of_an_old_brief_stores_it_clean(
    http: httpx.Client, feed: str, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    """Correcting any field of a brief stored before the rule writes the rest of it cleaned."""
    brief = publish(http, feed, "Placeholder")
    client = redis_client(redis_server)
    key = Keys(server.prefix).states(feed)
    try:
        client.hset(key, brief["id"], orjson.dumps({**brief, "headline": "Old\x01 headline"}))
        fixed = http.patch(
            f"/api/feeds/{feed}/briefs/{brief['id']}", json={"key_event": True}, headers=auth()
        )
        assert fixed.status_code == 200, fixed.text
        stored = orjson.loads(client.hget(key, brief["id"]) or b"{}")
    finally:
        client.close()
    assert stored["headline"] == "Old headline" and stored["version"] == 2


# --- tags ------------------------------------------------------------------------------------


def test_a_brief_may_carry_the_most_tags_of_the_longest_length(
    http: httpx.Client, feed: str
) -> None:
    """TAGS_MAX tags of TAG_MAX characters each are accepted as given."""
    tags = [f"{n}".rjust(TAG_MAX, "t") for n in range(TAGS_MAX)]
    assert publish(http, feed, "Tagged", tags=tags)["tags"] == tags


def test_repeated_tags_count_once(http: httpx.Client, feed: str) -> None:
    """Within the cap, a tag given twice (after whitespace is collapsed) is kept once."""
    assert publish(http, feed, "Tagged", tags=["a", " a ", "b", "a"])["tags"] == ["a", "b"]


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        pytest.param(["roads"] * (TAGS_MAX + 1), "too_many_tags", id="one over, all repeats"),
        pytest.param([f"t{n}" for n in range(26_000)], "too_many_tags", id="26000 distinct"),
        pytest.param(["t" * (TAG_MAX + 1)], "invalid_tag", id="one character too long"),
        pytest.param(["roads", 7], "invalid_type", id="not a string"),
    ],
)
def test_tags_over_the_caps_are_refused_and_change_nothing(
    http: httpx.Client,
    feed: str,
    tags: list[Any],
    code: str,
    redis_server: RedisProcess,
    server: LivefeedServer,
) -> None:
    """More than TAGS_MAX items (repeats or not), or a tag too long: 422, nothing stored."""
    before = stream_length(redis_server, server, feed)
    response = http.post(
        f"/api/feeds/{feed}/briefs", json={"headline": "Tagged", "tags": tags}, headers=auth()
    )
    assert_refused(response, "tags", code)
    assert stream_length(redis_server, server, feed) == before


def test_the_editor_page_sends_repeated_tags_once(
    page: Page, server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    """Typed repeats stay under the server's list cap: the editor drops them before sending."""
    page.goto(f"{server.base}/editor?feed={feed}")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    expect(page.locator("#editor-name")).to_have_text("Newsroom")
    page.fill("#headline", "Tagged in the editor")
    page.fill("#tags", ", ".join(["roads"] * (TAGS_MAX + 2) + ["Kyiv  centre"]))
    page.locator("#body").press("Control+Enter")
    expect(page.locator("#recent li[data-id]").first).to_contain_text("Tagged in the editor")
    (brief,) = http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]
    assert brief["tags"] == ["roads", "Kyiv centre"]


# --- the event loop --------------------------------------------------------------------------


class HeartbeatPoller:
    """Pings the server over a WebSocket back to back from a thread. The server's event loop
    answers each ping itself (no Redis on the way, so a slow fsync is not counted): ``longest``
    is the slowest answer, in seconds: the event loop's longest stall, give or take."""

    def __init__(self, server: LivefeedServer, slug: str) -> None:
        self.url = f"{server.ws_base}/ws/feeds/{slug}"
        self.times: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with ws_connect(self.url, open_timeout=10, ping_interval=None, close_timeout=5) as ws:
            while not self._stop.is_set() and len(self.times) < 100_000:
                started = time.perf_counter()
                if not ws.ping().wait(30):
                    self.failures.append("no pong within 30 s")
                    return
                self.times.append(time.perf_counter() - started)
                time.sleep(0.002)

    def __enter__(self) -> HeartbeatPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    @property
    def longest(self) -> float:
        return max(self.times, default=0.0)

    def check(self, bound: float) -> None:
        """Assert the poller got answers, all of them within ``bound`` seconds."""
        assert not self.failures, self.failures[:5]
        print(f"\nheartbeat: {len(self.times)} pongs, longest {self.longest * 1000:.0f} ms")
        assert self.longest < bound, f"a pong took {self.longest * 1000:.0f} ms"


TAGS = [f"{n}".rjust(TAG_MAX, "t") for n in range(TAGS_MAX)]
DEEPEST = "<ul>" * (BODY_MAX // 4)  # html5ever's worst case: its time grows with depth squared
LARGEST = {"headline": "h" * 300, "author": "a" * 100, "url": "https://example.org/" + "u" * 2000,
           "tags": TAGS, "body": DEEPEST}  # fmt: skip


def test_the_largest_requests_do_not_stall_other_clients(
    http: httpx.Client, feed: str, server: LivefeedServer
) -> None:
    """While the largest requests allowed (and the largest refused) are handled, no WebSocket ping
    waits more than 500 ms for its pong (the old code: seconds, for 26,000 tags)."""
    many_tags = {"headline": "Tagged", "tags": [f"t{n:05d}" for n in range(26_000)]}
    with HeartbeatPoller(server, make_feed(http)) as poller:
        wait_for_answers(poller, 5)
        for n in range(6):
            refused = http.post(f"/api/feeds/{feed}/briefs", json=many_tags, headers=auth())
            assert refused.status_code == 422
            payload = {**LARGEST, "body": DEEPEST if n % 2 else "&" * BODY_MAX}
            created = http.post(f"/api/feeds/{feed}/briefs", json=payload, headers=auth())
            assert created.status_code == 201, created.text
            corrected = http.patch(
                f"/api/feeds/{feed}/briefs/{created.json()['id']}",
                json={"body": payload["body"]},
                headers=auth(),
            )
            assert corrected.status_code == 200, corrected.text
        wait_for_answers(poller, len(poller.times) + 5)
    poller.check(0.5)


def test_pages_of_the_deepest_briefs_do_not_stall_other_clients(
    http: httpx.Client, feed: str, server: LivefeedServer
) -> None:
    """Reading a page full of the most deeply nested briefs (their JSON-LD holds each one's plain
    text) answers every WebSocket ping within 500 ms (the old code: over a second a page)."""
    for _ in range(20):  # the reader page's length
        created = http.post(f"/api/feeds/{feed}/briefs", json=LARGEST, headers=auth())
        assert created.status_code == 201, created.text
    day = http.get(f"/api/feeds/{feed}/days").json()["days"][0]["date"]
    with HeartbeatPoller(server, make_feed(http)) as poller:
        wait_for_answers(poller, 5)
        for _ in range(2):
            for path in (f"/feeds/{feed}", f"/feeds/{feed}/days/{day}", f"/feeds/{feed}/atom.xml",
                         f"/feeds/{feed}/feed.json"):  # fmt: skip
                assert http.get(path).status_code == 200, path
        wait_for_answers(poller, len(poller.times) + 5)
    poller.check(0.5)


def wait_for_answers(poller: HeartbeatPoller, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(poller.times) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(poller.times) >= count, "the poller got no answers"


# --- the API document ------------------------------------------------------------------------


def test_the_api_document_states_the_text_rule_and_the_tag_cap(http: httpx.Client) -> None:
    """Each text field's schema refuses what the rule forbids in the BMP; tags cap at TAGS_MAX."""
    schemas = http.get("/openapi.json").json()["components"]["schemas"]

    def plain(schema: dict[str, Any]) -> dict[str, Any]:
        return next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)

    brief, feed, patch = (schemas[n]["properties"] for n in ("NewBrief", "NewFeed", "FeedPatch"))
    fields = [brief["headline"], brief["body"], brief["author"], feed["title"], patch["title"]]
    fields.append(brief["tags"]["anyOf"][0]["items"])
    for field in fields:
        schema = plain(field)
        pattern = re.compile(schema["pattern"])
        assert pattern.search("Bridge closed"), schema
        for char in FORBIDDEN[:-1]:  # ECMA-262 without the u flag cannot name U+1FFFF
            assert not pattern.search(f"Bridge{char} closed"), (schema, hex(ord(char)))
        assert "invalid_text" in field.get("description", "") + schema.get("description", "")
    assert schemas["NewBrief"]["properties"]["tags"]["anyOf"][0]["maxItems"] == TAGS_MAX
    assert "invalid_text" in http.get("/api").text
