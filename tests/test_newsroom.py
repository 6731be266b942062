"""Editors' actions through the API: corrections, retractions, pins, key events, coverage end."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import httpx
import pytest
import websockets

from helpers import (
    ON_BOTH,
    LivefeedServer,
    RedisProcess,
    auth,
    frames_until,
    has_live,
    livefeed,
    pick_server,
    publish,
)
from livefeed.model.days import day_containing
from livefeed.model.ids import StreamId


@pytest.fixture
def server(server: LivefeedServer, request: pytest.FixtureRequest) -> LivefeedServer:
    """The session's node; on a Redis Cluster for the tests marked ON_BOTH."""
    return pick_server(server, request)


def brief_url(feed: str, brief_id: str) -> str:
    return f"/api/feeds/{feed}/briefs/{brief_id}"


@ON_BOTH
def test_a_correction_keeps_id_and_place_and_gains_a_version(http: httpx.Client, feed: str) -> None:
    first = publish(http, feed, "First")
    middle = publish(http, feed, "Middle", body="Teh body.")
    last = publish(http, feed, "Last")
    response = http.patch(
        brief_url(feed, middle["id"]), json={"body": "The body.", "tags": ["fixed"]}, headers=auth()
    )
    assert response.status_code == 200
    corrected = response.json()
    assert corrected["id"] == middle["id"] and corrected["published_at"] == middle["published_at"]
    assert corrected["version"] == 2 and corrected["updated_at"] > middle["published_at"]
    assert corrected["body"] == "<p>The body.</p>" and corrected["headline"] == "Middle"
    assert response.headers["etag"] == '"2"'
    listed = http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]
    assert [b["id"] for b in listed] == [last["id"], middle["id"], first["id"]], "same place"
    assert listed[1] == corrected
    assert http.get(brief_url(feed, middle["id"])).json() == corrected


