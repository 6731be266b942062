"""Faults: reconnect storms, server and Redis crashes, a Redis outage, stalled readers, churn.

Each test starts its own livefeed (and, where it stops Redis, its own redis-server) on free
loopback ports and stops them by PID. The assertions are on outcomes; the only clocks are bounds
on how long something may hang, so a loaded machine makes a test slower, not red.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import websockets
from playwright.sync_api import Page, expect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from helpers import (
    TOKEN,
    Follower,
    LivefeedServer,
    RedisProcess,
    auth,
    differences,
    make_feed,
    publish,
    stored_ids,
    stream_order,
    wait_for,
    wait_until,
)

pytestmark = pytest.mark.serial
"""Run after the parallel pass, alone on the machine: the storms and crashes here load both
cores themselves (scripts/test)."""

MiB = 1024 * 1024


# --- helpers -------------------------------------------------------------------------------------


def health(base: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(base + "/healthz", timeout=10)
    return response.status_code, response.json()


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def tcp_sockets(pid: int, redis_port: int) -> tuple[int, int]:
    """The process's open TCP sockets: (to anything but Redis, to Redis).

    The first number is the listening socket plus client connections; the second is the Redis
    connection pools, which keep connections open by design.
    """
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    clients = to_redis = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            if int(fields[2].rsplit(":", 1)[1], 16) == redis_port:
                to_redis += 1
            else:
                clients += 1
    return clients, to_redis


async def publish_many(
    port: int,
    slug: str,
    headlines: list[str],
    *,
    body: str = "Body.",
    every: float = 0.0,
) -> list[str]:
    """Publish over one keep-alive HTTP/1.1 connection, one brief ``every`` seconds (or as fast
    as they are answered); return the ids of the 201s.

    A 503 (Redis too slow on a machine under load) is retried after its ``Retry-After``, as an
    editor's client would; the refused attempt may still have been stored, which is why the
    tests compare readers with what the feed holds. Anything else fails the test.

    Hand-written because httpx spends about 2 ms of CPU per request: at thousands of briefs that
    would starve the readers sharing this event loop, and the test would measure itself.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def post(payload: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        writer.write(
            f"POST /api/feeds/{slug}/briefs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        status = int((await reader.readline()).split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, await reader.readexactly(int(headers[b"content-length"]))

    loop = asyncio.get_running_loop()
    began = loop.time()
    ids = []
    try:
        for n, headline in enumerate(headlines):
            await asyncio.sleep(began + n * every - loop.time())
            payload = orjson.dumps({"headline": headline, "body": body})
            for _ in range(10):
                status, headers, answer = await post(payload)
                if status != 503:
                    break
                await asyncio.sleep(min(float(headers[b"retry-after"]), 1.0))
            assert status == 201, answer
            ids.append(orjson.loads(answer)["id"])
    finally:
        writer.close()
    return ids


async def publish_concurrently(
    port: int, slug: str, count: int, publishers: int, **options: Any
) -> list[str]:
    """``count`` briefs from ``publishers`` connections at once; the ids in stream order."""
    batches = await asyncio.gather(
        *(
            publish_many(port, slug, [f"n{n}" for n in range(k, count, publishers)], **options)
            for k in range(publishers)
        )
    )
    return sorted((i for batch in batches for i in batch), key=stream_order)


def codes(readers: list[Follower]) -> set[int | None]:
    """Every close code the server sent to these readers."""
    return {code for reader in readers for code in reader.close_codes}


class StalledReader:
    """A WebSocket client on a plain socket that reads up to the ``live`` frame, then stops.

    Its receive buffer is shrunk to 4 KiB so the kernel cannot soak up the stream on its behalf.
    ``read_to_close()`` later takes in what the server managed to send, up to its close frame.
    """

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
        self.protocol.send_request(self.protocol.connect())
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        self.frames: list[dict[str, Any]] = []
        self.reset = False
        self._read(lambda: any(f["type"] == "live" for f in self.frames))

    def _read(self, done: Callable[[], bool]) -> None:
        while not done():
            try:
                data = self.sock.recv(256 * 1024)
            except ConnectionResetError:
                self.reset = True
                return
            if not data:
                self.protocol.receive_eof()
                return
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    self.frames.append(orjson.loads(event.data))

    def read_to_close(self) -> None:
        self._read(lambda: self.protocol.close_rcvd is not None)
        self.sock.close()

    @property
    def close_code(self) -> int | None:
        close = self.protocol.close_rcvd
        return close.code if close is not None else None

    @property
    def brief_ids(self) -> list[str]:
        return [f["event_id"] for f in self.frames if f["type"] == "brief"]


def abort_raw(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN: the peer learns nothing but that we are gone."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server for one test, which it may stop, kill and start again."""
    redis_proc = RedisProcess(tmp_path / "redis")
    redis_proc.start()
    yield redis_proc
    redis_proc.stop(signal.SIGKILL)


@contextlib.contextmanager
def livefeed_on(redis_proc: RedisProcess, tmp_path: Path) -> Iterator[LivefeedServer]:
    """A livefeed of its own (own key prefix) on ``redis_proc``; stopped, and its keys removed,
    on the way out, so the session's Redis does not carry this test's thousands of briefs."""
    prefix = "fault-" + uuid.uuid4().hex[:8]
    server = LivefeedServer(redis_proc.url, prefix)
    server.start(log_dir=tmp_path)
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(redis.RedisError), redis.Redis(port=redis_proc.port) as client:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for n in range(0, len(keys), 500):
                client.unlink(*keys[n : n + 500])


@pytest.fixture
def lone(redis_server: RedisProcess, tmp_path: Path) -> Iterator[LivefeedServer]:
    """A livefeed of its own on the session's Redis, for a test that loads or kills it."""
    with livefeed_on(redis_server, tmp_path) as server:
        yield server


@pytest.fixture
def isolated(own_redis: RedisProcess, tmp_path: Path) -> Iterator[LivefeedServer]:
    """A livefeed on a Redis of its own (``own_redis``), for a test that stops that Redis."""
    with livefeed_on(own_redis, tmp_path) as server:
        yield server


Follow = Callable[..., Follower]


@pytest.fixture
async def follow() -> AsyncIterator[Follow]:
    """``follow(server, slug, since, drop_after=...)`` starts a Follower; all stop at the end."""
    readers: list[Follower] = []

    def start(
        server: LivefeedServer,
        slug: str,
        since: str,
        drop_after: Callable[[], float | None] = lambda: None,
    ) -> Follower:
        reader = Follower(server.ws_base, slug, since, drop_after)
        readers.append(reader)
        return reader

    yield start
    await asyncio.gather(*(reader.stop() for reader in readers))


def feed_with_start(server: LivefeedServer) -> tuple[str, str]:
    """A new feed with one brief, "start": readers follow from it. Returns (slug, start id)."""
    with httpx.Client(base_url=server.base) as client:
        slug = make_feed(client)
        return slug, publish(client, slug, "start")["id"]


# --- 1. reconnect storm --------------------------------------------------------------------------


@pytest.mark.timeout(180)
async def test_reconnect_storm_every_reader_ends_with_every_brief_once_in_order(
    lone: LivefeedServer, follow: Follow
) -> None:
    """200 readers dropping abruptly and resuming with since while 1,000 briefs are published."""
    slug, start = feed_with_start(lone)
    rng = random.Random(6)
    publishing = True

    def dropper() -> Callable[[], float | None]:
        """Drop each connection within 0-2 s while publishing lasts, eight times at most."""
        left = 8

        def drop_after() -> float | None:
            nonlocal left
            if not publishing or left == 0:
                return None
            left -= 1
            return rng.uniform(0.0, 2.0)

        return drop_after

    readers = [follow(lone, slug, start, dropper()) for _ in range(200)]
    await wait_for(lambda: all(r.live.is_set() for r in readers), 60, "readers did not join")

    # 8 publishers, each at 20 briefs a second: 1,000 briefs spread over 6 s or more.
    acknowledged = await publish_concurrently(lone.port, slug, 1000, 8, every=0.05)
    publishing = False
    feed = (await asyncio.to_thread(stored_ids, lone.base, slug))[1:]  # after "start"
    assert len(acknowledged) == 1000 and set(acknowledged) <= set(feed)
    await wait_for(
        lambda: all(r.since == feed[-1] for r in readers),
        90,
        lambda: f"readers did not catch up; the server closed some with {codes(readers)}",
    )
    await asyncio.sleep(0.5)  # anything sent twice or late would arrive now

    for reader in readers:
        assert reader.ids == feed, differences(reader.ids, feed)
    drops = sum(r.connects for r in readers) - len(readers)
    assert drops >= 600, f"only {drops} drops: the storm was too calm to prove much"
    assert codes(readers) <= {4408}, f"the server closed readers with {codes(readers)}"


# --- 2. server crash, seen from the real page ----------------------------------------------------


def publish_through_a_crash(
    base: str, slug: str, target: int, acknowledged: list[str], stop: threading.Event
) -> None:
    """Publish one brief after another, on through refused connections, until ``target`` got a
    201 (for at most a minute); keep the 201s' ids."""
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=base, timeout=5) as client:
        for n in itertools.count():
            if stop.is_set() or len(acknowledged) >= target or time.monotonic() > deadline:
                return
            try:
                response = client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": f"brief {n}"}, headers=auth()
                )
            except httpx.HTTPError:
                time.sleep(0.1)  # the server is down: that brief was never acknowledged
                continue
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
            time.sleep(0.1)


@pytest.mark.browser
def test_after_a_server_sigkill_mid_publish_the_page_reconnects_and_shows_every_stored_brief(
    lone_page: Page, lone: LivefeedServer, tmp_path: Path
) -> None:
    """Every 201 survives the kill; the open reader page comes back by itself and shows them."""
    page = lone_page
    slug, _ = feed_with_start(lone)
    page.goto(f"{lone.base}/feeds/{slug}")
    status = page.locator("#conn-status")
    expect(status).to_have_attribute("data-state", "live", timeout=10_000)

    acknowledged: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=publish_through_a_crash, args=(lone.base, slug, 14, acknowledged, stop)
    )
    worker.start()
    try:
        wait_until(lambda: len(acknowledged) >= 5, 30, "publishing did not get going")
        lone.kill()
        acknowledged_before_kill = len(acknowledged)
        expect(status).not_to_have_attribute("data-state", "live", timeout=10_000)
        lone.start(log_dir=tmp_path)  # same port
        worker.join(90)
    finally:
        stop.set()
        worker.join(30)
    assert len(acknowledged) > acknowledged_before_kill, "nothing was published after the restart"

    stored = stored_ids(lone.base, slug)  # oldest first
    assert set(acknowledged) <= set(stored), "an acknowledged brief was lost"
    assert len(stored) < 20, "more than the page shows at first: the count would prove nothing"
    expect(status).to_have_attribute("data-state", "live", timeout=40_000)
    items = page.locator("#briefs > li.brief")
    expect(items).to_have_count(len(stored), timeout=10_000)
    shown = items.evaluate_all("items => items.map((item) => item.id)")
    assert shown == stored[::-1], "the page shows every stored brief once, newest first"


