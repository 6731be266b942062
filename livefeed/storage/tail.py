"""One blocking read of many feeds' streams, on a connection of its own that can be woken.

A process follows every feed its readers watch with one ``XREAD BLOCK`` naming all their
streams, rather than one blocked connection per feed (3 nodes x 40 feeds were 120 Redis
connections). When the set of feeds changes the read is re-issued: ``wake`` sends ``CLIENT
UNBLOCK`` for the blocked connection from another one, so the read returns at once.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from livefeed.model.ids import StreamId
from livefeed.storage.entries import Entry, entry_of
from livefeed.storage.keys import Keys


class BlockingReader:
    """``XREAD BLOCK`` over many streams on a dedicated connection; errors propagate."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._conn: AbstractConnection | None = None
        self._client_id: int | None = None

    async def read(
        self, positions: dict[str, StreamId], block_ms: int, count: int = 1000
    ) -> dict[str, list[Entry] | Exception]:
        """Entries after each feed's position (up to ``count`` a feed), waiting up to
        ``block_ms`` for the first; {} on timeout or when woken. A feed whose entries cannot be
        read as livefeed's (written by something else) gets the error instead."""
        conn = await self._connection()
        slugs = list(positions)
        streams = [self._keys.stream(slug) for slug in slugs]
        try:
            await conn.send_command(
                "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", *streams,
                *(str(positions[slug]) for slug in slugs),
            )  # fmt: skip
            reply = await conn.read_response()
        except BaseException:
            await self._drop()
            raise
        if not reply:
            return {}
        by_stream = dict(zip(streams, slugs, strict=True))
        found: dict[str, list[Entry] | Exception] = {}
        for key, items in _pairs(reply):
            slug = by_stream[key.decode() if isinstance(key, bytes) else str(key)]
            try:
                found[slug] = [entry_of(raw_id, _fields(fields)) for raw_id, fields in items]
            except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
                found[slug] = exc
        return found

    async def wake(self) -> bool:
        """Make a blocked ``read`` return now; False if it was not blocked at this moment."""
        if self._client_id is None:
            return False
        woken = await self._redis.execute_command(  # type: ignore[no-untyped-call]
            "CLIENT", "UNBLOCK", self._client_id
        )
        return bool(woken)

    async def close(self) -> None:
        await self._drop()

    async def _connection(self) -> AbstractConnection:
        if self._conn is None:
            conn = await self._redis.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.send_command("CLIENT", "ID")
                self._client_id = int(await conn.read_response())
            except BaseException:
                await self._redis.connection_pool.release(conn)
                raise
            self._conn = conn
        return self._conn

    async def _drop(self) -> None:
        """Give the connection back closed: after an error or a cancel its reply is unknown."""
        conn, self._conn, self._client_id = self._conn, None, None
        if conn is not None:
            await conn.disconnect()
            await self._redis.connection_pool.release(conn)


def _pairs(reply: Any) -> list[tuple[Any, Any]]:
    """``[[key, entries], ...]`` (RESP2) or ``{key: entries}`` (RESP3) as pairs."""
    if isinstance(reply, dict):
        return list(reply.items())
    return [(key, items) for key, items in reply]


def _fields(raw: Any) -> dict[bytes, bytes]:
    """An entry's fields as a dict, from the flat ``[field, value, ...]`` list Redis sends."""
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))