def test_the_loser_of_two_concurrent_corrections_gets_412_with_the_current_version(
    http: httpx.Client, feed: str
) -> None:
    brief = publish(http, feed, "Contested")
    winner = http.patch(
        brief_url(feed, brief["id"]),
        json={"headline": "Winner"},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert winner.status_code == 200
    loser = http.patch(
        brief_url(feed, brief["id"]),
        json={"headline": "Loser"},
        headers={**auth(), "If-Match": '"1"'},
    )
    assert loser.status_code == 412
    assert loser.json()["error"]["code"] == "stale_version"
    assert loser.json()["error"]["current_version"] == 2
    by_body = http.patch(
        brief_url(feed, brief["id"]), json={"headline": "Loser", "version": 1}, headers=auth()
    )
    assert by_body.status_code == 412
    assert http.get(brief_url(feed, brief["id"])).json()["headline"] == "Winner"
    retry = http.patch(
        brief_url(feed, brief["id"]), json={"headline": "Loser", "version": 2}, headers=auth()
    )
    assert retry.status_code == 200 and retry.json()["version"] == 3


@pytest.mark.parametrize(
    ("payload", "headers", "status", "code"),
    [
        ({}, {}, 400, "empty_patch"),
        ({"version": 1}, {}, 400, "empty_patch"),
        ({"headline": 5}, {}, 422, "invalid_type"),
        ({"headline": ""}, {}, 422, "empty_field"),
        ({"headline": "h" * 301}, {}, 422, "too_long"),
        ({"body": "b" * 20_001}, {}, 422, "too_long"),
        ({"key_event": "yes"}, {}, 422, "invalid_type"),
        ({"id": "1-0"}, {}, 422, "unknown_field"),
        ({"headline": "h"}, {"If-Match": "latest"}, 400, "bad_if_match"),
        ({"headline": "h", "version": 3}, {"If-Match": '"1"'}, 400, "bad_if_match"),
    ],
)
def test_bad_corrections_get_clear_errors_and_change_nothing(
    http: httpx.Client,
    feed: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    brief = publish(http, feed, "Stable")
    response = http.patch(brief_url(feed, brief["id"]), json=payload, headers={**auth(), **headers})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert http.get(brief_url(feed, brief["id"])).json() == brief


@pytest.mark.parametrize("brief_id", ["1-0", "not-an-id", "99999999999999-0"])
def test_correcting_or_retracting_a_brief_that_does_not_exist_is_404(
    http: httpx.Client, feed: str, brief_id: str
) -> None:
    assert (
        http.patch(brief_url(feed, brief_id), json={"headline": "x"}, headers=auth()).status_code
        == 404
    )
    response = http.delete(brief_url(feed, brief_id), headers=auth())
    assert response.status_code == 404 and response.json()["error"]["code"] == "brief_not_found"


@ON_BOTH
def test_a_retraction_removes_the_brief_from_lists_days_and_export(
    http: httpx.Client, feed: str, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    keep = publish(http, feed, "Keep")
    gone = publish(http, feed, "Gone")
    today = http.get(f"/api/feeds/{feed}/days").json()["days"][0]
    assert today["count"] == 2
    assert (
        http.delete(brief_url(feed, gone["id"]), headers={**auth(), "If-Match": '"1"'}).status_code
        == 204
    )
    assert http.get(brief_url(feed, gone["id"])).status_code == 404
    assert [b["id"] for b in http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]] == [keep["id"]]
    assert http.get(f"/api/feeds/{feed}/days").json()["days"][0] == {
        "date": today["date"],
        "count": 1,
    }
    assert [
        b["id"] for b in http.get(f"/api/feeds/{feed}/days/{today['date']}").json()["briefs"]
    ] == [keep["id"]]
    exported = livefeed(
        "export", feed, "--redis-url", server.redis_url, "--key-prefix", server.prefix
    ).stdout
    assert "Keep" in exported and "Gone" not in exported
    assert http.delete(brief_url(feed, gone["id"]), headers=auth()).status_code == 404, (
        "already retracted"
    )
    assert (
        http.patch(
            brief_url(feed, gone["id"]), json={"headline": "back"}, headers=auth()
        ).status_code
        == 404
    )


def test_history_lists_every_version_with_editor_and_time(
    http: httpx.Client, feed: str, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    name = "Olena " + uuid.uuid4().hex[:4]
    token = livefeed(
        "token", "create", name, "--redis-url", redis_server.url, "--key-prefix", server.prefix
    ).stdout.strip()
    brief = publish(http, feed, "Draft")
    http.patch(brief_url(feed, brief["id"]), json={"headline": "Fixed"}, headers=auth(token))
    http.delete(brief_url(feed, brief["id"]), headers=auth(token))
    history = http.get(f"{brief_url(feed, brief['id'])}/history").json()
    assert history["id"] == brief["id"]
    versions = history["versions"]
    assert [(v["version"], v["action"], v["editor"]) for v in versions] == [
        (1, "created", "Newsroom"),
        (2, "updated", name),
        (2, "deleted", name),
    ]
    assert (
        versions[0]["brief"]["headline"] == "Draft" and versions[1]["brief"]["headline"] == "Fixed"
    )
    assert versions[2]["brief"] is None
    assert versions[0]["at"] == brief["published_at"] <= versions[1]["at"] <= versions[2]["at"]
    assert http.get(f"/api/feeds/{feed}/briefs/1-0/history").status_code == 404


@ON_BOTH
def test_one_pin_per_feed(http: httpx.Client, feed: str) -> None:
    a, b = publish(http, feed, "A"), publish(http, feed, "B")
    response = http.put(f"/api/feeds/{feed}/pin", json={"brief_id": a["id"]}, headers=auth())
    assert response.status_code == 200 and response.json()["pinned"]["id"] == a["id"]
    assert http.get(f"/api/feeds/{feed}").json()["pinned"] == a["id"]
    http.put(f"/api/feeds/{feed}/pin", json={"brief_id": b["id"]}, headers=auth())
    assert http.get(f"/api/feeds/{feed}").json()["pinned"] == b["id"], "pinning another replaces it"
    assert http.delete(f"/api/feeds/{feed}/pin", headers=auth()).json() == {"pinned": None}
    assert http.get(f"/api/feeds/{feed}").json()["pinned"] is None
    http.put(f"/api/feeds/{feed}/pin", json={"brief_id": a["id"]}, headers=auth())
    http.delete(brief_url(feed, a["id"]), headers=auth())
    assert http.get(f"/api/feeds/{feed}").json()["pinned"] is None, "a retracted brief is unpinned"
    missing = http.put(f"/api/feeds/{feed}/pin", json={"brief_id": a["id"]}, headers=auth())
    assert missing.status_code == 404
    assert http.put(f"/api/feeds/{feed}/pin", json={"brief": 1}, headers=auth()).status_code == 422


def test_key_events_are_flagged_and_listed(http: httpx.Client, feed: str) -> None:
    key = publish(http, feed, "Ceasefire announced", key_event=True)
    plain = publish(http, feed, "Traffic update")
    assert key["key_event"] is True and plain["key_event"] is False
    http.patch(brief_url(feed, plain["id"]), json={"key_event": True}, headers=auth())
    listed = http.get(f"/api/feeds/{feed}/key-events").json()["briefs"]
    assert [b["id"] for b in listed] == [plain["id"], key["id"]]
    http.patch(brief_url(feed, key["id"]), json={"key_event": False}, headers=auth())
    assert [b["id"] for b in http.get(f"/api/feeds/{feed}/key-events").json()["briefs"]] == [
        plain["id"]
    ]


@ON_BOTH
def test_an_ended_feed_refuses_new_briefs_until_reopened(http: httpx.Client, feed: str) -> None:
    brief = publish(http, feed, "Last word")
    ended = http.patch(f"/api/feeds/{feed}", json={"status": "ended"}, headers=auth())
    assert ended.status_code == 200
    assert ended.json()["status"] == "ended" and ended.json()["ended_at"]
    refused = http.post(f"/api/feeds/{feed}/briefs", json={"headline": "Too late"}, headers=auth())
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "feed_ended"
    assert len(http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]) == 1
    fixed = http.patch(
        brief_url(feed, brief["id"]), json={"headline": "Last word, corrected"}, headers=auth()
    )
    assert fixed.status_code == 200, "corrections stay possible after coverage ends"
    reopened = http.patch(f"/api/feeds/{feed}", json={"status": "live"}, headers=auth())
    assert reopened.json()["status"] == "live" and reopened.json()["ended_at"] is None
    publish(http, feed, "Back again")


@pytest.mark.parametrize(
    ("payload", "status"),
    [({}, 400), ({"status": "paused"}, 422), ({"title": ""}, 422), ({"slug": "new"}, 422)],
)
def test_bad_feed_changes_are_refused(
    http: httpx.Client, feed: str, payload: dict[str, Any], status: int
) -> None:
    assert http.patch(f"/api/feeds/{feed}", json=payload, headers=auth()).status_code == status


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/briefs/{id}", {"headline": "x"}),
        ("DELETE", "/briefs/{id}", None),
        ("PUT", "/pin", {"brief_id": "{id}"}),
        ("DELETE", "/pin", None),
        ("PATCH", "", {"status": "ended"}),
        ("POST", "/briefs/preview", {"headline": "x"}),
    ],
)
@pytest.mark.parametrize("token", [None, "revoked-or-wrong"])
def test_every_editor_action_needs_a_valid_token(
    http: httpx.Client,
    feed: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    token: str | None,
) -> None:
    brief = publish(http, feed, "Protected")
    url = f"/api/feeds/{feed}" + path.replace("{id}", brief["id"])
    payload = json.loads(json.dumps(body).replace("{id}", brief["id"])) if body else None
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = http.request(method, url, json=payload, headers=headers)
    assert response.status_code == 401
    assert http.get(brief_url(feed, brief["id"])).json() == brief
    assert http.get(f"/api/feeds/{feed}").json()["status"] == "live"


