"""The stream as the hub and readers see it: a feed's stream entries as events, and the tail
the hub follows forever, surviving every Redis error: every feed of the process in one blocking
read (``Followers``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livefeed.metrics import REDIS_RECONNECTS, STREAM_READ_ERRORS
from livefeed.model.frames import Event, event_frame
from livefeed.model.ids import StreamId
from livefeed.storage.entries import Entry, first_unchained
from livefeed.storage.tail import BlockingReader
from livefeed.stream.hub import StreamGap

log = logging.getLogger(__name__)


def to_event(entry: Entry) -> Event:
    """The event a stream entry is, with its frame built once for every reader."""
    return Event.of(entry.id, entry.type, event_frame(entry.type, str(entry.id), entry.data))


class Followers:
    """Follow every feed this process's readers watch with one blocking read (BlockingReader).

    ``event`` makes each entry the event its readers get (``to_event``; the desk's own for the
    desk stream). ``follow(slug, after)`` gives batches of the feed's events after ``after``
    ([] after each idle ``block_ms``) for as long as the iterator is kept; a feed joining or
    leaving re-issues the read at once. Any Redis error, not only a lost connection
    (``LOADING``, ``READONLY`` after a failover, ``NOPERM`` after an ACL change, ``BUSY``, a
    reply it cannot parse), is retried for every feed together with backoff (capped at 2 s),
    resuming from the last id each feed was given, so no event is skipped or repeated; every
    failed read is counted in ``stream_read_errors_total`` (connection errors in
    ``redis_reconnects_total`` too), and the log gets one line when reads start failing and one
    when they work again.
    """

    def __init__(
        self,
        reader: BlockingReader,
        block_ms: int,
        event: Callable[[Entry], Event] = to_event,
    ) -> None:
        self._reader = reader
        self._event = event
        self._block_ms = block_ms
        self._feeds: dict[str, _Followed] = {}
        self._changed = asyncio.Event()
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._waker: asyncio.Task[None] | None = None

    def follow(self, slug: str, after: StreamId) -> AsyncIterator[list[Event]]:
        """Batches of ``slug``'s events after ``after``; one follower per feed at a time."""
        followed = _Followed(after, asyncio.Queue(), time.monotonic())
        self._feeds[slug] = followed
        self._changed_set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hub:followers")
        return self._batches(slug, followed)

    async def close(self) -> None:
        for task in (self._waker, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._reader.close()

    async def _batches(self, slug: str, followed: _Followed) -> AsyncIterator[list[Event]]:
        try:
            while True:
                batch = await followed.queue.get()
                if isinstance(batch, Exception):
                    raise batch  # the hub logs it and closes the feed's readers (1013)
                yield batch
        finally:
            if self._feeds.get(slug) is followed:
                del self._feeds[slug]
                self._changed_set()

    def _changed_set(self) -> None:
        self._dirty = True
        self._changed.set()
        reading = self._task is not None and not self._task.done()
        if reading and (self._waker is None or self._waker.done()):  # one waker at a time
            self._waker = asyncio.create_task(self._wake(), name="hub:followers-wake")

    async def _wake(self) -> None:
        """Unblock the read until it has taken the new set: the read clears ``_dirty`` when
        it takes the set, and an unblock that arrives before the read blocks does nothing, so
        one is sent every few milliseconds (for a second at most) while the set is unread."""
        for _ in range(200):
            if not self._dirty:
                return
            with contextlib.suppress(RedisError, OSError):
                await self._reader.wake()
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        """Read until cancelled; anything unexpected ends every followed feed with it (their
        readers get 1013 and resume; the next follower starts a new read)."""
        try:
            await self._read_forever()
        except Exception as exc:
            for followed in self._feeds.values():
                followed.queue.put_nowait(exc)
            self._feeds.clear()

    async def _read_forever(self) -> None:
        delay = 0.1
        failures = 0
        failing_since = 0.0
        while True:
            if not self._feeds:
                self._changed.clear()
                await self._changed.wait()
                continue
            self._dirty = False
            positions = {slug: f.after for slug, f in self._feeds.items()}
            try:
                found = await self._reader.read(positions, self._block_ms)
            except (RedisError, RedisClusterException, OSError) as exc:
                STREAM_READ_ERRORS.labels(type(exc).__name__).inc()
                if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
                    REDIS_RECONNECTS.inc()
                if failures == 0:
                    failing_since = time.monotonic()
                    log.warning("reading %s from Redis failed (%s: %s); retrying with backoff",
                                _named(positions), type(exc).__name__, exc)  # fmt: skip
                failures += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if failures:
                log.warning("reading %s from Redis works again, after %d failed reads in "
                            "%.1f s", _named(positions), failures,
                            time.monotonic() - failing_since)  # fmt: skip
                failures = 0
            delay = 0.1
            now = time.monotonic()
            for slug, followed in list(self._feeds.items()):
                entries = found.get(slug)
                if isinstance(entries, Exception):
                    del self._feeds[slug]  # a new follower starts after what could not be read
                    followed.queue.put_nowait(entries)
                elif entries and positions[slug] == followed.after:
                    gap = _first_gap(followed.after, entries)
                    if gap is not None:
                        del self._feeds[slug]  # a new follower starts from the stream as it is
                        followed.queue.put_nowait(gap)
                        continue
                    followed.after = entries[-1].id
                    followed.queue.put_nowait([self._event(entry) for entry in entries])
                    followed.pushed = now
                elif now - followed.pushed >= self._block_ms / 1000:
                    followed.queue.put_nowait([])
                    followed.pushed = now


def _first_gap(after: StreamId, entries: list[Entry]) -> StreamGap | None:
    """A StreamGap if an entry does not name the one before it (the catch-up's rule,
    ``first_unchained``; entries from before ``prev`` are taken on trust)."""
    broken = first_unchained(after, entries)
    if broken is None:
        return None
    before = after if broken == 0 else entries[broken - 1].id
    entry = entries[broken]
    return StreamGap(f"entry {entry.id} follows {entry.prev}, not {before}")


def _named(feeds: dict[str, StreamId]) -> str:
    """``feed a`` or ``feeds a, b, c (+2 more)``: which feeds a log line is about."""
    names = sorted(feeds)
    if len(names) == 1:
        return f"feed {names[0]}"
    more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
    return "feeds " + ", ".join(names[:3]) + more


@dataclass(slots=True)
class _Followed:
    after: StreamId
    queue: asyncio.Queue[list[Event] | Exception]
    pushed: float