# --- 3. Redis outage -----------------------------------------------------------------------------


async def test_redis_outage_refuses_publishing_with_503_keeps_sockets_open_and_loses_nothing(
    isolated: LivefeedServer, own_redis: RedisProcess, follow: Follow
) -> None:
    """Redis stopped for five seconds under a running publisher and eight open readers."""
    slug, start = feed_with_start(isolated)
    readers = [follow(isolated, slug, start) for _ in range(8)]
    await wait_for(lambda: all(r.live.is_set() for r in readers), 30, "readers did not join")

    acknowledged: list[str] = []
    refused: list[httpx.Response] = []
    slowest = 0.0
    running = True

    async def publisher() -> None:
        nonlocal slowest
        async with httpx.AsyncClient(base_url=isolated.base, timeout=30) as client:
            for n in itertools.count():
                if not running:
                    return
                began = time.monotonic()
                response = await client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": f"n{n}"}, headers=auth()
                )
                slowest = max(slowest, time.monotonic() - began)
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])
                else:
                    refused.append(response)
                await asyncio.sleep(0.05)

    publishing = asyncio.create_task(publisher())
    try:
        await wait_for(
            lambda: publishing.done() or len(acknowledged) >= 20, 30, "publishing did not start"
        )
        own_redis.stop()
        down_since = time.monotonic()
        await wait_for(
            lambda: publishing.done() or len(refused) >= 3, 30, "publishing was not refused"
        )
        status, body = await asyncio.to_thread(health, isolated.base)
        assert (status, body["status"], body["redis"]) == (503, "unhealthy", "unreachable")
        async with websockets.connect(f"{isolated.ws_base}/ws/feeds/{slug}?since={start}") as late:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(late.recv(), 15)
        assert late.close_code == 1013, "a reader arriving during the outage is told to retry"
        await asyncio.sleep(down_since + 5 - time.monotonic())
        assert all(r.connects == 1 and not r.close_codes for r in readers), "a socket was closed"

        acknowledged_before_restart = len(acknowledged)
        own_redis.start()
        await wait_for(
            lambda: publishing.done() or len(acknowledged) >= acknowledged_before_restart + 20,
            60,
            "publishing did not resume",
        )
    finally:
        running = False
        await publishing  # and raises whatever stopped it

    for response in refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
        assert int(response.headers["retry-after"]) > 0
    assert slowest < 10, f"a publish hung for {slowest:.1f} s instead of being refused"

    stored = await asyncio.to_thread(stored_ids, isolated.base, slug)
    assert set(acknowledged) <= set(stored), "an acknowledged brief was lost"
    await wait_for(lambda: all(r.since == stored[-1] for r in readers), 60, "readers fell behind")
    for reader in readers:
        assert reader.ids == stored[1:], differences(reader.ids, stored[1:])
        assert reader.connects == 1 and not reader.close_codes, "the socket stayed open"


