"""Redis key names: defined once in livefeed.storage.keys, exactly the names stored data has, each
feed's in one Redis Cluster slot; and ``livefeed migrate`` from the layout before hash tags."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from helpers import RedisProcess
from livefeed.model.brief import parse_new_brief
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, iso_ms, now_ms
from livefeed.newsroom import actions
from livefeed.storage import idempotency
from livefeed.storage.keys import SCRIPT_KEYS, Keys, legacy_of_feed
from livefeed.storage.store import Store

# The names deployments hold: changing one would strand their data (``livefeed migrate`` moves
# the layout before hash tags, LEGACY, to this one).
EXPECTED = {
    "feeds": "P:feeds",
    "tokens": "P:tokens",
    "token_hashes": "P:token-hashes",
    "token_intent": "P:idempotency:tokens:scope:k",
    "feed": "P:feed:{s}",
    "stream": "P:feed:{s}:events",
    "states": "P:feed:{s}:briefs",
    "days": "P:feed:{s}:days",
    "histories": "P:feed:{s}:history",
    "meta": "P:feed:{s}:meta",
    "key_events": "P:feed:{s}:key-events",
    "time_index": "P:feed:{s}:by-time",
    "last_id": "P:feed:{s}:last-id",
    "tag_index": "P:feed:{s}:by-tag",
    "tags_of": "P:feed:{s}:tags",
    "idempotency": "P:idempotency:{s}:scope:k",
    "lease": "P:lease:demo",
    "nodes": "P:nodes",
}
LEGACY = [
    "P:feed:s", "P:feed:s:events", "P:feed:s:briefs", "P:feed:s:days", "P:feed:s:history",
    "P:feed:s:meta", "P:feed:s:key-events", "P:feed:s:by-time", "P:feed:s:last-id",
    "P:feed:s:by-tag", "P:feed:s:tags",  # never written by livefeed before hash tags
]  # fmt: skip


def _names(keys: Keys) -> dict[str, str]:
    return {
        "feeds": keys.feeds,
        "tokens": keys.tokens,
        "token_hashes": keys.token_hashes,
        "token_intent": keys.token_intent("scope", "k"),
        "feed": keys.feed("s"),
        "stream": keys.stream("s"),
        "states": keys.states("s"),
        "days": keys.days("s"),
        "histories": keys.histories("s"),
        "meta": keys.meta("s"),
        "key_events": keys.key_events("s"),
        "time_index": keys.time_index("s"),
        "last_id": keys.last_id("s"),
        "tag_index": keys.tag_index("s"),
        "tags_of": keys.tags_of("s"),
        "idempotency": keys.idempotency("s", "scope", "k"),
        "lease": keys.lease("demo"),
        "nodes": keys.nodes,
    }


def test_key_names_are_the_names_existing_data_has() -> None:
    """Every name Keys builds is, letter for letter, the one livefeed has always stored under."""
    assert _names(Keys("P")) == EXPECTED


def test_script_keys_are_in_the_order_the_lua_scripts_read_them() -> None:
    """append.lua, bulk.lua and remove.lua index KEYS[1..10]: stream first, the topic index
    and its tag keys last (SCRIPT_KEYS of them)."""
    names = [EXPECTED[n] for n in ("stream", "states", "days", "histories", "meta")]
    names += [EXPECTED[n] for n in ("key_events", "time_index", "last_id", "tag_index", "tags_of")]
    assert len(names) == SCRIPT_KEYS
    assert Keys("P").script("s") == names
    assert Keys("P").of_feed("s") == [EXPECTED["feed"], *names]


def test_legacy_names_pair_with_the_current_ones() -> None:
    """legacy_of_feed lists the names before hash tags in of_feed's order, for migrate."""
    assert legacy_of_feed("P", "s") == LEGACY
    assert [name.replace("{s}", "s") for name in Keys("P").of_feed("s")] == LEGACY


@pytest.mark.parametrize("slug", ["s", "0", "-", "a--b", "x" * 64, "2026-12-01-kyiv"])
def test_every_key_of_a_feed_hashes_to_one_slot(slug: str) -> None:
    """A feed's record, script keys and idempotency records share one Redis Cluster slot, for
    awkward slugs too (one character, only dashes, the longest, and a key with braces)."""
    keys = Keys("lf-1")
    names = [*keys.of_feed(slug), keys.idempotency(slug, "scope", "k{1}")]
    assert len({key_slot(name.encode()) for name in names}) == 1


def test_feeds_do_not_all_share_a_slot() -> None:
    """Different feeds land in different slots (the prefix is not the tag), so they spread."""
    slots = {key_slot(Keys("P").stream(f"feed-{n}").encode()) for n in range(50)}
    assert len(slots) > 40


def test_a_prefix_with_braces_is_refused() -> None:
    """A brace in the prefix would become every key's hash tag: Keys refuses it."""
    for prefix in ("a{b}", "{", "}"):
        with pytest.raises(ValueError, match="prefix"):
            Keys(prefix)


@pytest.fixture
async def store(redis_server: RedisProcess) -> AsyncIterator[Store]:
    redis = Redis.from_url(redis_server.url)
    try:
        yield Store(redis, "keys-" + uuid.uuid4().hex[:8])
    finally:
        await redis.aclose()


async def test_every_key_a_feed_writes_is_listed_by_keys(store: Store) -> None:
    """A feed used every way (created with an Idempotency-Key, briefs, a key event, a tag, a
    correction, a pin, a token, the demo lease) leaves only keys Keys names, under the names
    existing data has."""
    slug, p = "s", store.prefix
    create = idempotency.intent(
        store.keys, "s", "k", "Desk", "POST", "/api/feeds", None, {"slug": "s"}
    )
    feed = await store.create_feed(Feed(slug, "Feed", "UTC", iso_ms(now_ms())), create)
    tagged = parse_new_brief({"headline": "a", "tags": ["Kharkiv"]}, "Desk")
    first = await actions.publish(store, feed, tagged, "Desk")
    draft = parse_new_brief({"headline": "b", "key_event": True}, "Desk")
    await actions.publish(store, feed, draft, "Desk")
    brief_id = StreamId.parse(first.id)
    await actions.correct(store, feed, brief_id, {"headline": "a2"}, None, "Desk")
    await actions.pin(store, feed, brief_id, "Desk")
    await store.tokens.create("Desk")
    assert await store.hold_lease("demo", "me", 60_000)

    found = {key.decode() async for key in store.redis.scan_iter(match=f"{p}:*", count=1000)}
    feed_keys = {key for key in found if key.startswith(f"{p}:feed:")}
    assert feed_keys == set(store.keys.of_feed(slug))
    named = {
        name
        for kind, name in _names(Keys(p)).items()
        if kind not in ("idempotency", "token_intent", "nodes")
    }
    assert found == named | {create.key}
    assert create.key.startswith(f"{p}:idempotency:{{s}}:") and create.key.endswith(":k")
