"""The store against a real Redis: atomic appends with ids and times chosen inside Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from helpers import RedisProcess
from livefeed.model.brief import parse_new_brief
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, iso_ms, now_ms
from livefeed.newsroom import actions
from livefeed.storage.append import AT, ID, Append, Refused
from livefeed.storage.store import Store


@pytest.fixture
async def store(redis_server: RedisProcess) -> AsyncIterator[Store]:
    redis = Redis.from_pool(BlockingConnectionPool.from_url(redis_server.url, max_connections=32))
    yield Store(redis, "store-" + uuid.uuid4().hex[:8])
    await redis.aclose()


@pytest.mark.parametrize(
    "ms", [1, 951_782_400_000, 1_709_164_800_123, 1_711_846_799_999, 4_102_444_799_999]
)
async def test_append_fills_id_and_time_placeholders_like_python_would(
    store: Store, ms: int
) -> None:
    body = {"id": ID, "at": AT, "nested": [AT, "ID"]}
    entry_id = await store.append("f", Append("note", body, ms, key="note", strict=True))
    assert entry_id == StreamId(ms, 0)
    (entry,) = await store.read_after("f", StreamId(0, 0), 10)
    expected = {"id": f"{ms}-0", "at": iso_ms(ms), "nested": [iso_ms(ms), "ID"]}
    assert entry.payload() == {"note": expected}


async def test_appends_at_the_same_or_an_earlier_clock_keep_ids_increasing(store: Store) -> None:
    first = await store.append("f", Append("note", {}, 5_000, strict=True))
    same = await store.append("f", Append("note", {}, 5_000, strict=True))
    assert (first, same) == (StreamId(5_000, 0), StreamId(5_000, 1))
    with pytest.raises(Refused, match="LIVEFEED_OLDER"):
        await store.append("f", Append("note", {}, 4_999, strict=True))
    behind = await store.append("f", Append("note", {}, 4_000))
    assert behind == StreamId(5_000, 2), "a clock behind the stream never reorders it"


async def test_concurrent_appends_get_distinct_ordered_ids(store: Store) -> None:
    ids = await asyncio.gather(
        *(store.append("f", Append("note", {"n": n}, now_ms())) for n in range(300))
    )
    assert len(set(ids)) == 300
    entries = await store.read_after("f", StreamId(0, 0), 1000)
    assert [e.id for e in entries] == sorted(ids)


async def test_user_text_that_looks_like_a_placeholder_is_left_alone(store: Store) -> None:
    text = 'ID AT \\ue000 "livefeed:id"'
    await store.append("f", Append("note", {"text": text}, now_ms()))
    (entry,) = await store.read_after("f", StreamId(0, 0), 1)
    assert orjson.loads(entry.data)["brief"]["text"] == text


async def test_latest_briefs_skips_other_event_types_and_pages(store: Store) -> None:
    feed = Feed("f", "F", "UTC", iso_ms(0))
    for n in range(5):
        await actions.publish(store, feed, parse_new_brief({"headline": f"b{n}"}, "Desk"), "Desk")
        await store.append("f", Append("note", {"n": n}, now_ms()))
    briefs, cursor = await store.latest_briefs("f", 3)
    assert [b.headline for b in briefs] == ["b4", "b3", "b2"]
    older, end = await store.latest_briefs("f", 3, cursor)
    assert [b.headline for b in older] == ["b1", "b0"] and end is None
