"""What a returning reader missed since their last event: one bounded read, folded.

``since_report`` reads the stream after ``since`` once (``Store.since_window``: XRANGE with a
COUNT of ``SINCE_MAX_EVENTS`` + 1, and the last id, in one transaction) and ``fold_since``, pure,
makes a ``SinceReport`` of it. "Something you read" is a brief whose id is at or before
``since``. The answer depends only on Redis, so every node gives the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from livefeed.errors import BadRequest
from livefeed.limits import SINCE_MAX_EVENTS
from livefeed.model.ids import StreamId, iso_ms
from livefeed.model.since import SinceBrief, SinceCorrection, SinceLinks, SinceReport
from livefeed.storage.entries import Entry, first_unchained
from livefeed.storage.store import Store

CLOCK_SLACK_MS = 5_000
"""How far ahead of Redis's clock an id may be before it is refused as from the future."""


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
        data = entry.payload()
        kind = entry.type
        if kind in ("brief", "brief_updated"):
            brief: dict[str, Any] = data.get("brief") or {}
            brief_id = str(brief.get("id", ""))
            if _after(brief_id, since):
                published[brief_id] = str(brief.get("headline", ""))
                (key.add if brief.get("key_event") else key.discard)(brief_id)
            elif kind == "brief_updated" and _public_correction(brief, entry.id):
                note = str(brief["correction"].get("note", ""))
                corrected[brief_id] = SinceCorrection(brief_id, str(brief.get("headline")), note)
        elif kind == "brief_deleted":
            brief_id = str(data.get("brief_id", ""))
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
        elif kind == "feed_updated":
            ended = (data.get("feed") or {}).get("status") == "ended"
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


async def since_report(store: Store, slug: str, raw_since: str) -> SinceReport:
    """``raw_since`` checked (400 ``bad_since``; ``since_in_future`` past Redis's clock), the
    feed found (404), the stream after it read once and folded."""
    since = StreamId.parse(raw_since, name="since")
    feed = await store.cached_feed(slug)
    if since.ms > await store.now_ms() + CLOCK_SLACK_MS:
        raise BadRequest("since is later than now: send the id of an event you saw",
                         code="since_in_future")  # fmt: skip
    last_id, entries = await store.since_window(feed.slug, since, SINCE_MAX_EVENTS + 1)
    return fold_since(feed.slug, since, entries, last_id, SINCE_MAX_EVENTS)


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


def _public_correction(brief: dict[str, Any], at: StreamId) -> bool:
    """Whether this event made the brief's latest public correction (one with a note): its
    ``correction.at`` is the event's own time; a silent fix keeps an older one, or none."""
    correction = brief.get("correction")
    return isinstance(correction, dict) and correction.get("at") == iso_ms(at.ms)
