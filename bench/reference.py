"""The reference fan-out server: the ``websockets`` library alone, about as fast as Python gets.

One task does a blocking XREAD on a Redis stream and hands each entry's stored frame (field ``d``,
already the UTF-8 JSON text a reader gets) to ``websockets.broadcast()``, which writes it to every
open connection without awaiting any of them. A new connection first gets the latest ``--backlog``
frames, kept in memory, then live ones: the backlog is written and the connection joins the set in
one synchronous step, so nothing falls between the two. Compression is off.

Nothing else: no HTTP API, no per-reader queue, no slow-reader policy, no catch-up by id. The
benchmark publishes to it with a plain XADD of the frame to the stream.

    python bench/reference.py --port 8765 --redis-url redis://127.0.0.1:6379/0 --key bench:ref
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from stats import raise_nofile
from websockets.asyncio.server import ServerConnection, broadcast, serve

BLOCK_MS = 5000


class Fanout:
    """The open connections, the latest frames, and the stream position."""

    def __init__(self, backlog: int) -> None:
        self.connections: set[ServerConnection] = set()
        self.latest: deque[bytes] = deque(maxlen=backlog)
        self.last_id: bytes = b"0-0"

    async def load(self, redis: Redis, key: str) -> None:
        newest: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrevrange(
            key, count=self.latest.maxlen
        )  # type: ignore[assignment]
        for entry_id, fields in reversed(newest):
            self.latest.append(fields[b"d"])
            self.last_id = entry_id

    async def handler(self, connection: ServerConnection) -> None:
        for frame in self.latest:  # synchronous writes: no live frame can slip in between
            broadcast((connection,), frame, text=True)
        self.connections.add(connection)
        try:
            await connection.wait_closed()
        finally:
            self.connections.discard(connection)

    async def tail(self, redis: Redis, key: str, seconds: float) -> None:
        """Follow the stream until cancelled or ``seconds`` are over; retry after Redis errors."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                reply: Any = await redis.xread({key: self.last_id}, count=100, block=BLOCK_MS)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await asyncio.sleep(0.5)
                continue
            for _key, entries in reply or ():
                for entry_id, fields in entries:
                    frame = fields[b"d"]
                    self.latest.append(frame)
                    broadcast(self.connections, frame, text=True)
                    self.last_id = entry_id


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key", required=True, help="the stream key to follow")
    parser.add_argument("--backlog", type=int, default=20, help="frames sent on connect")
    parser.add_argument("--max-seconds", type=float, default=3600, help="exit after this long")
    args = parser.parse_args(argv)
    raise_nofile()

    redis = Redis.from_url(args.redis_url, socket_timeout=BLOCK_MS / 1000 + 5)
    fanout = Fanout(args.backlog)
    await fanout.load(redis, args.key)
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: None if stop.done() else stop.set_result(None))
    # backlog=2048 matches uvicorn's default listen backlog, so a join storm meets the same queue.
    async with serve(
        fanout.handler, args.host, args.port, compression=None, max_size=64 * 1024, backlog=2048
    ):
        tail = asyncio.create_task(fanout.tail(redis, args.key, args.max_seconds))
        print(f"reference: serving ws://{args.host}:{args.port}/", file=sys.stderr, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop, args.max_seconds)
        tail.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tail
    await redis.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
