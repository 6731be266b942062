"""Imports into Redis: a batch of briefs per script call (``bulk.lua``), with the writes that
``append.lua`` would make for each of them, but a few commands for the whole batch.

The caller numbers the briefs itself (``next_id``) and fills each brief's id and time into its
JSON; the script first checks that the stream's last id is still the one the numbering started
from. So a call is written whole or not at all, and once one is refused (someone published to
the feed meanwhile, say) every call after it is refused too: what was written is always a prefix
of what was sent, and ``undo`` removes it.

Calls go down one connection of their own without waiting for replies (``send``), so Redis
always has the next batch while the caller prepares the one after; ``receive`` reads the
replies in order. On a Redis Cluster that connection is one of the feed's primary's (its keys
share one slot); a slot moved during an import is refused like a publish meanwhile, and undone.
"""

from __future__ import annotations

import contextlib
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import orjson
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import ResponseError

from livefeed.errors import LivefeedException
from livefeed.metrics import EVENTS_PUBLISHED
from livefeed.model.ids import StreamId
from livefeed.storage.append import LAST_ID_LUA, TAGS_LUA
from livefeed.storage.cluster import cluster_of, command, primary_for
from livefeed.storage.entries import FeedMark
from livefeed.storage.store import Store

BULK_LUA = LAST_ID_LUA + TAGS_LUA + (Path(__file__).parent / "bulk.lua").read_text()
PER_CALL = 500
"""Briefs per script call: they share one fsync; Redis serves nobody else for ~10 ms."""

HEAD = b'{"brief":'
"""The stream entry is ``{"brief": <the brief's state>, "editor": "import"}``."""
TAIL = b',"editor":"import"}'


@dataclass(frozen=True, slots=True)
class BulkBrief:
    """One brief ready to write: its entry id, its JSON (id and time filled in), its local day,
    and the keys of its tags (``model.brief.tag_keys``) for the topic index."""

    id: StreamId
    state: bytes
    day: str
    key_event: bool
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Call:
    first: int  # index of its first brief among all those sent
    ids: list[StreamId]


