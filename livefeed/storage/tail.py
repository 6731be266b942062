"""One blocking read of many feeds' streams, on a connection of its own that can be woken.

A process follows every feed its readers watch with one ``XREAD BLOCK`` naming all their
streams, rather than one blocked connection per feed (3 nodes x 40 feeds were 120 Redis
connections). When the set of feeds changes the read is re-issued: ``wake`` sends ``CLIENT
UNBLOCK`` for the blocked connection from another one, so the read returns at once.

On a Redis Cluster one ``XREAD`` may only name keys of one slot (else ``CROSSSLOT``), so
``ClusterReader`` groups the feeds by slot and blocks one connection per slot, on the node that
owns it, all at once; a read returns what the slots that answered gave, and the others stay
blocked for the next. Feeds rarely share a slot, so that is about one connection per followed
feed per process, spread over the primaries. A ``MOVED`` (a slot resharded, a failover)
updates the client's slot table and a lost connection reloads it; the error propagates, so the
caller retries every feed from where it was, now on the slot's new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import AskError, MovedError, RedisClusterException, RedisError

from livefeed.model.ids import StreamId
from livefeed.storage.cluster import primary_for
from livefeed.storage.entries import Entry, entry_of
from livefeed.storage.keys import Keys


class BlockingReader:
    """``XREAD BLOCK`` over many streams on a dedicated connection; errors propagate.

    ``stream`` names a feed's stream to read (``Keys.stream``; ``Keys.desk`` for the desk's).
    """

    def __init__(
        self, redis: Redis, keys: Keys, stream: Callable[[str], str] | None = None
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._stream = stream or keys.stream
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
        streams = [self._stream(slug) for slug in slugs]
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
        return bool(await self._unblock(self._client_id))

    async def close(self) -> None:
        await self._drop()

    async def _connection(self) -> AbstractConnection:
        if self._conn is None:
            conn = await self._acquire()
            try:
                await conn.send_command("CLIENT", "ID")
                self._client_id = int(await conn.read_response())
            except BaseException:
                await conn.disconnect()
                await self._release(conn)
                raise
            self._conn = conn
        return self._conn

    async def _drop(self) -> None:
        """Give the connection back closed: after an error or a cancel its reply is unknown."""
        conn, self._conn, self._client_id = self._conn, None, None
        if conn is not None:
            await conn.disconnect()
            await self._release(conn)

    async def _acquire(self) -> AbstractConnection:
        return await self._redis.connection_pool.get_connection()  # type: ignore[no-untyped-call,no-any-return]

    async def _release(self, conn: AbstractConnection) -> None:
        await self._redis.connection_pool.release(conn)

    async def _unblock(self, client_id: int) -> Any:
        return await self._redis.execute_command("CLIENT", "UNBLOCK", client_id)  # type: ignore[no-untyped-call]


class _SlotReader(BlockingReader):
    """A BlockingReader of one slot's feeds, on a connection of the node that owns it."""

    def __init__(
        self, redis: Redis, keys: Keys, node: ClusterNode, stream: Callable[[str], str]
    ) -> None:
        super().__init__(redis, keys, stream)
        self.node = node

    async def _acquire(self) -> AbstractConnection:
        return self.node.acquire_connection()

    async def _release(self, conn: AbstractConnection) -> None:
        self.node.release(cast(Connection, conn))

    async def _unblock(self, client_id: int) -> Any:
        return await self.node.execute_command("CLIENT", "UNBLOCK", client_id)


_Read = asyncio.Future[dict[str, list[Entry] | Exception]]


class ClusterReader(BlockingReader):
    """``read`` as BlockingReader's, on a Redis Cluster: one blocked XREAD per slot at once.

    A slot's read stays blocked across calls for as long as its feeds and their positions are
    unchanged: ``read`` returns what the slots that answered gave, and only those (and slots
    whose feeds changed, woken with ``CLIENT UNBLOCK``) are read again, so an event costs one
    new XREAD, not one per followed slot. ``wake`` makes a ``read`` in progress return ``{}``.
    """

    def __init__(
        self, redis: Redis, keys: Keys, stream: Callable[[str], str] | None = None
    ) -> None:
        super().__init__(redis, keys, stream)
        client: Any = redis
        self._cluster: RedisCluster = client
        self._slots: dict[int, _SlotReader] = {}
        self._pending: dict[int, tuple[dict[str, StreamId], _Read]] = {}
        self._woken = asyncio.Event()
        self._reading = False

    async def read(
        self, positions: dict[str, StreamId], block_ms: int, count: int = 1000
    ) -> dict[str, list[Entry] | Exception]:
        groups: dict[int, dict[str, StreamId]] = {}
        for slug, after in positions.items():
            slot = self._cluster.keyslot(self._stream(slug))
            groups.setdefault(slot, {})[slug] = after
        for slot, (part, _) in list(self._pending.items()):
            if groups.get(slot) != part:
                await self._stop(slot)  # its answer is for positions no longer asked about
        for slot in set(self._slots) - set(groups):
            await self._slots.pop(slot).close()
        await self._cluster.initialize()  # a no-op once the client has its slot table
        for slot, part in groups.items():
            if slot not in self._pending:
                reader = self._slots.get(slot)
                if reader is None:
                    node = primary_for(self._cluster, self._stream(next(iter(part))))
                    reader = self._slots[slot] = _SlotReader(
                        self._redis, self._keys, node, self._stream
                    )
                self._pending[slot] = (
                    part,
                    asyncio.ensure_future(reader.read(part, block_ms, count)),
                )
        self._woken.clear()
        self._reading = True
        woken: asyncio.Future[Any] = asyncio.ensure_future(self._woken.wait())
        waiting: list[asyncio.Future[Any]] = [woken, *(r for _, r in self._pending.values())]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._reading = False
            woken.cancel()
        found: dict[str, list[Entry] | Exception] = {}
        for slot, (_, task) in list(self._pending.items()):
            if not task.done():
                continue
            del self._pending[slot]
            error = task.exception()
            if error is not None:
                reader = self._slots.pop(slot, None)
                if reader is not None:
                    await reader.close()
                await self._relearn(error)
                raise error  # every feed is read again from where it was: none is skipped
            found.update(task.result())
        return found

    async def _stop(self, slot: int) -> None:
        """End a slot's blocked read (an unblock sent before it blocks does nothing: again)."""
        _, read = self._pending.pop(slot)
        reader = self._slots.get(slot)
        for _ in range(200):
            if read.done() or reader is None:
                break
            with contextlib.suppress(RedisError, OSError):
                await reader.wake()
            await asyncio.wait([read], timeout=0.01)
        read.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await read

    async def _relearn(self, error: BaseException) -> None:
        """After a failed read, bring the client's slot table up to date for the next one."""
        with contextlib.suppress(RedisError, RedisClusterException, OSError):
            if isinstance(error, AskError) and not isinstance(error, MovedError):
                return  # a slot being migrated: read it where it is until it has moved
            if isinstance(error, MovedError):
                await self._cluster.nodes_manager.move_slot(error)
            else:
                await self._cluster.nodes_manager.initialize()

    async def wake(self) -> bool:
        self._woken.set()
        return self._reading

    async def close(self) -> None:
        for slot in list(self._pending):
            _, read = self._pending.pop(slot)
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read
        for reader in list(self._slots.values()):
            await reader.close()
        self._slots.clear()


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
