"""The JSON HTTP API for feeds and their briefs, and the health check."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from livefeed.http._helpers import (
    authorize,
    feed_slug,
    idempotent,
    json_response,
    parse_brief,
    parse_limit,
    read_json,
    state,
)
from livefeed.http.embeds import resolve
from livefeed.model.brief import Brief
from livefeed.model.feed import parse_new_feed
from livefeed.model.ids import StreamId
from livefeed.model.roles import Action
from livefeed.model.topics import parse_topic
from livefeed.newsroom import actions
from livefeed.storage.idempotency import Intent


async def list_feeds(request: Request) -> Response:
    store, _ = state(request)
    return json_response({"feeds": [f.to_dict() for f in await store.list_feeds()]})


async def create_feed(request: Request) -> Response:
    store, settings = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    payload = await read_json(request, settings.max_body_bytes)
    feed = parse_new_feed(payload, await store.now_ms())

    async def create(intent: Intent | None) -> dict[str, Any]:
        return (await store.create_feed(feed, intent)).to_dict()

    return await idempotent(
        request,
        editor,
        payload,
        create,
        lambda made: json_response(made, 201, {"Location": f"/api/feeds/{made['slug']}"}),
        feed=feed.slug,
    )


async def get_feed(request: Request) -> Response:
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    bounds = await store.bounds(feed.slug)
    return json_response({**feed.to_dict(), "last_event_id": str(bounds.last_generated)})


async def list_briefs(request: Request) -> Response:
    """Briefs newest first: ``?limit=1..100&before=<id>``; ``next_before`` pages further back;
    ``?tag=`` and/or ``?key_event=true`` keep to one topic (``model.topics``)."""
    store, settings = state(request)
    limit = parse_limit(
        request.query_params.get("limit"), settings.page_size, settings.max_page_size
    )
    raw_before = request.query_params.get("before")
    before = None if not raw_before else StreamId.parse(raw_before, name="before")
    topic = parse_topic(request.query_params)
    feed = await store.require_feed(feed_slug(request))
    if topic.filtered:
        briefs, next_before = await store.topic_briefs(feed.slug, topic, limit, before)
    else:
        briefs, next_before = await store.latest_briefs(feed.slug, limit, before)
    return json_response(
        {"briefs": briefs, "next_before": None if next_before is None else str(next_before)}
    )


async def publish_brief(request: Request) -> Response:
    """Validate, append to the stream, and answer 201 only once Redis has accepted the entry."""
    store, settings = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.cached_feed(feed_slug(request))
    payload = await read_json(request, settings.max_body_bytes)
    draft = await parse_brief(payload, default_author=editor, store=store)

    async def publish(intent: Intent | None) -> Brief:
        embeds = await resolve(request, draft.embeds)  # here: a replayed retry fetches nothing
        return await actions.publish(store, feed, draft, editor, intent, embeds=embeds)

    return await idempotent(
        request,
        editor,
        payload,
        publish,
        lambda brief: json_response(brief, 201, {"Location": f"/feeds/{feed.slug}#{brief.id}"}),
        Brief,
        feed=feed.slug,
    )


async def healthz(request: Request) -> Response:
    """200 when Redis answers a PING within two seconds, else 503; with this process's load.

    ``readers`` are connected WebSocket readers and ``tasks`` the asyncio tasks alive in this
    worker (a leak shows as tasks that outlive their readers). ``clock_offset_ms`` is how far
    Redis's clock (which stamps every event) is ahead of this process's: a node whose clock
    drifts shows here, though its events keep Redis's time.
    """
    store, _ = state(request)
    load = {"readers": request.app.state.hub.count(), "tasks": len(asyncio.all_tasks())}
    try:
        await asyncio.wait_for(store.ping(), 2.0)
        offset = await asyncio.wait_for(store.check_clock(), 2.0)
    except Exception:
        return json_response({"status": "unhealthy", "redis": "unreachable", **load}, 503)
    return json_response({"status": "ok", "redis": "ok", **load, "clock_offset_ms": offset})
