"""Redis Cluster: commands that must reach the primary owning a feed's slot on one connection.

The cluster client (``redis.asyncio.cluster.RedisCluster``, made by ``storage.connect``) routes
every keyed command to the slot's primary and follows ``MOVED``/``ASK``/``TRYAGAIN`` by itself.
What it cannot do is keep several commands on one connection: a write script and the ``WAIT``
after it (WAIT counts the replicas that have that connection's writes), the bulk writer's
pipelined import, the tail's blocked ``XREAD`` and the ``CLIENT UNBLOCK`` sent to its node.
``on_primary`` does that, following redirects the way the client does: ``MOVED`` updates the
client's slot table and retries, ``ASK`` retries once on the named node after ``ASKING``,
``TRYAGAIN`` and ``CLUSTERDOWN`` retry after a pause, a lost connection reloads the slot table;
after ``ATTEMPTS`` the last error propagates (the web edge maps it to 503).

Everything here takes the ``Redis`` the rest of livefeed holds; ``cluster_of`` says whether it
is a cluster client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ConnectionError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TimeoutError,
    TryAgainError,
)

ATTEMPTS = 8
"""Tries of one ``on_primary`` call before its last error propagates (about 2 s of pauses)."""

Command = Sequence[Any]

UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    ClusterError,  # CLUSTERDOWN, MASTERDOWN, a redirect loop ("TTL exhausted")
    TryAgainError,
    AskError,  # and MOVED: a redirect the client did not follow in its tries
    ReadOnlyError,
    RedisClusterException,  # a slot no node serves (mid-failover), a cross-slot surprise
)
"""Errors that say Redis (a shard of it) is unavailable for now, not that a request is wrong:
the web edge answers them 503 with Retry-After, the tail retries them."""


def cluster_of(redis: Redis) -> RedisCluster | None:
    """The cluster client if ``redis`` is one (``connect`` types both as Redis), else None."""
    client: object = redis
    return client if isinstance(client, RedisCluster) else None


def primary_for(cluster: RedisCluster, key: str) -> ClusterNode:
    """The node the client believes owns ``key``'s slot (SlotNotCoveredError if none)."""
    node = cluster.get_node_from_key(key)
    if node is None:  # only asked for with replica=True; kept for the type
        raise RedisClusterException(f"no node serves the slot of {key!r}")
    return node


async def on_primary(cluster: RedisCluster, key: str, commands: list[Command]) -> list[Any]:
    """Send ``commands`` down one connection of ``key``'s primary in one round trip and return
    their replies. When an ``evalsha`` command is answered ``NOSCRIPT`` (nothing of it ran)
    its script is loaded and the whole batch sent again."""
    last: Exception | None = None
    asking: ClusterNode | None = None
    for attempt in range(ATTEMPTS):
        node = asking or primary_for(cluster, key)
        conn = node.acquire_connection()
        clean = False
        try:
            replies = await _round_trip(conn, commands, asking=asking is not None)
            clean = True
            return replies
        except MovedError as exc:
            last, asking = exc, None
            await cluster.nodes_manager.move_slot(exc)
            clean = True
        except AskError as exc:
            last = exc
            asking = cluster.get_node(host=exc.host, port=exc.port)
            if asking is None:
                await cluster.nodes_manager.move_slot(exc)
                asking = cluster.get_node(host=exc.host, port=exc.port)
            clean = True
        except (TryAgainError, ClusterDownError) as exc:
            last, asking = exc, None
            clean = True
            await asyncio.sleep(0.05 * (attempt + 1))
        except (ConnectionError, TimeoutError, OSError) as exc:
            last, asking = exc, None
            await asyncio.sleep(0.05 * (attempt + 1))
            with contextlib.suppress(RedisError, RedisClusterException, OSError):
                await cluster.nodes_manager.initialize()
        finally:
            if not clean:
                await conn.disconnect()
            node.release(conn)
    assert last is not None
    raise last


def evalsha(script_text: str, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Command:
    """A script call for ``on_primary``: EVALSHA, with the text to send if Redis lacks it."""
    return ("EVALSHA", sha, len(keys), *keys, *args, _Script(script_text))


class _Script(str):
    """The text of the script an ``evalsha`` command runs; not sent unless NOSCRIPT."""


async def _round_trip(
    conn: AbstractConnection, commands: list[Command], asking: bool, load: bool = True
) -> list[Any]:
    sent = [_without_text(command) for command in commands]
    packed = [("ASKING",), *sent] if asking else sent
    await conn.send_packed_command(conn.pack_commands(packed))
    replies: list[Any] = []
    errors: list[Exception | None] = []
    for index in range(len(packed)):
        error: Exception | None = None
        try:
            reply = await conn.read_response()
        except RedisError as exc:
            if isinstance(exc, (ConnectionError, TimeoutError)):
                raise
            reply, error = None, exc
        if asking and index == 0:
            continue
        replies.append(reply)
        errors.append(error)
    missing = [
        commands[index][-1]
        for index, error in enumerate(errors)
        if isinstance(error, NoScriptError) and isinstance(commands[index][-1], _Script)
    ]
    if missing and load:  # nothing ran of a script Redis lacked: load it, send all again
        for text in missing:
            await conn.send_command("SCRIPT", "LOAD", text)
            await conn.read_response()
        return await _round_trip(conn, commands, asking, load=False)
    for error in errors:  # the first error is what the caller sees (MOVED, say)
        if error is not None:
            raise error
    return replies


def _without_text(command: Command) -> Command:
    return tuple(command[:-1]) if command and isinstance(command[-1], _Script) else command


async def node_command(redis: Redis, key: str, *args: Any) -> Any:
    """``args`` as one command on the node owning ``key``'s slot (on a standalone Redis, just
    the command): for node-local commands such as ``CLIENT KILL`` / ``CLIENT UNBLOCK``."""
    cluster = cluster_of(redis)
    if cluster is None:
        return await redis.execute_command(*args)  # type: ignore[no-untyped-call]
    return await primary_for(cluster, key).execute_command(*args)
