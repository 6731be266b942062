"""A primary crash under load behind Sentinel, with a lagging replica: what a 201 promises.

A primary, a replica whose link to it goes through a proxy that holds every chunk 50 ms each
way (helpers' ``DelayProxy``; what it holds when the primary dies is lost with it, as with a
crashed machine) and three Sentinels, all on free loopback ports (helpers' ``SentinelSet``).
The Sentinels' failover-timeout is set far above the test's length: sooner, they would put the
replica back on the primary's real address, around the proxy. 16 editors publish over real HTTP
while readers follow over WebSocket, and the primary is SIGKILLed mid-run.

Without waiting for the replica, the 50 ms lag alone lost acknowledged briefs in most runs by
hand (8-20 in each of four on a quiet machine; 0 in two of seven under load), too seldom to
be a test: the proof that the first test can fail stalls the link just before the kill.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from helpers import (
    Follower,
    LivefeedServer,
    SentinelSet,
    auth,
    differences,
    make_feed,
    wait_for,
)
from livefeed.storage.keys import Keys

PUBLISHERS = 16
READERS = 4
MAX_PUBLISHES = 150
"""Per publisher: a bound on the run, far above what it gets through before it is stopped."""
PREFIX = "lf-failover"


@dataclass(frozen=True)
class Answer:
    """One publish: when it was sent and answered, its status, and the brief id or error code."""

    sent: float
    at: float
    status: int
    brief: str | None
    code: str | None
    retry_after: str | None


@pytest.fixture
def lagged(tmp_path: Path) -> Iterator[SentinelSet]:
    group = SentinelSet(tmp_path / "redis", lag=0.05, failover_timeout_ms=600_000)
    group.start()
    try:
        yield group
    finally:
        group.stop()


def start_node(url: str, tmp_path: Path, min_replicas: int) -> LivefeedServer:
    node = LivefeedServer(
        url, PREFIX, LIVEFEED_MIN_REPLICAS=str(min_replicas), LIVEFEED_REPLICA_TIMEOUT="1"
    )
    node.start(log_dir=tmp_path)
    return node


class Publishers:
    """Editors publishing to one feed through one node until stopped (or out of count)."""

    def __init__(self, base: str, slug: str, count: int) -> None:
        self.answers: list[Answer] = []
        self.running = True
        self.tasks = [asyncio.create_task(self._run(base, slug, k)) for k in range(count)]

    async def _run(self, base: str, slug: str, k: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for n in range(MAX_PUBLISHES):
                if not self.running:
                    return
                sent = time.monotonic()
                response = await client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": f"e{k} n{n}"}, headers=auth()
                )
                ok = response.status_code == 201
                body = response.json()
                self.answers.append(
                    Answer(
                        sent,
                        time.monotonic(),
                        response.status_code,
                        body["id"] if ok else None,
                        None if ok else body.get("error", {}).get("code"),
                        response.headers.get("retry-after"),
                    )
                )
                if not ok:
                    await asyncio.sleep(0.05)

    def acknowledged(self, after: float = 0.0) -> list[str]:
        return [a.brief for a in self.answers if a.brief is not None and a.sent > after]

    async def stop(self) -> None:
        self.running = False
        await asyncio.gather(*self.tasks)


def stream_on(port: int, slug: str) -> list[str]:
    """The ids of the feed's stream on the Redis at ``port``."""
    client = redis.Redis(port=port, socket_timeout=10)
    try:
        entries = client.xrange(Keys(PREFIX).stream(slug)) or []
        return [raw.decode() for raw, _ in entries if isinstance(raw, bytes)]
    finally:
        client.close()


def replication(port: int) -> dict[str, str]:
    """INFO replication of the Redis at ``port``, or {} while it does not answer."""
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        info = client.info("replication")
    except (redis.ConnectionError, redis.TimeoutError):
        return {}
    finally:
        client.close()
    return {k: str(v) for k, v in info.items()}


async def kill_primary_under_load(
    group: SentinelSet, publishers: list[Publishers], before: int, stalled: int = 0
) -> tuple[float, float]:
    """Once the node's publishers have ``before`` 201s, check the replica still reads
    through the proxy and SIGKILL the primary; returns when it was killed and when the
    Sentinels named the replica in its place. With ``stalled``, the link stops forwarding
    first and the kill waits for that many 201s sent after it."""
    assert group.proxy is not None
    main = publishers[0]
    await wait_for(
        lambda: len(main.acknowledged()) >= before, 60, "too few publishes before the kill"
    )
    link = replication(group.replica.port)
    assert link.get("master_port") == str(group.proxy.port), link
    assert link.get("master_link_status") == "up", link
    if stalled:
        group.proxy.hold()
        held = time.monotonic()
        await wait_for(
            lambda: len(main.acknowledged(held)) >= stalled, 60, "no 201 on the stalled link"
        )
    group.primary.stop(signal.SIGKILL)
    killed = time.monotonic()
    await wait_for(
        lambda: group.primary_port() == group.replica.port, 60, "the Sentinels did not fail over"
    )
    return killed, time.monotonic()


