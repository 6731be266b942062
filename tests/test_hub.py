"""The hub's fan-out, with an in-memory source instead of Redis: fast and deterministic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from livefeed.model.frames import Event
from livefeed.model.ids import StreamId
from livefeed.stream.hub import Closing, Hub, TooSlow


def ev(n: int) -> Event:
    return Event.of(StreamId(n, 0), "brief", f'{{"n":{n}}}')


class MemorySource:
    """Feeds batches pushed by the test; ``fail`` makes settling the start position raise.

    ``settled(feed)`` waits until the hub has handed out every batch emitted to the feed, so a
    test can look at what the subscribers got without guessing how long that takes.
    """

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[list[Event]]] = {}
        self.starts = 0
        self.fail = False
        self.emitted: dict[str, int] = {}
        self.handled: dict[str, int] = {}
        self._progress = asyncio.Event()

    async def __call__(self, feed: str) -> tuple[StreamId, AsyncIterator[list[Event]]]:
        self.starts += 1
        if self.fail:
            raise ConnectionError("redis down")
        queue = self.queues.setdefault(feed, asyncio.Queue())

        async def batches() -> AsyncIterator[list[Event]]:
            while True:
                yield await queue.get()
                # The hub asks for the next batch only once it has handed this one out.
                self.handled[feed] = self.handled.get(feed, 0) + 1
                self._progress.set()

        return StreamId(0, 0), batches()

    def emit(self, feed: str, *events: Event) -> None:
        self.queues[feed].put_nowait(list(events))
        self.emitted[feed] = self.emitted.get(feed, 0) + 1

    async def settled(self, feed: str, timeout: float = 10) -> None:
        """Wait (up to ``timeout`` s) until the hub has handed out every batch emitted to ``feed``."""
        async with asyncio.timeout(timeout):
            while self.handled.get(feed, 0) < self.emitted.get(feed, 0):
                self._progress.clear()
                await self._progress.wait()


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
    await source.settled("a")
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
    await source.settled("a")
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


def split_frames(data: bytes) -> list[bytes]:
    """The WebSocket frames (server to client: unmasked) written back to back in ``data``."""
    frames, at = [], 0
    while at < len(data):
        size, head = data[at + 1] & 0x7F, 2
        if size == 126:
            size, head = int.from_bytes(data[at + 2 : at + 4]), 4
        elif size == 127:
            size, head = int.from_bytes(data[at + 2 : at + 10]), 10
        frames.append(data[at : at + head + size])
        at += head + size
    return frames


class FakeSocket:
    """Stands in for a connection (a ``DirectSocket``): takes frames until it is 'full'."""

    deflate = False

    def __init__(self, room: int = 1000) -> None:
        self.frames: list[bytes] = []
        self.room = room
        self.closed: tuple[int, str] | None = None
        self.limits: set[int] = set()

    def send_frames(self, data: bytes, limit: int) -> bool:
        self.limits.add(limit)
        frames = split_frames(data)
        if len(self.frames) + len(frames) > self.room:
            return False
        self.frames.extend(frames)
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_a_caught_up_reader_is_written_to_directly_without_duplicates() -> None:
    source = MemorySource()
    hub = Hub(source)
    sub = await hub.subscribe("a")
    socket = FakeSocket()
    assert sub.go_direct(StreamId(2, 0), socket, 4096)
    source.emit("a", ev(1), ev(2), ev(3))  # 1 and 2 were already sent during catch-up
    source.emit("a", ev(4))
    await source.settled("a")
    assert socket.frames == [ev(3).wire, ev(4).wire]
    assert socket.limits == {4096}, "every write carries the reader's buffer limit"
    assert len(sub) == 0, "nothing queued in direct mode"
    await hub.close()
    assert socket.closed == (1001, "server restarting")


async def test_going_direct_waits_until_the_queue_is_drained() -> None:
    source = MemorySource()
    hub = Hub(source)
    sub = await hub.subscribe("a")
    source.emit("a", ev(1))
    await source.settled("a")
    socket = FakeSocket()
    assert not sub.go_direct(StreamId(0, 0), socket, 1 << 20), "queued events first"
    assert [e.id for e in sub.take()] == [StreamId(1, 0)]
    assert sub.go_direct(StreamId(1, 0), socket, 1 << 20)
    await hub.close()


async def test_a_direct_reader_that_cannot_keep_up_is_closed_as_too_slow() -> None:
    source = MemorySource()
    hub = Hub(source)
    slow_sub, fast_sub = await hub.subscribe("a"), await hub.subscribe("a")
    slow, fast = FakeSocket(room=2), FakeSocket()
    slow_sub.go_direct(StreamId(0, 0), slow, 1 << 20)
    fast_sub.go_direct(StreamId(0, 0), fast, 1 << 20)
    source.emit("a", *(ev(n) for n in range(1, 6)))
    await source.settled("a")
    assert slow.closed is not None and slow.closed[0] == 4408
    assert len(fast.frames) == 5, "the others get everything"
    with pytest.raises(TooSlow):
        await slow_sub.next_batch()
    await hub.close()


async def test_a_source_that_fails_closes_the_feeds_subscribers_with_1013() -> None:
    """Batches that raise end the feed's reader task: its subscribers are told to come back
    (1013) instead of waiting forever, and the next subscriber gets a fresh reader."""
    starts = 0

    async def source(feed: str) -> tuple[StreamId, AsyncIterator[list[Event]]]:
        nonlocal starts
        starts += 1
        first = starts == 1

        async def batches() -> AsyncIterator[list[Event]]:
            yield [ev(starts)]
            if first:
                raise RuntimeError("a reply the source did not expect")
            await asyncio.Event().wait()

        return StreamId(0, 0), batches()

    hub = Hub(source)
    sub = await hub.subscribe("a")
    with pytest.raises(Closing) as closing:
        while True:
            await asyncio.wait_for(sub.next_batch(), 1)
    assert closing.value.code == 1013
    assert hub.count("a") == 0
    again = await hub.subscribe("a")
    assert [e.id for e in await asyncio.wait_for(again.next_batch(), 1)] == [StreamId(2, 0)]
    await hub.close()


class RawSocket(FakeSocket):
    """A ``FakeSocket`` that keeps each write's bytes object as it was handed over."""

    def __init__(self, deflate: bool) -> None:
        super().__init__()
        self.deflate = deflate
        self.raw: list[bytes] = []

    def send_frames(self, data: bytes, limit: int) -> bool:
        self.raw.append(data)
        return super().send_frames(data, limit)


async def test_a_deflating_hub_writes_one_compressed_frame_to_every_deflate_reader() -> None:
    """With ``deflate`` each batch is compressed once: every deflate reader is handed the very
    same bytes (``Event.deflated_wire``), a plain reader the plain frame."""
    source = MemorySource()
    hub = Hub(source, deflate=True)
    sockets = [RawSocket(deflate=True), RawSocket(deflate=True), RawSocket(deflate=False)]
    for sock in sockets:
        sub = await hub.subscribe("a")
        assert sub.go_direct(StreamId(0, 0), sock, 4096)
    big = Event.of(StreamId(1, 0), "brief", '{"body":"' + "words " * 100 + '"}')
    source.emit("a", big)
    await source.settled("a")
    one, two, plain = (sock.raw for sock in sockets)
    assert one == [big.deflated_wire()] and one[0] is two[0]
    assert plain == [big.wire] and big.deflated_wire() != big.wire
