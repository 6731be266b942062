"""What a returning reader missed since their last event: one bounded read, folded.

``since_report`` reads the stream after ``since`` once (``Store.since_window``: XRANGE with a
COUNT of ``SINCE_MAX_EVENTS`` + 1, and the last id, in one transaction) and ``fold_since``, pure,
makes a ``SinceReport`` of it. "Something you read" is a brief whose id is at or before
``since``. The answer depends only on Redis, so every node gives the same one.

A return storm (an alert sends every follower to the feed within a minute) asks about few
distinct ids: a reader's remembered id is always an event id, the one it saw last. So each
process keeps answers by (feed, id, stream mark) in a ``SinceCache``, each folded once however
many readers ask for it at the same time; the stream mark (last id and length, one cheap read
per request) changes with every append, XDEL or XTRIM, so a kept answer is never stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from livefeed.errors import BadRequest
from livefeed.limits import SINCE_MAX_EVENTS
from livefeed.model.ids import StreamId, iso_ms
from livefeed.model.since import SinceBrief, SinceCorrection, SinceLinks, SinceReport
from livefeed.storage.entries import Entry, first_unchained
from livefeed.storage.store import Store

CLOCK_SLACK_MS = 5_000
"""How far ahead of Redis's clock an id may be before it is refused as from the future."""
_Key = tuple[str, StreamId, StreamId, int]


class SinceCache:
    """Answers by (feed, since, last id, stream length), at most ``size``, the oldest dropped
    first; readers asking for one being built wait for it."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._answers: dict[_Key, asyncio.Future[SinceReport]] = {}

    async def get(self, key: _Key, build: Callable[[], Awaitable[SinceReport]]) -> SinceReport:
        kept = self._answers.get(key)
        if kept is not None:
            return await asyncio.shield(kept)
        future: asyncio.Future[SinceReport] = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        while len(self._answers) > self._size:
            del self._answers[next(iter(self._answers))]
        try:
            report = await build()
        except BaseException as exc:
            if self._answers.get(key) is future:
                del self._answers[key]
            future.set_exception(exc)
            future.exception()  # waiters get it; nobody else needs to be told
            raise
        future.set_result(report)
        return report


def links(slug: str) -> SinceLinks:
    return SinceLinks(key_events=f"/feeds/{slug}#key-events", days=f"/feeds/{slug}/days")


def fold_since(
    slug: str, since: StreamId, entries: Sequence[Entry], last_id: StreamId, cap: int
) -> SinceReport:
    """The report of ``entries`` (read after ``since``, oldest first, at most ``cap`` + 1).

    ``too_much`` when there are more than ``cap``, or when the read shows that events after
    ``since`` are gone: the first entry names an id after ``since`` as the one before it, a
    later one does not name its predecessor, or nothing was read though ``last_id`` is after
    ``since`` (entries written before livefeed recorded the chain are taken on trust).
    """
    newest = entries[-1].id if entries else since
    if len(entries) > cap or _broken(since, entries, last_id):
        reached = entries[min(len(entries), cap) - 1].id if entries else last_id
        return _too_much(slug, since, reached)
    published: dict[str, str] = {}  # new briefs still standing -> headline now
    key: set[str] = set()
    corrected: dict[str, SinceCorrection] = {}
    retracted: list[str] = []
    lead = summary = ended = False
    for entry in entries:
        kind = entry.type
        if kind == "brief" or kind == "brief_updated":
            brief = _decode(entry.data).brief or _NO_BRIEF
            if kind == "brief" or _after(brief.id, since):  # a new brief's id is its event's
                published[brief.id] = brief.headline
                (key.add if brief.key_event else key.discard)(brief.id)
            elif brief.correction is not None and brief.correction.at == iso_ms(entry.id.ms):
                # this event made the brief's latest public correction; a silent fix keeps an
                # older one, or none
                fix = SinceCorrection(brief.id, brief.headline, brief.correction.note)
                corrected[brief.id] = fix
        elif kind == "brief_deleted":
            brief_id = _decode(entry.data).brief_id
            if _after(brief_id, since):
                published.pop(brief_id, None)
                key.discard(brief_id)
            else:
                corrected.pop(brief_id, None)
                retracted.append(brief_id)
        elif kind in ("lead_updated", "lead_cleared"):
            lead = True
        elif kind in ("summary_updated", "summary_cleared"):
            summary = True
        elif kind == "feed_updated":  # ended by this event (ended_at is its time), or reopened
            feed = _decode(entry.data).feed or _NO_FEED
            if feed.status != "ended" or feed.ended_at == iso_ms(entry.id.ms):
                ended = feed.status == "ended"
    return SinceReport(
        since=str(since),
        since_at=iso_ms(since.ms),
        last_event_id=str(newest),
        too_much=False,
        new_briefs=len(published),
        key_events=tuple(SinceBrief(i, h) for i, h in published.items() if i in key),
        corrections=tuple(corrected.values()),
        retractions=tuple(retracted),
        lead_updated=lead,
        summary_updated=summary,
        ended=ended,
        links=links(slug),
    )


async def since_report(
    store: Store, slug: str, raw_since: str, cache: SinceCache | None = None
) -> SinceReport:
    """``raw_since`` checked (400 ``bad_since``; ``since_in_future`` past Redis's clock), the
    feed found (404), the stream after it read once and folded (or the answer ``cache`` keeps
    for this stream mark)."""
    since = StreamId.parse(raw_since, name="since")
    feed = await store.cached_feed(slug)
    if since.ms > await store.now_ms() + CLOCK_SLACK_MS:
        raise BadRequest("since is later than now: send the id of an event you saw",
                         code="since_in_future")  # fmt: skip

    async def build() -> SinceReport:
        last_id, entries = await store.since_window(feed.slug, since, SINCE_MAX_EVENTS + 1)
        return fold_since(feed.slug, since, entries, last_id, SINCE_MAX_EVENTS)

    if cache is None:
        return await build()
    last_id, length = await store.stream_mark(feed.slug)
    return await cache.get((feed.slug, since, last_id, length), build)


def _too_much(slug: str, since: StreamId, last: StreamId) -> SinceReport:
    return SinceReport(
        since=str(since), since_at=iso_ms(since.ms), last_event_id=str(max(since, last)),
        too_much=True, new_briefs=0, key_events=(), corrections=(), retractions=(),
        lead_updated=False, summary_updated=False, ended=False, links=links(slug),
    )  # fmt: skip


def _broken(since: StreamId, entries: Sequence[Entry], last_id: StreamId) -> bool:
    if not entries:
        return since < last_id
    first = entries[0].prev
    if first is not None and StreamId.parse(first) > since:
        return True
    return first_unchained(entries[0].id, list(entries[1:])) is not None


def _after(brief_id: str, since: StreamId) -> bool:
    try:
        return StreamId.parse(brief_id) > since
    except BadRequest:
        return False


class _Correction(msgspec.Struct):
    note: str = ""
    at: str = ""


class _Brief(msgspec.Struct):
    id: str = ""
    headline: str = ""
    key_event: bool = False
    correction: _Correction | None = None


class _Feed(msgspec.Struct):
    status: str = ""
    ended_at: str | None = None


class _Payload(msgspec.Struct):
    """The fields of a stored event the fold reads; the rest (bodies, media) is skipped."""

    brief: _Brief | None = None
    brief_id: str = ""
    feed: _Feed | None = None


_NO_BRIEF, _NO_FEED = _Brief(), _Feed()
_decode = msgspec.json.Decoder(_Payload).decode
