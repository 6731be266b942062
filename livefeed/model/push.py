"""Web push (RFC 8030/8291/8292): what a reader's browser sends to follow a feed, what is
stored of it, and the message each notification carries. Pure: no I/O.

A subscription is the browser's ``PushSubscription.toJSON()`` (``endpoint``, ``keys``) plus the
reader's ``mode``; it is known by the sha256 of its endpoint (``subscription_id``), which is
all the API gives back and all an index holds. The endpoint and keys themselves are kept, as
sending needs them, and are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from msgspec import Meta, Struct

from livefeed.errors import ValidationFailed
from livefeed.model.text import plain_text

ENDPOINT_MAX = 1024
"""The longest push endpoint URL taken (the vendors' are under 500 characters)."""
P256DH_BYTES = 65
"""An uncompressed P-256 point (RFC 8291 3.1)."""
AUTH_BYTES = 16
"""The authentication secret (RFC 8291 3.2)."""
PUSH_BODY_MAX = 4096
"""A subscription request's body, in bytes."""
NOTIFICATION_BODY_WORDS = 30
"""A notification's text: the brief's first words."""
SUBSCRIPTION_ID_PATTERN = r"^[0-9a-f]{64}$"
Mode = Literal["key_events", "all"]
_MODES = "key_events: key events and breaking alerts; all: every new brief too (capped per feed)"
_B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class SubscriptionKeys(Struct):
    """The browser's keys for this subscription, base64url as ``toJSON()`` gives them."""

    p256dh: Annotated[str, Meta(min_length=86, max_length=88, pattern=_B64URL)]
    auth: Annotated[str, Meta(min_length=22, max_length=24, pattern=_B64URL)]


class NewSubscription(Struct, kw_only=True):
    """A browser's PushSubscription JSON and what it follows: key events (and breaking alerts)
    only, or every update. Other fields a browser adds are ignored."""

    endpoint: Annotated[str, Meta(min_length=1, max_length=ENDPOINT_MAX,
                                  description="the push service's URL: https")]  # fmt: skip
    keys: SubscriptionKeys
    mode: Annotated[Mode, Meta(description=_MODES)] = "key_events"
    expirationTime: int | float | None = None  # the browser's name


class SubscriptionCreated(Struct):
    """A stored subscription: unfollow with ``DELETE …/push-subscriptions/{id}``."""

    id: Annotated[str, Meta(pattern=SUBSCRIPTION_ID_PATTERN,
                            description="sha256 of the endpoint, hex")]  # fmt: skip
    mode: Mode


class PushKey(Struct):
    """The deployment's VAPID public key, the browser's ``applicationServerKey``."""

    key: Annotated[str, Meta(description="uncompressed P-256 point, base64url, no padding")]


class Subscription(Struct, frozen=True):
    """A subscription as stored: what sending needs."""

    endpoint: str
    p256dh: str
    auth: str
    mode: Mode


class Notification(Struct, frozen=True):
    """The push message's JSON, which web/sw.js shows: ``tag`` (the event id) makes a resend
    replace the notification rather than add one."""

    title: str
    body: str
    tag: str
    url: str
    feed: str
    breaking: bool = False


def subscription_id(endpoint: str) -> str:
    """The id and index key of a subscription: the endpoint's sha256, hex."""
    return hashlib.sha256(endpoint.encode()).hexdigest()


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding; ValueError if it is not."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def checked(
    new: NewSubscription, *, allow_loopback_http: bool, hosts: frozenset[str] = frozenset()
) -> Subscription:
    """``new`` as stored, once its endpoint is an https URL (http to a loopback address only
    when allowed: the test suite's own push service) on one of ``hosts`` or their subdomains
    (empty: any host), and its keys are a P-256 point and a 16-byte secret; ValidationFailed
    ``invalid_field`` naming the field otherwise."""
    host = _check_endpoint(new.endpoint, allow_loopback_http)
    try:
        p256dh = b64url_decode(new.keys.p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
        if len(p256dh) != P256DH_BYTES:
            raise ValueError("not an uncompressed point")
    except ValueError:
        raise _bad("keys", "keys.p256dh must be an uncompressed P-256 point, base64url") from None
    try:
        auth = b64url_decode(new.keys.auth)
    except ValueError:
        auth = b""
    if len(auth) != AUTH_BYTES:
        raise _bad("keys", f"keys.auth must be {AUTH_BYTES} bytes, base64url")
    if hosts and not any(host == h or host.endswith("." + h) for h in hosts):
        raise _bad("endpoint", "endpoint is not on a push service this site sends to")
    return Subscription(new.endpoint, b64url(p256dh), b64url(auth), new.mode)


def _check_endpoint(endpoint: str, allow_loopback_http: bool) -> str:
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise _bad("endpoint", "endpoint must be an https URL") from None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise _bad("endpoint", "endpoint must be an https URL with a host and no user")
    if parts.scheme == "https":
        return parts.hostname.lower()
    if parts.scheme == "http" and allow_loopback_http and _loopback(parts.hostname):
        return parts.hostname
    raise _bad("endpoint", "endpoint must be an https URL")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_field", field=field)


def notification(feed: str, brief: dict[str, Any], event_id: str, breaking: bool) -> bytes:
    """The push message for ``brief`` (its stored JSON) as JSON bytes: headline, first words
    and the permalink (``/feeds/{feed}#{id}``, as web/js/permalink.js takes it); well under
    the 4 KB a push service carries."""
    text = plain_text(str(brief.get("body", "")))
    words = text.split()
    body = " ".join(words[:NOTIFICATION_BODY_WORDS]) + (
        " …" if len(words) > NOTIFICATION_BODY_WORDS else ""
    )
    brief_id = str(brief.get("id", event_id))
    url = f"/feeds/{feed}#{brief_id}"
    headline = str(brief.get("headline", ""))
    return msgspec.json.encode(Notification(headline, body, event_id, url, feed, breaking))
