"""The audit: every desk action (a draft saved, submitted, sent back, scheduled, unscheduled,
published, discarded, or its schedule failed), who took it, in which role, and when.

It is read from the desk stream, which is never trimmed, so it is complete; a published
draft's line names both its writer (``owner``) and the editor who published or scheduled it
(``by``), and the brief it became. Admins read it (``GET /api/feeds/{feed}/audit``) and
``livefeed export --audit`` appends it to an export as ``{"audit": line}`` lines, oldest first,
which an import skips.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from livefeed.model.feed import Feed
from livefeed.model.ids import iso_ms
from livefeed.storage.entries import Entry
from livefeed.storage.store import Store

PAGE = 100


def audit_line(entry: Entry) -> dict[str, Any]:
    """One desk event as an audit line."""
    data = entry.payload()
    draft = data.get("draft") or {}
    line: dict[str, Any] = {
        "id": str(entry.id),
        "action": entry.type,
        "at": data.get("at") or iso_ms(entry.id.ms),
        "by": data.get("by"),
        "draft": draft.get("id"),
        "owner": draft.get("owner"),
        "status": draft.get("status"),
        "headline": draft.get("headline"),
        "brief": data.get("brief") or draft.get("brief"),
    }
    for extra in ("reason", "scheduled"):
        if extra in data:
            line[extra] = data[extra]
    if entry.type == "draft_sent_back":
        line["note"] = draft.get("note")
    if entry.type == "draft_scheduled":
        line["scheduled_for"] = draft.get("scheduled_for")
    return line


async def page(
    store: Store, feed: Feed, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` audit lines older than ``cursor``, newest first, and the cursor of the
    next page (None at the oldest)."""
    entries = await store.drafts.desk(feed.slug, cursor, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return [audit_line(e) for e in entries], str(entries[-1].id) if more else None


async def export_lines(store: Store, feed: Feed) -> AsyncIterator[list[bytes]]:
    """The whole audit as export lines, oldest first, a page at a time."""
    cursor: str | None = None
    while True:
        entries = await store.drafts.desk(feed.slug, cursor, PAGE, newest_first=False)
        if not entries:
            return
        yield [orjson.dumps({"audit": audit_line(e)}, option=orjson.OPT_APPEND_NEWLINE)
               for e in entries]  # fmt: skip
        cursor = str(entries[-1].id)
