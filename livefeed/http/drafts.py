"""The desk's JSON API: drafts (write, submit, send back, schedule, publish, discard), their
histories and the audit. Nothing here is public: every route takes a token, and a contributor
sees only their own drafts (``newsroom.drafts``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from livefeed.errors import BadRequest, NotFound
from livefeed.http._helpers import (
    authorize,
    feed_slug,
    idempotent,
    json_response,
    parse_limit,
    read_json,
    sanitized,
    state,
)
from livefeed.http.editing import expected_version
from livefeed.http.embeds import app_resolver
from livefeed.model.draft import (
    LISTED,
    Draft,
    DraftFields,
    PublishAt,
    SendBack,
    parse_at,
    parse_fields,
)
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId
from livefeed.model.roles import Action, Actor
from livefeed.model.schema import decode
from livefeed.newsroom import audit, drafts
from livefeed.storage.idempotency import Intent
from livefeed.storage.store import Store

_DRAFT_ID = re.compile(r"[0-9a-f]{1,64}")


def draft_id(request: Request) -> str:
    raw: str = request.path_params["draft"]
    if _DRAFT_ID.fullmatch(raw) is None:
        raise NotFound(f"no draft {raw[:64]!r}", code="draft_not_found")
    return raw


def _draft(draft: Draft, status: int = 200) -> Response:
    return json_response(draft, status, {"ETag": f'"{draft.version}"'})


async def _body_or_none(request: Request) -> Any:
    """The JSON body, or None when the request has none (a bare POST)."""
    _, settings = state(request)
    if "content-type" not in request.headers and request.headers.get("content-length") in (
        None,
        "0",
    ):
        return None
    return await read_json(request, settings.max_body_bytes)


async def _prepare(fields: DraftFields) -> None:
    fields.body = await sanitized(fields.body)


async def list_drafts(request: Request) -> Response:
    """``?status=draft|submitted|scheduled|published``: a contributor's own, an editor's all."""
    store, _ = state(request)
    actor = await authorize(request, Action.READ_DESK)
    status = request.query_params.get("status") or None
    if status is not None and status not in LISTED:
        raise BadRequest("status must be one of: " + ", ".join(LISTED), code="bad_status")
    feed = await store.require_feed(feed_slug(request))
    return json_response({"drafts": await drafts.listed(store, feed, actor, status)})


async def create_draft(request: Request) -> Response:
    store, settings = state(request)
    actor = await authorize(request, Action.WRITE_DRAFT)
    feed = await store.require_feed(feed_slug(request))
    payload = await read_json(request, settings.max_body_bytes)
    fields = parse_fields(payload)
    await _prepare(fields)

    async def create(intent: Intent | None) -> Draft:
        return await drafts.create(store, feed, fields, actor, intent)

    return await idempotent(request, actor.name, payload, create,
                            lambda d: _draft(d, 201), Draft, feed=feed.slug)  # fmt: skip


async def get_draft(request: Request) -> Response:
    store, _ = state(request)
    actor = await authorize(request, Action.READ_DESK)
    feed = await store.require_feed(feed_slug(request))
    return _draft(await drafts.require(store, feed, draft_id(request), actor))


async def patch_draft(request: Request) -> Response:
    """Change the fields sent; If-Match (or ``version``) makes a concurrent change a 412."""
    store, settings = state(request)
    actor = await authorize(request, Action.WRITE_DRAFT)
    feed = await store.require_feed(feed_slug(request))
    target = draft_id(request)
    payload = await read_json(request, settings.max_body_bytes)
    body_version = payload.get("version") if isinstance(payload, dict) else None
    if body_version is not None and (type(body_version) is not int or body_version < 1):
        raise BadRequest("version must be a positive whole number", code="bad_version")
    expected = expected_version(request, body_version)
    parse_fields(payload, {})  # a bad field is 422 before anything is read

    async def edit(intent: Intent | None) -> Draft:
        return await drafts.edit(store, feed, target, payload, expected, actor, intent,
                                 sanitize=sanitized)  # fmt: skip

    return await idempotent(request, actor.name, payload, edit, _draft, Draft, feed=feed.slug)


async def send_back_draft(request: Request) -> Response:
    store, settings = state(request)
    actor = await authorize(request, Action.REVIEW)
    feed = await store.require_feed(feed_slug(request))
    target = draft_id(request)
    payload = await read_json(request, settings.max_body_bytes)
    note = decode(payload, SendBack).note

    async def send_back(intent: Intent | None) -> Draft:
        return await drafts.send_back(store, feed, target, note, actor, intent)

    return await idempotent(request, actor.name, payload, send_back, _draft, Draft,
                            feed=feed.slug)  # fmt: skip


async def publish_draft(request: Request) -> Response:
    """Now: 201 ``{"brief", "draft"}``; ``{"at": <a future time>}``: 200, the draft scheduled."""
    store, _ = state(request)
    actor = await authorize(request, Action.REVIEW)
    feed = await store.cached_feed(feed_slug(request))
    target = draft_id(request)
    payload = await _body_or_none(request)
    at = decode(payload if payload is not None else {}, PublishAt).at
    at_ms = None if at is None else parse_at(at)
    now = await store.now_ms()

    async def publish(intent: Intent | None) -> Any:
        if at_ms is not None and at_ms > now:
            return await drafts.schedule(store, feed, target, at_ms, actor, intent)
        resolve = app_resolver(request.app.state, store)
        brief, draft = await drafts.publish(store, feed, target, actor, resolve, intent)
        return {"brief": brief, "draft": draft}

    def render(result: Any) -> Response:
        if isinstance(result, dict) and "draft" in result:  # published, now or replayed
            brief = result["brief"]
            brief_id = brief["id"] if isinstance(brief, dict) else brief.id
            return json_response(result, 201, {"Location": f"/feeds/{feed.slug}#{brief_id}"})
        return _draft(msgspec.convert(result, Draft) if isinstance(result, dict) else result)

    return await idempotent(request, actor.name, payload, publish, render, feed=feed.slug)


async def submit_draft(request: Request) -> Response:
    return await _step(request, Action.WRITE_DRAFT, drafts.submit, _draft)


async def unschedule_draft(request: Request) -> Response:
    return await _step(request, Action.REVIEW, drafts.unschedule, _draft)


async def delete_draft(request: Request) -> Response:
    return await _step(
        request, Action.WRITE_DRAFT, drafts.discard, lambda _: Response(status_code=204)
    )


async def _step(
    request: Request,
    action: Action,
    step: Callable[[Store, Feed, str, Actor, Intent | None], Awaitable[Draft]],
    render: Callable[[Any], Response],
) -> Response:
    """A bodiless change of one draft's status (submit, unschedule, discard), once per
    Idempotency-Key."""
    store, _ = state(request)
    actor = await authorize(request, action)
    feed = await store.require_feed(feed_slug(request))
    target = draft_id(request)

    async def change(intent: Intent | None) -> Draft:
        return await step(store, feed, target, actor, intent)

    return await idempotent(request, actor.name, None, change, render, Draft, feed=feed.slug)


async def draft_history(request: Request) -> Response:
    """The draft's desk events, oldest first, as the desk WebSocket sends them."""
    store, _ = state(request)
    actor = await authorize(request, Action.READ_DESK)
    feed = await store.require_feed(feed_slug(request))
    target = draft_id(request)
    await drafts.require(store, feed, target, actor)
    entries = await store.drafts.history(feed.slug, target)
    events = [{"type": e.type, "id": str(e.id), **e.payload()} for e in entries]
    return json_response({"events": events})


async def get_audit(request: Request) -> Response:
    """The feed's desk actions, newest first, ``?limit=1..100&cursor=<id>``; ``next_cursor``
    pages further back (null at the oldest)."""
    store, _ = state(request)
    await authorize(request, Action.READ_AUDIT)
    limit = parse_limit(request.query_params.get("limit"), audit.PAGE, audit.PAGE)
    raw = request.query_params.get("cursor") or None
    cursor = None if raw is None else str(StreamId.parse(raw, name="cursor"))
    feed = await store.require_feed(feed_slug(request))
    lines, next_cursor = await audit.page(store, feed, cursor, limit)
    return json_response({"audit": lines, "next_cursor": next_cursor})
