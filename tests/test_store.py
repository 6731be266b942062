"""The store against a real Redis: atomic appends with ids and times chosen inside Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from helpers import RedisProcess
from livefeed.errors import Conflict, NotFound, PreconditionFailed
from livefeed.model.days import day_containing, days_around
from livefeed.model.ids import StreamId, iso_ms, now_ms
from livefeed.model.schema import Feed, parse_new_brief
from livefeed.newsroom import actions
from livefeed.storage.append import AT, ID, Append, Retry
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


# The editor actions' writes: each changes its own keys, a refused one changes nothing.


async def held(store: Store, slug: str) -> dict[str, Any]:
    """Every key an editor action can write, decoded."""
    keys = store.keys

    async def cmd(*args: Any) -> Any:
        return await store.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    def mapping(rows: Any) -> dict[str, str]:
        pairs = rows.items() if isinstance(rows, dict) else zip(rows[::2], rows[1::2], strict=True)
        return {text(k): text(v) for k, v in pairs}

    stream = await cmd("XRANGE", keys.stream(slug), "-", "+")
    index: Any = await store.redis.zrange(keys.time_index(slug), 0, -1, withscores=True)
    states = mapping(await cmd("HGETALL", keys.states(slug)))
    return {
        "events": [(text(i), mapping(f)["t"], mapping(f)["p"]) for i, f in stream],
        "states": {k: orjson.loads(v) for k, v in states.items()},
        "days": mapping(await cmd("HGETALL", keys.days(slug))),
        "history": mapping(await cmd("HGETALL", keys.histories(slug))),
        "meta": mapping(await cmd("HGETALL", keys.meta(slug))),
        "key_events": {text(m) for m in await cmd("SMEMBERS", keys.key_events(slug))},
        "index": [(text(member), int(score)) for member, score in index],
        "last_id": text(await cmd("GET", keys.last_id(slug)) or b""),
    }


def day_of(brief_id: str) -> str:
    return day_containing(StreamId.parse(brief_id).ms, "UTC").iso


async def test_each_editor_action_writes_its_own_changes_and_no_others(store: Store) -> None:
    """Publish, correct, pin, retract, unpin and end: stream, states, days, histories, meta,
    key events, time index and last id after each, as the actions' contracts say."""
    feed = Feed("f", "F", "UTC", iso_ms(0))
    new = parse_new_brief
    a = (await actions.publish(store, feed, new({"headline": "a", "key_event": True}, "D"), "D"))[
        "id"
    ]
    b = (await actions.publish(store, feed, new({"headline": "b"}, "D"), "D"))["id"]
    state = await held(store, "f")
    assert state["events"] == [(a, "brief", "0-0"), (b, "brief", a)]
    assert state["states"][a]["headline"] == "a" and state["states"][b]["version"] == 1
    assert state["index"] == [(a, StreamId.parse(a).ms), (b, StreamId.parse(b).ms)]
    assert state["history"] == {a: a, b: b} and state["key_events"] == {a}
    assert sum(map(int, state["days"].values())) == 2 and state["meta"] == {}
    assert state["last_id"] == b

    await actions.correct(store, feed, StreamId.parse(b), {"key_event": True}, 1, "E")
    await actions.correct(store, feed, StreamId.parse(a), {"key_event": False}, None, "E")
    state = await held(store, "f")
    fix_b, fix_a = (event for event, _, _ in state["events"][2:])
    assert [t for _, t, _ in state["events"][2:]] == ["brief_updated", "brief_updated"]
    assert state["states"][b]["version"] == 2 and state["states"][b]["key_event"] is True
    assert state["history"] == {a: f"{a},{fix_a}", b: f"{b},{fix_b}"}
    assert state["key_events"] == {b} and len(state["index"]) == 2
    assert sum(map(int, state["days"].values())) == 2

    await actions.pin(store, feed, StreamId.parse(b), "E")
    assert (await held(store, "f"))["meta"] == {"pinned": b}
    await actions.retract(store, feed, StreamId.parse(b), 2, "E")
    state = await held(store, "f")
    gone = state["events"][-1][0]
    assert [t for _, t, _ in state["events"][4:]] == ["pinned", "brief_deleted"]
    assert state["states"].keys() == {a} and [m for m, _ in state["index"]] == [a]
    assert state["history"][b] == f"{b},{fix_b},{gone}"
    assert state["key_events"] == set()
    assert state["meta"] == {}, "retracting the pinned brief drops the pin"
    assert {d: int(n) for d, n in state["days"].items() if int(n)} == {day_of(a): 1}

    await actions.pin(store, feed, StreamId.parse(a), "E")
    await actions.unpin(store, dataclasses.replace(feed, pinned=a), "E")
    assert (await held(store, "f"))["meta"] == {}
    ended = await actions.update_feed(store, feed, "ended", "G", "E")
    state = await held(store, "f")
    last_id, last_type, _ = state["events"][-1]
    assert [t for _, t, _ in state["events"][6:]] == ["pinned", "unpinned", "feed_updated"]
    assert ended["ended_at"] == iso_ms(StreamId.parse(last_id).ms) and last_type == "feed_updated"
    assert state["meta"] == {"status": "ended", "ended_at": ended["ended_at"], "title": "G"}
    assert [p for _, _, p in state["events"][1:]] == [i for i, _, _ in state["events"][:-1]]
    assert state["last_id"] == last_id and state["states"].keys() == {a}


