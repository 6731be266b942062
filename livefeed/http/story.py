"""HTTP endpoints for the story so far: ``/api/feeds/{feed}/lead`` and ``…/summary``.

GET answers ``{"lead": ... or null, "version": n}`` (ETag ``"n"``), so an editor can base a
change on the version even after a clear; PUT replaces (``If-Match`` or ``version``: 412 when
it is no longer current) and answers the stored form; DELETE clears (204).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from livefeed.http._helpers import (
    authorize,
    feed_slug,
    idempotent,
    json_response,
    read_json,
    sanitized,
    state,
)
from livefeed.http.editing import NO_VERSION
from livefeed.http.editing import expected_version as _expected
from livefeed.model.roles import Action
from livefeed.model.story import Lead, NewLead, NewSummary, Summary, parse_lead, parse_summary
from livefeed.newsroom import story
from livefeed.storage.store import Store


async def get_lead(request: Request) -> Response:
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    lead, _, version, _ = await store.story(feed.slug)
    return json_response({"lead": lead, "version": version}, headers=_etag(version))


async def get_summary(request: Request) -> Response:
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    _, summary, _, version = await store.story(feed.slug)
    return json_response({"summary": summary, "version": version}, headers=_etag(version))


async def put_lead(request: Request) -> Response:
    async def prepare(payload: Any, editor: str, store: Store) -> NewLead:
        new = parse_lead(payload, editor)
        new.body = await sanitized(new.body)
        new.media = await store.media.resolve(new.media)
        return new

    return await _put(request, prepare, story.set_lead, Lead)


async def put_summary(request: Request) -> Response:
    async def prepare(payload: Any, editor: str, store: Store) -> NewSummary:
        new = parse_summary(payload)
        new.items = tuple([await sanitized(item) for item in new.items])
        return new

    return await _put(request, prepare, story.set_summary, Summary)


async def _put(
    request: Request,
    prepare: Callable[[Any, str, Store], Awaitable[Any]],
    setter: Callable[..., Awaitable[Lead | Summary]],
    model: type[Lead | Summary],
) -> Response:
    """The steps a PUT of the lead or the summary shares: authorise, parse and prepare the
    body (``prepare``), then ``setter`` at the expected version, once per Idempotency-Key."""
    store, settings = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.require_feed(feed_slug(request))
    payload = await read_json(request, settings.max_body_bytes)
    new = await prepare(payload, editor, store)
    expected = expected_version(request, new.version)
    return await idempotent(
        request,
        editor,
        payload,
        lambda intent: setter(store, feed, new, expected, editor, intent),
        lambda stored: json_response(stored, headers=_etag(stored.version)),
        model,
        feed=feed.slug,
    )


async def delete_lead(request: Request) -> Response:
    return await _clear(request, "lead")


async def delete_summary(request: Request) -> Response:
    return await _clear(request, "summary")


async def _clear(request: Request, kind: str) -> Response:
    store, _ = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.require_feed(feed_slug(request))
    expected = expected_version(request)
    return await idempotent(
        request,
        editor,
        None,
        lambda intent: story.clear(store, feed, kind, expected, editor, intent),
        lambda _: Response(status_code=204),
        feed=feed.slug,
    )


def expected_version(request: Request, body_version: int | None = None) -> int | None:
    """As for corrections; but 0 is a real version here (never set), so a weak tag, which
    never matches, is made a version nothing is at."""
    version = _expected(request, body_version)
    return -1 if version == NO_VERSION and _weak(request) else version


def _weak(request: Request) -> bool:
    return request.headers.get("if-match", "").strip().startswith("W/")


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}