@pytest.mark.timeout(300)
async def test_a_primary_crash_loses_no_acknowledged_brief_when_writes_wait(
    lagged: SentinelSet, tmp_path: Path
) -> None:
    """With LIVEFEED_MIN_REPLICAS=1, SIGKILL the primary under 16 publishers: every 201 is on
    the new primary's stream; the node reaches it within 5 s of the switch, answering 201 or
    503 with Retry-After, never 500; the old primary, restarted before the Sentinels demote it,
    never gives a 201 to a node still pointed at it; readers end with exactly the stream."""
    old = lagged.primary
    node = start_node(lagged.url, tmp_path, 1)
    stale = start_node(old.url, tmp_path, 1)  # a node that still names the old primary
    readers: list[Follower] = []
    try:
        with httpx.Client(base_url=node.base, timeout=10) as client:
            slug = make_feed(client)
        readers = [
            Follower(node.ws_base, slug, "0", lambda: None, reload_from="0") for _ in range(READERS)
        ]
        await wait_for(lambda: all(r.live.is_set() for r in readers), 30, "readers not live")
        main = Publishers(node.base, slug, PUBLISHERS)
        behind = Publishers(stale.base, slug, 1)
        try:
            killed, switched = await kill_primary_under_load(lagged, [main, behind], 48)
            old.start()  # back before its demotion: a primary with no replica
            restarted = time.monotonic()
            await wait_for(
                lambda: replication(old.port).get("master_port") == str(lagged.replica.port),
                60,
                "the Sentinels did not demote the old primary",
            )
            demoted = time.monotonic()
            await wait_for(
                lambda: len(main.acknowledged(demoted)) >= 20, 60, "no 201 after the demotion"
            )
        finally:
            await main.stop()
            await behind.stop()
        answers = main.answers + behind.answers
        assert {a.status for a in answers} <= {201, 503}, {a.status for a in answers}
        for answer in answers:
            if answer.status == 503:
                assert answer.code in {"unavailable", "not_replicated"}, answer
                assert answer.retry_after is not None and int(answer.retry_after) > 0, answer
        stream = stream_on(lagged.replica.port, slug)
        acknowledged = main.acknowledged() + behind.acknowledged()
        lost = set(acknowledged) - set(stream)
        assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged briefs lost"
        reached = [a.at for a in main.answers if a.sent > switched and a.code != "unavailable"]
        assert reached and reached[0] - switched <= 5, "the node did not follow within 5 s"
        assert not behind.acknowledged(killed), "a 201 from the old primary"
        assert any(
            a.code == "not_replicated" for a in behind.answers if restarted < a.sent < demoted
        ), "the stale node never reached the restarted old primary"
        await wait_for(
            lambda: all(r.ids == stream for r in readers),
            60,
            lambda: "; ".join(differences(r.ids, stream) for r in readers),
        )
        for name, log in (("node", node.log()), ("stale", stale.log())):
            assert "Traceback" not in log, f"{name}:\n{log}"
    finally:
        for reader in readers:
            await reader.stop()
        stale.stop()
        node.stop()


@pytest.mark.timeout(300)
async def test_without_waiting_a_primary_crash_loses_acknowledged_briefs(
    lagged: SentinelSet, tmp_path: Path
) -> None:
    """The same crash with LIVEFEED_MIN_REPLICAS=0, the replica's link stalled just before it:
    every brief that got its 201 on the stalled link is missing from the new primary, which
    is what the test above would catch if writes stopped waiting."""
    node = start_node(lagged.url, tmp_path, 0)
    try:
        with httpx.Client(base_url=node.base, timeout=10) as client:
            slug = make_feed(client)
        main = Publishers(node.base, slug, PUBLISHERS)
        try:
            _, switched = await kill_primary_under_load(lagged, [main], 48, stalled=5)
            await wait_for(
                lambda: len(main.acknowledged(switched)) >= 10, 60, "no 201 after the switch"
            )
        finally:
            await main.stop()
        stream = set(stream_on(lagged.replica.port, slug))
        lost = [brief for brief in main.acknowledged() if brief not in stream]
        assert len(lost) >= 5, f"{len(lost)} acknowledged briefs lost; 5 were sent on the stall"
    finally:
        node.stop()
