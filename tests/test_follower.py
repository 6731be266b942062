"""A feed's follower (the hub's one stream reader per feed) never dies silently: it rides out
any Redis error, logging and counting it, and a follower that ends anyway closes its readers
with 1013 so they come back at once. Against a Redis of its own, whose ACLs the tests change;
on both transports (``helpers.TRANSPORTS``), since the 1013 reaches a parked reader and one served
through ASGI by different paths.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

from helpers import TRANSPORTS, LivefeedServer, RedisProcess, make_feed, publish, wait_until
from livefeed.storage.keys import Keys

USER, PASSWORD = "livefeed", "follower-test-password"


@dataclass
class Stack:
    process: RedisProcess
    server: LivefeedServer
    admin: redis.Redis

    def acl(self, *rules: str) -> None:
        """Change what livefeed's Redis user may do; it applies to open connections at once."""
        self.admin.execute_command("ACL", "SETUSER", USER, *rules)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module", params=sorted(TRANSPORTS))
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """A Redis where livefeed logs in as a user of its own, and a livefeed server on it, for
    each transport in turn."""
    store = RedisProcess(tmp_path_factory.mktemp("redis-acl"))
    store.start()
    try:
        with redis.Redis(port=store.port) as admin:
            admin.execute_command("ACL", "SETUSER", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all")
            url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{store.port}/0"
            server = LivefeedServer(url, "acl-" + uuid.uuid4().hex[:6], **TRANSPORTS[request.param])
            server.start(log_dir=tmp_path_factory.mktemp("logs-acl"))
            try:
                yield Stack(store, server, admin)
            finally:
                server.stop()
    finally:
        store.stop()


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.server.base, timeout=10) as client:
        yield client


def counter(base: str, name: str, **labels: str) -> float:
    response = httpx.get(base + "/metrics", timeout=10)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def next_frame(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] != "heartbeat":
                return frame


async def until_live(ws: ClientConnection) -> None:
    while (await next_frame(ws, 10))["type"] != "live":
        pass


def log_lines(server: LivefeedServer, text: str) -> list[str]:
    return [line for line in server.log().splitlines() if text in line]


async def test_a_reader_gets_the_next_brief_after_the_followers_xread_rights_come_back(
    stack: Stack, http: httpx.Client
) -> None:
    """XREAD revoked by ACL for 3 s: the follower retries, logs the episode once, counts it, and
    a parked reader gets every brief within 5 s of the rights coming back."""
    slug = make_feed(http)
    errors = "livefeed_stream_read_errors_total"
    before = counter(stack.server.base, errors, error="NoPermissionError")
    ws = await websockets.connect(f"{stack.server.ws_base}/ws/feeds/{slug}")
    try:
        await until_live(ws)
        stack.acl("-xread")
        revoked = time.monotonic()
        try:
            during = publish(http, slug, "while XREAD is revoked")  # wakes the blocked XREAD
            await asyncio.sleep(max(0.0, revoked + 3 - time.monotonic()))
        finally:
            stack.acl("+xread")
        restored = time.monotonic()
        after = publish(http, slug, "after XREAD is back")
        got: list[str] = []
        while len(got) < 2:
            frame = await next_frame(ws, max(0.1, restored + 5 - time.monotonic()))
            got.append(frame["event_id"])
        assert got == [during["id"], after["id"]]
    finally:
        await ws.close()
    assert counter(stack.server.base, errors, error="NoPermissionError") > before
    failed = log_lines(stack.server, f"reading feed {slug} from Redis failed")
    assert len(failed) == 1 and "NoPermissionError" in failed[0], failed
    wait_until(
        lambda: len(log_lines(stack.server, f"reading feed {slug} from Redis works again")) == 1,
        10,
        "the recovery was not logged once",
    )


async def test_a_follower_that_ends_closes_its_readers_with_1013(
    stack: Stack, http: httpx.Client
) -> None:
    """An entry the follower cannot read (not livefeed's) ends it: its readers are closed with
    1013 at once, the failure is logged and counted, and the next reader gets a new follower."""
    slug = make_feed(http)
    before = counter(stack.server.base, "livefeed_followers_failed_total")
    readers = [
        await websockets.connect(f"{stack.server.ws_base}/ws/feeds/{slug}") for _ in range(3)
    ]
    try:
        for ws in readers:
            await until_live(ws)
        stack.admin.xadd(Keys(stack.server.prefix).stream(slug), {"foreign": "entry"})
        for ws in readers:
            with pytest.raises(websockets.ConnectionClosed):
                await next_frame(ws, 10)
            assert ws.close_code == 1013, ws.close_code
    finally:
        for ws in readers:
            await ws.close()
    assert counter(stack.server.base, "livefeed_followers_failed_total") == before + 1
    assert len(log_lines(stack.server, f"following feed {slug} failed")) == 1
    async with websockets.connect(f"{stack.server.ws_base}/ws/feeds/{slug}") as ws:
        await until_live(ws)
        brief = publish(http, slug, "to the new follower")
        assert (await next_frame(ws, 10))["event_id"] == brief["id"]


async def test_a_redis_error_during_a_catch_up_or_replay_closes_with_1013_not_1011(
    stack: Stack, http: httpx.Client
) -> None:
    """XRANGE refused (NOPERM) while a reader catches up or a day replays: the socket is closed
    with 1013 (try again later), quietly, not 1011 with a traceback."""
    slug = make_feed(http, timezone="UTC")
    first = publish(http, slug, "before")
    publish(http, slug, "after")
    today = first["published_at"][:10]
    logged = len(stack.server.log())
    stack.acl("-xrange")
    try:
        for query in (f"since={first['id']}", f"replay={today}&speed=1000"):
            ws = await websockets.connect(f"{stack.server.ws_base}/ws/feeds/{slug}?{query}")
            try:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await next_frame(ws, 10)
                    await next_frame(ws, 10)
            finally:
                await ws.close()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, query
    finally:
        stack.acl("+xrange")
    assert "Traceback" not in stack.server.log()[logged:]
