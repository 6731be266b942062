"""Per-process fan-out: one reader task per feed; each reader gets a bounded queue while it
catches up, then direct writes.

The hub knows nothing of Redis or Starlette. It is given a ``Source`` that, for a feed, settles a
start position and returns the stream's batches from there on; it hands each event (whose frame was
built once) to every subscriber of the feed without awaiting any of them: into the queue of a
reader still catching up, straight onto the socket of one that has caught up. Direct readers that
negotiated permessage-deflate get each event's compressed frame, also built once
(``Event.deflated_wire``), the others the plain one (gorilla/websocket's PreparedMessage). A
subscriber whose queue or socket buffer is full is flagged as too slow, closed with 4408, and
resumes with ``since``. A feed's reader task never ends silently: should its batches stop (a
source retries what it can itself), that is logged and counted, and the feed's readers are closed
with 1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from livefeed import metrics
from livefeed.errors import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN_LATER,
    LivefeedException,
)
from livefeed.model.frames import Event, control_frame
from livefeed.model.ids import StreamId, iso_ms, now_ms
from livefeed.stream.socket import DirectSocket

log = logging.getLogger("livefeed.stream.hub")

Source = Callable[[str], Awaitable[tuple[StreamId, AsyncIterator[list[Event]]]]]
"""Given a feed slug, settle the current stream position; return it and the batches after it.

An empty batch means "nothing happened for a while" and becomes a heartbeat frame. The batches
should never end; if they do (or raise), the feed's readers are closed with 1013.
"""


FANOUT_CHUNK = 500


class TooSlow(LivefeedException):
    """The subscriber's queue overflowed: it fell too far behind the stream."""


class StreamGap(LivefeedException):
    """A source found entries missing between two it read (a failover lost some, or they were
    deleted): every subscriber of the feed may have seen or missed events it should not have,
    so each is closed with 1013 and resumes with ``since``, where the catch-up's chain check
    tells it to reload."""


class Closing(LivefeedException):
    """The hub is shutting down or dropped the subscriber; ``code`` is the close code to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_NO_QUEUE: deque[Event] = deque(maxlen=0)
"""The queue of every subscriber that went direct: it drops anything put in it."""


class Subscriber:
    """One reader: a bounded queue the connection drains, or, once it has caught up, a direct
    writer the hub calls for each event (no task switch per reader per event)."""

    __slots__ = (
        "_buffer_limit",
        "_closing",
        "_deflate",
        "_limit",
        "_position",
        "_queue",
        "_socket",
        "_wakeup",
        "feed",
        "overflowed",
        "start",
    )

    def __init__(self, feed: str, limit: int) -> None:
        self.feed = feed
        self.overflowed = False
        self._limit = limit
        self._queue: deque[Event] = deque()
        self._wakeup: asyncio.Event | None = None  # made when someone waits
        self._closing: Closing | None = None
        self._socket: DirectSocket | None = None
        self._buffer_limit = 0
        self._deflate = False
        self._position = -1
        self.start = StreamId(0, 0)

    def push(
        self, events: list[Event], wire: bytes | None = None, deflated: bytes | None = None
    ) -> None:
        """Hand over events without waiting; flag the subscriber rather than grow past the limit.

        ``wire`` is the events' frames joined, built once per batch for every direct reader;
        ``deflated`` their ``deflated_wire`` joined, for those that negotiated deflate.
        """
        if self.overflowed or self._closing is not None or not events:
            return
        sock = self._socket
        if sock is not None:
            position = self._position
            if self._deflate:
                wire = deflated
            if wire is None or 0 <= events[0].order <= position:  # joined mid-batch: rare
                wire = b"".join(
                    e.deflated_wire() if self._deflate else e.wire
                    for e in events
                    if e.order < 0 or e.order > position
                )
            last = events[-1].order
            if last > position:
                self._position = last
            if wire and not sock.send_frames(wire, self._buffer_limit):
                self._socket = None
                self.overflowed = True
                sock.close(CLOSE_TOO_SLOW, "too slow: reconnect with since")
            return
        if len(self._queue) + len(events) > self._limit:
            self.overflowed = True
            self._queue.clear()
        else:
            self._queue.extend(events)
        if self._wakeup is not None:
            self._wakeup.set()

    def go_direct(self, position: StreamId, sock: DirectSocket, buffer_limit: int) -> bool:
        """Switch to direct writes to ``sock`` if nothing is queued (the caller sends that
        first); atomic with respect to the hub, since there is no ``await`` between the check
        and the switch. A socket holding more than ``buffer_limit`` unsent bytes is closed 4408;
        one that negotiated deflate (``sock.deflate``) gets each event's ``deflated_wire``."""
        if self._queue or self.overflowed or self._closing is not None:
            return False
        self._position = position.ms << 64 | position.seq
        self._socket = sock
        self._buffer_limit = buffer_limit
        self._deflate = sock.deflate
        self._queue = _NO_QUEUE  # never used again: free this reader's own
        self._wakeup = None
        return True

    def redirect(self, sock: DirectSocket) -> None:
        """Write to ``sock`` from now on: the connection was handed to it (``park``)."""
        if self._socket is not None:
            self._socket = sock

    def take(self) -> list[Event]:
        """Whatever is queued, without waiting."""
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def reset(self) -> None:
        """Forget an overflow during catch-up: the events it dropped are re-read from the stream."""
        self.overflowed = False
        self._queue.clear()

    def close(self, code: int, reason: str) -> None:
        self._closing = Closing(code, reason)
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close(code, reason)
        if self._wakeup is not None:
            self._wakeup.set()

    async def next_batch(self) -> list[Event]:
        """Wait for queued events and take them all; raise TooSlow or Closing instead."""
        while True:
            if self._closing is not None:
                raise self._closing
            if self.overflowed:
                metrics.SLOW_READERS_CLOSED.inc()  # its connection closes it (4408) now
                raise TooSlow
            if self._queue:
                return self.take()
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()

    def __len__(self) -> int:
        return len(self._queue)


