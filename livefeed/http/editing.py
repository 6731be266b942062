"""HTTP endpoints for editors' actions beyond publishing: correct, retract, pin, end coverage."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from livefeed.errors import BadRequest, NotFound, ValidationFailed
from livefeed.http._helpers import (
    authorize,
    feed_slug,
    idempotent,
    json_response,
    parse_brief,
    read_json,
    sanitized,
    state,
)
from livefeed.http.embeds import resolve, resolve_changes
from livefeed.model.brief import Brief, brief_dict, parse_patch
from livefeed.model.feed import FeedPatch
from livefeed.model.ids import StreamId
from livefeed.model.roles import Action
from livefeed.model.schema import Pin, decode
from livefeed.newsroom import actions
from livefeed.storage import idempotency

_IF_MATCH = re.compile(r'(W/)?"(\d{1,9})"')
# No brief is ever at version 0: a change "based on" it fails with 412 and the current version.
NO_VERSION = 0


def brief_id(request: Request) -> StreamId:
    raw = request.path_params["brief"]
    try:
        return StreamId.parse(raw, name="id")
    except BadRequest:
        raise NotFound(f"no brief {raw!r}", code="brief_not_found") from None


def expected_version(request: Request, body_version: int | None = None) -> int | None:
    """The version a change is based on, from ``If-Match`` or the body's ``version``.

    If-Match takes the ETag as sent (``"3"``) or ``*`` (any version). A weak tag (``W/"3"``)
    never matches (RFC 9110 compares If-Match strongly), so the change fails with 412; anything
    else, an unquoted ``3`` among them, is 400 ``bad_if_match``.
    """
    header = request.headers.get("if-match")
    if header is None:
        return body_version
    if header.strip() == "*":
        return body_version
    match = _IF_MATCH.fullmatch(header.strip())
    if match is None:
        raise BadRequest('If-Match must be a brief\'s ETag, e.g. "3"', code="bad_if_match")
    if match.group(1):
        return NO_VERSION
    version = int(match.group(2))
    if body_version is not None and body_version != version:
        raise BadRequest("If-Match and version disagree", code="bad_if_match")
    return version


async def me(request: Request) -> Response:
    """Who the token belongs to: lets the editor page check a token and prefill the byline."""
    actor = await authorize(request, Action.READ_DESK)
    return json_response({"editor": actor.name, "role": actor.role})


async def get_brief(request: Request) -> Response:
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    brief = await actions.require_brief(store, feed, brief_id(request))
    return json_response(brief, headers={"ETag": f'"{brief.version}"'})


async def preview_brief(request: Request) -> Response:
    """The brief as it would be stored (sanitised), without storing anything."""
    store, settings = state(request)
    editor = (await authorize(request, Action.READ_DESK)).name
    idempotency.parse_key(request.headers.get("idempotency-key"))  # nothing to repeat: checked only
    await store.require_feed(feed_slug(request))
    payload = await read_json(request, settings.max_body_bytes)
    draft = await parse_brief(payload, editor, store)
    embeds = await resolve(request, draft.embeds)
    return json_response({**brief_dict(draft, "", "", embeds=embeds), **_UNPLACED})


_UNPLACED = {"id": None, "published_at": None, "updated_at": None, "version": 0}
"""What a previewed brief does not have yet."""


async def patch_brief(request: Request) -> Response:
    store, settings = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.require_feed(feed_slug(request))
    target = brief_id(request)
    payload = await read_json(request, settings.max_body_bytes)
    changes, body_version = parse_patch(payload, sanitize=False)
    if "body" in changes:
        changes["body"] = await sanitized(changes["body"])
    if "media" in changes:
        changes["media"] = await store.media.resolve(changes["media"])
    version = expected_version(request, body_version)

    async def correct(intent: idempotency.Intent | None) -> Brief:
        if "embeds" in changes:  # re-resolved: a deleted post is kept, marked deleted
            current = await actions.require_brief(store, feed, target)
            await resolve_changes(request, changes, current)
        return await actions.correct(store, feed, target, changes, version, editor, intent)

    return await idempotent(
        request,
        editor,
        payload,
        correct,
        lambda brief: json_response(brief, headers={"ETag": f'"{brief.version}"'}),
        Brief,
        feed=feed.slug,
    )


async def delete_brief(request: Request) -> Response:
    store, _ = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.require_feed(feed_slug(request))
    target, version = brief_id(request), expected_version(request)
    return await idempotent(
        request,
        editor,
        None,
        lambda intent: actions.retract(store, feed, target, version, editor, intent),
        lambda _: Response(status_code=204),
        feed=feed.slug,
    )


async def brief_history(request: Request) -> Response:
    """A brief's versions with who changed it and when: corrections are public record."""
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    target = brief_id(request)
    versions = await actions.history(store, feed, target)
    return json_response({"id": str(target), "versions": versions})


async def put_pin(request: Request) -> Response:
    store, settings = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.require_feed(feed_slug(request))
    payload = await read_json(request, settings.max_body_bytes)
    if not isinstance(payload, dict):
        raise ValidationFailed('send {"brief_id": "<id>"}', field="brief_id")
    raw = decode(payload, Pin).brief_id
    try:
        target = StreamId.parse(raw, name="brief_id")
    except BadRequest:
        raise NotFound(f"no brief {raw!r}", code="brief_not_found") from None
    return await idempotent(
        request,
        editor,
        payload,
        lambda intent: actions.pin(store, feed, target, editor, intent),
        lambda brief: json_response({"pinned": brief}),
        feed=feed.slug,
    )


async def delete_pin(request: Request) -> Response:
    store, _ = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.require_feed(feed_slug(request))
    return await idempotent(
        request,
        editor,
        None,
        lambda intent: actions.unpin(store, feed, editor, intent),
        lambda _: json_response({"pinned": None}),
        feed=feed.slug,
    )


async def patch_feed(request: Request) -> Response:
    """``{"status": "ended" | "live"}`` ends or reopens coverage; ``{"title"}`` retitles;
    ``{"language"}`` says which language the feed is written in (pages' ``lang``)."""
    store, settings = state(request)
    editor = (await authorize(request, Action.PUBLISH)).name
    feed = await store.require_feed(feed_slug(request))
    payload = await read_json(request, settings.max_body_bytes)
    if not isinstance(payload, dict) or not payload:
        raise BadRequest(
            'send {"status": "ended"|"live"}, {"title"}, {"language"} and/or {"description"}',
            code="empty_patch",
        )
    patch = decode(payload, FeedPatch)
    return await idempotent(
        request,
        editor,
        payload,
        lambda intent: actions.update_feed(
            store,
            feed,
            patch.status,
            patch.title,
            editor,
            intent,
            language=patch.language,
            description=patch.description,
        ),
        json_response,
        feed=feed.slug,
    )


async def key_events(request: Request) -> Response:
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    return json_response({"briefs": await actions.key_events(store, feed)})
