"""The WebSocket stream through real websockets clients: live delivery, resume, bad requests.

Every test runs on both transports (``helpers.TRANSPORTS``): livefeed's own uvicorn protocol,
with direct writes and parked readers, and uvicorn's stock one, where readers are served through
plain ASGI as under any other server. The promises are the same on both.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from helpers import (
    TRANSPORTS,
    LivefeedServer,
    RedisProcess,
    auth,
    frames_until,
    has_live,
    make_feed,
    pick_server,
    publish,
)
from livefeed.newsroom.transfer import import_briefs, parse_import
from livefeed.storage.connect import connect
from livefeed.storage.store import Store


@pytest.fixture
def server(
    server: LivefeedServer, transport: str, request: pytest.FixtureRequest
) -> LivefeedServer:
    """The session's server for this test's transport (conftest's ``server`` or ``asgi_server``);
    for the tests marked CLUSTER_TOO, also the node on a Redis Cluster (direct transport)."""
    if request.getfixturevalue("redis_kind") == "cluster":
        return pick_server(server, request)
    if transport == "direct":
        return server
    asgi: LivefeedServer = request.getfixturevalue("asgi_server")
    return asgi


CLUSTER_TOO = pytest.mark.parametrize(
    ("transport", "redis_kind"),
    [("direct", "redis"), ("asgi", "redis"), ("direct", "cluster")],
    indirect=["redis_kind"],
    ids=["direct", "asgi", "cluster"],
)
"""Both transports on one Redis, and livefeed's own on a Redis Cluster."""


async def apublish(client: httpx.AsyncClient, slug: str, headline: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/feeds/{slug}/briefs", json={"headline": headline}, headers=auth()
    )
    assert response.status_code == 201, response.text
    brief: dict[str, Any] = response.json()
    return brief


def briefs_in(frames: list[dict[str, Any]]) -> list[str]:
    return [f["brief"]["headline"] for f in frames if f["type"] == "brief"]


@CLUSTER_TOO
async def test_a_published_brief_reaches_a_connected_reader(
    server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") as ws:
        await frames_until(ws, has_live)
        brief = publish(http, feed, "Breaking")
        (frame,) = await frames_until(ws, lambda fs: len(fs) == 1)
    assert frame == {"type": "brief", "event_id": brief["id"], "brief": brief, "editor": "Newsroom"}


async def test_connecting_without_since_sends_a_snapshot_of_the_latest_briefs(
    server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    briefs = [publish(http, feed, f"b{n}") for n in range(25)]
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") as ws:
        frames = await frames_until(ws, has_live)
        later = publish(http, feed, "after the snapshot")
        (frame,) = await frames_until(ws, lambda fs: len(fs) == 1)
    snapshot, live = frames
    assert snapshot["type"] == "snapshot"
    assert [b["headline"] for b in snapshot["briefs"]] == [f"b{n}" for n in range(24, 4, -1)]
    assert snapshot["pinned"] is None and snapshot["feed"]["slug"] == feed
    assert live == {"type": "live", "last_event_id": briefs[-1]["id"]}
    assert frame["event_id"] == later["id"]


@CLUSTER_TOO
async def test_reconnect_with_since_gets_missed_briefs_once_in_order(
    server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    seen = publish(http, feed, "seen")
    missed = [publish(http, feed, f"missed {n}") for n in range(30)]
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}?since={seen['id']}") as ws:
        frames = await frames_until(ws, has_live)
        after = publish(http, feed, "live after")
        frames += await frames_until(ws, lambda fs: len(fs) == 1)
    assert [f["event_id"] for f in frames if f["type"] == "brief"] == [
        b["id"] for b in [*missed, after]
    ]


async def import_after(redis_url: str, prefix: str, slug: str, at: str, count: int) -> list[str]:
    """``count`` briefs appended at once through the import path, all published at ``at``."""
    redis = connect(redis_url, timeout=10)
    try:
        store = Store(redis, prefix)
        feed = await store.require_feed(slug)
        lines = [orjson.dumps({"published_at": at, "headline": f"pre {n}"}) for n in range(count)]
        briefs = parse_import(lines, (await store.bounds(slug)).last_generated)
        return [str(entry_id) for entry_id in await import_briefs(store, feed, briefs)]
    finally:
        await redis.aclose()


@CLUSTER_TOO
async def test_catch_up_while_publishing_has_no_gap_and_no_duplicate(
    server: LivefeedServer, redis_server: RedisProcess, http: httpx.Client, feed: str
) -> None:
    """Briefs published during a long catch-up arrive exactly once, in stream order."""
    first = publish(http, feed, "start")
    # More than one catch-up page (500) before the reader connects; imported, since how they
    # were written does not matter here and 600 publishes take seconds on a busy machine.
    url = server.redis_url or redis_server.url
    pre = await import_after(url, server.prefix, feed, first["published_at"], 600)
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:

        async def publisher() -> list[str]:
            return [(await apublish(client, feed, f"during {n}"))["id"] for n in range(200)]

        async with asyncio.TaskGroup() as tasks:  # a failure cancels the publisher and waits
            publishing = tasks.create_task(publisher())
            async with websockets.connect(
                f"{server.ws_base}/ws/feeds/{feed}?since={first['id']}"
            ) as ws:
                frames = await frames_until(ws, has_live, timeout=60)
                during = await publishing
                total = len(pre) + len(during)
                caught_up = len(briefs_in(frames))
                frames += await frames_until(
                    ws, lambda fs: caught_up + len(fs) >= total, timeout=60
                )
                # Nothing more after that: the next frame is a brief published now.
                sentinel = await apublish(client, feed, "sentinel")
                (after,) = await frames_until(ws, lambda fs: len(fs) == 1, timeout=60)
    assert after["event_id"] == sentinel["id"], "a brief came twice or late"
    ids = [f["event_id"] for f in frames if f["type"] == "brief"]
    assert len(ids) == len(set(ids)) == total, "every brief, none twice"
    assert ids == pre + during, "in stream order"


@pytest.mark.parametrize("since", ["yesterday", "1-2-3", "-5", "1.5"])
async def test_malformed_since_is_closed_with_4400_and_a_reason(
    server: LivefeedServer, feed: str, since: str
) -> None:
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}?since={since}") as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4400
    assert "since" in (ws.close_reason or "")


async def test_unknown_feed_is_closed_with_4404(server: LivefeedServer) -> None:
    async with websockets.connect(f"{server.ws_base}/ws/feeds/no-such-feed") as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4404


async def test_since_newer_than_the_feed_gets_a_reload_frame_not_a_silent_gap(
    server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    publish(http, feed, "only")
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}?since=99999999999999-0") as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert frame["type"] == "reload" and frame["reason"]


@CLUSTER_TOO
async def test_many_readers_each_get_every_brief_once(
    server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    readers = [await websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") for _ in range(50)]
    try:
        for ws in readers:
            await frames_until(ws, has_live)
        sent = [publish(http, feed, f"n{n}")["id"] for n in range(20)]
        for ws in readers:
            frames = await frames_until(ws, lambda fs: len(fs) == 20)
            assert [f["event_id"] for f in frames] == sent
    finally:
        for ws in readers:
            await ws.close()


async def test_caught_up_readers_hold_no_task_each_and_leave_the_hub_when_they_go(
    server: LivefeedServer, http: httpx.Client, feed: str, transport: str
) -> None:
    """Readers that caught up are parked: the hub writes to their sockets, no task per reader
    (on the ASGI path, a task each, which ends with its reader)."""

    def load() -> dict[str, int]:
        body: dict[str, int] = http.get("/healthz").json()
        return body

    idle = load()
    readers = [await websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") for _ in range(40)]
    try:
        for ws in readers:
            await frames_until(ws, has_live)
        joined = load()
        assert joined["readers"] == idle["readers"] + 40
        if transport == "direct":
            assert joined["tasks"] <= idle["tasks"] + 2, "a task per reader"  # + this feed's hub
        else:
            assert joined["tasks"] >= idle["tasks"] + 40, "readers served through ASGI"
        brief = publish(http, feed, "to every parked reader")
        for ws in readers:
            (frame,) = await frames_until(ws, lambda fs: len(fs) == 1)
            assert frame["event_id"] == brief["id"]
        for ws in readers[:25]:
            await ws.close()
        async with asyncio.timeout(10):
            while load()["readers"] != idle["readers"] + 15:
                await asyncio.sleep(0.05)
        if transport == "asgi":
            async with asyncio.timeout(10):
                while load()["tasks"] > joined["tasks"] - 25:
                    await asyncio.sleep(0.05)
        for ws in readers[25:]:  # the protocol answers pings by itself
            await asyncio.wait_for(await ws.ping(), 10)
    finally:
        for ws in readers:
            await ws.close()


async def test_a_reader_that_stops_reading_is_closed_as_too_slow_and_resumes_with_since(
    redis_server: RedisProcess, tmp_path: Path, transport: str
) -> None:
    """One stalled reader neither holds up the others nor loses anything once it resumes."""
    server = LivefeedServer(
        redis_server.url,
        "slow-" + uuid.uuid4().hex[:6],
        LIVEFEED_READER_QUEUE="32",
        **TRANSPORTS[transport],
    )
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            slug = make_feed(client)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        uri = f"{server.ws_base}/ws/feeds/{slug}?since=0"
        # Uncompressed: deflated, 300 frames of "x" would fit in the socket buffers.
        slow = await websockets.connect(uri, sock=sock, max_queue=1, compression=None)
        fast = await websockets.connect(uri)
        await frames_until(fast, has_live)
        await frames_until(slow, has_live)

        body = "x" * 15_000
        total = 300  # ~4.5 MB: more than the socket buffers hold
        fast_reader = asyncio.create_task(
            frames_until(fast, lambda fs: len(fs) == total, timeout=60)
        )
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
            sent = []
            for n in range(total):
                response = await client.post(
                    f"/api/feeds/{slug}/briefs",
                    json={"headline": f"n{n}", "body": body},
                    headers=auth(),
                )
                sent.append(response.json()["id"])
        fast_frames = await fast_reader
        assert [f["event_id"] for f in fast_frames] == sent, "the fast reader was not held up"

        received: list[str] = []
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(30):
                while True:
                    frame = json.loads(await slow.recv())
                    if frame["type"] == "brief":
                        received.append(frame["event_id"])
        assert slow.close_code == 4408
        assert len(received) < len(sent)
        assert received == sent[: len(received)], "what did arrive is in order, without gaps"

        async with websockets.connect(
            f"{server.ws_base}/ws/feeds/{slug}?since={received[-1]}"
        ) as again:
            frames = await frames_until(again, has_live, timeout=30)
        assert [f["event_id"] for f in frames if f["type"] == "brief"] == sent[len(received) :]
        await fast.close()
    finally:
        server.stop()


async def test_with_two_workers_every_reader_gets_every_brief(
    redis_server: RedisProcess, tmp_path: Path, transport: str
) -> None:
    """Readers spread over two worker processes each get every brief, in order."""
    server = LivefeedServer(
        redis_server.url, "workers-" + uuid.uuid4().hex[:6], **TRANSPORTS[transport]
    )
    server.start("--workers", "2", log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            slug = make_feed(client)
        readers = [
            await websockets.connect(f"{server.ws_base}/ws/feeds/{slug}?since=0") for _ in range(40)
        ]
        try:
            for ws in readers:
                await frames_until(ws, has_live)
            with httpx.Client(base_url=server.base, timeout=10) as client:
                sent = [publish(client, slug, f"n{n}")["id"] for n in range(10)]
            for ws in readers:
                frames = await frames_until(ws, lambda fs: len(fs) == 10)
                assert [f["event_id"] for f in frames] == sent
        finally:
            for ws in readers:
                await ws.close()
        pids = {
            line.split("[")[1].split("]")[0]
            for line in server.log().splitlines()
            if "Started server process" in line
        }
        assert len(pids) == 2, "two worker processes served"
    finally:
        server.stop()
