"""The store against a real Redis: atomic appends with ids and times chosen inside Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from helpers import RedisProcess
from livefeed.model.days import day_containing, days_around
from livefeed.model.ids import StreamId, iso_ms, now_ms
from livefeed.model.schema import Feed, parse_new_brief
from livefeed.newsroom import actions
from livefeed.storage.append import AT, ID, Append
from livefeed.storage.store import Store


@pytest.fixture
async def store(redis_server: RedisProcess) -> AsyncIterator[Store]:
    redis = Redis.from_pool(BlockingConnectionPool.from_url(redis_server.url, max_connections=32))
    yield Store(redis, "store-" + uuid.uuid4().hex[:8])
    await redis.aclose()


def at(ms: int, body: dict[str, object]) -> Append:
    """A publish of ``body`` stamped ``ms`` instead of Redis's time."""
    return Append.publish(body, "Desk", [day_containing(ms, "UTC")], key_event=False, at_ms=ms)


def live(body: dict[str, object]) -> Append:
    """A publish of ``body`` stamped by Redis, as every editor's is."""
    return Append.publish(body, "Desk", days_around(now_ms(), "UTC"), key_event=False)


@pytest.mark.parametrize(
    "ms", [1, 951_782_400_000, 1_709_164_800_123, 1_711_846_799_999, 4_102_444_799_999]
)
async def test_append_fills_id_and_time_placeholders_like_python_would(
    store: Store, ms: int
) -> None:
    """ID and AT anywhere in the body become the entry's id and iso_ms(its time)."""
    body: dict[str, object] = {"id": ID, "at": AT, "nested": [AT, "ID"]}
    entry_id = await store.append("f", at(ms, body))
    assert entry_id == StreamId(ms, 0)
    (entry,) = await store.read_after("f", StreamId(0, 0), 10)
    expected = {"id": f"{ms}-0", "at": iso_ms(ms), "nested": [iso_ms(ms), "ID"]}
    assert entry.payload() == {"brief": expected, "editor": "Desk"}


async def test_appends_at_the_same_or_an_earlier_clock_keep_ids_increasing(store: Store) -> None:
    """Same ms: the next sequence number; an earlier ms: the last id's ms, next number."""
    first = await store.append("f", at(5_000, {}))
    same = await store.append("f", at(5_000, {}))
    assert (first, same) == (StreamId(5_000, 0), StreamId(5_000, 1))
    behind = await store.append("f", at(4_000, {}))
    assert behind == StreamId(5_000, 2), "a clock behind the stream never reorders it"


async def test_concurrent_appends_get_distinct_ordered_ids(store: Store) -> None:
    ids = await asyncio.gather(*(store.append("f", live({"n": n})) for n in range(300)))
    assert len(set(ids)) == 300
    entries = await store.read_after("f", StreamId(0, 0), 1000)
    assert [e.id for e in entries] == sorted(ids)


async def test_user_text_that_looks_like_a_placeholder_is_left_alone(store: Store) -> None:
    text = 'ID AT \\ue000 "livefeed:id"'
    await store.append("f", live({"text": text}))
    (entry,) = await store.read_after("f", StreamId(0, 0), 1)
    assert orjson.loads(entry.data)["brief"]["text"] == text


async def test_latest_briefs_skips_other_event_types_and_pages(store: Store) -> None:
    feed = Feed("f", "F", "UTC", iso_ms(0))
    for n in range(5):
        await actions.publish(store, feed, parse_new_brief({"headline": f"b{n}"}, "Desk"), "Desk")
        await actions.update_feed(store, feed, None, f"F{n}", "Desk")
    briefs, cursor = await store.latest_briefs("f", 3)
    assert [b["headline"] for b in briefs] == ["b4", "b3", "b2"]
    older, end = await store.latest_briefs("f", 3, cursor)
    assert [b["headline"] for b in older] == ["b1", "b0"] and end is None