# --- 4. Redis crash (external Redis) -------------------------------------------------------------


async def test_briefs_acknowledged_just_before_an_external_redis_sigkill_survive_it(
    isolated: LivefeedServer, own_redis: RedisProcess
) -> None:
    """Redis with appendfsync always is killed in the middle of a burst; every 201 is kept."""
    slug, start = feed_with_start(isolated)
    acknowledged: list[str] = []
    answers: list[int] = []

    async def publisher(client: httpx.AsyncClient, k: int) -> None:
        for n in range(1000):
            try:
                response = await client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": f"{k}-{n}"}, headers=auth()
                )
            except httpx.HTTPError:
                return
            answers.append(response.status_code)
            if response.status_code != 201:
                return
            acknowledged.append(response.json()["id"])

    async with httpx.AsyncClient(base_url=isolated.base, timeout=30) as client:
        burst = asyncio.gather(*(publisher(client, k) for k in range(8)))
        await wait_for(lambda: len(acknowledged) >= 300, 60, "the burst did not get going")
        own_redis.stop(signal.SIGKILL)
        await burst
    assert set(answers) == {201, 503}, f"answers around the crash: {set(answers)}"

    own_redis.start()  # same port, same data directory
    wait_until(lambda: health(isolated.base)[0] == 200, 30, "livefeed did not see Redis back")
    stored = stored_ids(isolated.base, slug)
    assert set(acknowledged) <= set(stored), "an acknowledged brief was lost"
    async with websockets.connect(f"{isolated.ws_base}/ws/feeds/{slug}?since={start}") as ws:
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while not frames or frames[-1]["type"] != "live":
                frames.append(json.loads(await ws.recv()))
    streamed = [f["event_id"] for f in frames if f["type"] == "brief"]
    assert streamed == stored[1:], "the stream holds the same briefs as the state"


