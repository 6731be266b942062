"""Redis with Sentinel: livefeed finds the primary through the Sentinels and follows a failover.

Each test starts its own primary, replica and three Sentinels on free loopback ports (helpers'
``SentinelSet``) and its own livefeed, and stops them by PID.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import (
    Follower,
    LivefeedServer,
    SentinelSet,
    auth,
    differences,
    livefeed,
    make_feed,
    stored_ids,
    wait_for,
    wait_until,
)


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    group = SentinelSet(tmp_path / "redis")
    group.start()
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def node(sentinels: SentinelSet, tmp_path: Path) -> Iterator[LivefeedServer]:
    server = LivefeedServer(sentinels.url, "lf-sentinel")
    server.start(log_dir=tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_a_node_reaches_the_primary_the_sentinels_name(
    sentinels: SentinelSet, node: LivefeedServer
) -> None:
    """Through a redis+sentinel:// URL a node publishes to the primary, the replica has it,
    and ``livefeed check`` says writes wait for the replica by default."""
    with httpx.Client(base_url=node.base, timeout=10) as client:
        slug = make_feed(client)
        response = client.post(
            f"/api/feeds/{slug}/briefs", json={"headline": "Via Sentinel"}, headers=auth()
        )
        assert response.status_code == 201, response.text
        assert client.get("/healthz").json()["redis"] == "ok"
    assert stored_ids(node.base, slug) == [response.json()["id"]]
    wait_until(sentinels.replica_in_sync, 10, "the replica fell out of sync")
    check = livefeed("check", "--redis-url", sentinels.url, LIVEFEED_EDITOR_TOKEN="t" * 24)
    assert "reachable at redis+sentinel://" in check.stdout, check.stdout + check.stderr
    assert "every 2xx waits until 1 of them" in check.stdout, check.stdout


async def test_a_node_follows_a_failover_without_a_restart_answering_503_never_500(
    sentinels: SentinelSet, node: LivefeedServer
) -> None:
    """SIGKILL the primary under a publisher and a reader, then restart it: publishes are 201
    or 503 (with Retry-After) while the Sentinels promote the replica and demote the old
    primary, then 201 again; every 201 is on the new primary (writes wait for a replica), and
    the reader, on the same node, gets every brief acknowledged after the switch."""
    with httpx.Client(base_url=node.base, timeout=10) as client:
        slug = make_feed(client)
        first = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "n0"}, headers=auth())
        assert first.status_code == 201, first.text
    # A brief the old primary took but never replicated may reach the reader before the kill;
    # the stream it then resumes on lacks it, so the node sends a reload, as a page would get.
    reader = Follower(node.ws_base, slug, first.json()["id"], lambda: None, first.json()["id"])
    acknowledged: list[tuple[float, str]] = []
    refused: list[httpx.Response] = []
    running = True

    async def publisher() -> None:
        async with httpx.AsyncClient(base_url=node.base, timeout=30) as client:
            for n in itertools.count(1):
                if not running:
                    return
                response = await client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": f"n{n}"}, headers=auth()
                )
                if response.status_code == 201:
                    acknowledged.append((time.monotonic(), response.json()["id"]))
                else:
                    refused.append(response)
                await asyncio.sleep(0.05)

    publishing = asyncio.create_task(publisher())
    try:
        await wait_for(lambda: reader.live.is_set(), 30, "the reader did not join")
        await wait_for(lambda: publishing.done() or len(acknowledged) >= 10, 30, "no publishes")
        old_primary = sentinels.primary.port
        sentinels.primary.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        await wait_for(
            lambda: sentinels.primary_port() not in (None, old_primary), 60, "no failover"
        )
        promoted = sentinels.primary_port()  # a loaded machine may fail over again later
        # The new primary has no replica yet: writes wait for one (503) until the old primary,
        # restarted, is made its replica by the Sentinels. It never answers a 201 itself.
        sentinels.primary.start()
        await wait_for(
            lambda: publishing.done() or sum(at > killed_at for at, _ in acknowledged) >= 20,
            60,
            "publishing did not resume on the new primary",
        )
    finally:
        running = False
        try:
            await publishing
        finally:
            await asyncio.sleep(0)  # let the reader take what is in flight before it stops
    try:
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] in {"unavailable", "not_replicated"}
            assert int(response.headers["retry-after"]) > 0
        stored = await asyncio.to_thread(stored_ids, node.base, slug)
        after = [brief for at, brief in acknowledged if at > killed_at]
        lost = {brief for _, brief in acknowledged} - set(stored)
        assert not lost, f"{len(lost)} acknowledged briefs lost in the failover"
        await wait_for(lambda: reader.since == stored[-1], 60, "the reader fell behind")
        assert reader.ids == stored[1:], differences(reader.ids, stored[1:])
        assert set(after) <= set(reader.ids)
    finally:
        await reader.stop()
    assert promoted == sentinels.replica.port
    assert "Traceback" not in node.log()


def test_a_sentinel_url_that_cannot_be_parsed_stops_serve_with_a_clear_line() -> None:
    """``serve`` with a Sentinel URL naming no primary exits 64 (usage) with one line."""
    result = livefeed("serve", "--port", "0", "--redis-url", "redis+sentinel://127.0.0.1:26379")
    assert result.returncode == 64, result.stderr
    assert "must name the primary" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_redis_url_scheme_stops_serve_with_a_clear_line() -> None:
    """``serve`` with a scheme livefeed does not speak exits 64 naming the schemes it does."""
    result = livefeed("serve", "--port", "0", "--redis-url", "memcached://127.0.0.1:11211")
    assert result.returncode == 64, result.stderr
    assert "redis+sentinel://" in result.stderr
