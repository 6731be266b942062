"""The key layout in Redis: finding feeds still in the layout before hash tags, moving them, and
the heartbeat by which serving processes announce themselves while they run.

``livefeed migrate`` moves each feed's keys from ``keys.legacy_of_feed`` to ``Keys.of_feed``,
the feed record last, so a feed counts as old (``legacy_feeds``) until all of it has moved.
On one Redis each key moves with ``RENAME`` (atomic); on a cluster, where old and new names are
in different slots, with ``DUMP`` + ``RESTORE ... REPLACE`` + ``DEL``. Either way a key whose old
name is gone was moved, so running it again, or after a crash midway, finishes the job.
Idempotency records of the old layout are left to expire (24 h): a retry that crosses the
migration is carried out again. Then each feed without a whole topic index (briefs from before
it) has one built (``index_topics``), which serving would otherwise do at the first filtered read.

Serving processes keep a member in ``Keys.nodes`` scored by when their heartbeat runs out;
``migrate`` refuses while any is current, and ``serve`` refuses to start while any feed is old.
"""

from __future__ import annotations

from typing import Any

from livefeed.storage.cluster import batch, cluster_of, command
from livefeed.storage.keys import legacy_of_feed
from livefeed.storage.store import Store

HEARTBEAT_MS = 15_000
"""How long a serving process's announcement lasts; it renews it every third of that."""


async def legacy_feeds(store: Store) -> list[str]:
    """Slugs of the feeds whose record is still under its name before hash tags."""
    slugs = [_text(s) for s in await _cmd(store, "ZRANGE", store.keys.feeds, 0, -1)]
    if not slugs:
        return []
    found = await batch(
        store.redis, [("EXISTS", legacy_of_feed(store.prefix, s)[0]) for s in slugs]
    )
    return [slug for slug, exists in zip(slugs, found, strict=True) if exists]


async def migrate_feed(store: Store, slug: str) -> int:
    """Move one feed's keys to their hash-tagged names; how many keys were moved."""
    moved = 0
    pairs = list(zip(legacy_of_feed(store.prefix, slug), store.keys.of_feed(slug), strict=True))
    cluster = cluster_of(store.redis) is not None
    for old, new in [*pairs[1:], pairs[0]]:  # the record last: old until all has moved
        if cluster:
            dumped = await _cmd(store, "DUMP", old)
            if dumped is None:
                continue
            await _cmd(store, "RESTORE", new, 0, dumped, "REPLACE")
            await _cmd(store, "DEL", old)
        elif not await _cmd(store, "EXISTS", old):
            continue
        else:
            await _cmd(store, "RENAME", old, new)
        moved += 1
    return moved


async def index_topics(store: Store) -> list[str]:
    """Build the topic index (``storage.topics``) of every feed that has none whole yet (feeds
    written before it); the slugs of those built."""
    slugs = [_text(s) for s in await _cmd(store, "ZRANGE", store.keys.feeds, 0, -1)]
    return [slug for slug in slugs if await store.topics.ensure(slug)]


async def announce(store: Store, node: str) -> None:
    """Say ``node`` serves for the next ``HEARTBEAT_MS``; forget those that stopped saying."""
    now = await store.now_ms()
    await _cmd(store, "ZADD", store.keys.nodes, now + HEARTBEAT_MS, node)
    await _cmd(store, "ZREMRANGEBYSCORE", store.keys.nodes, "-inf", now)


async def withdraw(store: Store, node: str) -> None:
    await _cmd(store, "ZREM", store.keys.nodes, node)


async def serving_nodes(store: Store) -> list[str]:
    """The processes whose heartbeat is current."""
    now = await store.now_ms()
    return [_text(n) for n in await _cmd(store, "ZRANGEBYSCORE", store.keys.nodes, now, "+inf")]


async def _cmd(store: Store, *args: Any) -> Any:
    return await command(store.redis, *args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
