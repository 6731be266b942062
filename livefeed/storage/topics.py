"""The topic index: a feed's briefs by tag and its key events, each in time order.

One sorted set per feed (``Keys.tag_index``, the layout drawn in ``storage.keys``) read by lex
range, so a topic's page is one ``ZRANGE ... BYLEX`` and the scripts that keep it exact
(append.lua, bulk.lua, remove.lua, through tags.lua) name it among their declared KEYS: one key,
in the feed's slot, whatever the tags, as a Redis Cluster needs. Key events are indexed there
too (``k`` members, alone and per tag), so ``?key_event=true`` and ``tag`` AND key events are
one range each, in time order, with no ``ZINTER`` over the whole time index per request.

Feeds written before the index have briefs it does not hold: the member ``""`` says an index is
whole, and ``ensure`` builds one that is not before it is read (``livefeed migrate`` does it for
every feed). A build reads the brief states, then writes the index in one script that first
checks the stream has not moved on since (else it reads again), so a brief published or
retracted meanwhile is never lost or kept; a feed that moves on through every attempt answers
503 ``unavailable`` (retry) rather than an index that would be wrong.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from livefeed.errors import Unavailable
from livefeed.model.ids import StreamId
from livefeed.model.topics import tag_keys
from livefeed.storage.append import LAST_ID_LUA, TAGS_LUA
from livefeed.storage.cluster import command
from livefeed.storage.keys import Keys

_BUILD_ATTEMPTS = 5
_WHOLE = b""
"""The member that says the index holds every brief."""

# KEYS: Keys.script. ARGV[1] the stream's last id the states were read at ('' for none), then
# pairs of brief id and its tag keys as a JSON list. Refused (LIVEFEED_MOVED) if the stream has
# moved on; otherwise the index and tag keys are made anew, key events read here.
_BUILD_LUA = (
    LAST_ID_LUA
    + TAGS_LUA
    + """
if (stream_last_id() or '') ~= ARGV[1] then return 'LIVEFEED_MOVED' end
redis.call('DEL', KEYS[9], KEYS[10])
local keyed = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[6])) do keyed[id] = true end
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  tag_brief(id, cjson.decode(ARGV[i + 1]), keyed[id] or false)
  keyed[id] = nil
end
for id in pairs(keyed) do tag_brief(id, {}, true) end
redis.call('ZADD', KEYS[9], 0, '')
return 'OK'
"""
)


def _padded(brief_id: StreamId) -> bytes:
    return f"{brief_id.ms:020d}-{brief_id.seq:020d}".encode()


def _prefix(tag: str | None, key_event: bool) -> bytes:
    """Every member of one topic starts with this: ``t<tag>\\0``, ``k\\0`` or ``k<tag>\\0``."""
    return (b"k" if key_event else b"t") + (tag or "").encode() + b"\0"


class Topics:
    """Pages of a feed's briefs by tag and/or key event; ``write`` runs a write script on the
    feed's primary (``Store._write``)."""

    def __init__(self, redis: Redis, keys: Keys, write: Any) -> None:
        self.redis = redis
        self.keys = keys
        self._write = write
        self._build = redis.register_script(_BUILD_LUA)

    async def _cmd(self, *args: Any) -> Any:
        return await command(self.redis, *args)

    async def ensure(self, slug: str) -> bool:
        """Build the feed's index if it is not whole; True if it was built now."""
        if await self._cmd("ZSCORE", self.keys.tag_index(slug), _WHOLE) is not None:
            return False
        await self.build(slug)
        return True

    async def build(self, slug: str) -> int:
        """Make the feed's index anew from its briefs as they stand; how many have tags."""
        for _ in range(_BUILD_ATTEMPTS):
            last = await self._last_id(slug)
            tagged: list[bytes | str] = []
            cursor: Any = 0
            while True:
                cursor, rows = await self._cmd(
                    "HSCAN", self.keys.states(slug), cursor, "COUNT", 500
                )
                pairs = (
                    rows.items()
                    if isinstance(rows, dict)
                    else zip(rows[::2], rows[1::2], strict=True)
                )
                for brief_id, raw in pairs:
                    tags = orjson.loads(raw).get("tags") or []
                    if tags:
                        tagged += (brief_id, orjson.dumps(tag_keys(tags)))
                if int(cursor) == 0:
                    break
            reply = await self._write(self._build, self.keys.script(slug), [last, *tagged])
            if _text(reply) == "OK":
                return len(tagged) // 2
        # A client retries a 503; a feed this busy is indexed by ``livefeed migrate`` instead.
        raise Unavailable("this feed's topic index is being built; retry shortly", retry_after=1)

    async def _last_id(self, slug: str) -> str:
        """The stream's last id as last_id.lua reads it ('' for a stream never written)."""
        raw = await self._cmd("GET", self.keys.last_id(slug))
        if raw is not None:
            return _text(raw)
        if not await self._cmd("EXISTS", self.keys.stream(slug)):
            return ""
        info = await self._cmd("XINFO", "STREAM", self.keys.stream(slug))
        info = {_text(k): v for k, v in info.items()}
        return _text(info["last-generated-id"])

    async def page(
        self,
        slug: str,
        limit: int,
        *,
        tag: str | None,
        key_event: bool,
        start_ms: int = 0,
        end_ms: int = 2**53,
        after: StreamId | None = None,
        before: StreamId | None = None,
        newest_first: bool = False,
    ) -> tuple[list[bytes], StreamId | None]:
        """One page of the topic's current briefs as stored JSON (``Store.brief_page``'s
        contract): ``tag`` a tag key (``model.brief.tag_key``) or None, AND key events only
        when ``key_event``; from ``start_ms`` to ``end_ms``, after ``after`` / before
        ``before``; and the cursor for the next page, or None."""
        await self.ensure(slug)
        prefix = _prefix(tag, key_event)
        low = StreamId(start_ms, 0)
        if after is not None and after.next() > low:
            low = after.next()
        high = StreamId(end_ms + 1, 0)  # exclusive
        if before is not None and before < high:
            high = before
        lowest, highest = b"[" + prefix + _padded(low), b"(" + prefix + _padded(high)
        if newest_first:
            rows = await self._cmd("ZRANGE", self.keys.tag_index(slug), highest, lowest,
                                   "BYLEX", "REV", "LIMIT", 0, limit + 1)  # fmt: skip
        else:
            rows = await self._cmd("ZRANGE", self.keys.tag_index(slug), lowest, highest,
                                   "BYLEX", "LIMIT", 0, limit + 1)  # fmt: skip
        ids = [_id_of(row[len(prefix) :]) for row in rows]
        raws: list[bytes] = []
        if ids:
            fields = [str(i) for i in ids[:limit]]
            # a brief retracted between the two reads is left out, as brief_page does
            raws = [r for r in await self._cmd("HMGET", self.keys.states(slug), *fields) if r]
        if len(ids) > limit:
            return raws, ids[limit - 1]
        return raws, None


def _id_of(padded: bytes) -> StreamId:
    ms, seq = padded.split(b"-")
    return StreamId(int(ms), int(seq))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
