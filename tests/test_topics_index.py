"""The topic index (storage.topics) against a real Redis and a Redis Cluster: exactly the live
briefs' tags and key events after every publish, correction, retraction, import and undo."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import orjson
import pytest
from redis.asyncio import Redis

from helpers import RedisProcess
from livefeed.model.brief import brief_dict, parse_new_brief
from livefeed.model.days import day_containing
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, iso_ms
from livefeed.model.topics import Topic, tag_keys
from livefeed.newsroom.transfer import ImportedBrief, import_briefs
from livefeed.storage.append import AT, ID, Append
from livefeed.storage.connect import connect
from livefeed.storage.store import Store

FEED = Feed("topics", "Topics", "Europe/Kyiv", iso_ms(0))


@pytest.fixture
async def store(redis_server: RedisProcess, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A store on the session's Redis; on the Redis Cluster for the tests marked ON_BOTH."""
    if getattr(request, "param", "redis") == "cluster":
        redis = connect(request.getfixturevalue("redis_cluster").url, timeout=10)
    else:
        redis = Redis.from_url(redis_server.url)
    try:
        yield Store(redis, "topics-" + uuid.uuid4().hex[:8])
    finally:
        await redis.aclose()


ON_BOTH = pytest.mark.parametrize("store", ["redis", "cluster"], indirect=True)


async def publish(store: Store, headline: str, tags: list[str], key_event: bool = False) -> str:
    draft = parse_new_brief({"headline": headline, "tags": tags, "key_event": key_event},
                            default_author="Desk")  # fmt: skip
    day = day_containing(await store.now_ms(), FEED.timezone)
    brief = brief_dict(draft, ID, AT)
    entry = await store.append(FEED.slug, Append.publish(brief, "Desk", [day], key_event=key_event))
    return str(entry)


async def correct(store: Store, brief_id: str, **changes: Any) -> None:
    (state,) = await store.states(FEED.slug, [StreamId.parse(brief_id)])
    assert state is not None
    payload = {**msgspec.to_builtins(state), **changes, "version": state.version + 1}
    change = Append.correct(StreamId.parse(brief_id), payload, state.version, "Desk",
                            key_event=payload["key_event"])  # fmt: skip
    await store.append(FEED.slug, change)


async def retract(store: Store, brief_id: str) -> None:
    day = day_containing(StreamId.parse(brief_id).ms, FEED.timezone)
    await store.append(FEED.slug, Append.retract(StreamId.parse(brief_id), day, "Desk",
                                                 version=None))  # fmt: skip


def padded(brief_id: str) -> bytes:
    ms, seq = brief_id.split("-")
    return f"{int(ms):020d}-{int(seq):020d}".encode()


async def expected_index(store: Store, slug: str) -> set[bytes]:
    """The index worked out from the live briefs' states, apart from the scripts."""
    members: set[bytes] = set()
    for raw in (await store.redis.hgetall(store.keys.states(slug))).values():
        brief = orjson.loads(raw)
        keys = [k.encode() for k in tag_keys(brief["tags"])]
        pid = padded(brief["id"])
        members |= {b"t" + k + b"\0" + pid for k in keys}
        if brief["key_event"]:
            members |= {b"k\0" + pid, *(b"k" + k + b"\0" + pid for k in keys)}
    return members


async def held_index(store: Store, slug: str) -> set[bytes]:
    held = await store.redis.zrange(store.keys.tag_index(slug), 0, -1)
    return {m for m in held if isinstance(m, bytes)} - {b""}


async def assert_exact(store: Store, slug: str = FEED.slug) -> None:
    assert await held_index(store, slug) == await expected_index(store, slug)
    recorded = await store.redis.hgetall(store.keys.tags_of(slug))
    states = await store.redis.hgetall(store.keys.states(slug))
    tagged = {i: tag_keys(orjson.loads(s)["tags"]) for i, s in states.items()}
    assert {i: orjson.loads(v) for i, v in recorded.items()} == {
        i: keys for i, keys in tagged.items() if keys
    }


async def ids_of(store: Store, topic: Topic, slug: str = FEED.slug) -> list[str]:
    briefs, _ = await store.topic_briefs(slug, topic, 100)
    return [b.id for b in briefs]


