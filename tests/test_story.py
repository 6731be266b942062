"""The story so far through the API and the stream: the lead, the summary box, feed settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from helpers import (
    LivefeedServer,
    RedisProcess,
    auth,
    frames_until,
    has_live,
    image_bytes,
    livefeed,
    make_feed,
    publish,
    stream_length,
    upload,
)
from livefeed.media.images import media_id
from livefeed.model.days import day_containing, local_clock
from livefeed.model.ids import StreamId

PHOTO = image_bytes(640, 360)
LEAD: dict[str, Any] = {
    "headline": "Storm reaches the coast",
    "standfirst": "Thousands without power as winds hit 120 km/h",
    "body": "Roads are closed.\n\nSchools stay shut.",
    "media": [{"id": media_id(PHOTO), "alt": "A flooded street", "caption": "Odesa",
               "credit": "Ana / AP"}],
}  # fmt: skip
SUMMARY: dict[str, Any] = {"items": ["Winds of <strong>120 km/h</strong>", "Schools closed"]}


@pytest.fixture(autouse=True)
def _photo(http: httpx.Client) -> None:
    """The lead's picture is uploaded (once: the same bytes again are known)."""
    upload(http, PHOTO)


def lead_url(feed: str) -> str:
    return f"/api/feeds/{feed}/lead"


def summary_url(feed: str) -> str:
    return f"/api/feeds/{feed}/summary"


def test_a_lead_is_stored_sanitised_with_a_version_and_read_back(
    http: httpx.Client, feed: str
) -> None:
    """PUT lead stores it sanitised at version 1 (author: the editor); GET gives it with its ETag."""
    assert http.get(lead_url(feed)).json() == {"lead": None, "version": 0}
    response = http.put(lead_url(feed), json=LEAD, headers=auth())
    assert response.status_code == 200, response.text
    lead = response.json()
    assert lead["version"] == 1 and response.headers["etag"] == '"1"'
    assert lead["body"] == "<p>Roads are closed.</p><p>Schools stay shut.</p>"
    assert lead["author"] and lead["updated_at"].endswith("Z")
    (photo,) = lead["media"]
    assert photo == {**LEAD["media"][0], "decorative": False, "role": "inline", "transcript": "",
                     "kind": "image", "format": "jpeg", "width": 640, "height": 360,
                     "widths": [320, 640]}  # fmt: skip
    got = http.get(lead_url(feed))
    assert got.json() == {"lead": lead, "version": 1} and got.headers["etag"] == '"1"'


def test_a_summary_is_stored_with_items_sanitised_and_a_default_title(
    http: httpx.Client, feed: str
) -> None:
    """PUT summary keeps the items' allowed HTML, drops the rest, and titles it "What we know"."""
    items = [*SUMMARY["items"], '<img src=x onerror="alert(1)">Power cut']
    response = http.put(summary_url(feed), json={"items": items}, headers=auth())
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["title"] == "What we know" and summary["version"] == 1
    assert summary["items"] == [
        "<p>Winds of <strong>120 km/h</strong></p>",
        "<p>Schools closed</p>",
        "<p>Power cut</p>",
    ]
    assert http.get(summary_url(feed)).json()["summary"] == summary


def test_a_stale_if_match_is_412_and_changes_nothing(http: httpx.Client, feed: str) -> None:
    """A change based on an older version of the lead or summary gets 412 with the current one."""
    for url, body in ((lead_url(feed), LEAD), (summary_url(feed), SUMMARY)):
        assert http.put(url, json=body, headers=auth()).status_code == 200
        second = http.put(url, json=body, headers={**auth(), "If-Match": '"1"'})
        assert second.status_code == 200 and second.json()["version"] == 2
        stale = http.put(url, json=body, headers={**auth(), "If-Match": '"1"'})
        assert stale.status_code == 412, stale.text
        assert stale.json()["error"]["code"] == "stale_version"
        assert stale.json()["error"]["current_version"] == 2
        by_body = http.put(url, json={**body, "version": 1}, headers=auth())
        assert by_body.status_code == 412
        gone = http.delete(url, headers={**auth(), "If-Match": '"1"'})
        assert gone.status_code == 412
        assert http.get(url).json()["version"] == 2


