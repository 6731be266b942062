"""One blocking read per process: a node follows all its readers' feeds with one XREAD.

Each test runs its own redis-server and livefeed, so the Redis's client counts are livefeed's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis
import websockets
from websockets.asyncio.client import ClientConnection

from helpers import LivefeedServer, RedisProcess, frames_until, has_live, make_feed, publish
from livefeed.storage.keys import Keys

FEEDS = 40


@pytest.fixture
def quiet(tmp_path: Path) -> Iterator[tuple[RedisProcess, LivefeedServer]]:
    """A Redis and a node with a 60 s heartbeat: a read not re-issued would wait that long."""
    own = RedisProcess(tmp_path / "redis")
    own.start()
    server = LivefeedServer(own.url, "lf-tail", LIVEFEED_HEARTBEAT_INTERVAL="60")
    try:
        server.start(log_dir=tmp_path)
        yield own, server
    finally:
        server.stop()
        own.stop()


def blocked_clients(own: RedisProcess) -> int:
    client = redis.Redis(port=own.port, socket_timeout=5)
    try:
        return int(client.info("clients")["blocked_clients"])
    finally:
        client.close()


async def test_forty_feeds_are_followed_with_one_blocked_connection_and_each_gets_its_briefs(
    quiet: tuple[RedisProcess, LivefeedServer],
) -> None:
    """40 feeds with a reader each: Redis has one blocked client (not 40); a brief on every
    feed reaches its reader; a 41st feed joining later is read at once, not after the
    60 s the blocked read would otherwise wait."""
    own, server = quiet
    with httpx.Client(base_url=server.base, timeout=30) as client:
        slugs = [make_feed(client) for _ in range(FEEDS + 1)]
    readers: dict[str, ClientConnection] = {}
    try:
        for slug in slugs[:FEEDS]:
            readers[slug] = await websockets.connect(f"{server.ws_base}/ws/feeds/{slug}")
            await frames_until(readers[slug], has_live, 30)
        await asyncio.sleep(0.5)  # the read re-issued for the last feed has blocked again
        assert blocked_clients(own) == 1
        with httpx.Client(base_url=server.base, timeout=30) as client:
            sent = {slug: publish(client, slug, f"on {slug}")["id"] for slug in slugs[:FEEDS]}
        for slug, ws in readers.items():
            frames = await frames_until(ws, lambda f: any(x["type"] == "brief" for x in f), 30)
            assert [f["event_id"] for f in frames if f["type"] == "brief"] == [sent[slug]]

        late = slugs[FEEDS]
        readers[late] = await websockets.connect(f"{server.ws_base}/ws/feeds/{late}")
        await frames_until(readers[late], has_live, 30)
        with httpx.Client(base_url=server.base, timeout=30) as client:
            brief = publish(client, late, "late")
        frames = await frames_until(
            readers[late], lambda f: any(x["type"] == "brief" for x in f), 30
        )
        assert [f["event_id"] for f in frames if f["type"] == "brief"] == [brief["id"]]
        assert blocked_clients(own) == 1
    finally:
        for ws in readers.values():
            with contextlib.suppress(Exception):
                await ws.close()


async def test_an_entry_that_does_not_name_the_one_before_it_sends_live_readers_to_resume(
    quiet: tuple[RedisProcess, LivefeedServer],
) -> None:
    """Live readers are closed with 1013 (not handed the entry) when the next entry names
    another predecessor than the last one they got, as after a failover that lost entries;
    resuming with ``since`` they are told to reload, and the log says why once."""
    own, server = quiet
    with httpx.Client(base_url=server.base, timeout=30) as client:
        slug = make_feed(client)
        seen = publish(client, slug, "seen")["id"]
    readers = [
        await websockets.connect(f"{server.ws_base}/ws/feeds/{slug}?since={seen}") for _ in range(3)
    ]
    admin = redis.Redis(port=own.port, socket_timeout=5)
    try:
        for ws in readers:
            await frames_until(ws, has_live, 30)
        brief = orjson.dumps({"id": "x", "headline": "from another history"})
        admin.xadd(Keys(server.prefix).stream(slug), {"t": "brief", "d": brief, "p": "1-1"})
        for ws in readers:
            with pytest.raises(websockets.ConnectionClosed):
                await frames_until(ws, lambda f: False, 30)
            assert ws.close_code == 1013, ws.close_code
        url = f"{server.ws_base}/ws/feeds/{slug}?since={seen}"
        async with websockets.connect(url) as again:
            frames = await frames_until(again, lambda f: any(x["type"] == "reload" for x in f), 30)
        assert not any(f["type"] == "brief" for f in frames)
    finally:
        for ws in readers:
            await ws.close()
        admin.close()
    assert server.log().count("follows 1-1, not") == 1