async def test_a_refused_action_writes_nothing_and_names_its_error(store: Store) -> None:
    """Missing brief 404 brief_not_found, another version 412 with it, ended feed 409
    feed_ended, a time on none of the days Retry with that time: no key changes."""
    feed = Feed("f", "F", "UTC", iso_ms(0))
    brief = await actions.publish(store, feed, parse_new_brief({"headline": "a"}, "D"), "D")
    brief_id = StreamId.parse(brief["id"])
    await actions.update_feed(store, feed, "ended", None, "E")
    before = await held(store, "f")
    missing = StreamId(brief_id.ms, brief_id.seq + 7)
    for change in (
        Append.pin(missing, {}, "E"),
        Append.retract(missing, day_containing(missing.ms, "UTC"), "E", version=None),
        Append.correct(missing, {}, 1, "E", key_event=False),
    ):
        with pytest.raises(NotFound) as not_found:
            await store.append("f", change)
        assert not_found.value.code == "brief_not_found"
    for change in (
        Append.correct(brief_id, {}, 3, "E", key_event=False),
        Append.retract(brief_id, day_containing(brief_id.ms, "UTC"), "E", version=2),
    ):
        with pytest.raises(PreconditionFailed) as stale:
            await store.append("f", change)
        assert stale.value.status == 412 and stale.value.current_version == 1
    with pytest.raises(Conflict) as ended:
        await actions.publish(store, feed, parse_new_brief({"headline": "b"}, "D"), "D")
    assert ended.value.code == "feed_ended"
    await actions.update_feed(store, dataclasses.replace(feed, status="ended"), "live", None, "E")
    reopened = await held(store, "f")
    long_ago = [day_containing(0, "UTC")]
    with pytest.raises(Retry) as retry:
        await store.append("f", Append.publish({}, "D", long_ago, key_event=False))
    assert retry.value.at_ms >= brief_id.ms, "the time Redis gave it, to retry around"
    assert await held(store, "f") == reopened
    assert {k: v for k, v in reopened.items() if k not in ("events", "meta", "last_id")} == {
        k: v for k, v in before.items() if k not in ("events", "meta", "last_id")
    }
    assert len(reopened["events"]) == len(before["events"]) + 1, "only the reopening"


async def test_an_action_the_script_does_not_know_is_an_error_and_writes_nothing(
    store: Store,
) -> None:
    """Only a bug builds one (the constructors name known actions): RuntimeError, no key."""
    with pytest.raises(RuntimeError, match="LIVEFEED_UNKNOWN"):
        await store.append("f", Append("note", "brief", {}, "D", {}))
    assert await store.redis.keys(f"{store.prefix}:*") == []
