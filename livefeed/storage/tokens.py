"""Editor tokens: one per named person, stored only as a SHA-256 hash, each with a role.

Keys: ``Keys.tokens`` (name -> JSON {"sha256", "created_at", "role"}; a record from before roles
has no "role" and is an editor's) and ``Keys.token_hashes``
(sha256 of a token -> editor name), drawn in ``livefeed.storage.keys``.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson
from redis.asyncio import Redis

from livefeed.errors import Conflict, ValidationFailed
from livefeed.model.ids import iso_ms, now_ms
from livefeed.model.roles import ROLES, Actor, Role
from livefeed.model.text import check_text
from livefeed.storage.cluster import command
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
        if not isinstance(name, str) or not name or len(name) > 100 or name != name.strip():
            raise ValidationFailed("editor name must be 1-100 characters", field="name")
        check_text(name, "name")
        role = parse_role(role)
        token = "lf_" + secrets.token_urlsafe(32)
        digest = hash_token(token)
        record = orjson.dumps({"sha256": digest, "created_at": iso_ms(now_ms()), "role": role})
        if not await self._cmd("HSETNX", self._names, name, record):
            raise Conflict(f"an editor named {name!r} already has a token", code="token_exists")
        await self._cmd("HSET", self._hashes, digest, name)
        return token

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
        rows = await self._cmd("HGETALL", self._names)
        items = rows.items() if isinstance(rows, dict) else zip(rows[::2], rows[1::2], strict=True)
        out = []
        for name, raw in items:
            record = orjson.loads(raw)
            out.append(
                {
                    "name": name.decode(),
                    "role": record.get("role", Role.EDITOR.value),
                    "created_at": record["created_at"],
                }
            )
        return sorted(out, key=lambda t: t["name"])

    async def set_role(self, name: str, role: Role | str) -> bool:
        """Give ``name``'s token another role, at once on every node (each request reads it);
        False if they have no token."""
        role = parse_role(role)
        raw = await self._cmd("HGET", self._names, name)
        if raw is None:
            return False
        record = orjson.loads(raw)
        record["role"] = role.value
        await self._cmd("HSET", self._names, name, orjson.dumps(record))
        return True

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


def parse_role(role: object) -> Role:
    """``role`` as a Role; ValidationFailed (field ``role``) for anything else."""
    if isinstance(role, str) and role in ROLES:
        return Role(role)
    raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
