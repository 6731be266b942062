"""One web push message (RFC 8030) to one subscription: the payload encrypted for the browser
(RFC 8291, ``aes128gcm``, by http_ece), the request signed for the push service with the
deployment's VAPID key (RFC 8292, by py_vapid), sent with ``fetch.post``: the endpoint came
from an anonymous client, so it goes through the same guard as every other outbound request.

Encrypting took ~2.6 ms a message and signing a token ~1 ms on the (busy) development machine,
so encryption runs in a worker thread, off the event loop, and a token is signed once per push
service origin and reused for half its lifetime.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from livefeed.model.push import Subscription, b64url, b64url_decode
from livefeed.outbound.fetch import Policy, post

JWT_SECONDS = 12 * 3600
"""A VAPID token's lifetime (RFC 8292 allows up to 24 hours)."""


@dataclass(frozen=True)
class Message:
    """What to send: the JSON payload and RFC 8030's headers (``topic``: a resend replaces an
    undelivered one at the push service; ``urgency``: high for breaking alerts)."""

    payload: bytes
    topic: str
    ttl: int
    urgency: str = "normal"


class Signer:
    """The deployment's VAPID key pair: signs tokens, gives the ``applicationServerKey``."""

    def __init__(self, private_pem: str, subject: str) -> None:
        self._vapid = Vapid02.from_pem(private_pem.encode())
        self.subject = subject
        point = self._vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url(point)
        self._tokens: dict[str, tuple[float, str]] = {}

    def authorization(self, endpoint: str) -> str:
        """``Authorization: vapid t=<JWT>,k=<public key>`` for the endpoint's origin, signed
        anew once the one kept for that origin is past half its lifetime."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        kept = self._tokens.get(audience)
        if kept is not None and kept[0] > now:
            return kept[1]
        claims = {"aud": audience, "exp": int(now) + JWT_SECONDS, "sub": self.subject}
        header: str = self._vapid.sign(claims)["Authorization"]
        if len(self._tokens) > 1000:  # a handful of vendors in practice; never unbounded
            self._tokens.clear()
        self._tokens[audience] = (now + JWT_SECONDS / 2, header)
        return header


def new_private_key() -> str:
    """A fresh P-256 private key as PEM (PKCS#8)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def encrypt(payload: bytes, subscription: Subscription) -> bytes:
    """``payload`` as RFC 8291's aes128gcm body for ``subscription``'s keys (a fresh sender key
    and salt every time)."""
    body: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=b64url_decode(subscription.p256dh),
        auth_secret=b64url_decode(subscription.auth),
        version="aes128gcm",
    )
    return body


async def send(subscription: Subscription, message: Message, signer: Signer, policy: Policy) -> int:
    """Send ``message`` to ``subscription``; the push service's status (201: taken). Raises
    FetchFailed (no answer) or ValidationFailed (an address the guard refuses)."""
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Encoding": "aes128gcm",
        "TTL": str(message.ttl),
        "Topic": message.topic,
        "Urgency": message.urgency,
        "Authorization": signer.authorization(subscription.endpoint),
    }
    body = await asyncio.to_thread(encrypt, message.payload, subscription)
    answer = await post(subscription.endpoint, policy, body, headers)
    return answer.status