# --- 5. stalled readers at volume ----------------------------------------------------------------

STALLED = 10
VOLUME = 10_000
BODY = "A paragraph of reporting. " * 160  # ~4 KB: each stalled reader is owed ~42 MB


@pytest.mark.timeout(240)
async def test_readers_that_never_read_are_closed_4408_without_growing_memory_and_catch_up(
    lone: LivefeedServer, follow: Follow
) -> None:
    """10,000 briefs flow past ten stalled readers; four normal readers get them all."""
    assert lone.proc is not None
    pid = lone.proc.pid
    slug, start = feed_with_start(lone)
    normal = [follow(lone, slug, start) for _ in range(4)]
    await wait_for(lambda: all(r.live.is_set() for r in normal), 30, "readers did not join")
    path = f"/ws/feeds/{slug}?since={start}"
    stalled = [await asyncio.to_thread(StalledReader, lone.port, path) for _ in range(STALLED)]
    try:
        assert (await asyncio.to_thread(health, lone.base))[1]["readers"] == 4 + STALLED
        baseline = peak = rss(pid)
        publishing = asyncio.create_task(
            publish_concurrently(lone.port, slug, VOLUME, 16, body=BODY)
        )
        # The hub drops the stalled readers as their buffers fill. Read their sockets right then,
        # while their close frames are on the way: a peer that does not take its close frame
        # within seconds is cut off with a reset instead.
        async with httpx.AsyncClient(base_url=lone.base, timeout=10) as client:
            while (await client.get("/healthz")).json()["readers"] > 4:
                peak = max(peak, rss(pid))
                if publishing.done():
                    publishing.result()  # raises what went wrong, if anything did
                    raise AssertionError("the stalled readers were never dropped")
                await asyncio.sleep(0.05)
        await asyncio.gather(*(asyncio.to_thread(s.read_to_close) for s in stalled))
        while not publishing.done():
            peak = max(peak, rss(pid))
            await asyncio.sleep(0.2)
        acknowledged = await publishing
    finally:
        for reader in stalled:
            reader.sock.close()
    feed = (await asyncio.to_thread(stored_ids, lone.base, slug))[1:]  # after "start"
    assert len(acknowledged) == VOLUME and set(acknowledged) <= set(feed)
    await wait_for(lambda: all(r.since == feed[-1] for r in normal), 60, "normal readers lag")
    peak = max(peak, rss(pid))

    for follower in normal:
        assert follower.ids == feed, differences(follower.ids, feed)
        assert follower.connects == 1 and not follower.close_codes, "a normal reader was cut off"
    for reader in stalled:
        assert not reader.reset, "a stalled reader was reset before its close frame came"
        assert reader.close_code == 4408
        got = reader.brief_ids
        assert 0 < len(got) < len(feed) and got == feed[: len(got)], "a prefix, in order"
    # Buffering without a bound would hold ~10 x 40 MB by now; with it, each stalled reader may
    # have 1 MiB queued, plus what the allocator keeps under load.
    growth = (peak - baseline) / MiB
    assert growth < 150, f"server RSS grew by {growth:.0f} MiB"

    seen = stalled[0].brief_ids
    resumed = follow(lone, slug, seen[-1])
    await wait_for(lambda: resumed.since == feed[-1], 60, "the slow reader did not catch up")
    assert resumed.ids == feed[len(seen) :], differences(resumed.ids, feed[len(seen) :])