@ON_BOTH
async def test_the_index_follows_publish_correct_and_retract(store: Store) -> None:
    """Tags added and removed, key_event on and off, a retraction: the index is always exactly
    the live briefs' tags (case-folded) and key events, and each topic reads in time order."""
    a = await publish(store, "A", ["Kharkiv", "Odesa"])
    b = await publish(store, "B", [], key_event=True)
    c = await publish(store, "C", ["kharkiv"], key_event=True)
    await assert_exact(store)
    kharkiv = Topic("KHARKIV")
    assert await ids_of(store, kharkiv) == [c, a]
    assert await ids_of(store, Topic(key_event=True)) == [c, b]
    assert await ids_of(store, Topic("kharkiv", key_event=True)) == [c]

    await correct(store, b, tags=["Kharkiv"])  # a tag added
    await correct(store, a, tags=["Odesa"])  # a tag removed
    await assert_exact(store)
    assert await ids_of(store, kharkiv) == [c, b]
    assert await ids_of(store, Topic("odesa")) == [a]

    await correct(store, a, key_event=True)  # key event on
    await correct(store, c, key_event=False)  # and off
    await assert_exact(store)
    assert await ids_of(store, Topic(key_event=True)) == [b, a]
    assert await ids_of(store, Topic("kharkiv", key_event=True)) == [b]

    await retract(store, b)
    await assert_exact(store)
    assert await ids_of(store, kharkiv) == [c]
    assert await ids_of(store, Topic(key_event=True)) == [a]


@ON_BOTH
async def test_concurrent_publishes_are_all_indexed(store: Store) -> None:
    """Twenty publishes at once, on one tag in two spellings: every one is in the index."""
    ids = await asyncio.gather(
        *(publish(store, f"N{n}", ["Kyiv" if n % 2 else "KYIV"], n % 3 == 0) for n in range(20))
    )
    await assert_exact(store)
    assert await ids_of(store, Topic("kyiv")) == sorted(ids, key=StreamId.parse, reverse=True)


@ON_BOTH
async def test_an_import_is_indexed_and_its_undo_takes_it_out(store: Store) -> None:
    """bulk.lua indexes what it writes as publish would; remove.lua takes it out again."""
    live = await publish(store, "Live", ["Kharkiv"], key_event=True)
    start = StreamId.parse(live).ms + 1000  # an import must follow what the feed holds
    items = []
    for n in range(6):
        payload = {"headline": f"Old {n}", "tags": ["Kharkiv", f"n{n}"] if n % 2 else [],
                   "key_event": n % 3 == 0}  # fmt: skip
        draft = parse_new_brief(payload, default_author="")
        items.append(ImportedBrief(n + 1, start + n * 1000, draft, 1, None))
    before = await store.mark(FEED.slug)
    ids = await import_briefs(store, FEED, items)
    await assert_exact(store)
    got = await ids_of(store, Topic("kharkiv"))
    assert got == [*(str(ids[n]) for n in (5, 3, 1)), live]
    await store.remove(FEED.slug, ids, {}, before)
    await assert_exact(store)
    assert await ids_of(store, Topic("kharkiv")) == [live]


@ON_BOTH
async def test_a_feed_without_its_index_gets_it_built_before_a_read(store: Store) -> None:
    """Briefs written before the index existed (its keys missing) are all found: the first
    filtered read builds the index, the same one the appends would have kept."""
    a = await publish(store, "A", ["Kharkiv"], key_event=True)
    b = await publish(store, "B", ["kharkiv", "Lviv"])
    await publish(store, "C", [])
    kept = await held_index(store, FEED.slug)
    await store.redis.delete(store.keys.tag_index(FEED.slug), store.keys.tags_of(FEED.slug))
    assert await ids_of(store, Topic("Kharkiv")) == [b, a]
    assert await held_index(store, FEED.slug) == kept
    await assert_exact(store)
    assert await store.topics.ensure(FEED.slug) is False  # whole now: not built again


async def test_topic_pages_follow_the_cursor_both_ways(store: Store) -> None:
    """Newest-first pages before a cursor, and a day's oldest-first pages after one."""
    ids = [await publish(store, f"P{n}", ["Kharkiv"] if n % 2 else ["Lviv"]) for n in range(9)]
    tagged = [i for n, i in enumerate(ids) if n % 2]
    seen: list[str] = []
    before = None
    while True:
        page, before = await store.topic_briefs(FEED.slug, Topic("kharkiv"), 3, before)
        seen += [b.id for b in page]
        if before is None:
            break
    assert seen == tagged[::-1]
    day = (StreamId.parse(ids[0]).ms, StreamId.parse(ids[-1]).ms)
    page, after = await store.topic_briefs(FEED.slug, Topic("kharkiv"), 3, day=day)
    rest, end = await store.topic_briefs(FEED.slug, Topic("kharkiv"), 3, day=day, after=after)
    assert [b.id for b in page + rest] == tagged and end is None
