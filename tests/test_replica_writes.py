"""Concurrent writes that wait for a replica (``LIVEFEED_MIN_REPLICAS=1``) over a lagging link.

One primary, one replica whose link to it is held 20 ms each way (helpers.DelayProxy), and one
livefeed for the module: every publish's script and ``WAIT`` go down one connection in one
round trip, many at once, and each is acknowledged once and replicated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from helpers import DelayProxy, LivefeedServer, RedisProcess, auth, make_feed, wait_until
from livefeed.storage.keys import Keys

EDITORS = 24


@pytest.fixture(scope="module")
def lagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisProcess, RedisProcess]]:
    tmp: Path = tmp_path_factory.mktemp("replica-writes")
    primary = RedisProcess(tmp / "primary")
    replica = RedisProcess(tmp / "replica")
    primary.start()
    proxy = DelayProxy(primary.port, 0.02)
    try:
        replica.start("--replicaof", "127.0.0.1", str(proxy.port))
        try:
            wait_until(replica.in_sync, 30, "the replica did not sync")
            yield primary, replica
        finally:
            replica.stop()
    finally:
        proxy.stop()
        primary.stop()


@pytest.fixture(scope="module")
def server(
    lagged: tuple[RedisProcess, RedisProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    live = LivefeedServer(
        lagged[0].url, "lf-rw", LIVEFEED_MIN_REPLICAS="1", LIVEFEED_REPLICA_TIMEOUT="10"
    )
    live.start(log_dir=tmp_path_factory.mktemp("replica-writes-log"))
    try:
        yield live
    finally:
        live.stop()


def stream_ids(node: RedisProcess, slug: str) -> list[str]:
    client = redis.Redis(port=node.port, socket_timeout=5)
    try:
        entries = client.xrange(Keys("lf-rw").stream(slug)) or []
        return [raw.decode() for raw, _ in entries if isinstance(raw, bytes)]
    finally:
        client.close()


async def publish_all(base: str, slug: str, count: int) -> list[httpx.Response]:
    """``count`` publishes at once, each on its own connection."""

    async def one(n: int) -> httpx.Response:
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=auth()) as client:
            return await client.post(f"/api/feeds/{slug}/briefs", json={"headline": f"n{n}"})

    return await asyncio.gather(*(one(n) for n in range(count)))


def test_concurrent_waiting_publishes_are_each_acknowledged_once_and_replicated(
    lagged: tuple[RedisProcess, RedisProcess], server: LivefeedServer
) -> None:
    """Many publishes at once, each waiting for the lagging replica: every one is 201 with its
    own id, the stream holds exactly those, and so does the replica once the 201s are in."""
    primary, replica = lagged
    with httpx.Client(base_url=server.base, timeout=30) as client:
        slug = make_feed(client)
    answers = asyncio.run(publish_all(server.base, slug, EDITORS))
    assert [a.status_code for a in answers] == [201] * EDITORS, [a.text for a in answers]
    ids = sorted(a.json()["id"] for a in answers)
    assert len(set(ids)) == EDITORS
    assert set(ids) <= set(stream_ids(primary, slug))
    assert set(ids) <= set(stream_ids(replica, slug))  # no wait: the 201 meant it is there


def test_a_waiting_write_is_one_round_trip_without_a_script_check(
    lagged: tuple[RedisProcess, RedisProcess], server: LivefeedServer
) -> None:
    """A waiting write sends its script by EVALSHA beside the WAIT, never SCRIPT EXISTS first
    (which redis-py's pipeline adds for a Script: a second round trip per write)."""
    primary, _ = lagged
    with httpx.Client(base_url=server.base, timeout=30) as client:
        slug = make_feed(client)
        admin = redis.Redis(port=primary.port, socket_timeout=5)
        try:
            admin.config_resetstat()
            for n in range(3):
                made = client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": f"h{n}"}, headers=auth()
                )
                assert made.status_code == 201, made.text
            stats = admin.info("commandstats")
        finally:
            admin.close()
    assert "cmdstat_script|exists" not in stats
    assert stats["cmdstat_evalsha"]["calls"] >= 3
    assert stats["cmdstat_wait"]["calls"] >= 3


def test_a_waiting_write_after_a_script_cache_flush_loads_it_and_appends_once(
    lagged: tuple[RedisProcess, RedisProcess], server: LivefeedServer
) -> None:
    """With Redis's script cache flushed (a restart, a failover), the next waiting publish is
    one 201 and one stream entry, on the replica too: NOSCRIPT ran nothing, so it is sent again."""
    primary, replica = lagged
    with httpx.Client(base_url=server.base, timeout=30) as client:
        slug = make_feed(client)
        admin = redis.Redis(port=primary.port, socket_timeout=5)
        try:
            admin.script_flush()
        finally:
            admin.close()
        made = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "Again"}, headers=auth())
        assert made.status_code == 201, made.text
    ids = stream_ids(primary, slug)
    assert ids.count(made.json()["id"]) == 1
    assert made.json()["id"] in stream_ids(replica, slug)
