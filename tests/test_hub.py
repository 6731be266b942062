"""The hub's fan-out, with an in-memory source instead of Redis: fast and deterministic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from livefeed.hub import Closing, Hub, TooSlow
from livefeed.models import Event, StreamId


def ev(n: int) -> Event:
    return Event(StreamId(n, 0), "brief", f'{{"n":{n}}}')


class MemorySource:
    """Feeds batches pushed by the test; ``fail`` makes settling the start position raise."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[list[Event]]] = {}
        self.starts = 0
        self.fail = False

    async def __call__(self, feed: str) -> AsyncIterator[list[Event]]:
        self.starts += 1
        if self.fail:
            raise ConnectionError("redis down")
        queue = self.queues.setdefault(feed, asyncio.Queue())

        async def batches() -> AsyncIterator[list[Event]]:
            while True:
                yield await queue.get()

        return batches()

    def emit(self, feed: str, *events: Event) -> None:
        self.queues[feed].put_nowait(list(events))


async def test_every_subscriber_gets_each_event_in_order() -> None:
    source = MemorySource()
    hub = Hub(source)
    subs = [await hub.subscribe("a") for _ in range(3)]
    source.emit("a", ev(1), ev(2))
    source.emit("a", ev(3))
    for sub in subs:
        got: list[Event] = []
        while len(got) < 3:
            got += await asyncio.wait_for(sub.next_batch(), 1)
        assert [e.id for e in got] == [StreamId(1, 0), StreamId(2, 0), StreamId(3, 0)]
    assert source.starts == 1, "one stream reader per feed, not per subscriber"
    await hub.close()


async def test_feeds_are_isolated() -> None:
    source = MemorySource()
    hub = Hub(source)
    a, b = await hub.subscribe("a"), await hub.subscribe("b")
    source.emit("a", ev(1))
    assert [e.id for e in await asyncio.wait_for(a.next_batch(), 1)] == [StreamId(1, 0)]
    await asyncio.sleep(0.01)
    assert len(b) == 0
    await hub.close()


async def test_a_full_queue_marks_only_that_subscriber_too_slow() -> None:
    source = MemorySource()
    hub = Hub(source, queue_limit=5)
    slow, fast = await hub.subscribe("a"), await hub.subscribe("a")
    for n in range(1, 8):
        source.emit("a", ev(n))
        await asyncio.wait_for(fast.next_batch(), 1)
    with pytest.raises(TooSlow):
        await slow.next_batch()
    assert len(slow) == 0, "an overflowing queue is dropped, not kept"
    await hub.close()


async def test_reset_after_overflow_lets_catch_up_continue() -> None:
    source = MemorySource()
    hub = Hub(source, queue_limit=2)
    sub = await hub.subscribe("a")
    source.emit("a", ev(1), ev(2), ev(3))
    await asyncio.sleep(0.01)
    assert sub.overflowed
    sub.reset()
    source.emit("a", ev(4))
    assert [e.id for e in await asyncio.wait_for(sub.next_batch(), 1)] == [StreamId(4, 0)]
    await hub.close()


async def test_close_tells_subscribers_to_go_away() -> None:
    source = MemorySource()
    hub = Hub(source)
    sub = await hub.subscribe("a")
    await hub.close()
    with pytest.raises(Closing) as info:
        await sub.next_batch()
    assert info.value.code == 1001
    with pytest.raises(Closing):
        await hub.subscribe("a")


async def test_subscribe_fails_when_the_source_cannot_start_and_retries_later() -> None:
    source = MemorySource()
    source.fail = True
    hub = Hub(source)
    with pytest.raises(ConnectionError):
        await hub.subscribe("a")
    assert hub.count() == 0
    source.fail = False
    sub = await hub.subscribe("a")
    source.emit("a", ev(1))
    assert len(await asyncio.wait_for(sub.next_batch(), 1)) == 1
    await hub.close()


async def test_idle_batches_become_heartbeats() -> None:
    source = MemorySource()
    hub = Hub(source)
    sub = await hub.subscribe("a")
    source.emit("a")
    batch = await asyncio.wait_for(sub.next_batch(), 1)
    assert batch[0].type == "heartbeat" and batch[0].id is None
    await hub.close()


async def test_unsubscribed_readers_are_not_counted() -> None:
    source = MemorySource()
    hub = Hub(source)
    sub = await hub.subscribe("a")
    assert hub.count("a") == 1
    hub.unsubscribe(sub)
    assert hub.count("a") == 0 and hub.count() == 0
    await hub.close()
