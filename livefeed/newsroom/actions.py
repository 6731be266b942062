"""What editors do to a feed, each as one atomic append: publish, correct, retract, pin, end.

Every action is an event on the feed's stream (so resume-by-id and replays carry it) that also
updates the feed's current state in the same step, and records the editor who made it. Events
are stamped by Redis's clock, so a node whose clock is off puts no brief in the future and no
brief on the wrong day. With an ``intent`` an action happens once however often it is retried:
a retry raises ``Replayed`` with the first answer (livefeed.storage.idempotency).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from livefeed.errors import Conflict, NotFound, PreconditionFailed
from livefeed.model.brief import Brief, BriefDraft, Correction, brief_dict, new_brief
from livefeed.model.days import day_containing, days_around
from livefeed.model.embed import Embed
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, iso_ms, now_ms
from livefeed.storage.append import AT, ID, Append, Retry
from livefeed.storage.idempotency import Intent
from livefeed.storage.store import Store

_ATTEMPTS = 5


async def publish(
    store: Store,
    feed: Feed,
    draft: BriefDraft,
    editor: str,
    intent: Intent | None = None,
    embeds: tuple[Embed, ...] = (),
    extend: Callable[[Append], Append] | None = None,
) -> Brief:
    """Append a new brief quoting ``embeds`` (its resolved snapshots); Conflict ``feed_ended``
    once coverage has ended. ``extend`` adds to the append (a draft's change, in the same step).

    Redis stamps it; the script counts it on whichever of the local days around our own "now"
    that time falls on, and names the time when it is on none (our clock is a day off).
    """
    around = now_ms()
    brief = brief_dict(draft, ID, AT, embeds=embeds)
    for _ in range(_ATTEMPTS):
        days = days_around(around, feed.timezone)
        change = Append.publish(
            brief, editor, days, key_event=draft.key_event, intent=intent, notify=draft.notify
        )
        change = change if extend is None else extend(change)
        try:
            entry_id = await store.append(feed.slug, change)
        except Retry as retry:
            around = retry.at_ms
            continue
        return new_brief(draft, str(entry_id), iso_ms(entry_id.ms), embeds=embeds)
    raise Conflict("could not place the brief in time; try again", code="busy")


async def correct(
    store: Store,
    feed: Feed,
    brief_id: StreamId,
    changes: dict[str, Any],
    expected_version: int | None,
    editor: str,
    intent: Intent | None = None,
) -> Brief:
    """Apply a correction; the brief keeps its id and place and gains a version.

    With ``expected_version`` a concurrent change makes this fail with PreconditionFailed;
    without it, the correction is re-applied on top of the newer version, a few times, and then
    fails with Conflict ``busy``. A non-empty ``correction_note`` among ``changes`` makes it a
    public correction: the brief carries the note and the event's time as its ``correction``
    (the history keeps each); without one the brief keeps the correction it had, if any.
    """
    changes = dict(changes)
    note = changes.pop("correction_note", None)
    if note:
        changes["correction"] = Correction(note=note, at=AT)
    for _ in range(_ATTEMPTS):
        current = await require_brief(store, feed, brief_id)
        version = current.version
        if expected_version is not None and version != expected_version:
            raise PreconditionFailed(
                f"the brief has changed: it is at version {version} now", current_version=version
            )
        updated = msgspec.structs.replace(current, **changes, version=version + 1, updated_at=AT)
        payload = msgspec.to_builtins(updated)
        change = Append.correct(
            brief_id, payload, version, editor, key_event=updated.key_event, intent=intent
        )
        try:
            entry_id = await store.append(feed.slug, change)
        except PreconditionFailed:
            if expected_version is not None:
                raise
            continue
        at = iso_ms(entry_id.ms)
        if note:
            updated = msgspec.structs.replace(updated, correction=Correction(note=note, at=at))
        return msgspec.structs.replace(updated, updated_at=at)
    raise Conflict("the brief keeps changing; try again", code="busy")


async def retract(
    store: Store,
    feed: Feed,
    brief_id: StreamId,
    expected_version: int | None,
    editor: str,
    intent: Intent | None = None,
) -> None:
    """Remove a brief from the feed, its day and its pin; its history stays on record."""
    try:
        day = day_containing(brief_id.ms, feed.timezone)
    except (ValueError, OverflowError):  # past the calendar: no brief has such an id
        raise NotFound(f"no brief {brief_id} in {feed.slug}", code="brief_not_found") from None
    change = Append.retract(brief_id, day, editor, version=expected_version, intent=intent)
    await store.append(feed.slug, change)


async def pin(
    store: Store, feed: Feed, brief_id: StreamId, editor: str, intent: Intent | None = None
) -> Brief:
    """Pin a brief above the feed, replacing any other pin."""
    brief = await require_brief(store, feed, brief_id)
    change = Append.pin(brief_id, msgspec.to_builtins(brief), editor, intent)
    await store.append(feed.slug, change)
    return brief


async def unpin(store: Store, feed: Feed, editor: str, intent: Intent | None = None) -> None:
    """Drop the pin, if there is one."""
    if feed.pinned is None:
        return
    change = Append.unpin(feed.pinned, editor, intent)
    await store.append(feed.slug, change)


async def update_feed(
    store: Store,
    feed: Feed,
    status: str | None,
    title: str | None,
    editor: str,
    intent: Intent | None = None,
    language: str | None = None,
    description: str | None = None,
) -> Feed:
    """End or reopen coverage, retitle the feed or change its language or description; readers
    get a ``feed_updated`` event, and the caller the feed as that event shows it."""
    meta: dict[str, str] = {}
    drop: list[str] = []
    body = feed.to_dict()
    if title is not None:
        meta["title"] = body["title"] = title
    if language is not None and language != feed.language:
        meta["language"] = body["language"] = language
    if description is not None and description != feed.description:
        meta["description"] = body["description"] = description
    if status == "ended" and feed.status != "ended":
        meta.update(status="ended", ended_at="$AT")
        body.update(status="ended", ended_at=AT)
    elif status == "live" and feed.status == "ended":
        meta["status"] = body["status"] = "live"
        body["ended_at"] = None
        drop.append("ended_at")
    if not meta and not drop:
        return feed
    change = Append.update_feed(body, editor, meta_set=meta, meta_del=drop, intent=intent)
    entry_id = await store.append(feed.slug, change)
    if body["ended_at"] == AT:
        body["ended_at"] = iso_ms(entry_id.ms)
    return msgspec.convert(body, Feed)


async def require_brief(store: Store, feed: Feed, brief_id: StreamId) -> Brief:
    (brief,) = await store.states(feed.slug, [brief_id])
    if brief is None:
        raise NotFound(f"no brief {brief_id} in {feed.slug} (it may have been retracted)",
                       code="brief_not_found")  # fmt: skip
    return brief


async def history(store: Store, feed: Feed, brief_id: StreamId) -> list[dict[str, Any]]:
    """A brief's versions, oldest first: who changed it and when. Retracted briefs keep theirs."""
    entries = await store.history(feed.slug, brief_id)
    if not entries:
        raise NotFound(f"no brief {brief_id} in {feed.slug}", code="brief_not_found")
    versions = []
    last_version = 0
    for entry in entries:
        payload = entry.payload()
        brief = payload.get("brief") if entry.type != "brief_deleted" else None
        last_version = brief["version"] if brief else last_version
        versions.append(
            {
                "version": last_version,
                "action": _ACTIONS.get(entry.type, entry.type),
                "at": iso_ms(entry.id.ms),
                "event_id": str(entry.id),
                "editor": payload.get("editor"),
                "brief": brief,
            }
        )
    return versions


_ACTIONS = {"brief": "created", "brief_updated": "updated", "brief_deleted": "deleted"}


async def key_events(store: Store, feed: Feed) -> list[Brief]:
    """Key-event briefs as they stand, newest first."""
    ids = sorted(await store.key_event_ids(feed.slug), reverse=True)
    return [b for b in await store.states(feed.slug, ids) if b is not None]
