"""Web push for readers: the VAPID key, following a feed and unfollowing it. Public (no
token), rate limited per address like every public write; a subscription's endpoint and keys
are never logged or given back (its id is the endpoint's sha256)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from livefeed.errors import NotFound
from livefeed.http._helpers import client_address, feed_slug, json_response, read_json, state
from livefeed.model.push import (
    PUSH_BODY_MAX,
    NewSubscription,
    PushKey,
    SubscriptionCreated,
    checked,
)
from livefeed.model.schema import decode
from livefeed.storage.push import PushStore


async def push_key(request: Request) -> Response:
    """``GET /api/push/key``: the browser's ``applicationServerKey``."""
    signer = await request.app.state.push_signer()
    return json_response(PushKey(signer.public_key), headers={"Cache-Control": "no-cache"})


async def subscribe(request: Request) -> Response:
    """``POST /api/feeds/{feed}/push-subscriptions``: follow the feed (or change the mode)."""
    store, settings = state(request)
    await _limit(request)
    payload = await read_json(request, PUSH_BODY_MAX)
    new = decode(payload, NewSubscription)
    hosts = frozenset(h.strip().lower() for h in settings.push_hosts.split(",") if h.strip())
    subscription = checked(new, allow_loopback_http=settings.push_test_loopback, hosts=hosts)
    feed = await store.require_feed(feed_slug(request))
    push: PushStore = request.app.state.push
    sid = await push.subscribe(feed.slug, subscription)
    return json_response(SubscriptionCreated(sid, subscription.mode), 201)


async def unsubscribe(request: Request) -> Response:
    """``DELETE /api/feeds/{feed}/push-subscriptions/{id}``: unfollow; 404 if unknown."""
    await _limit(request)
    sid: str = request.path_params["subscription"]
    push: PushStore = request.app.state.push
    if len(sid) != 64 or not await push.unsubscribe(feed_slug(request), sid.lower()):
        raise NotFound("no such push subscription on this feed", code="subscription_not_found")
    return Response(status_code=204)


async def _limit(request: Request) -> None:
    by_address, _ = request.app.state.limits
    await by_address.check(client_address(request), "write requests from this address")
