"""Since you were last here: ``GET /api/feeds/{feed}/since/{id}`` on a real Redis and server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import redis

from helpers import LivefeedServer, auth, publish
from livefeed.limits import SINCE_MAX_EVENTS
from livefeed.storage.keys import Keys


def since(http: httpx.Client, feed: str, event_id: str) -> dict[str, Any]:
    response = http.get(f"/api/feeds/{feed}/since/{event_id}")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=5"
    body: dict[str, Any] = response.json()
    return body


def last_event_id(http: httpx.Client, feed: str) -> str:
    value: str = http.get(f"/api/feeds/{feed}").json()["last_event_id"]
    return value


def correct(http: httpx.Client, feed: str, brief_id: str, **fields: Any) -> None:
    response = http.patch(f"/api/feeds/{feed}/briefs/{brief_id}", json=fields, headers=auth())
    assert response.status_code == 200, response.text


def retract(http: httpx.Client, feed: str, brief_id: str) -> None:
    response = http.delete(f"/api/feeds/{feed}/briefs/{brief_id}", headers=auth())
    assert response.status_code == 204, response.text


def test_since_counts_new_briefs_key_events_and_what_else_changed(
    http: httpx.Client, feed: str
) -> None:
    """New briefs, key events (ids and headlines), a correction of a read brief with its note,
    lead and summary changes and the end of coverage are all in the answer, with the visit's time."""
    read = publish(http, feed, "Read before")
    visit = last_event_id(http, feed)
    publish(http, feed, "One")
    key = publish(http, feed, "<b>Key</b> & bold", key_event=True)
    publish(http, feed, "Three")
    correct(http, feed, read["id"], headline="Read, fixed", correction_note="Wrong street")
    lead = {"headline": "The lead"}
    assert http.put(f"/api/feeds/{feed}/lead", json=lead, headers=auth()).status_code == 200
    summary = {"items": ["A point"]}
    assert http.put(f"/api/feeds/{feed}/summary", json=summary, headers=auth()).status_code == 200
    ended = http.patch(f"/api/feeds/{feed}", json={"status": "ended"}, headers=auth())
    assert ended.status_code == 200, ended.text

    report = since(http, feed, visit)
    ms = int(visit.split("-")[0])
    assert report["since"] == visit and report["too_much"] is False
    assert report["since_at"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + (
        f".{ms % 1000:03d}Z"
    )
    assert report["last_event_id"] == last_event_id(http, feed)
    assert report["new_briefs"] == 3
    assert report["key_events"] == [{"id": key["id"], "headline": "<b>Key</b> & bold"}]
    assert report["corrections"] == [
        {"id": read["id"], "headline": "Read, fixed", "note": "Wrong street"}
    ]
    assert report["retractions"] == []
    assert report["lead_updated"] and report["summary_updated"] and report["ended"]
    assert report["links"] == {
        "key_events": f"/feeds/{feed}#key-events",
        "days": f"/feeds/{feed}/days",
    }


def test_since_counts_only_public_corrections_and_retractions_of_briefs_read(
    http: httpx.Client, feed: str
) -> None:
    """A silent fix of a read brief, corrections of briefs published after the visit and a
    retracted new brief are not reported as corrections or new; a retracted read brief is."""
    silent = publish(http, feed, "Fixed silently")
    gone = publish(http, feed, "Retracted later")
    visit = last_event_id(http, feed)
    correct(http, feed, silent["id"], headline="Fixed silently, typo")
    retract(http, feed, gone["id"])
    fresh = publish(http, feed, "Fresh")
    correct(http, feed, fresh["id"], headline="Fresh, fixed", correction_note="Spelling",
            key_event=True)  # fmt: skip
    dropped = publish(http, feed, "Dropped", key_event=True)
    retract(http, feed, dropped["id"])

    report = since(http, feed, visit)
    assert report["corrections"] == [] and report["retractions"] == [gone["id"]]
    assert report["new_briefs"] == 1
    assert report["key_events"] == [{"id": fresh["id"], "headline": "Fresh, fixed"}]
    assert not (report["lead_updated"] or report["summary_updated"] or report["ended"])


def test_since_reports_coverage_ended_only_when_it_ended_after_the_visit(
    http: httpx.Client, feed: str
) -> None:
    """Retitling a feed that had ended before the visit is not "coverage ended"; ending it
    again after reopening is."""

    def patch(**fields: str) -> None:
        response = http.patch(f"/api/feeds/{feed}", json=fields, headers=auth())
        assert response.status_code == 200, response.text

    patch(status="ended")
    visit = last_event_id(http, feed)
    patch(title="Renamed after the end")
    assert since(http, feed, visit)["ended"] is False
    patch(status="live")
    patch(status="ended")
    assert since(http, feed, visit)["ended"] is True


def test_since_the_last_event_or_a_later_moment_reports_nothing(
    http: httpx.Client, feed: str
) -> None:
    """At the feed's last event, or at a millisecond after it and before now, nothing happened;
    once something does, asking again says so (a kept answer never outlives its stream)."""
    publish(http, feed, "Only")
    last = last_event_id(http, feed)
    later = str(int(last.split("-")[0]) + 1)
    for visit in (last, later):
        report = since(http, feed, visit)
        assert report["too_much"] is False and report["new_briefs"] == 0, visit
        assert report["key_events"] == report["corrections"] == report["retractions"] == []
    publish(http, feed, "Next")
    assert since(http, feed, last)["new_briefs"] == 1


def test_since_beyond_the_cap_is_too_much(
    http: httpx.Client, feed: str, rdb: redis.Redis, server: LivefeedServer
) -> None:
    """More events after the id than one read takes: ``too_much``, with the links, no lists."""
    visit = publish(http, feed, "Before the flood")["id"]
    ms, seq = (int(part) for part in visit.split("-"))
    stream, prev = Keys(server.prefix).stream(feed), visit
    with rdb.pipeline(transaction=False) as pipe:  # unpin events, chained as append.lua writes
        for n in range(1, SINCE_MAX_EVENTS + 2):
            event_id = f"{ms}-{seq + n}"
            pipe.xadd(stream, {"t": "unpinned", "d": "{}", "p": prev}, id=event_id)
            prev = event_id
        pipe.execute()
    report = since(http, feed, visit)
    assert report["too_much"] is True and report["new_briefs"] == 0
    assert report["links"]["days"] == f"/feeds/{feed}/days"
    assert report["last_event_id"] == f"{ms}-{seq + SINCE_MAX_EVENTS}"
    at_cap = since(http, feed, f"{ms}-{seq + 1}")  # exactly the cap: folded
    assert at_cap["too_much"] is False and at_cap["last_event_id"] == prev


def test_since_an_id_older_than_the_stream_holds_is_too_much(
    http: httpx.Client, feed: str, rdb: redis.Redis, server: LivefeedServer
) -> None:
    """Events after the id trimmed from the stream, or one deleted among them: ``too_much``."""
    first = publish(http, feed, "First")["id"]
    second = publish(http, feed, "Second")["id"]
    publish(http, feed, "Third")
    publish(http, feed, "Fourth")
    stream = Keys(server.prefix).stream(feed)
    assert since(http, feed, first)["too_much"] is False
    rdb.xdel(stream, second)
    assert since(http, feed, first)["too_much"] is True
    rdb.xtrim(stream, maxlen=1)
    assert since(http, feed, first)["too_much"] is True
    assert since(http, feed, "1-0")["too_much"] is True


def test_since_bad_ids_are_400_and_unknown_feeds_404(http: httpx.Client, feed: str) -> None:
    """A malformed or out-of-range id is ``bad_since``, one after Redis's clock
    ``since_in_future``, an unknown feed ``feed_not_found``; all JSON errors."""
    future = str(int(time.time() * 1000) + 3_600_000)
    cases = [
        (f"/api/feeds/{feed}/since/yesterday", 400, "bad_since"),
        (f"/api/feeds/{feed}/since/1-2-3", 400, "bad_since"),
        (f"/api/feeds/{feed}/since/{2**64}-0", 400, "bad_since"),
        (f"/api/feeds/{feed}/since/{future}-0", 400, "since_in_future"),
        ("/api/feeds/no-such-feed/since/1-0", 404, "feed_not_found"),
    ]
    for path, status, code in cases:
        response = http.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["code"] == code, path


def test_since_gives_every_node_the_same_answer(
    http: httpx.Client, feed: str, server: LivefeedServer, tmp_path: Path
) -> None:
    """A second node on the same Redis answers byte for byte as the first, whether the first
    answers from what it keeps or not."""
    read = publish(http, feed, "Read")
    visit = last_event_id(http, feed)
    publish(http, feed, "Key", key_event=True)
    correct(http, feed, read["id"], headline="Read, fixed", correction_note="Fixed")
    path = f"/api/feeds/{feed}/since/{visit}"
    other = LivefeedServer(server.redis_url, server.prefix)
    other.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=other.base, timeout=10) as second:
            answers = {http.get(path).content, http.get(path).content, second.get(path).content}
    finally:
        other.stop()
    assert len(answers) == 1 and b'"corrections":[{' in answers.pop()
