"""The desk socket's vocabulary: its subprotocols, its timings, the items presence names, and
the frames desk events become. Pure: no I/O.

A desk event is a desk-stream entry (``Keys.desk``: fields t and d, d the draft as it stands
plus ``by`` {name, role} and ``at``); its frame is ``{"type": t, "id": <entry id>, "draft":
{...}, "by", "at"}``, the draft nested so that its own ``id`` stays its own.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from livefeed.errors import BadRequest
from livefeed.model.roles import Action, Actor, allowed

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
_EVENT_FIELDS = ("by", "at", "reason")


def parse_item(raw: object) -> str:
    """An ``editing`` message's item, ``brief:<id>`` or ``draft:<id>``; BadRequest otherwise."""
    if isinstance(raw, str) and _ITEM.fullmatch(raw):
        return raw
    raise BadRequest("item must be 'brief:<id>' or 'draft:<id>'", code="bad_item")


def desk_frame(event_type: str, desk_id: str, data: bytes) -> tuple[str, str | None]:
    """The frame text of a desk-stream entry, and the owner of the draft it is about."""
    fields: dict[str, Any] = orjson.loads(data)
    frame: dict[str, Any] = {"type": event_type, "id": desk_id}
    for name in _EVENT_FIELDS:
        if name in fields:
            frame[name] = fields.pop(name)
    frame["draft"] = fields
    owner = fields.get("owner")
    return orjson.dumps(frame).decode(), owner if isinstance(owner, str) else None


def sees_every_draft(actor: Actor) -> bool:
    """Reviewers (editors and up) see every draft on the desk; a contributor only their own."""
    return allowed(actor.role, Action.REVIEW)


def may_see(actor: Actor, owner: str | None) -> bool:
    """Whether ``actor`` is shown an event about a draft ``owner`` holds."""
    return sees_every_draft(actor) or owner == actor.name
