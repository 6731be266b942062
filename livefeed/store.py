"""Everything livefeed keeps in Redis: feeds, editor tokens and each feed's event stream.

Keys (``P`` is the configured prefix, so several deployments or test runs can share one Redis)::

    P:feeds                 sorted set of feed slugs, scored by creation time
    P:feed:<slug>           string: the feed as JSON
    P:feed:<slug>:events    stream: one entry per event, fields t (type) and d (JSON object)
    P:tokens                hash: editor name -> JSON {"sha256", "created_at"}
    P:token-hashes          hash: sha256 of a token -> editor name

Redis errors (``redis.exceptions.ConnectionError`` / ``TimeoutError``) propagate; the web edge maps
them to 503 in one place.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livefeed.errors import Conflict, NotFound, ValidationFailed
from livefeed.models import (
    ZERO_ID,
    BriefDraft,
    Event,
    Feed,
    StreamId,
    brief_dict,
    event_frame,
    iso_ms,
    now_ms,
)

_APPEND_LUA = (Path(__file__).parent / "append.lua").read_text()

ID = "\ue000livefeed:id\ue000"
"""Placeholder for the entry id in a payload given to ``Store.append``."""
AT = "\ue000livefeed:at\ue000"
"""Placeholder for the entry's time (UTC ISO 8601 with ms) in a payload."""
_MARKS = {ID.encode(): "I", AT.encode(): "A"}
_MARK_RE = re.compile(b"|".join(re.escape(m) for m in _MARKS))


@dataclass(frozen=True, slots=True)
class Entry:
    """A raw stream entry: position, event type and the stored JSON object."""

    id: StreamId
    type: str
    data: bytes

    def to_event(self) -> Event:
        return Event(self.id, self.type, event_frame(self.type, str(self.id), self.data))

    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.data)
        return value


@dataclass(frozen=True, slots=True)
class StreamBounds:
    """What a feed's stream still holds, to tell a resumable ``since`` from a lost one."""

    last_generated: StreamId
    first: StreamId | None
    max_deleted: StreamId | None


