"""What every JSON endpoint shares: reading the body, authenticating and authorising the
token-holder, idempotent writes, answering in JSON."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from livefeed.config import Settings
from livefeed.errors import (
    BadRequest,
    Forbidden,
    LivefeedError,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from livefeed.model.brief import BriefDraft, parse_new_brief
from livefeed.model.roles import REQUIRED, Action, Actor, Role, allowed
from livefeed.model.text import sanitize_body
from livefeed.storage import idempotency
from livefeed.storage.append import Replayed
from livefeed.storage.idempotency import Intent
from livefeed.storage.store import Store
from livefeed.storage.tokens import hash_token

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


async def parse_brief(payload: Any, default_author: str, store: Store) -> BriefDraft:
    """``parse_new_brief`` with the body sanitised by ``sanitized`` and media resolved."""
    draft = parse_new_brief(payload, default_author=default_author, sanitize=False)
    draft.body = await sanitized(draft.body)
    draft.media = await store.media.resolve(draft.media)
    return draft


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` (JSON types, or models such as Brief and Feed within them) as a JSON answer."""
    return Response(
        _JSON.encode(data), status_code=status, media_type="application/json", headers=headers
    )


_JSON = msgspec.json.Encoder()


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


async def authorize(request: Request, action: Action) -> Actor:
    """The request's token-holder if their role may take ``action`` (``model.roles``);
    Unauthorized without a valid token, Forbidden (``forbidden_role``) when the role may not.

    Every route that needs a token calls this, before it reads or changes anything.
    """
    return _may(await authenticate(request), action)


async def authenticate(request: Request) -> Actor:
    """Who holds the request's bearer token, with their role; Unauthorized otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        await _address_limit(request)
        raise Unauthorized("send an editor token as 'Authorization: Bearer <token>'")
    return await holder_of(request, token)


async def authorize_token(conn: HTTPConnection, token: str, action: Action) -> Actor:
    """``authorize`` for a token that came another way than a header (the desk socket's)."""
    return _may(await holder_of(conn, token), action)


def _may(actor: Actor, action: Action) -> Actor:
    if not allowed(actor.role, action):
        raise Forbidden(
            f"a {actor.role} may not {action.replace('_', ' ')}; "
            f"that needs the {REQUIRED[action]} role"
        )
    return actor


async def _address_limit(conn: HTTPConnection) -> None:
    by_address, _ = conn.app.state.limits
    await by_address.check(client_address(conn), "write requests from this address")


async def holder_of(conn: HTTPConnection, token: str) -> Actor:
    """Who holds ``token``, under the rate limits; Unauthorized if nobody does.

    The single ``LIVEFEED_EDITOR_TOKEN`` is the operator's and acts as an admin. The role is
    read from Redis on every request, so a change takes effect at once on every node. The token
    never appears in an error message or log line.
    """
    await _address_limit(conn)
    _, by_editor = conn.app.state.limits
    # Wrong tokens from all addresses together, so guesses spread over many addresses (or
    # forged X-Forwarded-For entries) stay bounded too; while the cap is spent, only tokens that
    # passed lately are checked, so a flood of guesses cannot lock out editors at work.
    failures = conn.app.state.failed_tokens
    digest = hash_token(token)
    if digest not in conn.app.state.valid_tokens:
        failures.ensure(FAILED_TOKENS, "failed token checks")
    actor = await lookup_token(conn, token)
    if actor is None:
        failures.spend(FAILED_TOKENS)
        raise Unauthorized("the editor token is not valid or was revoked", code="invalid_token")
    conn.app.state.valid_tokens.add(digest)
    await by_editor.check(actor.name, f"changes by {actor.name}")
    return actor


async def lookup_token(conn: HTTPConnection, token: str) -> Actor | None:
    """Who holds ``token`` as Redis has it now (the operator's token: an admin), or None; no
    rate limit (the desk socket's periodic re-check)."""
    store, settings = conn.app.state.store, conn.app.state.settings
    if settings.editor_token and hmac.compare_digest(
        token.encode(), settings.editor_token.encode()
    ):
        return Actor(settings.editor_name, Role.ADMIN)
    actor: Actor | None = await store.tokens.actor_for(token)
    return actor


async def idempotent(
    request: Request,
    editor: str,
    body: Any,
    action: Callable[[Intent | None], Awaitable[Any]],
    render: Callable[[Any], Response],
    model: type[Any] | None = None,
    *,
    feed: str,
) -> Response:
    """Run a write at most once per ``Idempotency-Key`` and answer ``render(result)``; the
    record is kept with ``feed``'s keys (its slot on a cluster).

    A retry of an intent carried out before gets its first result again, marked
    ``Idempotent-Replayed: true``, and writes nothing. The script decides (atomically with the
    write); the lookups here answer a retry whose action would refuse before reaching it (a
    correction whose If-Match is no longer current, a retraction of a brief now gone).
    A first result kept as JSON is given to ``render`` as ``model`` (Brief, Feed) when named.
    """
    key = idempotency.parse_key(request.headers.get("idempotency-key"))
    if key is None:
        return render(await action(None))
    store, _ = state(request)
    intent = idempotency.intent(
        store.keys, feed, key, editor, request.method, request.url.path,
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
    if model is not None and result is not None:
        result = msgspec.convert(result, model)
    response = render(result)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def feed_slug(request: Request) -> str:
    slug: str = request.path_params["feed"]
    return slug


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be a whole number from 1 to {maximum}", code="bad_limit")
    return int(raw)
