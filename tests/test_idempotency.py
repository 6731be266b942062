"""Idempotency-Key: a retried write has one effect and gets the first answer back."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx
import pytest
import redis
from playwright.sync_api import Page, Request, Route, expect

from helpers import TOKEN, LivefeedServer, auth, make_feed, publish
from livefeed.storage.keys import Keys


def keyed(key: str | None = None, **headers: str) -> dict[str, str]:
    return {**auth(), "Idempotency-Key": key or uuid.uuid4().hex, **headers}


def events(rdb: redis.Redis, server: LivefeedServer, feed: str) -> list[str]:
    """The types of the feed's stream entries, oldest first."""
    raw = rdb.xrange(Keys(server.prefix).stream(feed))
    rows = cast("list[tuple[bytes, dict[bytes, bytes]]]", raw)
    return [fields[b"t"].decode() for _, fields in rows]


def same_response(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code
    assert again.content == first.content
    for name in ("location", "etag", "content-type"):
        assert again.headers.get(name) == first.headers.get(name), name
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"


# --- retries of each kind of write ---------------------------------------------------------------


def test_a_retried_publish_makes_one_brief_and_returns_the_first_response(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """The same key and body published twice: one brief, one day count, the same 201."""
    headers = keyed()
    body = {"headline": "Bridge closed", "body": "Police closed it."}
    first = http.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = http.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers)
    same_response(first, again)
    assert events(rdb, server, feed) == ["brief"]
    assert [b["id"] for b in http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]] == [
        first.json()["id"]
    ]
    assert [d["count"] for d in http.get(f"/api/feeds/{feed}/days").json()["days"]] == [1]