class BulkRefused(LivefeedException):
    """Redis refused a script call; ``index`` counts the briefs sent before its first one."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"brief {index} refused: {reason}")
        self.index = index
        self.reason = reason


def next_id(last: StreamId, at_ms: int) -> StreamId:
    """The id append.lua gives an entry at ``at_ms`` after ``last``: never before it."""
    return StreamId(last.ms, last.seq + 1) if at_ms <= last.ms else StreamId(at_ms, 0)


class BulkWriter:
    """Writes batches of briefs to one feed; an async context manager that holds a connection.

    Use from one task: ``mark`` the feed, ``send`` batches, ``receive`` each call's ids in order;
    after a failure, ``settle`` says what the calls still in flight wrote, and ``undo`` removes
    it all and puts the feed back at the mark.
    """

    def __init__(self, store: Store, slug: str, per_call: int | None = None) -> None:
        self.store = store
        self.slug = slug
        self.per_call = per_call or PER_CALL
        self._keys = store.keys.script(slug)
        self._conn: AbstractConnection | None = None
        self._node: ClusterNode | None = None
        self._pending: deque[_Call] = deque()
        self._sent = 0
        self._client_id = 0

    async def __aenter__(self) -> BulkWriter:
        cluster = cluster_of(self.store.redis)
        if cluster is not None:
            await cluster.initialize()
            self._node = primary_for(cluster, self._keys[0])
            self._conn = conn = self._node.acquire_connection()
        else:
            pool = self.store.redis.connection_pool
            self._conn = conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        await conn.send_command("CLIENT", "ID")
        self._client_id = int(await conn.read_response())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._pending or exc_type is not None:  # replies left unread: not fit to reuse
            await conn.disconnect()
        if self._node is not None:
            self._node.release(cast(Connection, conn))
        else:
            await self.store.redis.connection_pool.release(conn)

    @property
    def in_flight(self) -> int:
        """Briefs sent whose replies have not been received."""
        return sum(len(call.ids) for call in self._pending)

    async def last_id(self) -> StreamId:
        """The stream's last id as the scripts see it (ZERO_ID for an empty feed)."""
        raw = await self._cmd("GET", self.store.keys.last_id(self.slug))
        if raw is not None:
            return StreamId.parse(_text(raw))
        return (await self.store.bounds(self.slug)).last_generated

    async def send(self, after: StreamId, briefs: list[BulkBrief]) -> None:
        """Send briefs numbered from ``after``, ``per_call`` to a script call (they share one
        fsync), without waiting for Redis to answer."""
        conn = self._connection()
        commands = []
        for start in range(0, len(briefs), self.per_call):
            batch = briefs[start : start + self.per_call]
            # EVAL, not EVALSHA: nothing to load first, no NOSCRIPT to recover from
            commands.append(("EVAL", BULK_LUA, len(self._keys), *self._keys,
                             *_script_args(after, batch)))  # fmt: skip
            self._pending.append(_Call(self._sent + start, [b.id for b in batch]))
            after = batch[-1].id
        self._sent += len(briefs)
        await conn.send_packed_command(conn.pack_commands(commands), check_health=False)

    async def receive(self) -> list[StreamId]:
        """The ids the oldest call in flight wrote; ``BulkRefused`` if Redis refused it."""
        call = self._pending[0]
        try:
            reply = _text(await self._connection().read_response())
        except ResponseError as exc:  # the script failed (wrong key type, out of memory)
            reply = f"LIVEFEED_FAILED {exc}"
        self._pending.popleft()
        if reply.startswith("LIVEFEED_"):
            raise BulkRefused(call.first, reply)
        EVENTS_PUBLISHED.labels("brief").inc(len(call.ids))
        return call.ids

    async def replicated(self, replicas: int, timeout_ms: int, aof: bool = False) -> int:
        """How many replicas (up to ``replicas``) have everything sent, waiting at most
        ``timeout_ms`` (``WAIT`` on this writer's connection; with ``aof``, ``WAITAOF``: how
        many fsynced it, 0 if the primary did not); call with nothing in flight."""
        conn = self._connection()
        if not aof:
            await conn.send_command("WAIT", replicas, timeout_ms)
            return int(await conn.read_response())
        await conn.send_command("WAITAOF", 1, replicas, timeout_ms)
        local, confirmed = (int(n) for n in await conn.read_response())
        return confirmed if local else 0

    async def settle(self) -> list[StreamId]:
        """After a failure: what the calls still in flight wrote, from their replies while the
        connection gives them, else from what the time index holds of them.

        Without replies, the connection is first closed from the Redis side (CLIENT KILL), so
        that no call Redis still holds can run after the time index was asked.
        """
        written: list[StreamId] = []
        while self._pending:
            try:
                written += await self.receive()
            except BulkRefused:
                continue
            except BaseException:  # connection lost or cancelled again: look instead
                break
        if self._pending:
            unknown = [entry_id for call in self._pending for entry_id in call.ids]
            self._pending.clear()
            with contextlib.suppress(ResponseError):  # not allowed to: look all the same
                if self._node is not None:
                    await self._node.execute_command("CLIENT", "KILL", "ID", self._client_id)
                else:
                    await self._cmd("CLIENT", "KILL", "ID", self._client_id)
            written += await self.present(unknown)
        return written

    async def present(self, ids: list[StreamId]) -> list[StreamId]:
        """Those of ``ids`` that are in the feed's time index (written, not yet undone)."""
        if not ids:
            return []
        scores = await self._cmd("ZMSCORE", self.store.keys.time_index(self.slug), *map(str, ids))
        return [entry_id for entry_id, score in zip(ids, scores, strict=True) if score is not None]

    async def mark(self) -> FeedMark:
        """Where the feed is before anything is sent: ``mark.last`` is what the first call
        must follow, and ``undo`` puts the feed back there."""
        return await self.store.mark(self.slug)

    async def undo(self, ids: list[StreamId], days: dict[str, int], before: FeedMark) -> None:
        """Remove what was written (a failed import) and put the last id back as ``before``."""
        await self.store.remove(self.slug, ids, days, before)

    def _connection(self) -> AbstractConnection:
        if self._conn is None:
            raise RuntimeError("BulkWriter is used as `async with BulkWriter(...) as writer`")
        return self._conn

    async def _cmd(self, *args: Any) -> Any:
        """A command on the shared client (never on the pipelined connection)."""
        return await command(self.store.redis, *args)


def _script_args(after: StreamId, batch: list[BulkBrief]) -> list[bytes | str | int]:
    args: list[bytes | str | int] = [str(after), HEAD, TAIL, len(batch)]
    for brief in batch:
        tags = orjson.dumps(list(brief.tags)) if brief.tags else b""
        args += (str(brief.id), brief.id.ms, brief.state, tags)
    days = Counter(brief.day for brief in batch)
    args.append(len(days))
    for day, count in days.items():
        args += (day, count)
    keys = [str(brief.id) for brief in batch if brief.key_event]
    args += (len(keys), *keys)
    return args


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
