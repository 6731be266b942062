"""Prometheus metrics: what operators watch, defined in one place and served at ``/metrics``.

Only ``prometheus_client`` is imported here, so the hub (which knows nothing of Redis or
Starlette) can count what it does. The hot path stays cheap: the hub times each *batch* it fans
out and adds its deliveries in one increment; nothing is done per reader per event.

Metrics (all prefixed ``livefeed_``)::

    readers{feed}                            gauge     connected live-stream readers
    events_published_total{type}             counter   events this process appended
    events_delivered_total                   counter   live events handed to readers (x readers)
    fanout_seconds                           histogram one batch: stream read to last socket write
    slow_readers_closed_total                counter   readers closed with 4408 (too slow)
    redis_reconnects_total                   counter   stream reads that lost Redis and retried
    stream_read_errors_total{error}          counter   stream reads that failed on any Redis error
    followers_failed_total                   counter   feed followers that ended; readers got 1013
    replay_sessions_active                   gauge     day replays playing now
    replay_sessions_total                    counter   day replays started
    http_requests_total{method,route,status} counter   by route template, never the raw path
    http_request_duration_seconds{method,route} histogram
    http_closed_by_edge_total{reason}        counter   connections livefeed.http.edge closed: idle,
                                                       head/body_timeout, too_many_connections
    push_sent_total                          counter   web push messages a push service took (201)
    push_failed_total                        counter   push messages not taken (error, timeout, 5xx)
    push_removed_total                       counter   subscriptions dropped: endpoint said 404/410
    search_queries_total                     counter   search queries this process took
    search_rebuilds_total                    counter   search index files rebuilt from the briefs
    search_rebuild_seconds                   histogram one rebuild: first Redis read to commit
    gc_pause_seconds{generation}             histogram one collection of Python's cyclic collector
                                                       (the event loop stands still meanwhile)

With ``serve --workers N`` every worker is a process. ``share_between_workers`` then turns on
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``): each worker writes its
numbers to files in that directory and a scrape of any worker sums them all, so ``/metrics``
answers the same whichever worker the connection lands on. Gauges count live workers only.
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_asgi_app,
    multiprocess,
)

# Pure ASGI types, spelled out so this module needs nothing but prometheus_client.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `*_created` series would double the output and tell operators little.
disable_created_metrics()  # type: ignore[no-untyped-call]

READERS = Gauge(
    "livefeed_readers",
    "Connected live-stream WebSocket readers (catching up or live), per feed",
    ["feed"],
    multiprocess_mode="livesum",
)
EVENTS_PUBLISHED = Counter(
    "livefeed_events_published",
    "Events appended to feed streams by this service (brief, brief_updated, pinned, ...)",
    ["type"],
)
EVENTS_DELIVERED = Counter(
    "livefeed_events_delivered",
    "Live events handed to connected readers: one per event per reader (heartbeats excluded)",
)
FANOUT_SECONDS = Histogram(
    "livefeed_fanout_seconds",
    "Time to fan one batch of stream events out to every reader of its feed, from the stream "
    "read to the last socket written",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
SLOW_READERS_CLOSED = Counter(
    "livefeed_slow_readers_closed",
    "Readers closed with 4408 because they fell too far behind (they resume with since)",
)
REDIS_RECONNECTS = Counter(
    "livefeed_redis_reconnects",
    "Stream reads that failed on a Redis connection error and reconnected after a backoff",
)
REPLICA_WAIT_SHORT = Counter(
    "livefeed_replica_wait_short",
    "Writes answered 503 because fewer replicas than LIVEFEED_MIN_REPLICAS confirmed them in time",
)
STREAM_READ_ERRORS = Counter(
    "livefeed_stream_read_errors",
    "Stream reads of a feed follower that failed on a Redis error (connection lost, NOPERM, "
    "LOADING, READONLY, BUSY, a bad reply) and were retried after a backoff, by error class",
    ["error"],
)
STREAM_GAPS = Counter(
    "livefeed_stream_gaps",
    "Times a feed follower found entries missing between two it read (lost in a failover, or "
    "deleted); the feed's readers were closed with 1013 to resume, and reload if they must",
)
FOLLOWERS_FAILED = Counter(
    "livefeed_followers_failed",
    "Feed followers (one per feed per process) that ended on an unexpected error; their readers "
    "were closed with 1013 so they resume at once",
)
REPLAYS_ACTIVE = Gauge(
    "livefeed_replay_sessions_active",
    "Day replays being played over WebSockets now",
    multiprocess_mode="livesum",
)
REPLAYS = Counter("livefeed_replay_sessions", "Day replays started over WebSockets")
HTTP_REQUESTS = Counter(
    "livefeed_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "livefeed_http_request_duration_seconds",
    "Time from an HTTP request's arrival to the end of its response, by method and route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)

HTTP_CLOSED_BY_EDGE = Counter(
    "livefeed_http_closed_by_edge",
    "HTTP connections closed by livefeed.http.edge before a route answered, by reason (idle, "
    "head_timeout, body_timeout, too_many_connections)",
    ["reason"],
)
for _reason in ("idle", "head_timeout", "body_timeout", "too_many_connections"):
    HTTP_CLOSED_BY_EDGE.labels(_reason)

# Series for every event type exist from the start, so rate() works from the first event on.
for _type in ("brief", "brief_updated", "brief_deleted", "pinned", "unpinned", "feed_updated"):
    EVENTS_PUBLISHED.labels(_type)

PUSH_SENT = Counter("livefeed_push_sent", "Web push messages a push service accepted (201)")
PUSH_FAILED = Counter(
    "livefeed_push_failed",
    "Web push messages not accepted: no answer, refused address, or a status but 201/404/410",
)
PUSH_REMOVED = Counter(
    "livefeed_push_removed", "Push subscriptions removed because their endpoint answered 404/410"
)
SEARCH_QUERIES = Counter("livefeed_search_queries", "Search queries this process answered or tried")
SEARCH_REBUILDS = Counter(
    "livefeed_search_rebuilds", "Search index files rebuilt from a feed's briefs hash"
)
SEARCH_REBUILD_SECONDS = Histogram(
    "livefeed_search_rebuild_seconds",
    "Time one search index rebuild took, from its first Redis read to its commit",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
GC_PAUSE_SECONDS = Histogram(
    "livefeed_gc_pause_seconds",
    "Time one collection of Python's cyclic garbage collector took, by generation: the event "
    "loop, and every reader of this process, waits for it",
    ["generation"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def time_collections() -> None:
    """Time every collection of the cyclic collector into ``gc_pause_seconds``, from now on;
    once per process however often it is called."""
    if any(getattr(c, "__self__", None) is _GC_TIMER for c in gc.callbacks):
        return
    gc.callbacks.append(_GC_TIMER.on_collection)


class _CollectionTimer:
    """``gc.callbacks`` entry: a clock read at each start, one histogram sample at each stop."""

    def __init__(self) -> None:
        self.started = 0.0
        self.by_generation = [GC_PAUSE_SECONDS.labels(str(g)) for g in range(3)]

    def on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.by_generation[info["generation"]].observe(time.perf_counter() - self.started)


_GC_TIMER = _CollectionTimer()


def fanned_out(deliveries: int, seconds: float) -> None:
    """Record one fanned-out batch of events: ``deliveries`` is events times readers."""
    EVENTS_DELIVERED.inc(deliveries)
    FANOUT_SECONDS.observe(seconds)


def closed_by_edge(reason: str) -> None:
    """Count one connection the HTTP edge closed (livefeed.http.edge)."""
    HTTP_CLOSED_BY_EDGE.labels(reason).inc()


def readers_gauge(feed: str) -> Any:
    """The readers gauge of one feed; the hub keeps it and ``set``s it as readers come and go."""
    return READERS.labels(feed)


class HttpMetrics:
    """Pure ASGI middleware counting HTTP requests by method, route template and status.

    The route template (``/api/feeds/{feed}``) is read from ``scope["route"]``, which Starlette's
    router sets; a request that matched no route counts as ``unmatched``. Label values are thus
    bounded by the routes the app has, whatever paths clients invent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