def test_a_retried_correction_applies_once_even_though_its_if_match_is_now_stale(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """A PATCH retried with its If-Match "1" after it made version 2 gets its 200, not a 412."""
    brief = publish(http, feed, "Teh bridge")
    url = f"/api/feeds/{feed}/briefs/{brief['id']}"
    headers = keyed(**{"If-Match": '"1"'})
    first = http.patch(url, json={"headline": "The bridge"}, headers=headers)
    assert first.status_code == 200 and first.json()["version"] == 2
    again = http.patch(url, json={"headline": "The bridge"}, headers=headers)
    same_response(first, again)
    versions = http.get(f"{url}/history").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert events(rdb, server, feed) == ["brief", "brief_updated"]


def test_a_retried_correction_without_if_match_is_not_applied_twice(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """Without If-Match a retry would re-apply on top of the newer version: with a key it does not."""
    brief = publish(http, feed, "Bridge")
    url = f"/api/feeds/{feed}/briefs/{brief['id']}"
    headers = keyed()
    first = http.patch(url, json={"tags": ["roads"]}, headers=headers)
    again = http.patch(url, json={"tags": ["roads"]}, headers=headers)
    same_response(first, again)
    assert http.get(url).json()["version"] == 2
    assert events(rdb, server, feed) == ["brief", "brief_updated"]


def test_a_retried_retraction_is_a_204_again_not_a_404(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """DELETE retried after the brief is gone answers the first 204 and records one retraction."""
    brief = publish(http, feed, "Wrong")
    url = f"/api/feeds/{feed}/briefs/{brief['id']}"
    headers = keyed()
    first = http.delete(url, headers=headers)
    assert first.status_code == 204
    again = http.delete(url, headers=headers)
    same_response(first, again)
    assert events(rdb, server, feed) == ["brief", "brief_deleted"]
    assert http.get(f"/api/feeds/{feed}/days").json()["days"] == []


def test_retried_pins_and_unpins_append_once_each(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """PUT and DELETE of the pin, each sent twice with its key, make one event each."""
    brief = publish(http, feed, "Pin me")
    pin_key, unpin_key = keyed(), keyed()
    for _ in range(2):
        pinned = http.put(f"/api/feeds/{feed}/pin", json={"brief_id": brief["id"]}, headers=pin_key)
        assert pinned.status_code == 200 and pinned.json()["pinned"]["id"] == brief["id"]
    for _ in range(2):
        unpinned = http.delete(f"/api/feeds/{feed}/pin", headers=unpin_key)
        assert unpinned.status_code == 200 and unpinned.json() == {"pinned": None}
    assert unpinned.headers["idempotent-replayed"] == "true"
    assert events(rdb, server, feed) == ["brief", "pinned", "unpinned"]


def test_a_retried_end_of_coverage_answers_with_the_first_ended_at(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """PATCH of the feed retried: one feed_updated event, the same ended_at in both answers."""
    headers = keyed()
    first = http.patch(f"/api/feeds/{feed}", json={"status": "ended"}, headers=headers)
    assert first.status_code == 200 and first.json()["ended_at"]
    again = http.patch(f"/api/feeds/{feed}", json={"status": "ended"}, headers=headers)
    same_response(first, again)
    assert http.get(f"/api/feeds/{feed}").json()["ended_at"] == first.json()["ended_at"]
    assert events(rdb, server, feed) == ["feed_updated"]


def test_a_retried_feed_creation_is_a_201_again_not_a_409(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis
) -> None:
    """POST /api/feeds retried after its 201 was lost answers that 201; another body is 422."""
    slug = "f-" + uuid.uuid4().hex[:12]
    body = {"slug": slug, "title": "Election night", "timezone": "Europe/Kyiv"}
    headers = keyed()
    first = http.post("/api/feeds", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = http.post("/api/feeds", json=body, headers=headers)
    same_response(first, again)
    other = http.post("/api/feeds", json={**body, "title": "Other"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    listed = [f for f in http.get("/api/feeds").json()["feeds"] if f["slug"] == slug]
    assert listed == [first.json()]
    taken = http.post("/api/feeds", json=body, headers=keyed())
    assert taken.status_code == 409, "a new intent for a taken slug is still a conflict"


# --- keys that do not fit ------------------------------------------------------------------------


def test_the_same_key_with_a_different_body_is_422_and_writes_nothing(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """A key reused for another brief is refused; the first brief stays the only one."""
    headers = keyed()
    first = http.post(f"/api/feeds/{feed}/briefs", json={"headline": "One"}, headers=headers)
    assert first.status_code == 201
    other = http.post(f"/api/feeds/{feed}/briefs", json={"headline": "Two"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    elsewhere = http.delete(f"/api/feeds/{feed}/briefs/{first.json()['id']}", headers=headers)
    assert elsewhere.status_code == 422, "the same key on another path"
    assert events(rdb, server, feed) == ["brief"]


@pytest.mark.parametrize("key", ["", "x" * 256, "two words", '"half-quoted', 'in"side'])
def test_a_malformed_key_is_400_and_writes_nothing(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str, key: str
) -> None:
    """An empty or too long key, or one with spaces or quotes, is 400 and writes nothing."""
    headers = {**auth(), "Idempotency-Key": key}
    response = http.post(f"/api/feeds/{feed}/briefs", json={"headline": "Keyed"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_idempotency_key"
    assert events(rdb, server, feed) == []


def test_a_quoted_key_as_the_ietf_draft_writes_it_is_the_same_key(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """``"abc"`` (a structured-field string) and ``abc`` name one intent."""
    key = uuid.uuid4().hex
    body = {"headline": "Quoted"}
    first = http.post(f"/api/feeds/{feed}/briefs", json=body, headers=keyed(f'"{key}"'))
    again = http.post(f"/api/feeds/{feed}/briefs", json=body, headers=keyed(key))
    same_response(first, again)
    assert events(rdb, server, feed) == ["brief"]


def test_a_refused_request_does_not_use_up_its_key(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """A publish refused (coverage ended, or invalid) stores nothing: the key works afterwards."""
    headers = keyed()
    body = {"headline": "Late news"}
    http.patch(f"/api/feeds/{feed}", json={"status": "ended"}, headers=auth())
    refused = http.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "feed_ended"
    invalid = http.post(f"/api/feeds/{feed}/briefs", json={"headline": ""}, headers=headers)
    assert invalid.status_code == 422
    http.patch(f"/api/feeds/{feed}", json={"status": "live"}, headers=auth())
    accepted = http.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers)
    assert accepted.status_code == 201 and "idempotent-replayed" not in accepted.headers
    same_response(accepted, http.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers))
    assert events(rdb, server, feed) == ["feed_updated", "feed_updated", "brief"]


def test_keys_are_kept_for_24_hours_under_the_key_prefix(
    http: httpx.Client, server: LivefeedServer, rdb: redis.Redis, feed: str
) -> None:
    """The record of an intent lives under the deployment's prefix and expires after a day."""
    key = uuid.uuid4().hex
    publish_response = http.post(
        f"/api/feeds/{feed}/briefs", json={"headline": "Kept"}, headers=keyed(key)
    )
    assert publish_response.status_code == 201
    (record,) = list(rdb.scan_iter(match=f"{server.prefix}:idempotency:*:{key}", count=1000))
    assert 24 * 3600 - 60 <= rdb.ttl(record) <= 24 * 3600


# --- concurrency ----------------------------------------------------------------------------------


def test_parallel_requests_with_one_key_make_one_brief(
    server: LivefeedServer, rdb: redis.Redis, http: httpx.Client, feed: str
) -> None:
    """Eight concurrent POSTs with one key: one brief, and every answer names it."""
    headers = keyed()
    body = {"headline": "Storm warning", "body": "Stay indoors."}

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            return client.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert events(rdb, server, feed) == ["brief"]


def test_one_key_holds_across_two_servers_on_one_redis(
    server: LivefeedServer, rdb: redis.Redis, http: httpx.Client, feed: str, tmp_path: Any
) -> None:
    """A retry that lands on another node (same Redis, same prefix) is replayed there."""
    other = LivefeedServer(server.redis_url, server.prefix)
    other.start(log_dir=tmp_path)
    try:
        headers = keyed()
        body = {"headline": "From the train"}
        first = http.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers)
        with httpx.Client(base_url=other.base, timeout=10) as client:
            again = client.post(f"/api/feeds/{feed}/briefs", json=body, headers=headers)
        same_response(first, again)
    finally:
        other.stop()
    assert events(rdb, server, feed) == ["brief"]


# --- the editor page ------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_editor_page_resends_a_lost_publish_with_its_key_and_makes_one_brief(
    page: Page, server: LivefeedServer, http: httpx.Client, rdb: redis.Redis
) -> None:
    """The brief reaches Redis, every answer is lost, the editor clicks Publish again: one brief,
    and every request the page sent for it carried the same Idempotency-Key."""
    slug = make_feed(http)
    sent: list[Request] = []
    lost = 3  # the page's first send and its own two resends

    def lose_answers(route: Route, request: Request) -> None:
        sent.append(request)
        if len(sent) == 1:
            route.fetch()  # the server publishes ...
        if len(sent) <= lost:
            route.abort("connectionreset")  # ... and no 201 arrives
        else:
            route.continue_()

    page.route(f"**/api/feeds/{slug}/briefs", lose_answers)
    page.goto(f"{server.base}/editor?feed={slug}")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    expect(page.locator("#editor-name")).to_have_text("Newsroom")
    expect(page.locator("#feed-status")).to_have_text("Live")  # the feed loaded: Publish can go
    page.fill("#headline", "Published from the train")
    page.click("#publish")
    expect(page.locator("#compose-message")).to_contain_text("safe", timeout=15_000)
    assert len(sent) == lost
    page.click("#publish")  # the editor tries again, draft unchanged
    expect(page.locator("#compose-message")).to_contain_text("Published", timeout=15_000)
    keys = {r.headers.get("idempotency-key") for r in sent}
    assert len(sent) == lost + 1 and len(keys) == 1 and None not in keys
    assert events(rdb, server, slug) == ["brief"]
    expect(page.locator("#recent li[data-id]")).to_have_count(1)
    page.fill("#headline", "A second brief")
    page.click("#publish")
    expect(page.locator("#recent li[data-id]")).to_have_count(2, timeout=15_000)
    assert sent[-1].headers.get("idempotency-key") not in keys, "a new intent, a new key"
    assert events(rdb, server, slug) == ["brief", "brief"]
