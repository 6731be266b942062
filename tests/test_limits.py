"""Abuse limits and security headers, against real servers with the limits turned on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from helpers import TOKEN, LivefeedServer, RedisProcess, auth, livefeed, make_feed
from livefeed.config import Settings


@pytest.fixture(scope="module")
def strict_server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    server = LivefeedServer(
        redis_server.url,
        "strict-" + uuid.uuid4().hex[:6],
        LIVEFEED_EDITOR_RATE="1",
        LIVEFEED_EDITOR_BURST="3",
        LIVEFEED_ADDRESS_WRITE_RATE="2",
        LIVEFEED_ADDRESS_WRITE_BURST="12",
        LIVEFEED_CONNECTIONS_PER_ADDRESS="3",
        LIVEFEED_ALLOWED_ORIGINS="https://news.example, http://127.0.0.1",
        LIVEFEED_FRAME_ANCESTORS="'self' https://partner.example",
    )
    server.start(log_dir=tmp_path_factory.mktemp("strict"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict_feed(redis_server: RedisProcess, strict_server: LivefeedServer) -> str:
    """A feed on the strict server, made with the CLI so that the editor's burst stays whole."""
    slug = "strict-" + uuid.uuid4().hex[:8]
    done = livefeed("feed", "create", slug, "--title", "Strict", "--timezone", "UTC",
                    "--redis-url", redis_server.url, "--key-prefix", strict_server.prefix)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return slug


def test_an_editor_over_the_rate_gets_429_with_retry_after(strict_server: LivefeedServer) -> None:
    with httpx.Client(base_url=strict_server.base) as client:
        slug = make_feed(client)  # one of the editor's burst of 3
        codes = [
            client.post(
                f"/api/feeds/{slug}/briefs", json={"headline": f"n{n}"}, headers=auth()
            ).status_code
            for n in range(4)
        ]
        assert codes[:2] == [201, 201] and codes[-1] == 429
        refused = client.post(
            f"/api/feeds/{slug}/briefs", json={"headline": "again"}, headers=auth()
        )
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert len(client.get(f"/api/feeds/{slug}/briefs").json()["briefs"]) == codes.count(201)


async def test_guessing_tokens_from_one_address_is_rate_limited(
    strict_server: LivefeedServer,
) -> None:
    # Sent together, so the bucket's refill while a loaded machine answers cannot keep up.
    async with httpx.AsyncClient(base_url=strict_server.base, timeout=30) as client:
        replies = await asyncio.gather(*(
            client.post(
                "/api/feeds/x/briefs", json={}, headers={"Authorization": f"Bearer guess-{n}"}
            )
            for n in range(40)
        ))  # fmt: skip
    codes = [reply.status_code for reply in replies]
    assert 401 in codes and 429 in codes, codes
    assert "guess-" not in strict_server.log(), "tokens never reach the log"


async def test_websocket_origin_allow_list_is_enforced_when_set(
    strict_server: LivefeedServer, strict_feed: str
) -> None:
    slug = strict_feed
    url = f"{strict_server.ws_base}/ws/feeds/{slug}"
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url, origin=Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    async with websockets.connect(url, origin=Origin("https://news.example")) as ws:
        assert '"type":"snapshot"' in await asyncio.wait_for(ws.recv(), 5)


async def test_connections_per_address_are_capped(
    strict_server: LivefeedServer, strict_feed: str
) -> None:
    slug = strict_feed
    url = f"{strict_server.ws_base}/ws/feeds/{slug}?since=0"
    first = [await websockets.connect(url, origin=Origin("http://127.0.0.1")) for _ in range(3)]
    try:
        with pytest.raises(InvalidStatus):
            await websockets.connect(url, origin=Origin("http://127.0.0.1"))
        await first.pop().close()
        async with asyncio.timeout(30):  # the server frees the slot once it sees the close
            while len(first) < 3:
                with contextlib.suppress(InvalidStatus):
                    first.append(await websockets.connect(url, origin=Origin("http://127.0.0.1")))
                await asyncio.sleep(0.05)
    finally:
        for ws in first:
            await ws.close()


BUDGET = Settings().reader_messages_per_minute


async def talk_until_closed(ws: ClientConnection) -> int:
    """Send messages, one at a time, until the server's close arrives (at most ten budgets'
    worth, and a minute); return how many were sent. The server counts only what it reads once
    the reader is caught up, so a fixed number sent at once could all land before that."""
    sent = 0
    async with asyncio.timeout(60):
        with contextlib.suppress(websockets.ConnectionClosed):
            while ws.close_code is None and sent < 10 * BUDGET:
                await ws.send(f"hello {sent}")
                sent += 1
                await asyncio.sleep(0.01 if sent > BUDGET else 0)  # let the close come in
            while True:
                await ws.recv()
    return sent


async def until_live(ws: ClientConnection) -> None:
    while json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] != "live":
        pass