def _entry(raw_id: bytes, fields: dict[bytes, bytes]) -> Entry:
    return Entry(StreamId.parse(raw_id.decode()), fields[b"t"].decode(), fields[b"d"])


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe at-rest form."""
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """Redis access for one deployment (one key prefix); safe to share across tasks."""

    def __init__(self, redis: Redis, prefix: str = "livefeed") -> None:
        self.redis = redis
        self.prefix = prefix
        self._append_script = redis.register_script(_APPEND_LUA)

    async def _cmd(self, *args: Any) -> Any:
        """Run one raw command; raw commands read like the Redis docs and type as Any."""
        return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    # keys
    def _feed_key(self, slug: str) -> str:
        return f"{self.prefix}:feed:{slug}"

    def stream_key(self, slug: str) -> str:
        return f"{self.prefix}:feed:{slug}:events"

    async def ping(self) -> bool:
        return bool(await self._cmd("PING"))

    # feeds
    async def create_feed(self, feed: Feed) -> Feed:
        """Create a feed; Conflict if the slug is taken."""
        created = await self._cmd(
            "SET", self._feed_key(feed.slug), orjson.dumps(feed.to_dict()), "NX"
        )
        if not created:
            raise Conflict(f"feed {feed.slug!r} already exists", code="feed_exists", field="slug")
        await self._cmd("ZADD", f"{self.prefix}:feeds", now_ms(), feed.slug)
        return feed

    async def get_feed(self, slug: str) -> Feed | None:
        raw = await self._cmd("GET", self._feed_key(slug))
        return None if raw is None else Feed.from_dict(orjson.loads(raw))

    async def require_feed(self, slug: str) -> Feed:
        feed = await self.get_feed(slug)
        if feed is None:
            raise NotFound(f"no feed named {slug!r}", code="feed_not_found")
        return feed

    async def list_feeds(self) -> list[Feed]:
        slugs = await self._cmd("ZRANGE", f"{self.prefix}:feeds", 0, -1)
        if not slugs:
            return []
        raws = await self._cmd("MGET", *[self._feed_key(s.decode()) for s in slugs])
        return [Feed.from_dict(orjson.loads(raw)) for raw in raws if raw is not None]

    # events
    async def publish_brief(self, slug: str, draft: BriefDraft) -> dict[str, Any]:
        """Append a new brief to the feed's stream; return it once Redis has accepted it."""
        entry_id = await self.append(slug, "brief", {"brief": brief_dict(draft, ID, AT)})
        return brief_dict(draft, str(entry_id), iso_ms(entry_id.ms))

    async def append(
        self, slug: str, event_type: str, payload: dict[str, Any], at_ms: int | None = None
    ) -> StreamId:
        """Append one event; Redis picks its id (time, or just after the last id) atomically.

        ``ID`` and ``AT`` anywhere in ``payload`` are replaced by the entry's id and its time, so
        the stored JSON carries its own position and is the wire form, never re-encoded.
        """
        chunks, markers = _template(payload)
        raw = await self._append_script(
            keys=[self.stream_key(slug)],
            args=[event_type, "" if at_ms is None else str(at_ms), markers, *chunks],
        )
        return StreamId.parse(_text(raw))

    async def bounds(self, slug: str) -> StreamBounds:
        try:
            info = await self._cmd("XINFO", "STREAM", self.stream_key(slug))
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return StreamBounds(ZERO_ID, None, None)
            raise
        info = {(k.decode() if isinstance(k, bytes) else k): v for k, v in info.items()}
        first = info.get("first-entry")
        max_deleted = info.get("max-deleted-entry-id")
        return StreamBounds(
            last_generated=StreamId.parse(_text(info["last-generated-id"])),
            first=StreamId.parse(_text(first[0])) if first else None,
            max_deleted=StreamId.parse(_text(max_deleted)) if max_deleted else None,
        )

    async def read_after(self, slug: str, after: StreamId, count: int) -> list[Entry]:
        """Up to ``count`` entries after ``after``, oldest first."""
        rows = await self._cmd("XRANGE", self.stream_key(slug), f"({after}", "+", "COUNT", count)
        return [_entry(raw_id, fields) for raw_id, fields in rows or []]

    async def read_latest(
        self, slug: str, count: int, before: StreamId | None = None
    ) -> list[Entry]:
        """Up to ``count`` entries before ``before`` (or the newest ones), newest first."""
        end = "+" if before is None else f"({before}"
        rows = await self._cmd("XREVRANGE", self.stream_key(slug), end, "-", "COUNT", count)
        return [_entry(raw_id, fields) for raw_id, fields in rows or []]

    async def latest_briefs(
        self, slug: str, limit: int, before: StreamId | None = None
    ) -> tuple[list[dict[str, Any]], StreamId | None]:
        """Briefs newest first, and the cursor for the next older page (None when there is none)."""
        briefs: list[dict[str, Any]] = []
        cursor = before
        while len(briefs) <= limit:  # one more than asked, to know whether older ones exist
            want = limit - len(briefs) + 1
            entries = await self.read_latest(slug, want, cursor)
            for entry in entries:
                if entry.type == "brief":
                    briefs.append(entry.payload()["brief"])
                cursor = entry.id
                if len(briefs) > limit:
                    break
            if len(entries) < want:
                break
        if len(briefs) > limit:
            briefs = briefs[:limit]
            return briefs, StreamId.parse(briefs[-1]["id"])
        return briefs, None

    async def tail(
        self, slug: str, after: StreamId, block_ms: int, count: int = 1000
    ) -> list[Entry]:
        """Block up to ``block_ms`` for entries after ``after``; [] on timeout."""
        rows = await self._cmd(
            "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", self.stream_key(slug), str(after)
        )
        if not rows:
            return []
        # RESP2 gives [[key, entries]]; redis-py may also give {key: [entries]}.
        pairs = rows.items() if isinstance(rows, dict) else rows
        entries: list[Entry] = []
        for _key, items in pairs:
            items = items[0] if items and isinstance(items[0], list) and len(items) == 1 else items
            entries.extend(_entry(raw_id, fields) for raw_id, fields in items)
        return entries

    # editor tokens
    async def create_token(self, name: str) -> str:
        """Create a token for a named editor and return it; only its hash is stored."""
        if not name or len(name) > 100 or name != name.strip():
            raise ValidationFailed("editor name must be 1-100 characters", field="name")
        token = "lf_" + secrets.token_urlsafe(32)
        digest = hash_token(token)
        record = orjson.dumps({"sha256": digest, "created_at": iso_ms(now_ms())})
        added = await self._cmd("HSETNX", f"{self.prefix}:tokens", name, record)
        if not added:
            raise Conflict(f"an editor named {name!r} already has a token", code="token_exists")
        await self._cmd("HSET", f"{self.prefix}:token-hashes", digest, name)
        return token

    async def list_tokens(self) -> list[dict[str, str]]:
        rows = await self._cmd("HGETALL", f"{self.prefix}:tokens")
        items = rows.items() if isinstance(rows, dict) else zip(rows[::2], rows[1::2], strict=True)
        out = [
            {"name": name.decode(), "created_at": orjson.loads(raw)["created_at"]}
            for name, raw in items
        ]
        return sorted(out, key=lambda t: t["name"])

    async def revoke_token(self, name: str) -> bool:
        raw = await self._cmd("HGET", f"{self.prefix}:tokens", name)
        if raw is None:
            return False
        digest = orjson.loads(raw)["sha256"]
        await self._cmd("HDEL", f"{self.prefix}:token-hashes", digest)
        await self._cmd("HDEL", f"{self.prefix}:tokens", name)
        return True

    async def editor_for_token(self, token: str) -> str | None:
        """The editor's name for a stored token, or None; looked up by hash, not by comparison."""
        name = await self._cmd("HGET", f"{self.prefix}:token-hashes", hash_token(token))
        return None if name is None else str(name.decode())


def _template(payload: dict[str, Any]) -> tuple[list[bytes], str]:
    """Split the payload's JSON at the ID/AT placeholders: chunks, and one marker per gap."""
    data = orjson.dumps(payload)
    markers = "".join(_MARKS[m.group()] for m in _MARK_RE.finditer(data))
    return _MARK_RE.split(data), markers


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def follow(
    store: Store,
    slug: str,
    after: StreamId,
    block_ms: int,
    *,
    on_error: Callable[[Exception], None] | None = None,
) -> AsyncIterator[list[Event]]:
    """Yield batches of events after ``after`` forever; [] after each idle ``block_ms``.

    Survives Redis restarts: on a connection error it waits with backoff (capped at 5 s) and
    resumes from the last id it yielded, so no event is skipped or repeated.
    """
    delay = 0.1
    while True:
        try:
            entries = await store.tail(slug, after, block_ms)
        except (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError) as exc:
            if on_error is not None:
                on_error(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        delay = 0.1
        if entries:
            after = entries[-1].id
        yield [entry.to_event() for entry in entries]
