"""Scheduled drafts: published by the one lease holder at their time, exactly once even when
that process is killed around the due time; a draft whose feed has ended goes back, saying why.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

from helpers import TOKEN, LivefeedServer, RedisProcess, auth, make_feed, wait_until
from livefeed.model.ids import iso_ms
from livefeed.newsroom.schedule import LEASE
from livefeed.storage.keys import Keys


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def schedule(http: httpx.Client, slug: str, headline: str, at_ms: int) -> dict[str, Any]:
    made = http.post(f"/api/feeds/{slug}/drafts", json={"headline": headline}, headers=auth())
    assert made.status_code == 201, made.text
    url = f"/api/feeds/{slug}/drafts/{made.json()['id']}/publish"
    scheduled = http.post(url, json={"at": iso_ms(at_ms)}, headers=auth())
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    draft: dict[str, Any] = scheduled.json()
    return draft


def published_headlines(client: redis.Redis, prefix: str, slug: str) -> Counter[str]:
    """How often each headline was appended to the public stream as a new brief."""
    rows: Any = client.xrange(Keys(prefix).stream(slug))
    return Counter(
        json.loads(fields[b"d"])["brief"]["headline"]
        for _, fields in rows
        if fields[b"t"] == b"brief"
    )


def test_scheduled_drafts_are_published_once_when_the_lease_holder_is_killed(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Two serving processes on one Redis; three drafts due a few seconds ahead; the lease
    holder is SIGKILLed around their time: the other publishes each, and each exactly once."""
    prefix = "ts-" + uuid.uuid4().hex[:8]
    nodes = [LivefeedServer(redis_server.url, prefix) for _ in range(2)]
    client = redis.Redis.from_url(redis_server.url)
    try:
        for node in nodes:
            node.start(log_dir=tmp_path)
        lease = Keys(prefix).lease(LEASE)
        wait_until(lambda: client.get(lease) is not None, 10, "no process took the lease")
        raw = client.get(lease)
        assert isinstance(raw, bytes)
        holder_pid = int(raw.split(b"-")[0])
        holder = next(n for n in nodes if n.proc is not None and n.proc.pid == holder_pid)
        other = next(n for n in nodes if n is not holder)
        with httpx.Client(base_url=other.base, timeout=10) as http:
            slug = make_feed(http)
            start = redis_ms(client)
            due = [start + 2000 + 300 * n for n in range(3)]
            drafts = [schedule(http, slug, f"Due {n}", at) for n, at in enumerate(due)]
            time.sleep(max(0.0, (due[1] - redis_ms(client)) / 1000))
            holder.kill()  # around the due time: maybe mid-publish
            headlines = {f"Due {n}" for n in range(3)}
            wait_until(
                lambda: set(published_headlines(client, prefix, slug)) == headlines,
                30, "the scheduled drafts were not all published",
            )  # fmt: skip
            time.sleep(1.5)  # a second publish, if one were coming, would be in by now
            counts = published_headlines(client, prefix, slug)
            assert counts == Counter(dict.fromkeys(headlines, 1)), counts
            for draft in drafts:
                got = http.get(f"/api/feeds/{slug}/drafts/{draft['id']}", headers=auth()).json()
                assert got["status"] == "published" and got["brief"]
                brief = http.get(f"/api/feeds/{slug}/briefs/{got['brief']}").json()
                assert brief["published_at"] >= draft["scheduled_for"], "never before its time"
    finally:
        for node in nodes:
            node.stop()
        client.close()


def test_a_scheduled_draft_of_an_ended_feed_goes_back_saying_why(
    http: httpx.Client, server: LivefeedServer, redis_server: RedisProcess
) -> None:
    """Coverage ends before the draft's time: it is not published; it is submitted again and
    the desk gets draft_schedule_failed with reason feed_ended."""
    slug = make_feed(http)
    client = redis.Redis.from_url(redis_server.url)
    try:
        draft = schedule(http, slug, "Too late", redis_ms(client) + 1000)
        ended = http.patch(f"/api/feeds/{slug}", json={"status": "ended"}, headers=auth())
        assert ended.status_code == 200
        url = f"/api/feeds/{slug}/drafts/{draft['id']}"
        wait_until(lambda: http.get(url, headers=auth()).json()["status"] == "submitted", 15,
                   "the draft did not go back")  # fmt: skip
        rows: Any = client.xrange(Keys(server.prefix).desk(slug))
        kind, data = rows[-1][1][b"t"], json.loads(rows[-1][1][b"d"])
        assert (kind, data["reason"], data["draft"]["status"]) == (
            b"draft_schedule_failed", "feed_ended", "submitted",
        )  # fmt: skip
        assert published_headlines(client, server.prefix, slug) == Counter()
    finally:
        client.close()


def test_an_unscheduled_draft_is_not_published(
    http: httpx.Client, server: LivefeedServer, redis_server: RedisProcess
) -> None:
    """Unscheduling before the time puts the draft back in the queue; at its old time nothing
    is published, and a draft scheduled beside it still is."""
    slug = make_feed(http)
    client = redis.Redis.from_url(redis_server.url)
    try:
        at = redis_ms(client) + 1500
        dropped = schedule(http, slug, "Dropped", at)
        kept = schedule(http, slug, "Kept", at)
        url = f"/api/feeds/{slug}/drafts/{dropped['id']}"
        back = http.post(url + "/unschedule", headers=auth(TOKEN))
        assert back.status_code == 200 and back.json()["status"] == "submitted"
        wait_until(lambda: published_headlines(client, server.prefix, slug) == {"Kept": 1}, 15,
                   "the kept draft was not published")  # fmt: skip
        time.sleep(0.5)
        assert published_headlines(client, server.prefix, slug) == {"Kept": 1}
        assert http.get(url, headers=auth()).json()["status"] == "submitted"
        assert kept["status"] == "scheduled"
    finally:
        client.close()


def test_drafts_publish_and_schedule_on_a_redis_cluster(cluster_server: LivefeedServer) -> None:
    """On a Redis Cluster a draft publishes (its scripts keep to the feed's slot) and a
    scheduled one is published by the scheduler (the due index is used alone)."""
    with httpx.Client(base_url=cluster_server.base, timeout=10) as http:
        slug = make_feed(http)
        made = http.post(f"/api/feeds/{slug}/drafts", json={"headline": "Now"}, headers=auth())
        url = f"/api/feeds/{slug}/drafts/{made.json()['id']}"
        assert http.post(url + "/submit", headers=auth()).status_code == 200
        assert http.post(url + "/publish", headers=auth()).status_code == 201
        schedule(http, slug, "Later", int(time.time() * 1000) + 1500)

        def headlines() -> set[str]:
            briefs = http.get(f"/api/feeds/{slug}/briefs").json()["briefs"]
            return {b["headline"] for b in briefs}

        wait_until(lambda: headlines() == {"Now", "Later"}, 20, "the scheduled draft is missing")
        audit = http.get(f"/api/feeds/{slug}/audit", headers=auth()).json()["audit"]
        published = [line for line in audit if line["action"] == "draft_published"]
        assert [line.get("scheduled") for line in published] == [True, None]
