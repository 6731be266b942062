"""The ASGI application: routes, error mapping and the lifespan that owns Redis and the hub."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import PurePosixPath
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from livefeed.config import Settings
from livefeed.errors import CLOSE_POLICY, HeadersTooLarge, LivefeedError, Unavailable, from_http
from livefeed.http import days, drafts, edge, editing, embeds, feeds, media, openapi, story, tokens
from livefeed.http import push as push_api
from livefeed.http import search as search_api
from livefeed.http._helpers import authorize_token, json_response, lookup_token
from livefeed.http.since import get_since
from livefeed.limits import (
    ConnectionCounter,
    HeldConnection,
    RateLimiter,
    RecentlyValid,
    origin_allowed,
)
from livefeed.logs import RequestId
from livefeed.media.files import MediaFiles
from livefeed.media.images import worker_pool
from livefeed.metrics import HttpMetrics, MetricsEndpoint, time_collections
from livefeed.model.frames import Event
from livefeed.model.ids import StreamId
from livefeed.model.media import MEDIA_SIZES, rendition_path, srcset
from livefeed.model.roles import Action
from livefeed.newsroom import schedule
from livefeed.newsroom.push import Sender, Signers, check_subject
from livefeed.newsroom.search import SearchIndex
from livefeed.pages import reference, syndication, views, worker
from livefeed.pages import search as search_page
from livefeed.storage.cluster import UNAVAILABLE, cluster_of
from livefeed.storage.connect import check_url, connect, replicas_to_wait_for
from livefeed.storage.layout import HEARTBEAT_MS, announce, withdraw
from livefeed.storage.presence import Presence
from livefeed.storage.push import PushStore
from livefeed.storage.ratelimit import SharedRateLimiter
from livefeed.storage.store import Store
from livefeed.storage.tail import BlockingReader, ClusterReader
from livefeed.stream.desk import desk_event, desk_queue, serve_desk
from livefeed.stream.desk_room import DeskRoom
from livefeed.stream.hub import Hub
from livefeed.stream.reader import SnapshotCache, serve_reader
from livefeed.stream.replay import open_replay
from livefeed.stream.source import Followers

log = logging.getLogger("livefeed")


Job = Callable[[Store, Settings], Coroutine[Any, Any, None]]
"""Work the lifespan runs beside the server for as long as it serves (the demo poster)."""


def create_app(settings: Settings, jobs: Sequence[Job] = ()) -> Starlette:
    """Build the application for ``settings``; ``settings.redis_url`` must point at a Redis.

    Each of ``jobs`` runs as a task from startup to shutdown, given the app's store.
    """
    _check_public_url(settings.public_url)
    check_subject(settings.vapid_subject)
    check_url(settings.redis_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = connect(
            settings.redis_url, timeout=settings.redis_timeout, pool_size=settings.redis_pool_size
        )
        # The one blocking XREAD of every followed feed has a connection of its own (and one
        # to wake it when the set of feeds changes), so it never starves publishing and reading.
        # On a cluster it blocks one connection per followed slot (storage/tail.py).
        tail_timeout = settings.heartbeat_interval + settings.redis_timeout
        tail_pool = 6 if cluster_of(redis) is None else 100_000  # made as needed
        tail_redis = connect(settings.redis_url, timeout=tail_timeout, pool_size=tail_pool)
        store = Store(redis, settings.key_prefix)
        store.replicas = await replicas_to_wait_for(
            redis, settings.redis_url, settings.min_replicas
        )
        store.replica_timeout_ms = int(settings.replica_timeout * 1000)
        store.wait_aof = settings.wait_aof
        if store.wait_aof:
            log.info("writes answer once fsynced here and on %d replica(s)", store.replicas)
        elif store.replicas:
            log.info("writes answer once %d replica(s) have them", store.replicas)
        block_ms = int(settings.heartbeat_interval * 1000)
        reader = BlockingReader if cluster_of(tail_redis) is None else ClusterReader
        followers = Followers(reader(tail_redis, store.keys), block_ms)

        async def source(feed: str) -> tuple[StreamId, AsyncIterator[list[Event]]]:
            start = (await store.bounds(feed)).last_generated
            return start, followers.follow(feed, start)

        deflate = settings.ws_compression and settings.ws_direct  # direct readers only
        hub = Hub(source, queue_limit=settings.reader_queue, deflate=deflate)
        # The desk streams: one more blocking XREAD for all of them, and their own hub.
        desk_followers = Followers(
            reader(tail_redis, store.keys, store.keys.desk), block_ms, desk_event
        )

        async def desk_source(feed: str) -> tuple[StreamId, AsyncIterator[list[Event]]]:
            start = (await store.desk_bounds(feed)).last_generated
            return start, desk_followers.follow(feed, start)

        desk_hub = Hub(desk_source, queue_limit=settings.reader_queue)
        app.state.desk = DeskRoom(
            desk_hub, Presence(redis, store.keys), redis, store.keys.presence_channel
        )
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            for feed in await store.list_feeds():  # data from before the time index existed
                await store.reindex(feed.slug)
        app.state.store = store
        app.state.limits = (
            SharedRateLimiter(
                redis, store.keys, "address", settings.address_write_rate,
                settings.address_write_burst,
            ),
            SharedRateLimiter(
                redis, store.keys, "editor", settings.editor_rate, settings.editor_burst
            ),
        )  # fmt: skip
        app.state.hub = hub
        app.state.snapshots = SnapshotCache()
        app.state.search = SearchIndex(store, settings.search_root())
        app.state.media_pool = worker_pool(settings.media_workers)  # processes start on use
        app.state.resolver = embeds.make_resolver(settings, embeds.app_thumbnails(app.state))
        _tune_collector()
        node = f"{socket.gethostname()}:{os.getpid()}"
        tasks = [asyncio.create_task(job(store, settings)) for job in (*jobs, _heartbeat(node))]
        tasks.append(asyncio.create_task(app.state.desk.run(), name="desk:presence"))
        tasks.append(
            asyncio.create_task(schedule.run(store, embeds.app_resolver(app.state, store)))
        )
        app.state.push = PushStore(redis, store.keys)
        app.state.push_signer = Signers(settings, app.state.push)
        sender = Sender(store, app.state.push, app.state.push_signer, settings, node)
        tasks.append(asyncio.create_task(sender.run(), name="push:sender"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await hub.close()
            await desk_hub.close()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(*UNAVAILABLE, OSError, TimeoutError):
                await asyncio.wait_for(withdraw(store, node), 2)  # else it lapses by itself
            await followers.close()
            await desk_followers.close()
            app.state.media_pool.shutdown(wait=False, cancel_futures=True)
            app.state.search.close()
            await redis.aclose()
            await tail_redis.aclose()

    async def websocket_feed(websocket: WebSocket) -> None:
        state = websocket.app.state
        if not origin_allowed(websocket.headers.get("origin"), settings.allowed_origins):
            await websocket.close(CLOSE_POLICY, "origin not allowed")  # before accept: a 403
            return
        address = websocket.client.host if websocket.client else "unknown"
        if not state.connections.acquire(address):
            await websocket.close(CLOSE_POLICY, "too many connections from this address")
            return
        release = HeldConnection(state.connections, address)
        if "replay" not in websocket.query_params:
            # The reader may outlive this call (parked); it releases its place when it goes.
            hub, snapshots = state.hub, state.snapshots
            await serve_reader(websocket, state.store, hub, settings, snapshots, release)
            return
        try:
            await open_replay(websocket, state.store, settings)
        finally:
            release()

    async def websocket_desk(websocket: WebSocket) -> None:
        state = websocket.app.state
        if not origin_allowed(websocket.headers.get("origin"), settings.allowed_origins):
            await websocket.close(CLOSE_POLICY, "origin not allowed")
            return
        address = websocket.client.host if websocket.client else "unknown"
        if not state.connections.acquire(address):
            await websocket.close(CLOSE_POLICY, "too many connections from this address")
            return
        try:
            await serve_desk(
                websocket, state.desk, state.store, settings,
                functools.partial(authorize_token, websocket, action=Action.READ_DESK),
                functools.partial(lookup_token, websocket),
                functools.partial(desk_queue, state.store),
            )  # fmt: skip
        finally:
            state.connections.release(address)

    routes = [
        # First: a join storm is thousands of upgrades, and the router tries routes in order.
        WebSocketRoute("/ws/feeds/{feed}", websocket_feed),
        WebSocketRoute("/ws/feeds/{feed}/desk", websocket_desk),
        Route("/", views.index_page),
        Route("/feeds/{feed}", views.feed_page),
        Route("/feeds/{feed}/days", views.days_page),
        Route("/feeds/{feed}/days/{date}", views.day_page),
        Route("/feeds/{feed}/briefs/{brief}/changes", views.changes_page),
        Route("/feeds/{feed}/search", search_page.search_page),
        Route("/feeds/{feed}/atom.xml", syndication.feed_atom),
        Route("/feeds/{feed}/feed.json", syndication.feed_json),
        Route("/feeds/{feed}/days/{date}/atom.xml", syndication.day_atom),
        Route("/feeds/{feed}/days/{date}/feed.json", syndication.day_json),
        Route("/embed/{feed}", views.embed_page),
        Route("/editor", views.editor_page),
        Route("/favicon.ico", views.favicon),
        Route("/favicon.svg", views.favicon),
        Route("/sw.js", worker.service_worker),
        Route("/api/push/key", push_api.push_key, methods=["GET"]),
        Route("/api/feeds/{feed}/push-subscriptions", push_api.subscribe, methods=["POST"]),
        Route(
            "/api/feeds/{feed}/push-subscriptions/{subscription}",
            push_api.unsubscribe,
            methods=["DELETE"],
        ),
        Route("/healthz", feeds.healthz),
        Route("/metrics", MetricsEndpoint(), methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json),
        Route("/api", reference.api_reference_page),
        Route("/api/feeds", feeds.list_feeds, methods=["GET"]),
        Route("/api/feeds", feeds.create_feed, methods=["POST"]),
        Route("/api/me", editing.me, methods=["GET"]),
        Route("/api/tokens", tokens.list_tokens, methods=["GET"]),
        Route("/api/tokens", tokens.create_token, methods=["POST"]),
        Route("/api/tokens/{name:path}", tokens.patch_token, methods=["PATCH"]),
        Route("/api/tokens/{name:path}", tokens.delete_token, methods=["DELETE"]),
        Route("/api/feeds/{feed}", feeds.get_feed, methods=["GET"]),
        Route("/api/feeds/{feed}", editing.patch_feed, methods=["PATCH"]),
        Route("/api/feeds/{feed}/briefs", feeds.list_briefs, methods=["GET"]),
        Route("/api/feeds/{feed}/briefs", feeds.publish_brief, methods=["POST"]),
        Route("/api/feeds/{feed}/briefs/preview", editing.preview_brief, methods=["POST"]),
        Route("/api/feeds/{feed}/briefs/{brief}", editing.get_brief, methods=["GET"]),
        Route("/api/feeds/{feed}/briefs/{brief}", editing.patch_brief, methods=["PATCH"]),
        Route("/api/feeds/{feed}/briefs/{brief}", editing.delete_brief, methods=["DELETE"]),
        Route("/api/feeds/{feed}/briefs/{brief}/history", editing.brief_history),
        Route("/api/feeds/{feed}/pin", editing.put_pin, methods=["PUT"]),
        Route("/api/feeds/{feed}/pin", editing.delete_pin, methods=["DELETE"]),
        Route("/api/feeds/{feed}/key-events", editing.key_events, methods=["GET"]),
        Route("/api/feeds/{feed}/search", search_api.search_feed, methods=["GET"]),
        Route("/api/feeds/{feed}/lead", story.get_lead, methods=["GET"]),
        Route("/api/feeds/{feed}/lead", story.put_lead, methods=["PUT"]),
        Route("/api/feeds/{feed}/lead", story.delete_lead, methods=["DELETE"]),
        Route("/api/feeds/{feed}/summary", story.get_summary, methods=["GET"]),
        Route("/api/feeds/{feed}/summary", story.put_summary, methods=["PUT"]),
        Route("/api/feeds/{feed}/summary", story.delete_summary, methods=["DELETE"]),
        Route("/api/feeds/{feed}/days", days.list_days, methods=["GET"]),
        Route("/api/feeds/{feed}/since/{since}", get_since, methods=["GET"]),
        Route("/api/feeds/{feed}/drafts", drafts.list_drafts, methods=["GET"]),
        Route("/api/feeds/{feed}/drafts", drafts.create_draft, methods=["POST"]),
        Route("/api/feeds/{feed}/drafts/{draft}", drafts.get_draft, methods=["GET"]),
        Route("/api/feeds/{feed}/drafts/{draft}", drafts.patch_draft, methods=["PATCH"]),
        Route("/api/feeds/{feed}/drafts/{draft}", drafts.delete_draft, methods=["DELETE"]),
        Route("/api/feeds/{feed}/drafts/{draft}/submit", drafts.submit_draft, methods=["POST"]),
        Route(
            "/api/feeds/{feed}/drafts/{draft}/send-back", drafts.send_back_draft, methods=["POST"]
        ),
        Route("/api/feeds/{feed}/drafts/{draft}/publish", drafts.publish_draft, methods=["POST"]),
        Route(
            "/api/feeds/{feed}/drafts/{draft}/unschedule", drafts.unschedule_draft, methods=["POST"]
        ),
        Route("/api/feeds/{feed}/drafts/{draft}/history", drafts.draft_history, methods=["GET"]),
        Route("/api/feeds/{feed}/audit", drafts.get_audit, methods=["GET"]),
        Route("/api/embeds/preview", embeds.preview_embed, methods=["POST"]),
        Route("/api/media", media.upload_media, methods=["POST"]),
        Route("/api/media/{media}", media.media_record, methods=["GET"]),
        Route("/media/{media}/{name}", media.media_file, methods=["GET", "HEAD"]),
        Route("/api/feeds/{feed}/days/{date}", days.get_day, methods=["GET"]),
        Mount("/static", PublicFiles(directory=settings.web_dir), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(edge.ProxyHeaders, trusted=edge.trusted_proxies(settings, os.environ)),
            Middleware(RequestId),
            Middleware(edge.SecurityHeaders, hsts_max_age=settings.hsts_max_age),
            Middleware(HttpMetrics),
            Middleware(edge.TokenInUrl),
            Middleware(HeaderLimit, limit=settings.max_header_bytes),
        ],
        exception_handlers={
            ClientDisconnect: _client_gone,
            LivefeedError: _livefeed_error,
            HTTPException: _http_error,
            **dict.fromkeys(UNAVAILABLE, _redis_error),
            Exception: _unexpected_error,
        },
    )
    app.state.settings = settings
    app.state.connections = ConnectionCounter(settings.connections_per_address)
    app.state.failed_tokens = RateLimiter(settings.failed_token_rate, settings.failed_token_burst)
    app.state.valid_tokens = RecentlyValid()
    app.state.media_files = MediaFiles(settings.media_root())
    app.state.media_slots = asyncio.Semaphore(max(1, settings.media_workers))
    app.state.templates = Jinja2Templates(directory=settings.web_dir / "templates")
    app.state.templates.env.globals.update(
        media_path=rendition_path, media_srcset=srcset, media_sizes=MEDIA_SIZES
    )
    app.state.templates.env.globals.update(search_page.TEMPLATE_GLOBALS)
    return app


def _heartbeat(node: str) -> Job:
    """Announce this process as serving (``livefeed migrate`` refuses while one is) until
    cancelled; a Redis error only skips a beat."""

    async def beat(store: Store, settings: Settings) -> None:
        while True:
            with contextlib.suppress(*UNAVAILABLE, OSError):
                await announce(store, node)
            await asyncio.sleep(HEARTBEAT_MS / 3000)

    return beat


class HeaderLimit:
    """Refuse requests whose headers add up to more than ``limit`` bytes with 431."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
            if size > self.limit:
                error = HeadersTooLarge(f"request headers must stay under {self.limit} bytes")
                await json_response(error.to_dict(), error.status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class PublicFiles(StaticFiles):
    """``web/`` as static files, except ``templates/``: those are the server's, not the site's."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if PurePosixPath(path).parts[:1] == ("templates",):
            return "", None
        return super().lookup_path(path)


def _check_public_url(url: str) -> None:
    """``LIVEFEED_PUBLIC_URL`` is empty or an absolute http(s) address with no query."""
    if url and (not url.startswith(("http://", "https://")) or "?" in url or "#" in url):
        raise ValueError(f"LIVEFEED_PUBLIC_URL must be like https://live.example.org, not {url!r}")


def _tune_collector() -> None:
    """Make Python's cyclic garbage collector cheap for a process holding many connections.

    With the default thresholds a join storm spent ~40% of its CPU in full collections, each
    walking every object in the process (the app's ~90,000 among them). Objects built at startup
    live as long as the process, so they are frozen out of those walks, and young collections
    run every 10,000 allocations rather than 700 (bench/run.py: ~650 -> ~450 us of CPU per join).
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    time_collections()  # livefeed_gc_pause_seconds: how long the loop stood still


async def _livefeed_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LivefeedError)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="livefeed"'}
    return json_response(exc.to_dict(), exc.status, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = from_http(exc.status_code, str(exc.detail))
    return json_response(error.to_dict(), error.status, dict(exc.headers or {}))


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left before sending its whole body: its doing, so a quiet 499, not a 500.

    Nobody receives the response; 499 (nginx's "client closed request") is what the access
    metrics count.
    """
    log.debug("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=499)


async def _redis_error(request: Request, exc: Exception) -> Response:
    log.warning("Redis unavailable for %s %s: %s", request.method, request.url.path, exc)
    return await _livefeed_error(request, Unavailable("storage is unavailable, retry shortly"))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    error = LivefeedError("internal error")
    # Sent from outside the middleware stack, so it carries its own nosniff.
    return json_response(error.to_dict(), error.status, {"X-Content-Type-Options": "nosniff"})