def test_delete_clears_and_versions_count_on(http: httpx.Client, feed: str) -> None:
    """DELETE clears (204, again a no-op); the clear takes a version, so an older If-Match fails."""
    for url, body, name in (
        (lead_url(feed), LEAD, "lead"),
        (summary_url(feed), SUMMARY, "summary"),
    ):
        assert http.put(url, json=body, headers=auth()).status_code == 200
        assert http.delete(url, headers={**auth(), "If-Match": '"1"'}).status_code == 204
        assert http.get(url).json() == {name: None, "version": 2}
        assert http.delete(url, headers=auth()).status_code == 204
        assert http.get(url).json()["version"] == 2, "clearing nothing changes nothing"
        assert http.put(url, json=body, headers={**auth(), "If-Match": '"1"'}).status_code == 412
        again = http.put(url, json=body, headers={**auth(), "If-Match": '"2"'})
        assert again.status_code == 200 and again.json()["version"] == 3


@pytest.mark.parametrize(
    ("path", "payload", "status", "code", "field"),
    [
        ("lead", {}, 422, "missing_field", "headline"),
        ("lead", {"headline": 5}, 422, "invalid_type", "headline"),
        ("lead", {"headline": "h" * 301}, 422, "too_long", "headline"),
        ("lead", {"headline": "h", "standfirst": "s" * 601}, 422, "too_long", "standfirst"),
        ("lead", {"headline": "h", "body": "b" * 20_001}, 422, "too_long", "body"),
        (
            "lead",
            {"headline": "h", "media": [{"id": media_id(PHOTO)}]},
            422,
            "missing_alt",
            "media",
        ),
        (
            "lead",
            {"headline": "h", "media": [{"id": "../x", "alt": "a"}]},
            422,
            "unknown_media",  # as for a brief's: no upload has such an id
            "media",
        ),
        (
            "lead",
            {"headline": "h", "media": [{"id": "0" * 32, "alt": "never uploaded"}]},
            422,
            "unknown_media",
            "media",
        ),
        (
            "lead",
            {"headline": "h", "media": [{"id": media_id(PHOTO), "alt": "a"}] * 2},
            422,
            "duplicate_media",
            "media",
        ),
        (
            "lead",
            {"headline": "h", "media": [{"id": "m", "alt": "a"}] * 11},
            422,
            "too_many_media",  # as for a brief's media: one code per field name (schema._CODES)
            "media",
        ),
        ("lead", {"headline": "h", "media": "m1"}, 422, "invalid_type", "media"),
        ("lead", {"headline": "h", "colour": "red"}, 422, "unknown_field", "colour"),
        ("lead", {"headline": "h\x01"}, 422, "invalid_text", "headline"),
        ("lead", [], 400, "invalid_json", None),
        ("summary", {}, 422, "missing_field", "items"),
        ("summary", {"items": []}, 422, "empty_field", "items"),
        ("summary", {"items": ["a"] * 21}, 422, "too_many_items", "items"),
        ("summary", {"items": ["a" * 1001]}, 422, "too_long", "items"),
        ("summary", {"items": [" "]}, 422, "empty_field", "items"),
        ("summary", {"items": [1]}, 422, "invalid_type", "items"),
        ("summary", {"items": "a"}, 422, "invalid_type", "items"),
        ("summary", {"items": ["a"], "title": "t" * 101}, 422, "too_long", "title"),
        ("summary", {"items": ["a"], "title": ""}, 422, "empty_field", "title"),
    ],
)
def test_bad_lead_or_summary_gets_a_json_error_and_changes_nothing(
    http: httpx.Client,
    feed: str,
    redis_server: RedisProcess,
    server: LivefeedServer,
    path: str,
    payload: Any,
    status: int,
    code: str,
    field: str | None,
) -> None:
    """Each bad lead or summary is a 4xx naming the field, and appends nothing."""
    before = stream_length(redis_server, server, feed)
    response = http.put(f"/api/feeds/{feed}/{path}", json=payload, headers=auth())
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error.get("field") == field
    assert stream_length(redis_server, server, feed) == before
    assert http.get(f"/api/feeds/{feed}/{path}").json()["version"] == 0


