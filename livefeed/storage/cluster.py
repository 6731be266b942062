"""Redis Cluster: commands that must reach the primary owning a feed's slot on one connection.

The cluster client (``redis.asyncio.cluster.RedisCluster``, made by ``storage.connect``) routes
every keyed command to the slot's primary and follows ``MOVED``/``ASK``/``TRYAGAIN`` by itself.
What it cannot do is keep several commands on one connection: a write script and the ``WAIT``
after it (WAIT counts the replicas that have that connection's writes), the bulk writer's
pipelined import, the tail's blocked ``XREAD`` and the ``CLIENT UNBLOCK`` sent to its node.
``on_primary`` does that, following redirects the way the client does: ``MOVED`` updates the
client's slot table and retries, ``ASK`` retries once on the named node after ``ASKING``,
``TRYAGAIN`` (a multi-key script while its slot is half moved) and ``CLUSTERDOWN`` retry after
a pause, a connection that cannot be made reloads the slot table and retries, a node whose
connections are all in use is waited for (as the standalone pool makes callers wait); after
``PATIENCE`` seconds the last error propagates (the web edge maps it to 503). A reshard moves a
slot's keys in well under that. Commands whose replies are lost once sent are not sent again
(a write may have run): that error propagates at once.

Everything here takes the ``Redis`` the rest of livefeed holds; ``cluster_of`` says whether it
is a cluster client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ConnectionError,
    MaxConnectionsError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TimeoutError,
    TryAgainError,
)

from livefeed.errors import LivefeedException

PATIENCE = 5.0
"""Seconds one ``on_primary`` call keeps retrying redirects and refusals before its last error
propagates."""

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


REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)
"""Anything a Redis call can fail with, its socket's own errors included: what a WebSocket's
loop catches to close with 1013 (try again later) rather than fail."""


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
    await cluster.initialize()  # a no-op once the client has its slot table
    last: Exception | None = None
    asking: ClusterNode | None = None
    deadline = time.monotonic() + PATIENCE
    attempt = 0
    while attempt == 0 or time.monotonic() < deadline:
        attempt += 1
        node = asking or primary_for(cluster, key)
        try:
            conn = node.acquire_connection()
        except MaxConnectionsError as exc:  # every connection of the node is busy: wait
            last = exc
            await asyncio.sleep(0.01)
            continue
        clean = False
        try:
            replies = await _round_trip(node, conn, commands, asking=asking is not None)
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
            await asyncio.sleep(min(0.02 * attempt, 0.2))
        except _ReplyLost as lost:  # not sent again: a write may have run (the caller's retry
            assert lost.__cause__ is not None  # with its Idempotency-Key is safe)
            raise lost.__cause__ from None
        except (ConnectionError, TimeoutError, OSError) as exc:  # nothing reached Redis
            last, asking = exc, None
            await asyncio.sleep(min(0.05 * attempt, 0.5))
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


class _ReplyLost(LivefeedException):
    """The commands were sent but their replies did not come: they may have run."""


class _Script(str):
    """The text of the script an ``evalsha`` command runs; not sent unless NOSCRIPT."""


async def _round_trip(
    node: ClusterNode,
    conn: Connection,
    commands: list[Command],
    asking: bool,
    load: bool = True,
) -> list[Any]:
    """Send ``commands`` (after ``ASKING``) and read every reply, with the client's reply
    callbacks (as its own commands get them); the first error reply is raised once all are in.
    """
    sent = [_without_text(command) for command in commands]
    packed = [("ASKING",), *sent] if asking else sent
    await conn.send_packed_command(conn.pack_commands(packed))
    replies: list[Any] = []
    errors: list[Exception | None] = []
    for index, command in enumerate(packed):
        error: Exception | None = None
        try:
            reply = await node.parse_response(conn, str(command[0]))
        except (ConnectionError, TimeoutError) as exc:
            raise _ReplyLost from exc
        except RedisError as exc:
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
        return await _round_trip(node, conn, commands, asking, load=False)
    for error in errors:  # the first error is what the caller sees (MOVED, say)
        if error is not None:
            raise error
    return replies


def _without_text(command: Command) -> Command:
    return tuple(command[:-1]) if command and isinstance(command[-1], _Script) else command


_KEYLESS = frozenset({"TIME", "PING", "INFO", "CONFIG", "CLIENT", "CLUSTER", "SCRIPT", "WAIT"})
_KEY_SECOND = frozenset({"XINFO", "OBJECT", "MEMORY"})
_SCRIPTS = frozenset({"EVAL", "EVALSHA"})
"""Their first key follows the script and the number of keys."""


async def command(redis: Redis, *args: Any) -> Any:
    """One raw command, as ``redis.execute_command`` runs it; on a cluster a keyed command
    goes through ``on_primary``, since redis-py's asyncio cluster client may send the
    ``ASKING`` of an ``ASK`` redirect on another connection than the command it is for
    (so a key in a slot being moved bounces until its tries run out)."""
    cluster = cluster_of(redis)
    name = str(args[0]).upper()
    if cluster is None or name in _KEYLESS or len(args) < 2:
        return await redis.execute_command(*args)  # type: ignore[no-untyped-call]
    key = args[3] if name in _SCRIPTS else args[2] if name in _KEY_SECOND else args[1]
    (reply,) = await on_primary(
        cluster, key.decode() if isinstance(key, bytes) else str(key), [args]
    )
    return reply


async def batch(redis: Redis, commands: list[Command], *, transaction: bool = False) -> list[Any]:
    """Run raw commands together and return their replies in order: one pipeline on one Redis
    (``MULTI``/``EXEC`` with ``transaction``; error replies returned, not raised, as a
    transaction's are); on a cluster one ``on_primary`` call per slot, the primaries at once and
    each one's slots in turn (one connection each; a transaction must keep to one slot)."""
    cluster = cluster_of(redis)
    if cluster is None:
        pipe = redis.pipeline(transaction=transaction)
        for args in commands:
            pipe.execute_command(*args)
        return await pipe.execute(raise_on_error=not transaction)
    if transaction:
        replies = await on_primary(cluster, _key(commands[0]), [("MULTI",), *commands, ("EXEC",)])
        return list(replies[-1])
    await cluster.initialize()
    slots: dict[int, list[int]] = {}  # command indexes by slot
    for index, args in enumerate(commands):
        slots.setdefault(cluster.keyslot(_key(args)), []).append(index)
    by_node: dict[str, list[list[int]]] = {}  # a node's slots one after another: one connection
    for group in slots.values():
        by_node.setdefault(primary_for(cluster, _key(commands[group[0]])).name, []).append(group)
    out: list[Any] = [None] * len(commands)

    async def run(groups: list[list[int]]) -> None:
        for group in groups:
            replies = await on_primary(
                cluster, _key(commands[group[0]]), [commands[i] for i in group]
            )
            for index, reply in zip(group, replies, strict=True):
                out[index] = reply

    await asyncio.gather(*(run(groups) for groups in by_node.values()))
    return out


def _key(args: Command) -> str:
    key = args[2] if str(args[0]).upper() in _KEY_SECOND else args[1]
    return key.decode() if isinstance(key, bytes) else str(key)
