"""The JSON HTTP API: feeds, briefs, health. Request parsing and editor authentication live here."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from livefeed import idempotency, newsroom
from livefeed.append import Replayed
from livefeed.config import Settings
from livefeed.errors import (
    BadRequest,
    LivefeedError,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from livefeed.idempotency import Intent
from livefeed.models import BriefDraft, StreamId, parse_new_brief, parse_new_feed, sanitize_body
from livefeed.store import Store
from livefeed.tokens import hash_token

FAILED_TOKENS = "all addresses"
SANITIZE_IN_LOOP = 1000
"""Bodies up to this many characters are sanitised on the event loop; longer ones in a thread."""


async def sanitized(body: str) -> str:
    """``sanitize_body(body)`` without holding the event loop for a long body: html5ever takes
    time quadratic in how deep elements nest (60 ms for 20,000 characters of ``<ul>``), and nh3
    lets go of the GIL while it works, so a worker thread leaves the loop to other requests."""
    if len(body) <= SANITIZE_IN_LOOP:
        return sanitize_body(body)
    return await asyncio.to_thread(sanitize_body, body)


async def parse_brief(payload: Any, default_author: str) -> BriefDraft:
    """``parse_new_brief`` with the body sanitised by ``sanitized``."""
    draft = parse_new_brief(payload, default_author=default_author, sanitize=False)
    return dataclasses.replace(draft, body=await sanitized(draft.body))


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers=headers
    )


def state(request: Request) -> tuple[Store, Settings]:
    return request.app.state.store, request.app.state.settings


async def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON, enforcing content type (415) and size (413)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "send the body as application/json", code="unsupported_media_type"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body must be at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body must be at most {limit} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None


async def authenticate(request: Request) -> str:
    """The editor's name for the request's bearer token; Unauthorized otherwise.

    The token never appears in an error message or log line.
    """
    store, settings = state(request)
    by_address, by_editor = request.app.state.limits
    by_address.check(client_address(request), "write requests from this address")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send an editor token as 'Authorization: Bearer <token>'")
    # Wrong tokens from all addresses together, so guesses spread over many addresses (or
    # forged X-Forwarded-For entries) stay bounded too; while the cap is spent, only tokens that
    # passed lately are checked, so a flood of guesses cannot lock out editors at work.
    failures = request.app.state.failed_tokens
    digest = hash_token(token)
    if digest not in request.app.state.valid_tokens:
        failures.ensure(FAILED_TOKENS, "failed token checks")
    if settings.editor_token and hmac.compare_digest(
        token.encode(), settings.editor_token.encode()
    ):
        name: str | None = settings.editor_name
    else:
        name = await store.tokens.editor_for(token)
    if name is None:
        failures.spend(FAILED_TOKENS)
        raise Unauthorized("the editor token is not valid or was revoked", code="invalid_token")
    request.app.state.valid_tokens.add(digest)
    by_editor.check(name, f"changes by {name}")
    return name


async def idempotent(
    request: Request,
    editor: str,
    body: Any,
    action: Callable[[Intent | None], Awaitable[Any]],
    render: Callable[[Any], Response],
) -> Response:
    """Run a write at most once per ``Idempotency-Key`` and answer ``render(result)``.

    A retry of an intent carried out before gets its first result again, marked
    ``Idempotent-Replayed: true``, and writes nothing. The script decides (atomically with the
    write); the lookups here answer a retry whose action would refuse before reaching it (a
    correction whose If-Match is no longer current, a retraction of a brief now gone).
    """
    key = idempotency.parse_key(request.headers.get("idempotency-key"))
    if key is None:
        return render(await action(None))
    store, _ = state(request)
    intent = idempotency.intent(
        store.keys, key, editor, request.method, request.url.path,
        request.headers.get("if-match"), body,
    )  # fmt: skip
    done, result = await store.intent_result(intent)
    if not done:
        try:
            return render(await action(intent))
        except Replayed as replay:
            result = replay.result
        except LivefeedError:
            done, result = await store.intent_result(intent)  # a twin request just did it
            if not done:
                raise
    response = render(result)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def feed_slug(request: Request) -> str:
    slug: str = request.path_params["feed"]
    return slug


async def list_feeds(request: Request) -> Response:
    store, _ = state(request)
    return json_response({"feeds": [f.to_dict() for f in await store.list_feeds()]})


async def create_feed(request: Request) -> Response:
    store, settings = state(request)
    editor = await authenticate(request)
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
    )


async def get_feed(request: Request) -> Response:
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    bounds = await store.bounds(feed.slug)
    return json_response({**feed.to_dict(), "last_event_id": str(bounds.last_generated)})


async def list_briefs(request: Request) -> Response:
    """Briefs newest first: ``?limit=1..100&before=<id>``; ``next_before`` pages further back."""
    store, settings = state(request)
    limit = parse_limit(
        request.query_params.get("limit"), settings.page_size, settings.max_page_size
    )
    raw_before = request.query_params.get("before")
    before = None if not raw_before else StreamId.parse(raw_before, name="before")
    feed = await store.require_feed(feed_slug(request))
    briefs, next_before = await store.latest_briefs(feed.slug, limit, before)
    return json_response(
        {"briefs": briefs, "next_before": None if next_before is None else str(next_before)}
    )


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be a whole number from 1 to {maximum}", code="bad_limit")
    return int(raw)


async def publish_brief(request: Request) -> Response:
    """Validate, append to the stream, and answer 201 only once Redis has accepted the entry."""
    store, settings = state(request)
    editor = await authenticate(request)
    feed = await store.cached_feed(feed_slug(request))
    payload = await read_json(request, settings.max_body_bytes)
    draft = await parse_brief(payload, default_author=editor)
    return await idempotent(
        request,
        editor,
        payload,
        lambda intent: newsroom.publish(store, feed, draft, editor, intent),
        lambda brief: json_response(brief, 201, {"Location": f"/feeds/{feed.slug}#{brief['id']}"}),
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