def test_lead_and_summary_writes_need_a_token(http: httpx.Client, feed: str) -> None:
    """PUT and DELETE of the lead and the summary are 401 without a valid token."""
    for url, body in ((lead_url(feed), LEAD), (summary_url(feed), SUMMARY)):
        assert http.put(url, json=body).status_code == 401
        assert http.delete(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert http.put("/api/feeds/no-such-feed/lead", json=LEAD, headers=auth()).status_code == 404


async def test_a_joining_reader_gets_lead_and_summary_in_its_snapshot_then_their_events(
    http: httpx.Client, feed: str, server: LivefeedServer
) -> None:
    """The snapshot carries the lead and the summary as they stand; later changes come as
    lead_updated / summary_updated / *_cleared events, in order and resumable by id."""
    lead = http.put(lead_url(feed), json=LEAD, headers=auth()).json()
    summary = http.put(summary_url(feed), json=SUMMARY, headers=auth()).json()
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") as ws:
        frames = await frames_until(ws, has_live)
        snapshot = frames[0]
        assert snapshot["type"] == "snapshot"
        assert snapshot["lead"] == lead and snapshot["summary"] == summary
        changed = http.put(summary_url(feed), json={"items": ["New"]}, headers=auth()).json()
        assert http.delete(lead_url(feed), headers=auth()).status_code == 204
        events = await frames_until(ws, lambda fs: len(fs) >= 2)
    assert [e["type"] for e in events] == ["summary_updated", "lead_cleared"]
    assert events[0]["summary"] == changed and events[0]["editor"]
    assert events[1]["version"] == 2
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}?since=0") as ws:
        frames = await frames_until(ws, has_live)
    kinds = [f["type"] for f in frames if f["type"] != "live"]
    assert kinds == ["lead_updated", "summary_updated", "summary_updated", "lead_cleared"]
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") as ws:
        snapshot = (await frames_until(ws, has_live))[0]
    assert snapshot["lead"] is None and snapshot["summary"] == changed


async def test_a_replay_of_the_day_shows_how_the_summary_changed(
    http: httpx.Client, feed: str, server: LivefeedServer
) -> None:
    """Replaying today sends each summary version at its time, between the briefs around it."""
    first = publish(http, feed, "Before the summary")
    http.put(summary_url(feed), json={"items": ["One"]}, headers=auth())
    publish(http, feed, "Between")
    http.put(summary_url(feed), json={"items": ["One", "Two"]}, headers=auth())
    ms = StreamId.parse(first["id"]).ms
    day = day_containing(ms, "Europe/Kyiv").iso
    start = local_clock(ms, "Europe/Kyiv")[:5]
    url = f"{server.ws_base}/ws/feeds/{feed}?replay={day}&speed=10000&from={start}"
    async with websockets.connect(url) as ws:
        frames = await frames_until(
            ws, lambda fs: sum(f["type"] == "summary_updated" for f in fs) >= 2, timeout=30
        )
    shown = [
        f["brief"]["headline"] if f["type"] == "brief" else f["summary"]["items"]
        for f in frames
        if f["type"] in ("brief", "summary_updated")
    ]
    assert shown == ["Before the summary", ["<p>One</p>"], "Between", ["<p>One</p>", "<p>Two</p>"]]


def test_a_feed_has_a_description_that_editors_set_and_bad_ones_are_refused(
    http: httpx.Client, feed: str
) -> None:
    """PATCH {"description"} sets it (readers get feed_updated); too long or not text is 422."""
    response = http.patch(
        f"/api/feeds/{feed}", json={"description": " Floods,  live "}, headers=auth()
    )
    assert response.status_code == 200 and response.json()["description"] == "Floods, live"
    assert http.get(f"/api/feeds/{feed}").json()["description"] == "Floods, live"
    for bad, code in (("d" * 301, "too_long"), (5, "invalid_type"), ("\x01", "invalid_text")):
        refused = http.patch(f"/api/feeds/{feed}", json={"description": bad}, headers=auth())
        assert refused.status_code == 422 and refused.json()["error"]["code"] == code
    assert http.get(f"/api/feeds/{feed}").json()["description"] == "Floods, live"


