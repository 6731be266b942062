"""Imports through the bulk path against a real Redis: the same keys as appending one by one,
all or nothing when Redis refuses or the connection fails part way."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from helpers import RedisProcess
from livefeed.model.brief import brief_dict, parse_new_brief
from livefeed.model.days import day_containing
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, iso_ms
from livefeed.model.text import sanitize_body
from livefeed.newsroom import transfer
from livefeed.newsroom.transfer import (
    ImportedBrief,
    ImportRejected,
    ImportStopped,
    import_briefs,
    parse_import,
)
from livefeed.storage import bulk
from livefeed.storage.append import AT, ID, Append
from livefeed.storage.connect import connect
from livefeed.storage.store import Store

KYIV = ZoneInfo("Europe/Kyiv")


@pytest.fixture
async def store(redis_server: RedisProcess, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A store on the session's Redis; on the Redis Cluster for the tests marked ON_BOTH."""
    if getattr(request, "param", "redis") == "cluster":
        redis = connect(request.getfixturevalue("redis_cluster").url, timeout=10)
    else:
        redis = Redis.from_url(redis_server.url)
    yield Store(redis, "import-" + uuid.uuid4().hex[:8])
    await redis.aclose()


ON_BOTH = pytest.mark.parametrize("store", ["redis", "cluster"], indirect=True)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several groups of several script calls, even for a handful of briefs."""
    monkeypatch.setattr(transfer, "BATCH", 5)
    monkeypatch.setattr(bulk, "PER_CALL", 2)


def kyiv_ms(text: str, fold: int = 0) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=KYIV, fold=fold).timestamp() * 1000)


LIVE_MS = kyiv_ms("2024-03-30T11:00:00")
# In time order: the first shares the live brief's millisecond, then briefs sharing one, the
# edges of days either side of both clock changes, and a far-off millisecond.
TIMES = [
    LIVE_MS,
    kyiv_ms("2024-03-30T12:00:00"),
    kyiv_ms("2024-03-30T12:00:00"),
    kyiv_ms("2024-03-30T12:00:00"),
    kyiv_ms("2024-03-30T23:59:59.999"),
    kyiv_ms("2024-03-31T00:00:00"),
    kyiv_ms("2024-03-31T02:59:59.999"),
    kyiv_ms("2024-03-31T04:00:00"),
    kyiv_ms("2024-10-27T03:30:00"),
    kyiv_ms("2024-10-27T03:30:00", fold=1),
    kyiv_ms("2024-10-27T23:59:59.999"),
    kyiv_ms("2024-10-28T00:00:00.001"),
    4_102_444_799_999,  # 2099-12-31T23:59:59.999Z
]


def archive() -> list[ImportedBrief]:
    briefs = []
    for n, at_ms in enumerate(TIMES):
        payload: dict[str, Any] = {
            "headline": f"Brief {n} \u00e9 \u201cquoted\u201d",
            "body": f"<p>Report {n} &amp; <a href='https://example.com/{n}'>more</a>.</p>",
            "author": "Archivist" if n % 2 else "",
            "url": f"https://example.com/{n}" if n % 3 else None,
            "tags": ["history", f"n{n}"] if n % 4 else [],
            "key_event": n % 3 == 1,
        }
        draft = parse_new_brief(payload, default_author="")
        version, updated_at = (3, iso_ms(at_ms + 60_000)) if n % 5 == 2 else (1, None)
        briefs.append(ImportedBrief(n + 1, at_ms, draft, version, updated_at))
    return briefs


def one_by_one(feed: Feed, item: ImportedBrief) -> Append:
    """What imports appended before the bulk path: one append.lua publish per brief, at its
    time (and validating a line sanitised its body)."""
    draft = item.draft
    if item.raw_body:
        draft = msgspec.structs.replace(draft, body=sanitize_body(draft.body))
    brief = brief_dict(draft, ID, AT, version=item.version, updated_at=item.updated_at)
    day = day_containing(item.at_ms, feed.timezone)
    return Append.publish(brief, "import", [day], key_event=draft.key_event, at_ms=item.at_ms)


def live(feed: Feed, at_ms: int, headline: str) -> Append:
    """A key-event brief published at ``at_ms``."""
    draft = parse_new_brief({"headline": headline, "key_event": True}, default_author="Desk")
    day = day_containing(at_ms, feed.timezone)
    return Append.publish(brief_dict(draft, ID, AT), "Desk", [day], key_event=True, at_ms=at_ms)


async def everything(store: Store, slug: str) -> dict[str, Any]:
    """Every key a feed's appends write, as Redis holds it."""
    r = store.redis
    return {
        "stream": await r.xrange(store.keys.stream(slug)),
        "states": await r.hgetall(store.keys.states(slug)),
        "days": await r.hgetall(store.keys.days(slug)),
        "history": await r.hgetall(store.keys.histories(slug)),
        "meta": await r.hgetall(store.keys.meta(slug)),
        "key_events": sorted(await r.smembers(store.keys.key_events(slug))),
        "index": await r.zrange(store.keys.time_index(slug), 0, -1, withscores=True),
        "last_id": await r.get(store.keys.last_id(slug)),
        "tag_index": await r.zrange(store.keys.tag_index(slug), 0, -1),
        "tags_of": await r.hgetall(store.keys.tags_of(slug)),
    }


