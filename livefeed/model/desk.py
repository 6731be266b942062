"""The desk socket's vocabulary: its subprotocols, its timings, the items presence names, and
the frames desk events become. Pure: no I/O.

A desk event is a desk-stream entry (``Keys.desk``: fields t and d, d being ``{"draft": the
draft as it stands, "by": {name, role}, "at"}`` and, for some, ``brief`` or ``reason``:
``model.draft.desk_payload``); its frame is d with ``"type": t, "id": <entry id>`` put first.
"""

from __future__ import annotations

import re

from livefeed.errors import BadRequest

DESK_SUBPROTOCOL = "livefeed.desk"
"""The subprotocol a desk client offers and the server echoes (never the token's)."""
TOKEN_SUBPROTOCOL = "livefeed.token."  # noqa: S105 (a prefix, not a secret)
"""A subprotocol ``livefeed.token.<token>`` carries the token; it is never echoed."""
AUTH_SECONDS = 5.0
"""A client that sent no token in a subprotocol must send ``{"type": "auth"}`` within this."""
RECHECK_SECONDS = 2.0
"""How often an open desk socket's token is looked up again: a revoked token's socket closes
within this (and a changed role's is asked to reconnect)."""
PRESENCE_TTL_MS = 10_000
"""How long an ``editing`` announcement holds unless renewed (the page renews every 3 s)."""
SWEEP_SECONDS = 1.0
"""How often a node sweeps lapsed presence (a dead node's) and tells the desk it stopped."""

_ITEM = re.compile(r"(brief:[0-9]{1,20}-[0-9]{1,20}|draft:[A-Za-z0-9_-]{1,64})")


def parse_item(raw: object) -> str:
    """An ``editing`` message's item, ``brief:<id>`` or ``draft:<id>``; BadRequest otherwise."""
    if isinstance(raw, str) and _ITEM.fullmatch(raw):
        return raw
    raise BadRequest("item must be 'brief:<id>' or 'draft:<id>'", code="bad_item")


def desk_frame(event_type: str, desk_id: str, data: bytes) -> str:
    """The frame text of a desk-stream entry, its stored JSON wrapped, not re-encoded."""
    body = data.decode()
    head = f'{{"type":"{event_type}","id":"{desk_id}"'
    return head + "}" if body == "{}" else head + "," + body[1:]