def test_a_weak_if_match_never_matches_even_a_lead_never_set(http: httpx.Client, feed: str) -> None:
    """W/"0" is refused with 412 (weak tags never match), though the lead is at version 0."""
    response = http.put(lead_url(feed), json=LEAD, headers={**auth(), "If-Match": 'W/"0"'})
    assert response.status_code == 412 and response.json()["error"]["current_version"] == 0
    assert http.put(lead_url(feed), json=LEAD, headers={**auth(), "If-Match": '"0"'}).is_success


def test_a_whole_feed_export_carries_lead_and_summary_and_its_import_restores_them(
    http: httpx.Client,
    feed: str,
    redis_server: RedisProcess,
    server: LivefeedServer,
    tmp_path: Path,
) -> None:
    """A whole-feed export ends with a lead line and a summary line; importing it restores them
    (text, version, time) and exporting that gives the same bytes; a day's export has neither."""
    opts = ["--redis-url", redis_server.url, "--key-prefix", server.prefix]
    publish(http, feed, "A brief")
    http.put(lead_url(feed), json=LEAD, headers=auth())
    http.put(lead_url(feed), json={**LEAD, "headline": "Storm weakens"}, headers=auth())
    summary = http.put(summary_url(feed), json=SUMMARY, headers=auth()).json()
    first = livefeed("export", feed, *opts)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert [next(iter(line)) for line in lines[1:]] == ["lead", "summary"]
    assert lines[1]["lead"]["version"] == 2 and lines[2]["summary"] == summary
    copy = make_feed(http)
    exported = tmp_path / "feed.jsonl"
    exported.write_text(first.stdout)
    imported = livefeed("import", copy, str(exported), *opts)
    assert imported.returncode == 0, imported.stderr
    assert "and the story so far (2 lines)" in imported.stderr
    assert livefeed("export", copy, *opts).stdout == first.stdout
    assert http.get(lead_url(copy)).json()["version"] == 2
    assert livefeed("export", copy, "--day", "today", *opts).stdout.count("\n") == 1
    exported.write_text(first.stdout.replace('"headline":"Storm weakens"', '"headline":""'))
    empty = make_feed(http)
    refused = livefeed("import", empty, str(exported), *opts)
    assert refused.returncode != 0 and "line 2" in refused.stderr, refused.stderr
    assert livefeed("export", empty, *opts).stdout == "", "nothing was imported"


def test_a_retried_put_with_its_idempotency_key_appends_once(
    http: httpx.Client, feed: str, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    """The same PUT with the same Idempotency-Key answers the first result again, marked as
    replayed, and writes one event; a feed created with a description keeps it."""
    headers = {**auth(), "Idempotency-Key": "story-retry-1"}
    first = http.put(summary_url(feed), json=SUMMARY, headers=headers)
    before = stream_length(redis_server, server, feed)
    again = http.put(summary_url(feed), json=SUMMARY, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert stream_length(redis_server, server, feed) == before
    created = http.post(
        "/api/feeds",
        json={"slug": feed + "-d", "title": "T", "timezone": "UTC", "description": "About it"},
        headers=auth(),
    )
    assert created.status_code == 201 and created.json()["description"] == "About it"
    assert http.get(f"/api/feeds/{feed}-d").json()["description"] == "About it"


def test_the_replay_command_prints_lead_and_summary_changes(
    http: httpx.Client, feed: str, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    """``livefeed replay`` shows a lead or summary change as a line at its local time."""
    first = publish(http, feed, "Before")
    http.put(lead_url(feed), json=LEAD, headers=auth())
    http.put(summary_url(feed), json=SUMMARY, headers=auth())
    ms = StreamId.parse(first["id"]).ms
    done = livefeed("replay", feed, day_containing(ms, "Europe/Kyiv").iso, "--speed", "10000",
                    "--from", local_clock(ms, "Europe/Kyiv")[:5], "--redis-url", redis_server.url,
                    "--key-prefix", server.prefix)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = [line.split("  ", 1)[1] for line in done.stdout.splitlines() if line[:2].isdigit()]
    assert shown == ["Before", f"[lead] {LEAD['headline']}", "[summary] What we know: 2 points"]