async def test_a_reader_that_keeps_talking_is_closed_with_1008(
    server: LivefeedServer, feed: str
) -> None:
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") as ws:
        sent = await talk_until_closed(ws)
    assert ws.close_code == 1008
    assert sent > BUDGET


async def test_an_oversized_frame_from_a_reader_is_closed_with_1009(
    server: LivefeedServer, feed: str
) -> None:
    async with websockets.connect(f"{server.ws_base}/ws/feeds/{feed}") as ws:
        await ws.send("x" * 100_000)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1009


async def test_a_caught_up_reader_that_talks_or_sends_a_huge_frame_is_closed_too(
    server: LivefeedServer, feed: str
) -> None:
    """The same limits hold once the reader is parked (the protocol, not a task, reads it)."""
    url = f"{server.ws_base}/ws/feeds/{feed}"
    async with websockets.connect(url) as ws:
        await until_live(ws)
        await talk_until_closed(ws)
    assert ws.close_code == 1008
    # One oversized frame only: a peer still sending after the close may get a reset instead.
    async with websockets.connect(url) as ws:
        await until_live(ws)
        await ws.send("x" * 100_000)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 30)
    assert ws.close_code == 1009


def test_oversized_headers_get_a_4xx_and_the_server_carries_on(server: LivefeedServer) -> None:
    with httpx.Client(base_url=server.base) as client:
        response = client.get("/healthz", headers={"X-Padding": "x" * 40_000})
        assert 400 <= response.status_code < 500
        assert client.get("/healthz").status_code == 200


def test_pages_carry_the_configured_frame_policy(
    strict_server: LivefeedServer, server: LivefeedServer
) -> None:
    strict = httpx.get(strict_server.base + "/").headers["content-security-policy"]
    assert "frame-ancestors 'self' https://partner.example" in strict
    default = httpx.get(server.base + "/").headers
    assert "frame-ancestors 'self'" in default["content-security-policy"]
    assert default["referrer-policy"] == "strict-origin-when-cross-origin"
    assert default["x-content-type-options"] == "nosniff"


def test_token_checks_are_constant_time_and_tokens_are_stored_hashed(
    redis_server: RedisProcess, server: LivefeedServer, tmp_path: Path
) -> None:
    import redis

    name = "Hash " + uuid.uuid4().hex[:6]
    token = livefeed(
        "token", "create", name, "--redis-url", redis_server.url, "--key-prefix", server.prefix
    ).stdout.strip()
    client = redis.Redis.from_url(redis_server.url)
    try:
        # redis-py types replies as bytes | str; a client without decode_responses gets bytes.
        tokens = cast(dict[bytes, bytes], client.hgetall(f"{server.prefix}:tokens"))
        hashes = cast(dict[bytes, bytes], client.hgetall(f"{server.prefix}:token-hashes"))
        dump = b"".join(v for v in tokens.values())
        dump += b"".join(hashes.keys())
    finally:
        client.close()
    assert token.encode() not in dump, "only a hash of the token is stored"
    assert TOKEN not in server.log() and token not in server.log()


def test_recently_valid_tokens_are_remembered_for_their_time_and_within_their_number() -> None:
    """A digest is known until its time runs out; past the size the oldest is forgotten."""
    from livefeed.limits import RecentlyValid

    now = [0.0]
    known = RecentlyValid(ttl=10, size=2, clock=lambda: now[0])
    known.add("a")
    known.add("b")
    assert "a" in known and "b" in known and "c" not in known
    known.add("a")  # renewed: now the newest
    known.add("c")
    assert "b" not in known and "a" in known and "c" in known
    now[0] = 11.0
    assert "a" not in known


def test_an_editors_rate_holds_across_nodes_on_one_redis(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Two nodes on one Redis share the editor's bucket: 20 rapid publishes spread over both
    get the burst of 5 and what the rate (1/s) refilled meanwhile, not 5 per node."""
    prefix = "shared-" + uuid.uuid4().hex[:6]
    nodes = [
        LivefeedServer(
            redis_server.url, prefix, LIVEFEED_EDITOR_RATE="1", LIVEFEED_EDITOR_BURST="5"
        )
        for _ in range(2)
    ]
    slug = "shared-" + uuid.uuid4().hex[:8]
    done = livefeed("feed", "create", slug, "--title", "Shared", "--timezone", "UTC",
                    "--redis-url", redis_server.url, "--key-prefix", prefix)  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        for node in nodes:
            node.start(log_dir=tmp_path)
        began = time.monotonic()
        codes = []
        for n in range(20):
            node = nodes[n % 2]
            response = httpx.post(
                f"{node.base}/api/feeds/{slug}/briefs", json={"headline": f"n{n}"},
                headers=auth(), timeout=30,
            )  # fmt: skip
            codes.append(response.status_code)
        elapsed = time.monotonic() - began
    finally:
        for node in nodes:
            node.stop()
    assert set(codes) <= {201, 429}, codes
    assert 5 <= codes.count(201) <= 5 + int(elapsed) + 1, (codes, elapsed)
