"""The OpenAPI paths and schemas of web push (``http/push.py``, ``pages/worker.py``); the
schemas are generated from the models in ``model/push.py``."""

from __future__ import annotations

from typing import Any

import msgspec

from livefeed.http.openapi_schema import (
    _FEED_404,
    _VALIDATION_CODES,
    _errors,
    _json,
    _op,
    _param,
    _ref,
    _string,
)
from livefeed.model.push import (
    SUBSCRIPTION_ID_PATTERN,
    NewSubscription,
    PushKey,
    SubscriptionCreated,
)

_PUBLIC_WRITE = "Public (no token), rate limited per address like every public write."


def push_paths() -> dict[str, Any]:
    feed = _param("feed", "path", _string(), "the feed's slug")
    sid = _param("subscription", "path", _string(pattern=SUBSCRIPTION_ID_PATTERN),
                 "the id the POST answered: sha256 of the endpoint, hex")  # fmt: skip
    return {
        "/api/push/key": {"get": _op(
            "pushKey", "push", "The VAPID public key: the browser's applicationServerKey",
            {"200": _json(_ref("PushKey"), "one key for the whole deployment"), **_errors(503)},
        )},
        "/api/feeds/{feed}/push-subscriptions": {"post": _op(
            "followFeed", "push", "Follow the feed with web push (or change the mode)",
            {"201": _json(_ref("SubscriptionCreated"), "stored; its id unfollows"),
             **_errors((400, ("invalid_json",)), _FEED_404,
                       (422, (*_VALIDATION_CODES, "invalid_field")), 429, 503)},
            parameters=(feed,), body=_ref("NewSubscription"),
            description=f"The browser's PushSubscription JSON and `mode`. {_PUBLIC_WRITE} "
            "`invalid_field`: the endpoint is not https, or the keys are not a P-256 point "
            "and a 16-byte secret.",
        )},
        "/api/feeds/{feed}/push-subscriptions/{subscription}": {"delete": _op(
            "unfollowFeed", "push", "Unfollow: forget the subscription",
            {"204": {"description": "forgotten"},
             **_errors((404, ("subscription_not_found",)), 429, 503)},
            parameters=(feed, sid), description=_PUBLIC_WRITE,
        )},
        "/sw.js": {"get": _op(
            "serviceWorker", "pages", "The service worker that shows push notifications",
            {"200": {"description": "scope /; revalidated on every check",
                     "content": {"text/javascript": {"schema": {"type": "string"}}}}},
        )},
    }  # fmt: skip


def push_schemas() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        (NewSubscription, SubscriptionCreated, PushKey), ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(components))
    schemas["SubscriptionCreated"]["required"] = ["id", "mode"]
    return schemas
