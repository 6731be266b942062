"""Drafts in Redis: their states, the desk stream they change and the index of scheduled ones.

Each change is ``drafts.lua``: the draft's new state and its desk event in one step, refused
unless the draft is in one of the statuses the change allows and (when given) at the version
it was based on. Publishing a draft is append.lua's publish with the draft's change in the same
step (``Append.keys``, desk.lua). The due index (``Keys.due``) is used alone: it is a hint,
each member naming a draft's id and the version its schedule made, checked against the draft.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

from livefeed.model.draft import Draft, decode_draft, encode_draft
from livefeed.storage.append import DESK_LUA, refusal
from livefeed.storage.cluster import batch, command
from livefeed.storage.entries import Entry, entry_of
from livefeed.storage.idempotency import TTL_SECONDS, Intent
from livefeed.storage.keys import Keys

DRAFTS_LUA = DESK_LUA + (Path(__file__).parent / "drafts.lua").read_text()


def due_member(slug: str, draft_id: str, version: int) -> str:
    """The due index's member for ``draft_id`` of ``slug`` once scheduled at ``version``; a
    nonce keeps two tries at the same version apart (the one refused drops only its own)."""
    return f"{slug} {draft_id} {version} {secrets.token_hex(4)}"


def parse_due(member: str) -> tuple[str, str, int]:
    slug, draft_id, version, _ = member.split(" ")
    return slug, draft_id, int(version)


class Drafts:
    """The drafts of one deployment (one key prefix). ``write`` is given a function that runs
    a write script on the feed's primary (``Store._write``), so replicas are waited for."""

    def __init__(self, redis: Redis, keys: Keys, write: Any) -> None:
        self.redis = redis
        self.keys = keys
        self._write = write
        self._script = redis.register_script(DRAFTS_LUA)

    async def _cmd(self, *args: Any) -> Any:
        return await command(self.redis, *args)

    async def change(
        self,
        draft: Draft,
        event_type: str,
        event: dict[str, Any],
        *,
        version: int | None,
        statuses: Sequence[str] = (),
        create: bool = False,
        intent: Intent | None = None,
    ) -> str:
        """Store ``draft`` and append its desk event; returns the desk entry's id.

        Refused (nothing written) with NotFound ``draft_not_found``, Conflict
        ``draft_not_editable`` (not in ``statuses``), PreconditionFailed (not at ``version``),
        or ``Replayed`` with the draft an intent's first run stored.
        """
        header: dict[str, Any] = {
            "id": draft.id, "type": event_type, "create": create,
            "version": version, "statuses": list(statuses),
        }  # fmt: skip
        keys = self.keys.desk_keys(draft.feed)
        if intent is not None:
            header["idem"] = {"fp": intent.fingerprint, "ttl": TTL_SECONDS}
            keys.append(intent.key)
        args = [orjson.dumps(header), encode_draft(draft), orjson.dumps(event)]
        result = await self._write(self._script, keys, args)
        text = result.decode() if isinstance(result, bytes) else str(result)
        if text.startswith("LIVEFEED_"):
            raise refusal(text)
        return text

    async def get(self, slug: str, draft_id: str) -> Draft | None:
        raw = await self._cmd("HGET", self.keys.drafts(slug), draft_id)
        return None if raw is None else decode_draft(raw)

    async def all(self, slug: str) -> list[Draft]:
        """Every draft of the feed, discarded ones too, oldest first."""
        rows = await self._cmd("HVALS", self.keys.drafts(slug))
        drafts = [decode_draft(raw) for raw in rows or []]
        return sorted(drafts, key=lambda d: (d.created_at, d.id))

    async def history(self, slug: str, draft_id: str) -> list[Entry]:
        """The draft's desk events, oldest first."""
        ids = await self._cmd("HGET", self.keys.draft_history(slug), draft_id)
        if not ids:
            return []
        desk = self.keys.desk(slug)
        replies = await batch(self.redis, [("XRANGE", desk, i, i) for i in ids.decode().split(",")])
        return [entry_of(raw_id, fields) for rows in replies for raw_id, fields in rows or []]

    async def desk(
        self, slug: str, cursor: str | None, count: int, *, newest_first: bool = True
    ) -> list[Entry]:
        """Up to ``count`` desk events before ``cursor`` (newest first) or after it."""
        desk = self.keys.desk(slug)
        if newest_first:
            top = f"({cursor}" if cursor else "+"
            rows = await self._cmd("XREVRANGE", desk, top, "-", "COUNT", count)
        else:
            low = f"({cursor}" if cursor else "-"
            rows = await self._cmd("XRANGE", desk, low, "+", "COUNT", count)
        return [entry_of(raw_id, fields) for raw_id, fields in rows or []]

    async def add_due(self, slug: str, draft_id: str, version: int, at_ms: int) -> str:
        """Enter a draft scheduled at ``version`` for ``at_ms``; returns its member."""
        member = due_member(slug, draft_id, version)
        await self._cmd("ZADD", self.keys.due, at_ms, member)
        return member

    async def drop_due(self, member: str) -> None:
        await self._cmd("ZREM", self.keys.due, member)

    async def due(self, until_ms: int, count: int) -> list[str]:
        """Up to ``count`` members of the due index whose time is at or before ``until_ms``."""
        rows = await self._cmd("ZRANGE", self.keys.due, "-inf", until_ms, "BYSCORE",
                               "LIMIT", 0, count)  # fmt: skip
        return [r.decode() if isinstance(r, bytes) else str(r) for r in rows or []]