def kyiv_feed(slug: str) -> Feed:
    return Feed(slug, "Archive", "Europe/Kyiv", iso_ms(0))


@ON_BOTH
@pytest.mark.usefixtures("small_batches")
async def test_a_bulk_import_writes_what_appending_one_by_one_wrote(store: Store) -> None:
    """Stream entries byte for byte, states, days, histories, index, key events, last id."""
    old, new = kyiv_feed("old"), kyiv_feed("new")
    for feed in (old, new):  # a feed that already holds a brief, at the first line's ms
        await store.append(feed.slug, live(feed, LIVE_MS, "Live"))
    for item in archive():
        await store.append(old.slug, one_by_one(old, item))
    ids = await import_briefs(store, new, archive())
    assert ids[:2] == [StreamId(LIVE_MS, 1), StreamId(TIMES[1], 0)]
    assert ids[2:4] == [StreamId(TIMES[1], 1), StreamId(TIMES[1], 2)]
    expected, got = await everything(store, "old"), await everything(store, "new")
    assert len(got["stream"]) == len(TIMES) + 1
    for key in expected:
        assert got[key] == expected[key], key


async def test_an_import_of_thousands_matches_one_by_one_too(store: Store) -> None:
    """The real batch sizes: several groups, each several script calls."""
    bodies = [
        "Text {n}\n\nmore",
        "<p onclick='x()'>{n}</p><script>alert(1)</script>",
        "<b>{n}</b> &amp;",
    ]
    lines = [
        orjson.dumps(
            {
                "published_at": iso_ms(1_700_000_000_000 + n * 7_000 // 3),
                "headline": f"h{n}",
                "body": bodies[n % 3].format(n=n),
                "key_event": n % 97 == 0,
            }
        )
        for n in range(2_345)
    ]
    briefs = parse_import(lines, StreamId(0, 0))
    old, new = kyiv_feed("old"), kyiv_feed("new")
    for item in briefs:
        await store.append(old.slug, one_by_one(old, item))
    assert len(await import_briefs(store, new, briefs)) == len(lines)
    held = await everything(store, "new")
    assert held == await everything(store, "old")
    assert not any(b"script" in state or b"onclick" in state for state in held["states"].values())


@ON_BOTH
@pytest.mark.usefixtures("small_batches")
async def test_a_publish_during_an_import_undoes_it_and_names_the_line(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live brief stays; nothing of the import does, day counts included."""
    feed = kyiv_feed("f")
    send = bulk.BulkWriter.send
    calls = 0

    async def publish_before_the_second_group(
        self: bulk.BulkWriter, after: StreamId, briefs: list[bulk.BulkBrief]
    ) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # once Redis has written the first group
            while await store.redis.xlen(store.keys.stream(feed.slug)) < 5:
                await asyncio.sleep(0.01)
            await store.append(feed.slug, live(feed, TIMES[-1] + 1, "Meanwhile"))
        await send(self, after, briefs)

    monkeypatch.setattr(bulk.BulkWriter, "send", publish_before_the_second_group)
    with pytest.raises(ImportRejected, match="line 6: refused by Redis") as caught:
        await import_briefs(store, feed, archive())
    assert caught.value.line == 6  # the first line of the second group
    held = await everything(store, "f")
    (only,) = await store.read_after("f", StreamId(0, 0), 100)
    assert only.payload()["brief"]["headline"] == "Meanwhile"
    assert held["states"].keys() == {str(only.id).encode()}
    assert await store.days("f") == [(day_containing(only.id.ms, "Europe/Kyiv").iso, 1)]
    assert held["history"] == {str(only.id).encode(): str(only.id).encode()}
    assert held["key_events"] == [str(only.id).encode()]
    assert [member for member, _ in held["index"]] == [str(only.id).encode()]
    assert held["last_id"] == str(only.id).encode(), "the feed has moved on: it stays on"


def receive_failing(monkeypatch: pytest.MonkeyPatch, fail: Any) -> None:
    """From the second reply on, ``fail()`` runs before (instead of) reading it."""
    receive = bulk.BulkWriter.receive
    calls = 0

    async def failing(self: bulk.BulkWriter) -> list[StreamId]:
        nonlocal calls
        calls += 1
        if calls >= 2:
            await fail(calls)
        return await receive(self)

    monkeypatch.setattr(bulk.BulkWriter, "receive", failing)


async def nothing_left(store: Store, slug: str) -> None:
    """The feed is as before the import: no key at all, so the same import can run again."""
    held = await everything(store, slug)
    assert held["stream"] == [] and held["states"] == {} and held["history"] == {}
    assert held["index"] == [] and held["key_events"] == []
    assert await store.days(slug) == []
    assert held["last_id"] is None
    assert await store.redis.keys(f"{store.prefix}:*") == []


@ON_BOTH
@pytest.mark.usefixtures("small_batches")
async def test_a_failure_part_way_undoes_what_redis_wrote(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replies still to come are read, and what they report written is removed."""

    async def fail_once(call: int) -> None:
        if call == 2:
            raise RedisConnectionError("a hiccup")

    receive_failing(monkeypatch, fail_once)
    with pytest.raises(RedisConnectionError):
        await import_briefs(store, kyiv_feed("f"), archive())
    await nothing_left(store, "f")


@ON_BOTH
@pytest.mark.usefixtures("small_batches")
async def test_lost_replies_are_looked_up_and_undone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no more replies to read, the time index tells what Redis wrote."""

    async def connection_gone(call: int) -> None:
        await asyncio.sleep(0.2)  # Redis has run what was sent
        raise RedisConnectionError("gone")

    receive_failing(monkeypatch, connection_gone)
    with pytest.raises(RedisConnectionError):
        await import_briefs(store, kyiv_feed("f"), archive())
    await nothing_left(store, "f")


@pytest.mark.usefixtures("small_batches")
async def test_calls_redis_holds_when_the_connection_is_lost_never_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replies lost while Redis still holds the calls (paused here): they never run after the
    import has looked for what it wrote and given up."""

    async def connection_gone(self: bulk.BulkWriter) -> list[StreamId]:
        raise RedisConnectionError("gone")

    monkeypatch.setattr(bulk.BulkWriter, "receive", connection_gone)
    await store.redis.execute_command("CLIENT", "PAUSE", 1000, "WRITE")  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(RedisConnectionError):
            await import_briefs(store, kyiv_feed("f"), archive())
    finally:
        await asyncio.sleep(1.2)  # the pause is over: anything still held would run now
    await nothing_left(store, "f")


@pytest.mark.usefixtures("small_batches")
async def test_a_cancelled_import_undoes_what_was_in_flight(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while waiting for a reply: the replies are still read, and all is removed."""
    waiting = asyncio.Event()

    async def stall(call: int) -> None:
        if call == 2:
            waiting.set()
            await asyncio.sleep(30)

    receive_failing(monkeypatch, stall)
    task = asyncio.create_task(import_briefs(store, kyiv_feed("f"), archive()))
    await asyncio.wait_for(waiting.wait(), 10)
    while await store.redis.xlen(store.keys.stream("f")) < 4:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await nothing_left(store, "f")


@ON_BOTH
async def test_an_import_older_than_the_feed_now_holds_is_refused(store: Store) -> None:
    """Someone published between validating the lines and writing them."""
    feed = kyiv_feed("f")
    await store.append(feed.slug, live(feed, TIMES[1], "Newer"))
    with pytest.raises(ImportRejected, match="line 1: refused by Redis"):
        await import_briefs(store, feed, archive())
    assert len(await store.read_after("f", StreamId(0, 0), 100)) == 1


@pytest.mark.usefixtures("small_batches")
async def test_a_stopped_import_puts_the_feed_back_as_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped part way (a signal set ``stop``): the live brief, its day count and the stream's
    last id are as before, so the same import is then accepted."""
    feed = kyiv_feed("f")
    await store.append(feed.slug, live(feed, LIVE_MS, "Live"))
    before, bounds = await everything(store, "f"), await store.bounds("f")
    stop = threading.Event()

    async def stop_at_the_second(call: int) -> None:
        if call == 2:
            stop.set()

    receive_failing(monkeypatch, stop_at_the_second)
    with pytest.raises(ImportStopped):
        await import_briefs(store, feed, archive(), stop=stop)
    assert await everything(store, "f") == before
    assert (await store.bounds("f")).last_generated == bounds.last_generated
    monkeypatch.undo()
    assert len(await import_briefs(store, feed, archive())) == len(TIMES)


def test_parsing_stops_once_asked_to() -> None:
    """A signal while a long file is validated stops it before anything is written."""
    stop = threading.Event()
    stop.set()
    lines = [b'{"published_at": "2024-01-01T00:00:00Z", "headline": "h"}'] * 3
    with pytest.raises(ImportStopped):
        parse_import(lines, StreamId(0, 0), stop)
