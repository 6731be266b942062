"""Editor tokens: one per named person, stored only as a SHA-256 hash, each with a role.

Keys: ``Keys.tokens`` (name -> JSON {"sha256", "created_at", "role"}; a record from before roles
has no "role" and is an editor's) and ``Keys.token_hashes``
(sha256 of a token -> editor name), drawn in ``livefeed.storage.keys``.

A creation through the API with an Idempotency-Key (``issue``) has one effect however often it is
retried: its record (``Keys.token_intent``) keeps the fingerprint and then the token's record,
never the token, and the token's record names the intent that made it (``"intent"``), so a
retry after a crash between the two writes is still known as the same intent. A retry therefore
gets the record back with no token: the token was shown once, or never if that answer was lost.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import msgspec
import orjson
from redis.asyncio import Redis

from livefeed.errors import Conflict, ValidationFailed
from livefeed.model.ids import iso_ms, now_ms
from livefeed.model.roles import ROLES, Actor, Role
from livefeed.model.tokens import TokenRecord, validate_token_name
from livefeed.storage import idempotency
from livefeed.storage.cluster import command
from livefeed.storage.idempotency import Intent
from livefeed.storage.keys import Keys


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe at-rest form."""
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The editor tokens of one deployment (one key prefix)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self._names = keys.tokens
        self._hashes = keys.token_hashes

    async def _cmd(self, *args: Any) -> Any:
        return await command(self.redis, *args)

    async def create(self, name: str, role: Role | str = Role.EDITOR) -> str:
        """Create a token for a named person with ``role`` and return it; only its hash is
        stored."""
        _, token = await self.issue(name, role)
        assert token is not None  # only a replayed intent has none
        return token

    async def issue(
        self, name: str, role: Role | str, intent: Intent | None = None
    ) -> tuple[TokenRecord, str | None]:
        """Create ``name``'s token with ``role``: its record and the token, or, for a retry of
        ``intent`` carried out before, the record it made and None. Conflict ``token_exists``
        when the name is taken (by another intent); ValidationFailed for a key reused for
        another request, a bad name or role."""
        name = validate_token_name(name)
        role = parse_role(role)
        claimed = False
        if intent is not None:
            claim = orjson.dumps({"fingerprint": intent.fingerprint})
            claimed = bool(
                await self._cmd("SET", intent.key, claim, "NX", "EX", idempotency.TTL_SECONDS)
            )
            if not claimed:
                kept = await self._cmd("GET", intent.key)
                done = orjson.loads(kept) if kept is not None else {}
                if done.get("fingerprint", intent.fingerprint) != intent.fingerprint:
                    raise idempotency.reused()
                if done.get("result") is not None:
                    return msgspec.convert(done["result"], TokenRecord), None
        token = "lf_" + secrets.token_urlsafe(32)
        digest = hash_token(token)
        stored: dict[str, Any] = {"sha256": digest, "created_at": iso_ms(now_ms()), "role": role}
        if intent is not None:
            stored["intent"] = _intent_id(intent)
        if not await self._cmd("HSETNX", self._names, name, orjson.dumps(stored)):
            raw = await self._cmd("HGET", self._names, name)
            earlier = orjson.loads(raw) if raw is not None else {}
            if intent is not None and earlier.get("intent") == _intent_id(intent):
                # This intent made it, and its process stopped before keeping the result.
                made = _record(name, earlier)
                await self._keep(intent, made)
                return made, None
            if intent is not None and claimed:  # nothing was made: the key is not used up
                await self._cmd("DEL", intent.key)
            raise Conflict(f"an editor named {name!r} already has a token", code="token_exists")
        await self._cmd("HSET", self._hashes, digest, name)
        made = _record(name, stored)
        if intent is not None:
            await self._keep(intent, made)
        return made, token

    async def _keep(self, intent: Intent, made: TokenRecord) -> None:
        """Keep what ``intent`` made, so its retries answer it even once the token is gone."""
        result = {"fingerprint": intent.fingerprint, "result": msgspec.to_builtins(made)}
        await self._cmd("SET", intent.key, orjson.dumps(result), "KEEPTTL")

    async def register(self, name: str, token: str, role: Role = Role.EDITOR) -> None:
        """Make ``token`` the token of ``name``, replacing any earlier one (the demo's people,
        whose tokens are kept in its data directory so they outlive a restart)."""
        await self.revoke(name)
        digest = hash_token(token)
        record = orjson.dumps({"sha256": digest, "created_at": iso_ms(now_ms()), "role": role})
        await self._cmd("HSET", self._names, name, record)
        await self._cmd("HSET", self._hashes, digest, name)

    async def editors(self) -> list[dict[str, str]]:
        """Everyone with a token, their role and when it was made, by name; never the tokens."""
        return [msgspec.to_builtins(record) for record in await self.records()]

    async def records(self) -> list[TokenRecord]:
        """Everyone with a token, by name; never the tokens or their hashes."""
        rows = await self._cmd("HGETALL", self._names)
        items = rows.items() if isinstance(rows, dict) else zip(rows[::2], rows[1::2], strict=True)
        out = [_record(_text(name), orjson.loads(raw)) for name, raw in items]
        return sorted(out, key=lambda record: record.name)

    async def record(self, name: str) -> TokenRecord | None:
        """``name``'s record, or None if they have no token."""
        raw = await self._cmd("HGET", self._names, name)
        return None if raw is None else _record(name, orjson.loads(raw))

    async def set_role(self, name: str, role: Role | str) -> bool:
        """Give ``name``'s token another role, at once on every node (each request reads it);
        False if they have no token."""
        role = parse_role(role)
        return bool(await self._cmd("EVAL", _SET_ROLE_LUA, 1, self._names, name, role.value))

    async def revoke(self, name: str) -> bool:
        """Remove an editor's token; False if they had none."""
        raw = await self._cmd("HGET", self._names, name)
        if raw is None:
            return False
        await self._cmd("HDEL", self._hashes, orjson.loads(raw)["sha256"])
        await self._cmd("HDEL", self._names, name)
        return True

    async def actor_for(self, token: str) -> Actor | None:
        """Who holds a stored token, with their role, or None; looked up by hash, not by
        comparison."""
        name = await self._cmd("HGET", self._hashes, hash_token(token))
        if name is None:
            return None
        raw = await self._cmd("HGET", self._names, name)
        if raw is None:  # revoked between the two reads
            return None
        return Actor(name.decode(), Role(orjson.loads(raw).get("role", Role.EDITOR.value)))


def _record(name: str, stored: dict[str, Any]) -> TokenRecord:
    return TokenRecord(name, Role(stored.get("role", Role.EDITOR.value)), stored["created_at"])


def _text(name: bytes | str) -> str:
    """A name as read: bytes, or already text on a client that decodes (``livefeed check``)."""
    return name.decode() if isinstance(name, bytes) else name


def _intent_id(intent: Intent) -> str:
    """What a token's record keeps of the intent that made it: a hash of its key."""
    return hashlib.sha256(intent.key.encode()).hexdigest()[:32]


_SET_ROLE_LUA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
record['role'] = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1
"""
"""Read, change and write the record in one step, so a revocation cannot land in between and
leave a record whose token is gone."""


def parse_role(role: object) -> Role:
    """``role`` as a Role; ValidationFailed (field ``role``) for anything else."""
    if isinstance(role, str) and role in ROLES:
        return Role(role)
    raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
