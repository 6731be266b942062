"""The stream as the hub and readers see it: a feed's stream entries as events, and the tail
that a hub follower reads forever, surviving every Redis error."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livefeed.metrics import REDIS_RECONNECTS, STREAM_READ_ERRORS
from livefeed.model.frames import Event, event_frame
from livefeed.model.ids import StreamId
from livefeed.storage.store import Entry, Store

log = logging.getLogger(__name__)


def to_event(entry: Entry) -> Event:
    """The event a stream entry is, with its frame built once for every reader."""
    return Event.of(entry.id, entry.type, event_frame(entry.type, str(entry.id), entry.data))


async def follow(
    store: Store, slug: str, after: StreamId, block_ms: int
) -> AsyncIterator[list[Event]]:
    """Yield batches of events after ``after`` forever; [] after each idle ``block_ms``.

    Survives any Redis error, not only a lost connection (``LOADING``, ``READONLY`` after a
    failover, ``NOPERM`` after an ACL change, ``BUSY``, a reply it cannot parse): it waits with
    backoff (capped at 2 s) and resumes from the last id it yielded, so no event is skipped or
    repeated. Every failed read is counted in ``stream_read_errors_total`` (connection errors in
    ``redis_reconnects_total`` too); the log gets one line when reads start failing and one when
    they work again, never one per retry.
    """
    delay = 0.1
    failures = 0
    failing_since = 0.0
    while True:
        try:
            entries = await store.tail(slug, after, block_ms)
        except (RedisError, OSError) as exc:
            STREAM_READ_ERRORS.labels(type(exc).__name__).inc()
            if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
                REDIS_RECONNECTS.inc()
            if failures == 0:
                failing_since = time.monotonic()
                log.warning("reading feed %s from Redis failed (%s: %s); retrying with backoff",
                            slug, type(exc).__name__, exc)  # fmt: skip
            failures += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        if failures:
            log.warning("reading feed %s from Redis works again, after %d failed reads in %.1f s",
                        slug, failures, time.monotonic() - failing_since)  # fmt: skip
            failures = 0
        delay = 0.1
        if entries:
            after = entries[-1].id
        yield [to_event(entry) for entry in entries]
