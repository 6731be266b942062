"""Everything livefeed keeps in Redis about feeds: the feeds and each feed's event stream.

The keys, and the layout they draw, are named in ``livefeed.storage.keys`` (``store.keys``),
under the configured prefix. Editor tokens are kept by ``livefeed.storage.tokens``
(``store.tokens``), and idempotency records by the append script (``storage.idempotency``).

Feeds and briefs read back as objects obey the text rule (``model.brief.decode_brief``): text stored
before the rule is cleaned as it is read, so no page, Atom or JSON Feed, JSON-LD or export can
meet a character it cannot carry. Pages of stored JSON (``brief_page``) pass on as stored.

Redis errors (``redis.exceptions.ConnectionError`` / ``TimeoutError``) propagate; the web edge maps
them to 503 in one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from livefeed.errors import Conflict, NotFound, Unavailable
from livefeed.metrics import EVENTS_PUBLISHED, REPLICA_WAIT_SHORT
from livefeed.model.brief import Brief, decode_brief
from livefeed.model.feed import Feed, clean_feed
from livefeed.model.ids import ZERO_ID, StreamId, now_ms
from livefeed.model.schema import DEFAULT_LANGUAGE
from livefeed.model.story import Lead, Summary, decode_lead, decode_summary
from livefeed.model.topics import Topic
from livefeed.storage.append import APPEND_LUA, LAST_ID_LUA, TAGS_LUA, Append, refusal
from livefeed.storage.cluster import Command, batch, cluster_of, command, evalsha, on_primary
from livefeed.storage.drafts import Drafts
from livefeed.storage.entries import Entry, FeedMark, StreamBounds, entry_of
from livefeed.storage.idempotency import TTL_SECONDS, Intent, reused
from livefeed.storage.keys import Keys
from livefeed.storage.media import MediaIndex
from livefeed.storage.tokens import Tokens
from livefeed.storage.topics import Topics

log = logging.getLogger("livefeed.storage.store")

_U64 = 2**64 - 1
# KEYS: the feed and (with an Idempotency-Key) its record, as append.lua keeps it; both in the
# feed's slot. ARGV: the feed's JSON, then the intent's fingerprint, result and TTL. The feed
# list is written apart (another slot on a cluster): see ``create_feed``.
_CREATE_FEED_LUA = """
if KEYS[2] then
  local seen = redis.call('HMGET', KEYS[2], 'fp', 'result')
  if seen[1] then
    if seen[1] == ARGV[2] then return 'LIVEFEED_REPLAY ' .. seen[2] end
    return 'LIVEFEED_REUSED'
  end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 'LIVEFEED_EXISTS' end
