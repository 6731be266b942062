"""Editor tokens: one per named editor, stored only as a SHA-256 hash.

Keys: ``Keys.tokens`` (editor name -> JSON {"sha256", "created_at"}) and ``Keys.token_hashes``
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

    async def create(self, name: str) -> str:
        """Create a token for a named editor and return it; only its hash is stored."""
        if not name or len(name) > 100 or name != name.strip():
            raise ValidationFailed("editor name must be 1-100 characters", field="name")
        check_text(name, "name")
        token = "lf_" + secrets.token_urlsafe(32)
        digest = hash_token(token)
        record = orjson.dumps({"sha256": digest, "created_at": iso_ms(now_ms())})
        if not await self._cmd("HSETNX", self._names, name, record):
            raise Conflict(f"an editor named {name!r} already has a token", code="token_exists")
        await self._cmd("HSET", self._hashes, digest, name)
        return token

    async def register(self, name: str, token: str) -> None:
        """Make ``token`` the token of ``name``, replacing any earlier one (the demo's editor,
        whose token is kept in its data directory so it outlives a restart)."""
        await self.revoke(name)
        digest = hash_token(token)
        record = orjson.dumps({"sha256": digest, "created_at": iso_ms(now_ms())})
        await self._cmd("HSET", self._names, name, record)
        await self._cmd("HSET", self._hashes, digest, name)

    async def editors(self) -> list[dict[str, str]]:
        """Every editor with a token and when it was made, by name; never the tokens."""
        rows = await self._cmd("HGETALL", self._names)
        items = rows.items() if isinstance(rows, dict) else zip(rows[::2], rows[1::2], strict=True)
        out = [
            {"name": name.decode(), "created_at": orjson.loads(raw)["created_at"]}
            for name, raw in items
        ]
        return sorted(out, key=lambda t: t["name"])

    async def revoke(self, name: str) -> bool:
        """Remove an editor's token; False if they had none."""
        raw = await self._cmd("HGET", self._names, name)
        if raw is None:
            return False
        await self._cmd("HDEL", self._hashes, orjson.loads(raw)["sha256"])
        await self._cmd("HDEL", self._names, name)
        return True

    async def editor_for(self, token: str) -> str | None:
        """The editor's name for a stored token, or None; looked up by hash, not by comparison."""
        name = await self._cmd("HGET", self._hashes, hash_token(token))
        return None if name is None else str(name.decode())
