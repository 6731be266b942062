"""Editors' actions on the story so far: set or clear the feed's lead and its summary box.

Each is one atomic append (``Append.set_story``/``clear_story``) whose event readers get live
and whose state the meta hash keeps for pages and snapshots. A change based on a version
(``If-Match``) that is no longer current fails with 412; without one it is applied on top of
the newer version, a few times, then fails with Conflict ``busy``, as corrections do.
"""

from __future__ import annotations

from typing import Any

import msgspec

from livefeed.errors import Conflict, PreconditionFailed
from livefeed.model.feed import Feed
from livefeed.model.ids import iso_ms
from livefeed.model.story import Lead, NewLead, NewSummary, Summary, lead_of, summary_of
from livefeed.storage.append import AT, Append
from livefeed.storage.idempotency import Intent
from livefeed.storage.store import Store

_ATTEMPTS = 5


async def set_lead(
    store: Store,
    feed: Feed,
    new: NewLead,
    expected: int | None,
    editor: str,
    intent: Intent | None = None,
) -> Lead:
    """Show ``new`` (sanitised) as the feed's lead, replacing any other."""
    for _ in range(_ATTEMPTS):
        version = await _version(store, feed, "lead", expected)
        lead = lead_of(new, version + 1, AT)
        at = await _append(store, feed, "lead", lead, version, expected, editor, intent)
        if at is not None:
            return msgspec.structs.replace(lead, updated_at=at)
    raise Conflict("the lead keeps changing; try again", code="busy")


async def set_summary(
    store: Store,
    feed: Feed,
    new: NewSummary,
    expected: int | None,
    editor: str,
    intent: Intent | None = None,
) -> Summary:
    """Show ``new`` (items sanitised) as the feed's summary box, replacing any other."""
    for _ in range(_ATTEMPTS):
        version = await _version(store, feed, "summary", expected)
        summary = summary_of(new, version + 1, AT)
        at = await _append(store, feed, "summary", summary, version, expected, editor, intent)
        if at is not None:
            return msgspec.structs.replace(summary, updated_at=at)
    raise Conflict("the summary keeps changing; try again", code="busy")


async def clear(
    store: Store,
    feed: Feed,
    kind: str,
    expected: int | None,
    editor: str,
    intent: Intent | None = None,
) -> None:
    """Take the lead or the summary (``kind``) off the page; nothing to clear: no change."""
    for _ in range(_ATTEMPTS):
        lead, summary, lead_version, summary_version = await store.story(feed.slug)
        current = lead if kind == "lead" else summary
        version = lead_version if kind == "lead" else summary_version
        _check(kind, version, expected)
        if current is None:
            return
        try:
            await store.append(feed.slug, Append.clear_story(kind, version, editor, intent))
        except PreconditionFailed as exc:
            _check(kind, exc.current_version, expected)
            continue
        return
    raise Conflict(f"the {kind} keeps changing; try again", code="busy")


async def _version(store: Store, feed: Feed, kind: str, expected: int | None) -> int:
    _, _, lead_version, summary_version = await store.story(feed.slug)
    version = lead_version if kind == "lead" else summary_version
    _check(kind, version, expected)
    return version


def _check(kind: str, version: int, expected: int | None) -> None:
    if expected is not None and version != expected:
        raise PreconditionFailed(
            f"the {kind} has changed: it is at version {version} now", current_version=version
        )


async def _append(
    store: Store,
    feed: Feed,
    kind: str,
    value: Lead | Summary,
    version: int,
    expected: int | None,
    editor: str,
    intent: Intent | None,
) -> str | None:
    """Append the change; its time, or None when another change came first (try again)."""
    body: dict[str, Any] = msgspec.to_builtins(value)
    change = Append.set_story(kind, body, version, editor, intent)
    try:
        entry_id = await store.append(feed.slug, change)
    except PreconditionFailed as exc:
        _check(kind, exc.current_version, expected)
        return None
    return iso_ms(entry_id.ms)