class _Channel:
    """The subscribers of one feed and the task that reads its stream."""

    def __init__(self, feed: str) -> None:
        self.feed = feed
        self.subscribers: set[Subscriber] = set()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.idle_since: float | None = None
        self.readers_gauge = metrics.readers_gauge(feed)
        self.position = StreamId(0, 0)
        self.inflight: list[Event] | None = None


class Hub:
    """Fans each feed's events out to that feed's subscribers in this process."""

    def __init__(
        self,
        source: Source,
        *,
        queue_limit: int = 1024,
        linger: float = 30.0,
        deflate: bool = False,
    ) -> None:
        """``deflate``: readers may negotiate permessage-deflate, so each batch is also
        compressed, once, for them (``Event.deflated_wire``)."""
        self._source = source
        self._deflate = deflate
        self._queue_limit = queue_limit
        self._linger = linger
        self._channels: dict[str, _Channel] = {}
        self._closed = False

    async def subscribe(self, feed: str) -> Subscriber:
        """Join a feed; every event after ``sub.start`` (the last event the hub had read when
        the reader joined) will be delivered to it.

        Raises whatever the source raises while settling its start position (Redis down).
        """
        if self._closed:
            raise Closing(CLOSE_GOING_AWAY, "server shutting down")
        channel = self._channels.get(feed)
        if channel is None or (channel.task is not None and channel.task.done()):
            channel = _Channel(feed)
            self._channels[feed] = channel
            channel.task = asyncio.create_task(self._run(channel), name=f"hub:{feed}")
        sub = Subscriber(feed, self._queue_limit)
        channel.subscribers.add(sub)
        channel.readers_gauge.set(len(channel.subscribers))
        channel.idle_since = None
        try:
            await asyncio.shield(channel.ready)
        except BaseException:
            channel.subscribers.discard(sub)
            channel.readers_gauge.set(len(channel.subscribers))
            raise
        sub.start = channel.position
        if channel.inflight is not None:  # joined while a batch is being handed out
            sub.push(channel.inflight)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        channel = self._channels.get(sub.feed)
        if channel is None:
            return
        channel.subscribers.discard(sub)
        channel.readers_gauge.set(len(channel.subscribers))
        if not channel.subscribers:
            channel.idle_since = asyncio.get_running_loop().time()

    def count(self, feed: str | None = None) -> int:
        """Connected subscribers, for one feed or all."""
        if feed is not None:
            channel = self._channels.get(feed)
            return len(channel.subscribers) if channel else 0
        return sum(len(c.subscribers) for c in self._channels.values())

    async def close(self, code: int = CLOSE_GOING_AWAY, reason: str = "server restarting") -> None:
        """Tell every subscriber to close and stop the feed tasks."""
        self._closed = True
        channels = list(self._channels.values())
        self._channels.clear()
        for channel in channels:
            for sub in list(channel.subscribers):  # closing one may unsubscribe it
                sub.close(code, reason)
            channel.readers_gauge.set(0)
            if channel.task is not None:
                channel.task.cancel()
        for channel in channels:
            if channel.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await channel.task

    async def _run(self, channel: _Channel) -> None:
        try:
            channel.position, batches = await self._source(channel.feed)
        except Exception as exc:
            if not channel.ready.done():
                channel.ready.set_exception(exc)
                channel.ready.exception()  # retrieved here so asyncio does not warn about it
            if self._channels.get(channel.feed) is channel:
                del self._channels[channel.feed]
            return
        channel.ready.set_result(None)
        try:
            if await self._fan_out(channel, batches):
                return
        except StreamGap as gap:
            metrics.STREAM_GAPS.inc()
            log.warning("feed %s: %s; its readers resume with since (1013)", channel.feed, gap)
            self._drop(channel, failed=False)
            return
        except Exception:
            log.exception("following feed %s failed; closing its readers (1013)", channel.feed)
        finally:
            if hasattr(batches, "aclose"):
                with contextlib.suppress(Exception):
                    await batches.aclose()
        self._drop(channel)

    def _drop(self, channel: _Channel, *, failed: bool = True) -> None:
        """A follower that ended (on an error, a gap, or its source ran dry) closes its readers
        with 1013 rather than leave them waiting on a feed that no longer moves: they resume
        with ``since`` at once, and the next subscriber starts a new follower."""
        if failed:
            metrics.FOLLOWERS_FAILED.inc()
        if self._channels.get(channel.feed) is channel:
            del self._channels[channel.feed]
        for sub in list(channel.subscribers):  # closing one may unsubscribe it
            sub.close(CLOSE_TRY_AGAIN_LATER, "feed reader stopped: resume with since")
        channel.subscribers.clear()
        channel.readers_gauge.set(0)

    async def _fan_out(self, channel: _Channel, batches: AsyncIterator[list[Event]]) -> bool:
        """Hand each batch to every subscriber; True when the channel expired (idle), False when
        the source ran dry."""
        loop = asyncio.get_running_loop()
        async for batch in batches:
            if self._expired(channel, loop.time()):
                return True
            events = len(batch)
            if not batch:
                batch = [_heartbeat()]
            started = time.perf_counter()
            if events:
                last = batch[-1].id
                channel.position = last if last is not None else channel.position
            # Hand out in chunks, yielding between them, so a big audience does not stall the
            # event loop (and the publish waiting for its 201) for the whole fan-out.
            channel.inflight = batch
            wire = b"".join(event.wire for event in batch)
            deflated = b"".join(e.deflated_wire() for e in batch) if self._deflate else None
            subscribers = list(channel.subscribers)
            for start in range(0, len(subscribers), FANOUT_CHUNK):
                for sub in subscribers[start : start + FANOUT_CHUNK]:
                    sub.push(batch, wire, deflated)
                if start + FANOUT_CHUNK < len(subscribers):
                    await asyncio.sleep(0)
            channel.inflight = None
            readers = len(subscribers)
            if events:  # one timer and one increment per batch, never per reader
                metrics.fanned_out(events * readers, time.perf_counter() - started)
        return False

    def _expired(self, channel: _Channel, now: float) -> bool:
        """An idle channel with no subscribers for ``linger`` seconds stops its task."""
        if channel.subscribers or channel.idle_since is None:
            return False
        if now - channel.idle_since < self._linger:
            return False
        if self._channels.get(channel.feed) is channel:
            del self._channels[channel.feed]
        return True


def _heartbeat() -> Event:
    return Event.of(None, "heartbeat", control_frame("heartbeat", server_time=iso_ms(now_ms())))