# --- 6. churn ------------------------------------------------------------------------------------


async def open_and_drop(server: LivefeedServer, slug: str, since: str, how: str) -> None:
    """One connection, dropped without a close frame at one of several stages."""
    loop = asyncio.get_running_loop()
    if how == "handshake":  # half an upgrade request, then a reset
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        request = f"GET /ws/feeds/{slug} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        await loop.sock_sendall(sock, request.encode())
        abort_raw(sock)
        return
    query = "" if how == "snapshot" else f"?since={since}"
    ws = await websockets.connect(f"{server.ws_base}/ws/feeds/{slug}{query}", open_timeout=30)
    if how in ("live", "snapshot"):
        async with asyncio.timeout(30):
            while orjson.loads(await ws.recv())["type"] != "live":
                pass
    ws.transport.abort()  # "opened": straight after the handshake, during the catch-up


@pytest.mark.timeout(240)
async def test_churn_of_dropped_connections_leaves_no_reader_task_socket_or_memory_behind(
    lone: LivefeedServer, redis_server: RedisProcess, follow: Follow
) -> None:
    """2,000 connections dropped without a close frame, in rounds, while briefs are published."""
    assert lone.proc is not None
    pid = lone.proc.pid
    with httpx.Client(base_url=lone.base) as client:
        slug = make_feed(client)
        for n in range(30):  # some history, so catch-ups and snapshots have work to do
            publish(client, slug, f"old {n}")
        start = publish(client, slug, "start")["id"]
    keeper = follow(lone, slug, start)  # stays connected throughout
    await wait_for(keeper.live.is_set, 30, "the keeper did not join")
    rng = random.Random(6)

    async def round_of(count: int) -> None:
        limit = asyncio.Semaphore(100)

        async def one() -> None:
            async with limit:
                how = rng.choice(["handshake", "opened", "live", "snapshot"])
                await open_and_drop(lone, slug, start, how)

        publisher = publish_many(lone.port, slug, ["during"] * 10)
        await asyncio.gather(publisher, *(one() for _ in range(count)))
        await asyncio.to_thread(wait_until, lambda: readers() == 1, 30, "dropped readers stay")

    def readers() -> int:
        return int(health(lone.base)[1]["readers"])

    def load() -> tuple[int, int]:
        """Live asyncio tasks, and TCP sockets other than to Redis, in the server process."""
        return health(lone.base)[1]["tasks"], tcp_sockets(pid, redis_server.port)[0]

    await round_of(200)  # warm-up: pools and caches reach their working size
    tasks_before, sockets_before = await asyncio.to_thread(load)
    redis_before = tcp_sockets(pid, redis_server.port)[1]
    rss_before = rss(pid)

    for _ in range(4):
        await round_of(500)

    def nothing_left() -> bool:
        tasks, sockets = load()
        return tasks <= tasks_before + 3 and sockets <= sockets_before + 2

    # Slack: a healthz connection of ours may be open, a task may be finishing a close.
    try:
        await asyncio.to_thread(wait_until, nothing_left, 30, "")
    except TimeoutError:
        raise AssertionError(
            f"tasks and sockets: {(tasks_before, sockets_before)} before, {load()} after"
        ) from None
    assert tcp_sockets(pid, redis_server.port)[1] <= redis_before + 64, "Redis pools grew"
    growth = (rss(pid) - rss_before) / MiB
    assert growth < 64, f"server RSS grew by {growth:.0f} MiB"

    stored = await asyncio.to_thread(stored_ids, lone.base, slug)
    feed = stored[stored.index(start) + 1 :]
    await wait_for(lambda: keeper.since == feed[-1], 30, "the keeper fell behind")
    assert keeper.ids == feed, differences(keeper.ids, feed)
    assert keeper.connects == 1, "the churn cut off a reader that stayed"


