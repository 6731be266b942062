"""Rate limits kept in this process: token buckets per editor and per client address.

Each worker keeps its own buckets, so with N workers a client can get up to N times the rate;
that is good enough to stop a runaway script or a token being guessed, which is the point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from livefeed.errors import TooManyRequests


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Allows ``rate`` actions a second per key, in bursts of up to ``burst``; rate 0 is off."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str, what: str) -> None:
        """Take one action for ``key`` or raise TooManyRequests with a Retry-After hint."""
        self.ensure(key, what)
        self.spend(key)

    def ensure(self, key: str, what: str) -> None:
        """Raise TooManyRequests if ``key`` has no action left, without taking one.

        With ``spend`` after the fact this limits only some outcomes (failed token checks).
        """
        if self.rate <= 0:
            return
        bucket = self._refilled(key)
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / self.rate
            raise TooManyRequests(f"too many {what}; slow down", retry_after=max(1, round(wait)))

    def spend(self, key: str) -> None:
        """Take one action for ``key`` (never below none left)."""
        if self.rate <= 0:
            return
        bucket = self._refilled(key)
        bucket.tokens = max(0.0, bucket.tokens - 1)

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:  # forget idle keys rather than grow without bound
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        return bucket

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.stamp) * self.rate >= self.burst:
                del self._buckets[key]


class ConnectionCounter:
    """Open WebSocket connections per client address, capped at ``limit`` (0: no cap)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def acquire(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if self.limit and count >= self.limit:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)


class HeldConnection:
    """One open connection's place in a ``ConnectionCounter``; calling it gives the place back.

    Two slots where a ``functools.partial`` of ``release`` costs a few hundred bytes: a parked
    reader keeps one for as long as it stays connected.
    """

    __slots__ = ("_address", "_counter")

    def __init__(self, counter: ConnectionCounter, address: str) -> None:
        self._counter = counter
        self._address = address

    def __call__(self) -> None:
        self._counter.release(self._address)


class MessageBudget:
    """Messages a reader may send in a minute (pings are not messages)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._window = clock()
        self._count = 0

    def spend(self) -> bool:
        now = self._clock()
        if now - self._window >= 60:
            self._window, self._count = now, 0
        self._count += 1
        return self._count <= self.per_minute


def origin_allowed(origin: str | None, allowed: str) -> bool:
    """With an allow-list (comma-separated origins, ``*`` for any), only those may connect."""
    if not allowed.strip():
        return True
    origins = {o.strip().rstrip("/") for o in allowed.split(",") if o.strip()}
    return "*" in origins or (origin or "").rstrip("/") in origins


class RecentlyValid:
    """Digests of tokens that passed a check in the last ``ttl`` seconds, at most ``size``.

    While failed token checks are capped for everyone, an editor already at work keeps working:
    a guess can never be in here, so this lets no guess through, and a flood of wrong tokens
    (from one address or many) cannot lock the newsroom out.
    """

    def __init__(
        self, ttl: float = 3600.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._until: dict[str, float] = {}

    def __contains__(self, digest: str) -> bool:
        until = self._until.get(digest)
        return until is not None and until > self._clock()

    def add(self, digest: str) -> None:
        self._until.pop(digest, None)  # re-inserted last: the dict keeps the oldest first
        self._until[digest] = self._clock() + self._ttl
        while len(self._until) > self._size:
            del self._until[next(iter(self._until))]


SINCE_MAX_EVENTS = 2000
"""The most stream events ``GET /api/feeds/{feed}/since/{id}`` folds: one XRANGE of at most this
many (plus one, to know there are more). Beyond it the answer is ``too_much``."""
SEARCH_QUERY_MAX = 200
"""Characters a search query (``?q=``) may have."""
SEARCH_WORDS_MAX = 8
"""Words a search query may have; every one must match (the last as a prefix)."""
SEARCH_PAGE = 20
SEARCH_PAGE_MAX = 50
"""Search hits per page: the default and the most a ``limit`` may ask for."""
SEARCH_SNIPPET = 180
"""Characters of a hit's body shown around its first match."""
SEARCH_CATCH_UP_MAX = 5000
"""Stream events a search index reads to catch up before one query; further behind than this
(or behind a trimmed stream) it is rebuilt from the briefs hash instead."""
SEARCH_REBUILD_WAIT = 2.0
"""Seconds a query waits for its index's rebuild before answering 503 with Retry-After."""
