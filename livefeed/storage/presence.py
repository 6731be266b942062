"""Presence on the desk: who is editing which brief or draft, kept in Redis with a short expiry
and announced to every node over pub/sub.

Each feed has a sorted set (``Keys.presence``) of members ``[item, editor, role, connection]``
scored by when each lapses; a desk socket renews its member while its form stays open and
removes it when it closes. A node that dies leaves its members to lapse: every node sweeps
the feeds its desk sockets watch (``sweep``), and whichever removes a lapsed member tells the
desk, so ``editing_stopped`` goes out once. Changes go to ``Keys.presence_channel`` as JSON
``{"feed", "type": "editing" | "editing_stopped", "item", "editor", "until"}``; pub/sub is not
kept, so a node that missed one learns the truth at the next renewal or from ``current``.
Presence is not audit and is never written to a stream.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from livefeed.model.ids import now_ms
from livefeed.storage.cluster import command
from livefeed.storage.keys import Keys

Member = bytes
"""A presence member as stored: JSON ``[item, editor, role, connection]``."""


def member_of(item: str, editor: str, role: str, connection: str) -> Member:
    return orjson.dumps([item, editor, role, connection])


class Presence:
    """Presence records of one deployment; every method is one or two Redis round trips."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def _cmd(self, *args: Any) -> Any:
        return await command(self._redis, *args)

    async def announce(self, slug: str, member: Member, ttl_ms: int) -> int:
        """Hold (or renew) ``member`` for ``ttl_ms``; returns when it lapses (ms)."""
        until = now_ms() + ttl_ms
        key = self._keys.presence(slug)
        await self._cmd("ZADD", key, until, member)
        await self._cmd("PEXPIRE", key, ttl_ms * 3)
        await self._publish(slug, "editing", member, until)
        return until

    async def withdraw(self, slug: str, member: Member) -> None:
        """Remove ``member`` (its form closed, or its socket did) and say so, once."""
        if await self._cmd("ZREM", self._keys.presence(slug), member):
            await self._publish(slug, "editing_stopped", member, now_ms())

    async def current(self, slug: str) -> list[dict[str, Any]]:
        """Who is editing what now: ``{"item", "editor", "until"}`` each."""
        rows = await self._cmd(
            "ZRANGE", self._keys.presence(slug), now_ms(), "+inf", "BYSCORE", "WITHSCORES"
        )
        return [_public(member, int(float(score))) for member, score in _pairs(rows or [])]

    async def sweep(self, slug: str) -> int:
        """Remove the feed's lapsed members, telling the desk of each this call removed."""
        key = self._keys.presence(slug)
        lapsed = await self._cmd("ZRANGE", key, "-inf", now_ms(), "BYSCORE")
        removed = 0
        for member in lapsed or []:
            if await self._cmd("ZREM", key, member):
                removed += 1
                await self._publish(slug, "editing_stopped", member, now_ms())
        return removed

    async def _publish(self, slug: str, kind: str, member: Member, until: int) -> None:
        message = {"feed": slug, "type": kind, **_public(member, until)}
        await self._cmd("PUBLISH", self._keys.presence_channel, orjson.dumps(message))


def _pairs(rows: Any) -> list[tuple[Any, Any]]:
    """``ZRANGE ... WITHSCORES`` as (member, score) pairs, however the client shaped them."""
    if isinstance(rows, dict):
        return list(rows.items())
    if rows and isinstance(rows[0], (list, tuple)):
        return [(member, score) for member, score in rows]
    return list(zip(rows[::2], rows[1::2], strict=True))


def _public(member: Member, until: int) -> dict[str, Any]:
    """What the desk is told of a member: the item, the editor and their role, and until when;
    never the connection."""
    item, editor, role, _ = orjson.loads(member)
    return {"item": item, "editor": editor, "role": role, "until": until}