class MetricsEndpoint:
    """``GET /metrics``: the text exposition format (OpenMetrics if the scraper asks for it).

    In multiprocess mode every scrape sums the files of all workers, after dropping the gauges
    of workers that are gone (a worker that crashed never says so itself).
    """

    def __init__(self) -> None:
        self.directory = os.environ.get(MULTIPROC_ENV)
        registry: Any = REGISTRY
        if self.directory:
            registry = CollectorRegistry()
            collector = multiprocess.MultiProcessCollector
            collector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        self._app = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.directory:
            forget_dead_workers(Path(self.directory))
        await self._app(scope, receive, send)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def forget_dead_workers(directory: Path) -> None:
    """Remove the live-gauge files of processes that no longer run."""
    for path in directory.glob("gauge_live*_*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        pid = int(match.group(1)) if match else 0
        if pid and not _alive(pid):
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def share_between_workers() -> Path:
    """Prepare multiprocess mode for worker processes started after this call.

    Uses ``PROMETHEUS_MULTIPROC_DIR`` if the operator set it (its ``*.db`` files, left by an
    earlier run, are removed: prometheus_client requires a clean directory at start), else a new
    temporary directory that is removed when this process exits.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        return directory
    directory = Path(tempfile.mkdtemp(prefix="livefeed-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory
