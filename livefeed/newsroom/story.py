"""Editors' actions on the story so far: set or clear the feed's lead and its summary box.

Each is one atomic append (``Append.set_story``/``clear_story``) whose event readers get live
and whose state the meta hash keeps for pages and snapshots. A change based on a version
(``If-Match``) that is no longer current fails with 412; without one it is applied on top of
the newer version, a few times, then fails with Conflict ``busy``, as corrections do. A
whole-feed export ends with them as lines of their own, which an import restores as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec
import orjson

from livefeed.errors import Conflict, PreconditionFailed, ValidationFailed
from livefeed.model.feed import Feed
from livefeed.model.ids import iso_ms
from livefeed.model.media import exported_media
from livefeed.model.story import (
    Lead,
    NewLead,
    NewSummary,
    Summary,
    lead_of,
    parse_lead,
    parse_summary,
    summary_of,
)
from livefeed.model.text import sanitize_body
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
    return await _set(store, feed, "lead", lambda v: lead_of(new, v, AT), expected, editor, intent)


async def set_summary(
    store: Store,
    feed: Feed,
    new: NewSummary,
    expected: int | None,
    editor: str,
    intent: Intent | None = None,
) -> Summary:
    """Show ``new`` (items sanitised) as the feed's summary box, replacing any other."""
    return await _set(
        store, feed, "summary", lambda v: summary_of(new, v, AT), expected, editor, intent
    )


_Story = TypeVar("_Story", Lead, Summary)


async def _set(
    store: Store,
    feed: Feed,
    kind: str,
    build: Callable[[int], _Story],
    expected: int | None,
    editor: str,
    intent: Intent | None,
) -> _Story:
    """Append ``build(next version)`` as the ``kind``, retried on top of a newer version when
    no ``expected`` one was given; returned with the time Redis gave it."""
    for _ in range(_ATTEMPTS):
        version = await _version(store, feed, kind, expected)
        value = build(version + 1)
        at = await _append(store, feed, kind, value, version, expected, editor, intent)
        if at is not None:
            return msgspec.structs.replace(value, updated_at=at)
    raise Conflict(f"the {kind} keeps changing; try again", code="busy")


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


# --- export and import --------------------------------------------------------------------------


async def export_lines(store: Store, feed: Feed) -> list[bytes]:
    """The lead and the summary as they stand, one JSON line each (``{"lead": {...}}``,
    ``{"summary": {...}}``), for a whole-feed export; none when neither is set."""
    lead, summary, _, _ = await store.story(feed.slug)
    values = (("lead", lead), ("summary", summary))
    return [orjson.dumps({k: v}, default=msgspec.to_builtins, option=_NEWLINE)
            for k, v in values if v is not None]  # fmt: skip


_NEWLINE = orjson.OPT_APPEND_NEWLINE


def parse_line(data: dict[str, Any]) -> Lead | Summary:
    """An exported lead or summary line (its one key names which), validated as editors' input
    is, with the ``version`` and ``updated_at`` it had; ValidationFailed otherwise."""
    ((kind, value),) = data.items()
    if not isinstance(value, dict):
        raise ValidationFailed(f"{kind} must be an object", code="invalid_type", field=kind)
    fields = dict(value)
    version, updated_at = fields.pop("version", None), fields.pop("updated_at", None)
    media = exported_media(fields.pop("media", None)) if kind == "lead" else ()
    if type(version) is not int or version < 1:
        raise ValidationFailed("version must be a positive whole number", field="version")
    when = _instant(updated_at)
    if kind == "lead":
        lead = parse_lead(fields, "")
        lead.body = sanitize_body(lead.body)
        lead.media = media
        return lead_of(lead, version, when)
    summary = parse_summary(fields)
    summary.items = tuple(sanitize_body(item) for item in summary.items)
    return summary_of(summary, version, when)


STORY_LINES = frozenset({"lead", "summary"})
"""The one key of an export line that is the lead or the summary rather than a brief."""


def _instant(value: Any) -> str:
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValidationFailed("updated_at must be ISO 8601 with a time zone", field="updated_at")
    return iso_ms(round(when.timestamp() * 1000))


async def restore(store: Store, feed: Feed, value: Lead | Summary, editor: str) -> None:
    """Put an imported lead or summary in place as it was exported: its text, version and time
    (a version at or below the feed's own is moved past it, so versions never go back)."""
    kind = "lead" if isinstance(value, Lead) else "summary"
    for _ in range(_ATTEMPTS):
        _, _, lead_version, summary_version = await store.story(feed.slug)
        current = lead_version if kind == "lead" else summary_version
        stored = msgspec.structs.replace(value, version=max(value.version, current + 1))
        body: dict[str, Any] = msgspec.to_builtins(stored)
        change = Append.set_story(kind, body, current, editor, next_version=stored.version)
        try:
            await store.append(feed.slug, change)
        except PreconditionFailed:
            continue
        return
    raise Conflict(f"the {kind} keeps changing; try again", code="busy")
