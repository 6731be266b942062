"""Prometheus metrics: scraped from a real server with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import websockets
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from websockets.asyncio.client import ClientConnection

from helpers import LivefeedServer, RedisProcess, make_feed, publish, wait_until
from livefeed.metrics import time_collections
from livefeed.model.frames import Event
from livefeed.model.ids import ZERO_ID, StreamId
from livefeed.storage.entries import Entry
from livefeed.storage.keys import Keys
from livefeed.storage.tail import BlockingReader
from livefeed.stream.hub import Hub, TooSlow
from livefeed.stream.source import Followers

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def metered(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """A server of its own, so no other test's traffic moves these numbers."""
    srv = LivefeedServer(redis_server.url, "metrics-" + uuid.uuid4().hex[:6])
    srv.start(log_dir=tmp_path_factory.mktemp("metrics-logs"))
    yield srv
    srv.stop()


def scrape(base: str) -> Samples:
    response = httpx.get(base + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until_live(ws: ClientConnection) -> None:
    async with asyncio.timeout(10):
        while json.loads(await ws.recv())["type"] != "live":
            pass


async def next_brief(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == "brief":
                return frame


async def test_metrics_follow_readers_publishing_and_fan_out(metered: LivefeedServer) -> None:
    """Readers per feed, events published by type, deliveries and one fan-out per batch."""
    with httpx.Client(base_url=metered.base, timeout=10) as http:
        slug = make_feed(http)
        before = scrape(metered.base)
        readers = [await websockets.connect(f"{metered.ws_base}/ws/feeds/{slug}") for _ in range(3)]
        try:
            for ws in readers:
                await until_live(ws)
            assert value(scrape(metered.base), "livefeed_readers", feed=slug) == 3
            publish(http, slug, "Counted once, delivered three times")
            for ws in readers:
                await next_brief(ws)
            after = scrape(metered.base)
        finally:
            for ws in readers:
                await ws.close()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("livefeed_events_published_total", type="brief") == 1
    assert delta("livefeed_events_delivered_total") == 3
    assert delta("livefeed_fanout_seconds_count") == 1
    assert 0 < delta("livefeed_fanout_seconds_sum") < 1
    briefs = dict(method="POST", route="/api/feeds/{feed}/briefs", status="201")
    assert delta("livefeed_http_requests_total", **briefs) == 1
    wait_until(
        lambda: value(scrape(metered.base), "livefeed_readers", feed=slug) == 0,
        10,
        "the readers gauge did not fall back to 0 after the readers left",
    )


def test_http_requests_are_counted_by_route_template_not_raw_path(
    metered: LivefeedServer,
) -> None:
    """Two unknown feeds make one series for /api/feeds/{feed} with status 404, no raw slug."""
    before = scrape(metered.base)
    slugs = ["nope-" + uuid.uuid4().hex[:8] for _ in range(2)]
    for slug in slugs:
        assert httpx.get(f"{metered.base}/api/feeds/{slug}").status_code == 404
    httpx.get(f"{metered.base}/no/such/page/{slugs[0]}")
    after = scrape(metered.base)
    labels = dict(method="GET", route="/api/feeds/{feed}", status="404")
    count = "livefeed_http_requests_total"
    assert value(after, count, **labels) - value(before, count, **labels) == 2
    unmatched = dict(method="GET", route="unmatched", status="404")
    assert value(after, count, **unmatched) - value(before, count, **unmatched) == 1
    assert not [key for key in after if any(s in str(key) for s in slugs)], "raw paths leaked"
    assert value(after, "livefeed_http_request_duration_seconds_count", method="GET",
                 route="/api/feeds/{feed}") >= 2  # fmt: skip


def test_each_collection_is_timed_once_by_generation() -> None:
    """``time_collections`` times every collection of the cyclic collector into
    ``gc_pause_seconds{generation}``, once however often it is called."""
    time_collections()
    time_collections()
    name = "livefeed_gc_pause_seconds"

    def sample(kind: str, generation: str) -> float:
        return REGISTRY.get_sample_value(f"{name}_{kind}", {"generation": generation}) or 0.0

    enabled = gc.isenabled()
    gc.disable()  # no collection but these two meanwhile
    try:
        before = [sample("count", g) for g in "012"], sample("sum", "2")
        gc.collect()
        gc.collect(0)
    finally:
        if enabled:
            gc.enable()
    assert [sample("count", g) for g in "012"] == [before[0][0] + 1, before[0][1], before[0][2] + 1]
    assert sample("sum", "2") > before[1]


def test_the_server_exports_its_collector_pauses(metered: LivefeedServer) -> None:
    """A running server's ``/metrics`` has the collector's pauses for each generation."""
    samples = scrape(metered.base)
    for generation in "012":
        assert ("livefeed_gc_pause_seconds_count", (("generation", generation),)) in samples


async def test_replay_sessions_are_counted_while_they_play(metered: LivefeedServer) -> None:
    """A paused replay shows in the active gauge until its socket closes."""
    with httpx.Client(base_url=metered.base, timeout=10) as http:
        slug = make_feed(http)
        brief = publish(http, slug, "To replay")
    published = datetime.fromisoformat(brief["published_at"].replace("Z", "+00:00"))
    day = published.astimezone(ZoneInfo("Europe/Kyiv")).date().isoformat()
    before = scrape(metered.base)
    async with websockets.connect(f"{metered.ws_base}/ws/feeds/{slug}?replay={day}") as ws:
        assert json.loads(await ws.recv())["type"] == "replay_start"
        await ws.send(json.dumps({"action": "pause"}))
        during = scrape(metered.base)
    assert value(during, "livefeed_replay_sessions_active") == 1
    assert (
        value(during, "livefeed_replay_sessions_total")
        - value(before, "livefeed_replay_sessions_total")
        == 1
    )
    wait_until(
        lambda: value(scrape(metered.base), "livefeed_replay_sessions_active") == 0,
        10,
        "the replay gauge did not fall back to 0",
    )


def ev(n: int) -> Event:
    return Event.of(StreamId(n, 0), "brief", f'{{"n":{n}}}')


def local(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_hub_counts_readers_deliveries_and_slow_readers_in_process() -> None:
    """The hub sets the readers gauge, counts a batch's deliveries and closing a slow reader."""
    sent = asyncio.Event()

    async def source(feed: str) -> tuple[StreamId, AsyncIterator[list[Event]]]:
        async def batches() -> AsyncIterator[list[Event]]:
            yield [ev(1), ev(2)]
            sent.set()
            await asyncio.Event().wait()

        return StreamId(0, 0), batches()

    feed = "in-process-" + uuid.uuid4().hex[:6]
    slow_before = local("livefeed_slow_readers_closed_total")
    delivered_before = local("livefeed_events_delivered_total")
    batches_before = local("livefeed_fanout_seconds_count")
    hub = Hub(source, queue_limit=1)
    sub = await hub.subscribe(feed)
    assert local("livefeed_readers", feed=feed) == 1
    await asyncio.wait_for(sent.wait(), 5)
    assert local("livefeed_events_delivered_total") - delivered_before == 2
    assert local("livefeed_fanout_seconds_count") - batches_before == 1
    with pytest.raises(TooSlow):
        await sub.next_batch()
    assert local("livefeed_slow_readers_closed_total") - slow_before == 1
    hub.unsubscribe(sub)
    assert local("livefeed_readers", feed=feed) == 0
    await hub.close()


async def test_followers_count_each_redis_reconnect() -> None:
    """A stream read that loses Redis counts one reconnect, then carries on."""

    class FlakyReader(BlockingReader):
        """A reader whose first read loses Redis; its client never connects."""

        calls = 0

        async def read(
            self, positions: dict[str, StreamId], block_ms: int, count: int = 1000
        ) -> dict[str, list[Entry] | Exception]:
            self.calls += 1
            if self.calls == 1:
                raise RedisConnectionError("Redis went away")
            await asyncio.sleep(block_ms / 1000)
            return {}

    client = Redis()
    followers = Followers(FlakyReader(client, Keys()), 10)
    try:
        before = local("livefeed_redis_reconnects_total")
        batches = followers.follow("feed", ZERO_ID)
        assert await anext(batches) == []
        assert isinstance(batches, AsyncGenerator)  # so that it can be closed
        await batches.aclose()
        assert local("livefeed_redis_reconnects_total") - before == 1
    finally:
        await followers.close()
        await client.aclose()


async def test_with_two_workers_every_scrape_sums_all_workers(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Multiprocess mode: whichever worker answers, /metrics counts every worker's readers."""
    server = LivefeedServer(redis_server.url, "metrics-workers-" + uuid.uuid4().hex[:6])
    server.start("--workers", "2", log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            slug = make_feed(http)
            readers = [
                await websockets.connect(f"{server.ws_base}/ws/feeds/{slug}") for _ in range(6)
            ]
            try:
                for ws in readers:
                    await until_live(ws)
                publish(http, slug, "Summed")
                for ws in readers:
                    await next_brief(ws)
                scrapes = [scrape(server.base) for _ in range(6)]
            finally:
                for ws in readers:
                    await ws.close()
        for samples in scrapes:
            assert value(samples, "livefeed_readers", feed=slug) == 6
            assert value(samples, "livefeed_events_published_total", type="brief") == 1
            assert value(samples, "livefeed_events_delivered_total") == 6
    finally:
        server.stop()
