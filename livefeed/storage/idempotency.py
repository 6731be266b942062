"""Idempotency keys: a retried write with the same ``Idempotency-Key`` has one effect.

As Stripe and the IETF httpapi draft define it: the client sends one key per intent and reuses it
on its retries. The key, with a fingerprint of the request (method, path, If-Match, body and the
editor), is checked and stored by the append script in the same step as the write
(``append.lua``, ``idem``), so it holds across workers and nodes; the record keeps the result
the write answered with for ``TTL_SECONDS``. A retry with the same fingerprint gets that result
back without writing; the same key for a different request is 422 ``idempotency_key_reused``. A
request that appends nothing (refused, or nothing to change) stores nothing, so it never uses
the key up. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from livefeed.errors import BadRequest, ValidationFailed
from livefeed.storage.keys import Keys

TTL_SECONDS = 24 * 3600
KEY_MAX = 255
KEY_PATTERN = r'^(?:"[!#-~]{1,255}"|[!#-~]{1,255})$'
"""Visible ASCII but ``"`` (a UUID, a ULID, base64...), bare or quoted as the IETF draft's
structured-field string; the OpenAPI document states the same pattern."""
_KEY_RE = re.compile(KEY_PATTERN)


@dataclass(frozen=True, slots=True)
class Intent:
    """One client intent: the Redis key of its record and the fingerprint of its request."""

    key: str
    fingerprint: str


def parse_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` value, None when absent; BadRequest when empty, long or odd."""
    if header is None:
        return None
    value = header.strip()
    if _KEY_RE.fullmatch(value) is None:
        raise BadRequest(
            f"Idempotency-Key must be 1-{KEY_MAX} visible ASCII characters (a UUID, say)",
            code="bad_idempotency_key",
        )
    return value.strip('"')


def intent(
    keys: Keys,
    feed: str,
    key: str,
    editor: str,
    method: str,
    path: str,
    if_match: str | None,
    body: Any,
) -> Intent:
    """The intent of a request with ``key`` on ``feed``; keys are the editor's own (scoped
    by editor), and their records are kept in the feed's slot."""
    fingerprint = _fingerprint(editor, method, path, if_match, body)
    return Intent(keys.idempotency(feed, _scope(editor), key), fingerprint)


def token_intent(keys: Keys, key: str, editor: str, path: str, body: Any) -> Intent:
    """The intent of a ``POST /api/tokens`` with ``key`` (``storage.tokens.Tokens.issue``
    keeps its record, which holds no token)."""
    fingerprint = _fingerprint(editor, "POST", path, None, body)
    return Intent(keys.token_intent(_scope(editor), key), fingerprint)


def _fingerprint(editor: str, method: str, path: str, if_match: str | None, body: Any) -> str:
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS) if body is not None else b""
    request = b"\n".join(
        [method.encode(), path.encode(), (if_match or "").encode(), editor.encode(), canonical]
    )
    return hashlib.sha256(request).hexdigest()


def _scope(editor: str) -> str:
    return hashlib.sha256(editor.encode()).hexdigest()[:16]


def reused() -> ValidationFailed:
    """The error for a key already used for a different request."""
    return ValidationFailed(
        "this Idempotency-Key was already used for a different request; send a new key",
        code="idempotency_key_reused",
    )
