"""Push subscriptions and the push sender's reads, in Redis (key layout: storage/keys.py).

Subscriptions are a hash per feed, keyed by the endpoint's sha256; the feed's slug goes into
``push-feeds`` so the sender knows which streams to read. The sender reads each such feed's
events stream through the consumer group ``push`` (``XREADGROUP``): every serving process is a
consumer, so each entry goes to one of them; it is acknowledged (``XACK``) once handled, and an
entry a crashed consumer left pending is claimed by another (``XAUTOCLAIM``) after an idle
time. Each delivery is recorded in a per-event set (``pushed``) so a claimed entry skips the
subscriptions already served. The group lives on the feed's own stream key, in its hash slot,
so it works on a Cluster as anywhere.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from livefeed.model.push import Subscription, subscription_id
from livefeed.storage.cluster import cluster_of, on_primary
from livefeed.storage.entries import Entry, entry_of
from livefeed.storage.keys import Keys

GROUP = "push"
"""The consumer group on each followed feed's events stream."""
DELIVERED_TTL_SECONDS = 7 * 24 * 3600
"""How long an event's record of deliveries is kept: longer than any entry stays pending."""
_DECODE = msgspec.json.Decoder(Subscription)
_ENCODE = msgspec.json.Encoder()


class PushStore:
    """Subscriptions, the VAPID key and the consumer group, for one deployment's ``keys``."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def _on(self, key: str, *args: Any) -> Any:
        """One command about ``key`` (wherever it is in ``args``), on its slot's primary."""
        cluster = cluster_of(self.redis)
        if cluster is None:
            return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]
        (reply,) = await on_primary(cluster, key, [args])
        return reply

    async def vapid_key(self, made: str) -> str:
        """The deployment's VAPID private key (PEM): the stored one, else ``made``, stored
        first by whichever node gets there first (SET NX), so every node signs with one key."""
        key = self.keys.vapid
        await self._on(key, "SET", key, made, "NX")
        stored = await self._on(key, "GET", key)
        return bytes(stored).decode() if stored is not None else made

    async def subscribe(self, slug: str, subscription: Subscription) -> str:
        """Store (or replace) ``subscription`` on the feed and start the feed's group at the
        stream's end if it has none: a new follower gets what comes after, nothing before."""
        sid = subscription_id(subscription.endpoint)
        await self.ensure_group(slug)
        await self._on(self.keys.push(slug), "HSET", self.keys.push(slug), sid,
                       _ENCODE.encode(subscription))  # fmt: skip
        await self._on(self.keys.push_feeds, "SADD", self.keys.push_feeds, slug)
        return sid

    async def unsubscribe(self, slug: str, sid: str) -> bool:
        """Forget a subscription; whether there was one."""
        return bool(await self._on(self.keys.push(slug), "HDEL", self.keys.push(slug), sid))

    async def subscriptions(self, slug: str) -> dict[str, Subscription]:
        raw = await self._on(self.keys.push(slug), "HGETALL", self.keys.push(slug)) or {}
        pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
        return {bytes(k).decode(): _DECODE.decode(v) for k, v in pairs}

    async def count(self, slug: str) -> int:
        return int(await self._on(self.keys.push(slug), "HLEN", self.keys.push(slug)))

    async def feeds(self) -> list[str]:
        members = await self._on(self.keys.push_feeds, "SMEMBERS", self.keys.push_feeds)
        return sorted(bytes(m).decode() for m in members or ())

    async def ensure_group(self, slug: str) -> None:
        """The feed's ``push`` group, made at the stream's end (with the stream) if missing."""
        stream = self.keys.stream(slug)
        try:
            await self._on(stream, "XGROUP", "CREATE", stream, GROUP, "$", "MKSTREAM")
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def claim(self, slug: str, consumer: str, idle_ms: int, count: int) -> list[Entry]:
        """Entries another consumer took and left unacknowledged for ``idle_ms``, now ours."""
        stream = self.keys.stream(slug)
        reply = await self._on(
            stream, "XAUTOCLAIM", stream, GROUP, consumer, idle_ms, "0-0", "COUNT", count
        )
        return [entry_of(i, _fields(f)) for i, f in reply[1] if f is not None]

    async def read(self, slug: str, consumer: str, count: int) -> list[Entry]:
        """Up to ``count`` entries no consumer has had yet, now pending on ``consumer``."""
        stream = self.keys.stream(slug)
        reply = await self._on(
            stream, "XREADGROUP", "GROUP", GROUP, consumer, "COUNT", count, "STREAMS", stream, ">"
        )
        if not reply:
            return []
        rows = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        return [entry_of(i, _fields(f)) for i, f in rows if f is not None]

    async def hold(self, slug: str, consumer: str, entry_id: str) -> None:
        """Reset a pending entry's idle time: ``consumer`` is still at it."""
        stream = self.keys.stream(slug)
        await self._on(stream, "XCLAIM", stream, GROUP, consumer, 0, entry_id, "JUSTID")

    async def ack(self, slug: str, entry_id: str) -> None:
        stream = self.keys.stream(slug)
        await self._on(stream, "XACK", stream, GROUP, entry_id)

    async def delivered(self, slug: str, entry_id: str) -> set[str]:
        """The subscriptions the entry was already delivered to (by a consumer since gone)."""
        key = self.keys.pushed(slug, entry_id)
        return {bytes(m).decode() for m in await self._on(key, "SMEMBERS", key) or ()}

    async def mark_delivered(self, slug: str, entry_id: str, sid: str) -> None:
        """Record one delivery, after the push service took it (201)."""
        key = self.keys.pushed(slug, entry_id)
        await self._on(key, "SADD", key, sid)
        await self._on(key, "EXPIRE", key, DELIVERED_TTL_SECONDS)


def _fields(raw: Any) -> dict[bytes, bytes]:
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))