def test_preview_shows_the_sanitised_brief_without_storing_it(
    http: httpx.Client, feed: str
) -> None:
    response = http.post(
        f"/api/feeds/{feed}/briefs/preview",
        json={"headline": "Look", "body": "a\n\nb & c"},
        headers=auth(),
    )
    assert response.status_code == 200
    assert response.json()["body"] == "<p>a</p><p>b &amp; c</p>"
    assert http.get(f"/api/feeds/{feed}/briefs").json()["briefs"] == []


def test_me_names_the_editor_of_a_token(http: httpx.Client) -> None:
    """The operator's single token is the configured editor name, acting as an admin."""
    assert http.get("/api/me", headers=auth()).json() == {"editor": "Newsroom", "role": "admin"}
    assert http.get("/api/me").status_code == 401


class ReaderState:
    """What a reader page holds, built only from frames: briefs by id, the pin, the status."""

    def __init__(self) -> None:
        self.briefs: dict[str, dict[str, Any]] = {}
        self.pinned: str | None = None
        self.status = "live"

    def apply(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind in ("brief", "brief_updated"):
            current = self.briefs.get(frame["brief"]["id"])
            if current is None or current["version"] < frame["brief"]["version"]:
                self.briefs[frame["brief"]["id"]] = frame["brief"]
        elif kind == "brief_deleted":
            self.briefs.pop(frame["brief_id"], None)
            if self.pinned == frame["brief_id"]:
                self.pinned = None
        elif kind == "pinned":
            self.pinned = frame["brief_id"]
        elif kind == "unpinned":
            self.pinned = None
        elif kind == "feed_updated":
            self.status = frame["feed"]["status"]


@ON_BOTH
async def test_readers_during_a_burst_of_changes_end_with_the_archive_state(
    server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    """Creates, corrections, retractions and pins: every reader converges on the stored state."""
    rng = random.Random(7)
    readers = [
        await websockets.connect(f"{server.ws_base}/ws/feeds/{feed}?since=0") for _ in range(5)
    ]
    states = [ReaderState() for _ in readers]
    try:
        for ws in readers:
            await frames_until(ws, has_live)
        live: list[str] = []
        async with httpx.AsyncClient(base_url=server.base, timeout=10, headers=auth()) as client:
            for n in range(120):
                action = rng.random()
                if action < 0.45 or not live:
                    r = await client.post(
                        f"/api/feeds/{feed}/briefs",
                        json={"headline": f"n{n}", "key_event": n % 7 == 0},
                    )
                    live.append(r.json()["id"])
                elif action < 0.75:
                    target = rng.choice(live)
                    await client.patch(brief_url(feed, target), json={"headline": f"edit {n}"})
                elif action < 0.9:
                    target = rng.choice(live)
                    live.remove(target)
                    await client.delete(brief_url(feed, target))
                else:
                    await client.put(f"/api/feeds/{feed}/pin", json={"brief_id": rng.choice(live)})
            last = (await client.get(f"/api/feeds/{feed}")).json()["last_event_id"]

        async def drain(ws: websockets.ClientConnection, state: ReaderState) -> None:
            while True:
                frame = json.loads(await ws.recv())
                state.apply(frame)
                if frame.get("event_id") == last:
                    return

        await asyncio.wait_for(
            asyncio.gather(*(drain(ws, s) for ws, s in zip(readers, states, strict=True))), 30
        )
    finally:
        for ws in readers:
            await ws.close()
    today = http.get(f"/api/feeds/{feed}/days").json()["days"][0]["date"]
    archive = http.get(f"/api/feeds/{feed}/days/{today}").json()["briefs"]
    stored = http.get(f"/api/feeds/{feed}").json()
    for state in states:
        assert sorted(state.briefs) == [b["id"] for b in archive]
        assert [state.briefs[b["id"]] for b in archive] == archive
        assert state.pinned == stored["pinned"]


async def test_a_replay_shows_a_retracted_brief_appear_and_then_go(
    server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    brief = publish(http, feed, "Mistake")
    http.patch(brief_url(feed, brief["id"]), json={"headline": "Still a mistake"}, headers=auth())
    http.delete(brief_url(feed, brief["id"]), headers=auth())
    assert http.get(f"/api/feeds/{feed}/days").json()["days"] == [], (
        "no day lists a retracted brief"
    )
    local_day = day_containing(StreamId.parse(brief["id"]).ms, "Europe/Kyiv").iso
    types = []
    async with websockets.connect(
        f"{server.ws_base}/ws/feeds/{feed}?replay={local_day}&speed=10000"
    ) as ws:
        async for raw in ws:
            types.append(json.loads(raw)["type"])
    assert [t for t in types if t.startswith("brief")] == [
        "brief",
        "brief_updated",
        "brief_deleted",
    ]


def test_retracting_an_id_past_the_calendar_is_404_not_500(http: httpx.Client, feed: str) -> None:
    """A brief id whose time is beyond year 9999 names no brief: 404 ``brief_not_found``."""
    response = http.delete(brief_url(feed, "45959248737585053"), headers=auth())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "brief_not_found"