if KEYS[2] then
  redis.call('HSET', KEYS[2], 'fp', ARGV[2], 'result', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 'OK'
"""
_CLOCK_CHECK_SECONDS = 10.0
# Rewrites a hash field with its own value: a write that changes nothing but is replicated.
_TOUCH_LUA = (
    "local fp = redis.call('HGET', KEYS[1], 'fp') "
    "if fp then redis.call('HSET', KEYS[1], 'fp', fp) end return 1"
)
REMOVE_LUA = LAST_ID_LUA + TAGS_LUA + (Path(__file__).parent / "remove.lua").read_text()


class Store:
    """Redis access for one deployment (one key prefix); safe to share across tasks."""

    def __init__(self, redis: Redis, prefix: str = "livefeed") -> None:
        self.redis = redis
        self.prefix = prefix
        self.keys = Keys(prefix)
        self._append_script = redis.register_script(APPEND_LUA)
        self._create_feed_script = redis.register_script(_CREATE_FEED_LUA)
        self._remove_script = redis.register_script(REMOVE_LUA)
        self._write_cache: dict[str, tuple[float, Feed]] = {}
        self._fetching: dict[str, asyncio.Future[Feed]] = {}
        self.tokens = Tokens(redis, self.keys)
        self.media = MediaIndex(redis, self.keys, self.command)
        self.drafts = Drafts(redis, self.keys, self._write)
        self.topics = Topics(redis, self.keys, self._write)
        self.clock_offset_ms = 0
        self._clock_checked = -_CLOCK_CHECK_SECONDS
        self.replicas = 0
        """Replicas a write must reach before it counts as done (``WAIT``); 0: the primary's
        own persistence is enough."""
        self.replica_timeout_ms = 1000
        self.wait_aof = False
        """Wait with ``WAITAOF 1 <replicas>`` (Redis >= 7.2) instead of ``WAIT``: a write counts
        as done once it is fsynced to the append-only file on the primary and on ``replicas``
        replicas, not merely received by them."""

    async def _cmd(self, *args: Any) -> Any:
        """Run one raw command; raw commands read like the Redis docs and type as Any."""
        return await command(self.redis, *args)

    async def _write(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run a write script; with ``replicas``, return only once that many replicas have it.

        The script and ``WAIT`` go down one connection in one round trip (WAIT counts the
        replicas that have every write of its connection); on a cluster, a connection of the
        primary of the feed's slot (``storage.cluster.on_primary``, which rides out a reshard).
        Too few in time: Unavailable (503): the write is on the primary and may or may not
        survive a failover, so the client retries with its Idempotency-Key and gets the one
        result.
        """
        waiting = bool(self.replicas or self.wait_aof)
        cluster = cluster_of(self.redis)
        if cluster is not None:  # the shard's primary, on one of its connections
            raw = script.script
            text = raw if isinstance(raw, str) else bytes(raw).decode()
            commands = [evalsha(text, script.sha, keys, args)]
            if waiting:
                commands.append(self._wait_command())
            replies = await on_primary(cluster, keys[0], commands)
            if waiting:
                self._confirmed(replies[1])
            return replies[0]
        if not waiting:
            return await script(keys=keys, args=args)
        # EVALSHA by hand: redis-py's pipeline sends SCRIPT EXISTS (a round trip of its own)
        # before every batch that holds a Script, which is most of a waiting write's work.
        for loaded in (False, True):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                pipe.execute_command(*self._wait_command())
                result, confirmed = await pipe.execute(raise_on_error=False)
            if not isinstance(result, NoScriptError) or loaded:
                break
            await self.redis.script_load(script.script)  # NOSCRIPT: nothing ran; again
        for reply in (result, confirmed):
            if isinstance(reply, Exception):
                raise reply
        self._confirmed(confirmed)
        return result

    async def command(self, key: str, *args: Any) -> Any:
        """Run one write command on ``key`` and return its reply once the replicas have it, as
        ``_write`` does for scripts (for a record written alone, such as an upload's)."""
        waiting = bool(self.replicas or self.wait_aof)
        cluster = cluster_of(self.redis)
        if cluster is not None:
            replies = await on_primary(
                cluster, key, [args, self._wait_command()] if waiting else [args]
            )
        elif waiting:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.execute_command(*args)
                pipe.execute_command(*self._wait_command())
                replies = await pipe.execute()
        else:
            return await self._cmd(*args)
        if waiting:
            self._confirmed(replies[1])
        return replies[0]

    async def confirm_replicated(self, key: str) -> None:
        """Return once ``replicas`` replicas hold everything the primary held when this was
        called; for a result read back (an idempotent replay) rather than written now.

        A no-op write of ``key`` (which must be a hash with a field ``fp``) is replicated in
        order after every earlier write, so once replicas confirm it they have those too.
        """
        if not self.replicas and not self.wait_aof:
            return
        cluster = cluster_of(self.redis)
        if cluster is not None:
            wait = self._wait_command()
            _, confirmed = await on_primary(cluster, key, [("EVAL", _TOUCH_LUA, 1, key), wait])
            self._confirmed(confirmed)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.eval(_TOUCH_LUA, 1, key)
            pipe.execute_command(*self._wait_command())
            _, confirmed = await pipe.execute()
        self._confirmed(confirmed)

    def _wait_command(self) -> tuple[str | int, ...]:
        if self.wait_aof:
            return ("WAITAOF", 1, self.replicas, self.replica_timeout_ms)
        return ("WAIT", self.replicas, self.replica_timeout_ms)

    def _confirmed(self, reply: Any) -> None:
        """Raise Unavailable (503 ``not_replicated``) unless the WAIT or WAITAOF ``reply``
        counts enough replicas (and, for WAITAOF, the primary's own fsync)."""
        if self.wait_aof:
            local, confirmed = (int(n) for n in reply)
            what = f"was fsynced on {confirmed} of {self.replicas} replicas"
            if local < 1:
                what += " and not yet on the primary"
        else:
            local, confirmed = 1, int(reply)
            what = f"reached {confirmed} of {self.replicas} replicas"
        if local < 1 or confirmed < self.replicas:
            REPLICA_WAIT_SHORT.inc()
            raise Unavailable(
                f"the write {what} in time; retry it with the same Idempotency-Key",
                code="not_replicated",
            )

    async def wait_aof_problem(self) -> str | None:
        """Why ``wait_aof`` cannot work on this Redis, in its own words (no WAITAOF before 7.2,
        or append-only file off), or None when it can."""
        try:
            await self._cmd("WAITAOF", 1, 0, 1000)
        except ResponseError as exc:
            return str(exc)
        return None

    async def ping(self) -> bool:
        return bool(await self._cmd("PING"))

    async def now_ms(self) -> int:
        """Redis's clock, which live events are stamped with: this process's clock corrected by
        an offset learned from ``TIME`` at most every few seconds, so "today" agrees everywhere."""
        if time.monotonic() - self._clock_checked >= _CLOCK_CHECK_SECONDS:
            await self.check_clock()
        return now_ms() + self.clock_offset_ms

    async def check_clock(self) -> int:
        """Ask Redis for ``TIME`` and learn how far it is from this process's clock (ms)."""
        before = now_ms()
        seconds, micros = await self._cmd("TIME")
        after = now_ms()
        self.clock_offset_ms = int(seconds) * 1000 + int(micros) // 1000 - (before + after) // 2
        self._clock_checked = time.monotonic()
        return self.clock_offset_ms

    # feeds
    async def create_feed(self, feed: Feed, intent: Intent | None = None) -> Feed:
        """Create a feed; Conflict if the slug is taken. With an intent, once: a retry raises
        ``Replayed`` with the feed as first created (ValidationFailed: key used for another).

        The feed list is another slot's key, so it is written first, on its own (``NX``): a
        listed slug without a record is skipped by ``list_feeds`` and can still be created,
        and a record is never left unlisted by a crash in between.
        """
        await self._cmd("ZADD", self.keys.feeds, "NX", now_ms(), feed.slug)
        keys = [self.keys.feed(feed.slug)]
        args: list[bytes | str | int] = [orjson.dumps(feed.identity())]
        if intent is not None:
            keys.append(intent.key)
            args += [intent.fingerprint, orjson.dumps(feed.to_dict()), TTL_SECONDS]
        outcome = _text(await self._write(self._create_feed_script, keys, args))
        if outcome == "LIVEFEED_EXISTS":
            raise Conflict(f"feed {feed.slug!r} already exists", code="feed_exists", field="slug")
        if outcome != "OK":
            if outcome.startswith("LIVEFEED_REPLAY") and intent is not None:
                await self.confirm_replicated(intent.key)
            raise refusal(outcome)
        return feed

    async def get_feed(self, slug: str) -> Feed | None:
        """The feed with what editors changed since (title, status, pin), or None."""
        feeds = await self._feeds([slug])
        return feeds[0] if feeds else None

    async def cached_feed(self, slug: str) -> Feed:
        """The feed, from a cache a few seconds old at most: enough to publish to it or join it.

        Slug and time zone never change; what does (coverage ended, the pin) is checked again
        inside the atomic append, and read fresh for snapshots.
        """
        cached = self._write_cache.get(slug)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        fetch = self._fetching.get(slug)
        if fetch is None:  # one read for all who ask meanwhile: a join storm is one request
            fetch = asyncio.ensure_future(self._fetch_feed(slug))
            self._fetching[slug] = fetch
        return await asyncio.shield(fetch)

    async def _fetch_feed(self, slug: str) -> Feed:
        try:
            feed = await self.require_feed(slug)
        finally:
            del self._fetching[slug]
        self._write_cache[slug] = (time.monotonic() + 5.0, feed)
        return feed

    async def require_feed(self, slug: str) -> Feed:
        feed = await self.get_feed(slug)
        if feed is None:
            raise NotFound(f"no feed named {slug!r}", code="feed_not_found")
        return feed

    async def list_feeds(self) -> list[Feed]:
        slugs = await self._cmd("ZRANGE", self.keys.feeds, 0, -1)
        return await self._feeds([_text(s) for s in slugs or []])

    async def _feeds(self, slugs: list[str]) -> list[Feed]:
        if not slugs:
            return []
        commands: list[Command] = []
        for slug in slugs:
            commands += [("GET", self.keys.feed(slug)), ("HGETALL", self.keys.meta(slug))]
        results = await batch(self.redis, commands)
        feeds = []
        for raw, meta in zip(results[::2], results[1::2], strict=True):
            if raw is None:
                continue
            record = orjson.loads(raw)
            record.update({_text(k): _text(v) for k, v in meta.items()})
            feed = Feed(
                slug=record["slug"],
                title=record["title"],
                timezone=record["timezone"],
                created_at=record["created_at"],
                status=record.get("status", "live"),
                ended_at=record.get("ended_at"),
                pinned=record.get("pinned"),
                language=record.get("language", DEFAULT_LANGUAGE),
                description=record.get("description", ""),
            )
            feeds.append(clean_feed(feed))
        return feeds

    async def story(self, slug: str) -> tuple[Lead | None, Summary | None, int, int]:
        """The feed's lead and summary as they stand (None: none), and the version of each
        (0: never set; it counts on when one is cleared)."""
        lead, summary, lead_v, summary_v = await self._cmd(
            "HMGET", self.keys.meta(slug), "lead", "summary", "lead_version", "summary_version"
        )
        return (
            None if lead is None else decode_lead(lead),
            None if summary is None else decode_summary(summary),
            int(lead_v or 0),
            int(summary_v or 0),
        )

    # events
    async def append(self, slug: str, change: Append) -> StreamId:
        """Append one event with the state it changes, atomically.

        The script's refusals become NotFound (no such brief), PreconditionFailed (another
        version), Conflict (coverage ended) or ``Retry`` (our clock lost a race with midnight).
        With an intent: ``Replayed`` when it was carried out before, ValidationFailed when its key
        was used for another request.
        """
        keys = self.keys.script(slug)
        if change.intent is not None:
            keys.append(change.intent.key)
        keys.extend(change.keys)
        (result,) = await self._write(self._append_script, keys, change.script_args())
        text = _text(result)
        if text.startswith("LIVEFEED_"):
            if text.startswith("LIVEFEED_REPLAY") and change.intent is not None:
                await self.confirm_replicated(change.intent.key)
            raise refusal(text)
        EVENTS_PUBLISHED.labels(change.type).inc()
        return StreamId.parse(text)

    async def intent_result(self, intent: Intent) -> tuple[bool, Any]:
        """``(True, result)`` if the intent was carried out, ``(False, None)`` if not yet;
        ValidationFailed if its key was used for another request."""
        fingerprint, result = await self._cmd("HMGET", intent.key, "fp", "result")
        if fingerprint is None:
            return False, None
        if _text(fingerprint) != intent.fingerprint:
            raise reused()
        await self.confirm_replicated(intent.key)  # a 2xx again: only once replicas have it
        return True, orjson.loads(result)

    async def mark(self, slug: str) -> FeedMark:
        """Where the feed's writes are now, read in one transaction (see ``remove``)."""
        keys = self.keys.script(slug)
        commands: list[Command] = [("EXISTS", key) for key in keys]
        commands += [
            ("XINFO", "STREAM", keys[0]),
            ("GET", self.keys.last_id(slug)),
            ("HKEYS", self.keys.days(slug)),
        ]
        *existed, info, last_key, days = await batch(self.redis, commands, transaction=True)
        if isinstance(info, ResponseError):
            if "no such key" not in str(info).lower():
                raise info
            info = {}
        info = {_text(k): v for k, v in info.items()}
        added, max_deleted = info.get("entries-added"), info.get("max-deleted-entry-id")
        return FeedMark(
            existed=tuple(bool(n) for n in existed),
            last_generated=StreamId.parse(_text(info.get("last-generated-id", "0-0"))),
            entries_added=None if added is None else int(added),
            max_deleted=None if max_deleted is None else StreamId.parse(_text(max_deleted)),
            last_id_key=None if last_key is None else StreamId.parse(_text(last_key)),
            days=frozenset(_text(day) for day in days),
        )

    async def remove(
        self, slug: str, ids: list[StreamId], days: dict[str, int], before: FeedMark
    ) -> bool:
        """Undo an import in one step (remove.lua): drop its entries, their states, histories,
        index and key events, take its day counts off, and put the stream's last id and the
        ``last-id`` key back as ``before`` had them, so the same import can be run again.

        The last id stays where it is (and False is returned) when the feed was appended to
        after the import, as when a publish meanwhile made Redis refuse it. Otherwise every
        change since ``before`` is the import's, and a key it created is simply deleted.
        """
        last = max(ids, default=None)
        args: list[str | int] = [
            "" if last is None else str(last),
            "".join("1" if existed else "0" for existed in before.existed),
            str(before.last_generated),
            "" if before.entries_added is None else before.entries_added,
            "" if before.max_deleted is None else str(before.max_deleted),
            "" if before.last_id_key is None else str(before.last_id_key),
            " ".join(map(str, ids)),  # one argument: far quicker to send than one per id
            len(days),
        ]
        for day, count in days.items():
            args += (day, count, 0 if day in before.days else 1)
        restored = await self._remove_script(keys=self.keys.script(slug), args=args)
        return bool(restored)

    async def bounds(self, slug: str) -> StreamBounds:
        return await self._bounds(self.keys.stream(slug))

    async def desk_bounds(self, slug: str) -> StreamBounds:
        """``bounds`` of the feed's editor-only desk stream (``Keys.desk``)."""
        return await self._bounds(self.keys.desk(slug))

    async def desk_after(self, slug: str, after: StreamId, count: int) -> list[Entry]:
        """Up to ``count`` desk-stream entries after ``after``, oldest first (the desk socket's
        catch-up; nothing public reads the desk stream)."""
        rows = await self._cmd("XRANGE", self.keys.desk(slug), f"({after}", "+", "COUNT", count)
        return [entry_of(raw_id, fields) for raw_id, fields in rows or []]

    async def _bounds(self, stream: str) -> StreamBounds:
        try:
            info = await self._cmd("XINFO", "STREAM", stream)
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
            length=int(info["length"]),
        )

    async def read_after(self, slug: str, after: StreamId, count: int) -> list[Entry]:
        """Up to ``count`` entries after ``after``, oldest first."""
        rows = await self._cmd("XRANGE", self.keys.stream(slug), f"({after}", "+", "COUNT", count)
        return [entry_of(raw_id, fields) for raw_id, fields in rows or []]

    async def stream_mark(self, slug: str) -> tuple[StreamId, int]:
        """The ``last-id`` key and the stream's length, in one transaction: any append, XDEL
        or XTRIM changes one of them (what ``newsroom.since.SinceCache`` keys answers by)."""
        last, length = await batch(self.redis, [
            ("GET", self.keys.last_id(slug)), ("XLEN", self.keys.stream(slug)),
        ], transaction=True)  # fmt: skip
        return (ZERO_ID if last is None else StreamId.parse(_text(last))), int(length)

    async def since_window(
        self, slug: str, after: StreamId, count: int
    ) -> tuple[StreamId, list[Entry]]:
        """The stream's last id and up to ``count`` entries after ``after``, in one transaction
        (a returning reader's one read: ``newsroom/since.py``)."""
        stream = self.keys.stream(slug)
        last, rows = await batch(self.redis, [
            ("GET", self.keys.last_id(slug)), ("XRANGE", stream, f"({after}", "+", "COUNT", count),
        ], transaction=True)  # fmt: skip
        position = ZERO_ID if last is None else StreamId.parse(_text(last))
        return position, [entry_of(raw_id, fields) for raw_id, fields in rows or []]

    async def read_range(self, slug: str, low: str, high: str, count: int) -> list[Entry]:
        """XRANGE with Redis's own bound syntax (``(`` for exclusive), oldest first."""
        rows = await self._cmd("XRANGE", self.keys.stream(slug), low, high, "COUNT", count)
        return [entry_of(raw_id, fields) for raw_id, fields in rows or []]

    async def states(self, slug: str, ids: list[StreamId]) -> list[Brief | None]:
        """The current state of each brief, None for one retracted (or never created)."""
        if not ids:
            return []
        raws = await self._cmd("HMGET", self.keys.states(slug), *[str(i) for i in ids])
        return [None if raw is None else decode_brief(raw) for raw in raws]

    async def last_id(self, slug: str) -> StreamId:
        """The feed's last event id as the ``last-id`` key has it (``0-0`` before any)."""
        raw = await self._cmd("GET", self.keys.last_id(slug))
        return ZERO_ID if raw is None else StreamId.parse(_text(raw))

    async def scan_states(self, slug: str, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """One ``HSCAN`` step over the briefs as they stand: the next cursor (0 when done) and
        about ``count`` stored briefs, so a whole feed is read without blocking Redis."""
        cursor, found = await self._cmd("HSCAN", self.keys.states(slug), cursor, "COUNT", count)
        values = found.values() if isinstance(found, dict) else found[1::2]
        return int(cursor), list(values)

    async def latest_briefs(
        self, slug: str, limit: int, before: StreamId | None = None
    ) -> tuple[list[Brief], StreamId | None]:
        """Briefs as they stand, newest first, and the cursor for the next older page."""
        raws, cursor = await self.brief_page(slug, limit, before=before, newest_first=True)
        return [decode_brief(raw) for raw in raws], cursor

    async def topic_briefs(
        self,
        slug: str,
        topic: Topic,
        limit: int,
        before: StreamId | None = None,
        *,
        day: tuple[int, int] | None = None,
        after: StreamId | None = None,
    ) -> tuple[list[Brief], StreamId | None]:
        """``latest_briefs`` of one topic (``storage.topics``); with ``day`` (its first and last
        ms), ``briefs_between``'s oldest-first pages after ``after`` instead."""
        start_ms, end_ms = day or (0, 2**53)
        raws, cursor = await self.topics.page(
            slug, limit, tag=topic.key, key_event=topic.key_event, start_ms=start_ms,
            end_ms=end_ms, after=after, before=before, newest_first=day is None,
        )  # fmt: skip
        return [decode_brief(raw) for raw in raws], cursor

    async def briefs_between(
        self, slug: str, start_ms: int, end_ms: int, after: StreamId | None, limit: int
    ) -> tuple[list[Brief], StreamId | None]:
        """Briefs published from ``start_ms`` to ``end_ms`` as they stand, oldest first, in pages
        of ``limit`` after the cursor ``after``; returns them and the next cursor (or None)."""
        raws, cursor = await self.brief_page(slug, limit, start_ms, end_ms, after=after)
        return [decode_brief(raw) for raw in raws], cursor

    async def brief_page(
        self,
        slug: str,
        limit: int,
        start_ms: int = 0,
        end_ms: int = 2**53,
        *,
        after: StreamId | None = None,
        before: StreamId | None = None,
        newest_first: bool = False,
    ) -> tuple[list[bytes], StreamId | None]:
        """One page of current briefs as stored JSON, from the time index: oldest first after
        ``after``, or newest first before ``before``; and the cursor for the next page.

        The index holds live briefs only (retractions leave it), so a page never scans the
        stream's corrections and retractions, and the JSON is passed on without re-encoding.
        """
        low = start_ms if after is None else max(start_ms, after.ms)
        high = end_ms if before is None else min(end_ms, before.ms)
        chunk = limit + 33  # room for briefs sharing the cursor's millisecond
        ids: list[tuple[StreamId, bytes]] = []  # parsed to order and filter, raw to ask for
        offset = 0
        while len(ids) <= limit:
            if newest_first:
                rows = await self._cmd("ZREVRANGEBYSCORE", self.keys.time_index(slug), high, low,
                                       "LIMIT", offset, chunk)  # fmt: skip
            else:
                rows = await self._cmd("ZRANGEBYSCORE", self.keys.time_index(slug), low, high,
                                       "LIMIT", offset, chunk)  # fmt: skip
            offset += len(rows)
            for row in rows:
                brief_id = StreamId.parse(_text(row))
                if (after is None or brief_id > after) and (before is None or brief_id < before):
                    ids.append((brief_id, row))
            if len(rows) < chunk:
                break
        ids.sort(key=lambda pair: pair[0], reverse=newest_first)  # exact order within one ms
        page = ids[: limit + 1]
        raws: list[bytes] = []
        if page:
            fields = [row for _, row in page]
            raws = [r for r in await self._cmd("HMGET", self.keys.states(slug), *fields) if r]
        if len(page) > limit:
            return raws[:limit], page[limit - 1][0]
        return raws, None

    async def reindex(self, slug: str) -> int:
        """Rebuild the time index from the brief states (data written before it existed)."""
        if await self._cmd("EXISTS", self.keys.time_index(slug)):
            return 0
        ids = [StreamId.parse(_text(k)) for k in await self._cmd("HKEYS", self.keys.states(slug))]
        if ids:
            args = [x for i in ids for x in (i.ms, str(i))]
            await self._cmd("ZADD", self.keys.time_index(slug), *args)
        return len(ids)

    async def history(self, slug: str, brief_id: StreamId) -> list[Entry]:
        """The events that created, changed and retracted a brief, oldest first."""
        raw = await self._cmd("HGET", self.keys.histories(slug), str(brief_id))
        if not raw:
            return []
        stream = self.keys.stream(slug)
        rows = await batch(self.redis, [("XRANGE", stream, i, i) for i in _text(raw).split(",")])
        return [entry_of(raw_id, fields) for found in rows for raw_id, fields in found]

    async def key_event_ids(self, slug: str) -> list[StreamId]:
        members = await self._cmd("SMEMBERS", self.keys.key_events(slug))
        return [StreamId.parse(_text(m)) for m in members or []]

    async def days(self, slug: str) -> list[tuple[str, int]]:
        """Local dates that have briefs, newest first, with how many."""
        rows = await self._cmd("HGETALL", self.keys.days(slug))
        items = rows.items() if isinstance(rows, dict) else zip(rows[::2], rows[1::2], strict=True)
        counts = [(_text(day), int(count)) for day, count in items]
        return sorted(((d, c) for d, c in counts if c > 0), reverse=True)

    async def hold_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew a lease that only one process holds at a time (the demo poster)."""
        key = self.keys.lease(name)
        if await self._cmd("SET", key, holder, "NX", "PX", ttl_ms):
            return True
        if _text(await self._cmd("GET", key) or b"") == holder:
            await self._cmd("PEXPIRE", key, ttl_ms)
            return True
        return False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