# --- dropped readers --------------------------------------------------------------------------


async def test_readers_dropped_mid_burst_get_no_more_writes_and_flood_no_warnings(
    lone: LivefeedServer, follow: Follow
) -> None:
    """Once a reader's connection has failed the hub stops writing to it: the log stays quiet."""
    slug, start = feed_with_start(lone)
    readers = [follow(lone, slug, start) for _ in range(200)]
    await wait_for(lambda: all(r.live.is_set() for r in readers), 30, "readers did not join")
    publishing = asyncio.create_task(publish_concurrently(lone.port, slug, 3000, 16))
    await wait_for(lambda: all(len(r.ids) >= 100 for r in readers), 60, "no burst")
    for reader in readers:  # one after another while the burst flows
        await reader.stop()
        await asyncio.sleep(0.005)
    await publishing
    await asyncio.to_thread(
        wait_until, lambda: health(lone.base)[1]["readers"] == 0, 30, "readers stayed"
    )
    warnings = lone.log().count("socket.send() raised exception.")
    assert warnings == 0, f"{warnings} writes to connections already lost"


async def test_readers_dropped_mid_catch_up_get_no_more_writes_and_flood_no_warnings(
    lone: LivefeedServer, follow: Follow
) -> None:
    """A reader dropped during its catch-up is not written the rest of it: the log stays quiet."""
    slug, start = feed_with_start(lone)
    await publish_concurrently(lone.port, slug, 2000, 16)  # four catch-up pages
    feed = (await asyncio.to_thread(stored_ids, lone.base, slug))[1:]
    rng = random.Random(6)

    def dropper() -> Callable[[], float | None]:
        """Drop the first five connections within 0.3 s, mid catch-up; keep the sixth."""
        drops = iter([rng.uniform(0.0, 0.3) for _ in range(5)])
        return lambda: next(drops, None)

    readers = [follow(lone, slug, start, dropper()) for _ in range(30)]
    await wait_for(lambda: all(r.since == feed[-1] for r in readers), 60, "readers lag")
    for reader in readers:
        assert reader.ids == feed, differences(reader.ids, feed)
    warnings = lone.log().count("socket.send() raised exception.")
    assert warnings == 0, f"{warnings} writes to connections already lost"
