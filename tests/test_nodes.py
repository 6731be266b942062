"""Several nodes on one Redis: readers and editors spread over them, and what was per process
shared (the demo's token and poster).

Each test starts its own nodes on free loopback ports and stops them by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import uuid
from pathlib import Path

import httpx
import orjson
import redis
import websockets

from helpers import (
    LivefeedServer,
    RedisProcess,
    auth,
    differences,
    make_feed,
    publish,
    wait_for,
    wait_until,
)
from livefeed.storage.keys import Keys

READERS = 200
BRIEFS = 500


def demo_token_of(node: LivefeedServer) -> str:
    found = re.search(r"demo editor token: (\S+)", node.log())
    assert found, node.log()
    return found.group(1)


def demo_last_event(node: LivefeedServer) -> str | None:
    """The demo feed's last event id, None before it exists."""
    response = httpx.get(f"{node.base}/api/feeds/demo", timeout=10)
    return str(response.json()["last_event_id"]) if response.status_code == 200 else None


def test_demo_nodes_share_one_token_and_one_poster_that_another_replaces_when_it_dies(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Two ``--demo`` nodes on one Redis print the same token, which both accept; when the
    node holding the poster's lease is SIGKILLed, the other posts within seconds."""
    prefix = "demo-" + uuid.uuid4().hex[:6]
    options = {"LIVEFEED_EDITOR_TOKEN": "", "LIVEFEED_DEMO_INTERVAL": "1"}
    nodes = [LivefeedServer(redis_server.url, prefix, **options) for _ in range(2)]
    admin = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        for node in nodes:
            node.start("--demo", log_dir=tmp_path)
        tokens = {demo_token_of(node) for node in nodes}
        assert len(tokens) == 1, tokens
        token = tokens.pop()
        for node in nodes:
            me = httpx.get(f"{node.base}/api/me", headers=auth(token), timeout=10)
            assert me.status_code == 200, me.text

        def holder() -> LivefeedServer | None:
            raw = admin.get(f"{prefix}:lease:demo")
            pid = int(raw.split(b"-")[0]) if isinstance(raw, bytes) else None
            return next((n for n in nodes if n.proc is not None and n.proc.pid == pid), None)

        wait_until(lambda: holder() is not None, 30, "no node holds the demo lease")
        poster = holder()
        assert poster is not None
        other = nodes[1 - nodes.index(poster)]
        wait_until(lambda: demo_last_event(other) not in (None, "0-0"), 30, "no demo feed")
        poster.stop(signal.SIGKILL)
        before = demo_last_event(other)
        wait_until(
            lambda: demo_last_event(other) != before, 20, "no node took over the demo poster"
        )
    finally:
        for node in nodes:
            node.stop()
        admin.close()


class NodeReader:
    """A reader that keeps the id of every event it is sent (briefs, corrections, retractions)
    and, when its node goes away, resumes with ``since`` on the next node in turn."""

    def __init__(self, nodes: list[LivefeedServer], first: int, slug: str, since: str) -> None:
        self.nodes = nodes
        self.turn = first
        self.slug = slug
        self.since = since
        self.events: list[str] = []
        self.live = asyncio.Event()
        self.reloads = 0
        self.connects = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            node = self.nodes[self.turn % len(self.nodes)]
            self.turn += 1
            if node.proc is None or node.proc.poll() is not None:
                continue
            url = f"{node.ws_base}/ws/feeds/{self.slug}?since={self.since}"
            try:
                async with websockets.connect(url, open_timeout=30) as ws:
                    self.connects += 1
                    async for message in ws:
                        frame = orjson.loads(message)
                        if frame["type"] == "live":
                            self.live.set()
                        elif frame["type"] == "reload":
                            self.reloads += 1
                        elif "event_id" in frame:
                            self.events.append(frame["event_id"])
                            self.since = frame["event_id"]
            except (
                OSError,
                TimeoutError,
                websockets.InvalidHandshake,
                websockets.ConnectionClosed,
            ):
                pass
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_three_nodes_through_a_node_sigkill_give_every_reader_the_stream_exactly(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Three nodes on one Redis, 200 readers spread over them, 500 briefs (with corrections and
    retractions) published through all three at once, one node SIGKILLed halfway: every reader
    ends with exactly the stream's events, in order, and the surviving nodes answer the day
    and the feed's briefs byte for byte alike."""
    prefix = "nodes-" + uuid.uuid4().hex[:6]
    nodes = [LivefeedServer(redis_server.url, prefix) for _ in range(3)]
    admin = redis.Redis.from_url(redis_server.url, socket_timeout=10)
    readers: list[NodeReader] = []
    try:
        for node in nodes:
            node.start(log_dir=tmp_path)
        with httpx.Client(base_url=nodes[0].base, timeout=30) as client:
            slug = make_feed(client)
            start = publish(client, slug, "start")["id"]
        readers = [NodeReader(nodes, n, slug, start) for n in range(READERS)]
        await wait_for(lambda: all(r.live.is_set() for r in readers), 120, "readers did not join")

        acknowledged: list[str] = []
        killed = asyncio.Event()

        async def send(
            client: httpx.AsyncClient, turn: int, method: str, path: str, key: str, **body: str
        ) -> httpx.Response:
            """One write, through the next live node; moved to another when a node is gone
            (the Idempotency-Key makes a retried write happen once)."""
            while True:
                node = nodes[turn % 3]
                turn += 1
                if node.proc is None or node.proc.poll() is not None:
                    continue
                headers = {**auth(), "Idempotency-Key": key}
                try:
                    answer = await client.request(
                        method, node.base + path, json=body or None, headers=headers
                    )
                except httpx.TransportError:
                    continue
                if answer.status_code != 503:
                    return answer

        async def editor(k: int) -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                for n in range(k, BRIEFS, 3):
                    if n >= BRIEFS // 2 and not killed.is_set():
                        killed.set()
                        nodes[2].stop(signal.SIGKILL)
                    briefs = f"/api/feeds/{slug}/briefs"
                    made = await send(client, n, "POST", briefs, f"p{n}", headline=f"n{n}")
                    assert made.status_code == 201, made.text
                    brief = made.json()["id"]
                    acknowledged.append(brief)
                    if n % 10 == 9:
                        fixed = await send(client, n, "PATCH", f"{briefs}/{brief}", f"c{n}",
                                           headline=f"n{n} (corrected)")  # fmt: skip
                        assert fixed.status_code == 200, fixed.text
                    if n % 25 == 24:
                        gone = await send(client, n, "DELETE", f"{briefs}/{brief}", f"d{n}")
                        assert gone.status_code == 204, gone.text

        await asyncio.gather(*(editor(k) for k in range(3)))
        entries = admin.xrange(Keys(prefix).stream(slug)) or []
        stream = [raw.decode() for raw, _ in entries if isinstance(raw, bytes)]
        kinds = [fields[b"t"] for _, fields in entries if isinstance(fields, dict)]
        assert kinds.count(b"brief") == BRIEFS + 1, "a publish was lost or doubled"
        assert kinds.count(b"brief_updated") == BRIEFS // 10
        assert kinds.count(b"brief_deleted") == BRIEFS // 25
        assert set(acknowledged) <= set(stream)
        expected = stream[stream.index(start) + 1 :]
        await wait_for(
            lambda: all(r.since == stream[-1] for r in readers), 120, "readers fell behind"
        )
        for reader in readers:
            assert reader.events == expected, differences(reader.events, expected)
            assert reader.reloads == 0
        moved = [r for n, r in enumerate(readers) if n % 3 == 2]
        assert all(r.connects >= 2 for r in moved), "the killed node's readers never moved"
        survivors = nodes[:2]
        today = httpx.get(f"{survivors[0].base}/api/feeds/{slug}/days", timeout=30).json()
        for path in [
            f"/api/feeds/{slug}/briefs?limit=100",
            *(f"/api/feeds/{slug}/days/{day['date']}" for day in today["days"]),
        ]:
            bodies = {httpx.get(n.base + path, timeout=30).content for n in survivors}
            assert len(bodies) == 1, path
    finally:
        for reader in readers:
            await reader.stop()
        for node in nodes:
            node.stop()
        admin.close()
