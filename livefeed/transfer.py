"""Moving history in and out: JSON Lines of briefs as they stand, oldest first.

One brief per line, ``{"published_at", "updated_at", "version", "headline", "body", "author",
"url", "tags", "key_event"}``; only ``published_at`` and ``headline`` are required on import.
An import appends each brief at its original time (the stream id is derived from
``published_at``), so days and replays come out right; exporting an import of an export gives
the same bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from livefeed.append import AT, ID, Append, AppendRefused
from livefeed.days import day_containing
from livefeed.errors import LivefeedError, ValidationFailed
from livefeed.models import BriefDraft, Feed, StreamId, brief_dict, iso_ms, parse_new_brief
from livefeed.store import Store

EXPORT_FIELDS = (
    "published_at",
    "updated_at",
    "version",
    "headline",
    "body",
    "author",
    "url",
    "tags",
    "key_event",
)
BATCH = 2000

Progress = Callable[[int, int], None]


class ImportRejected(LivefeedError):
    """A line of an import is not acceptable; nothing was imported."""

    status = 422
    default_code = "import_rejected"

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class ImportedBrief:
    line: int
    at_ms: int
    draft: BriefDraft
    version: int = 1
    updated_at: str | None = None


def export_line(brief: dict[str, Any]) -> bytes:
    """A brief as one JSON line, fields in a fixed order."""
    defaults = {"updated_at": None, "version": 1, "key_event": False}
    line = {k: brief.get(k, defaults.get(k)) for k in EXPORT_FIELDS}
    return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)


async def export_briefs(
    store: Store, feed: Feed, start_ms: int, end_ms: int, page: int = 1000
) -> AsyncIterator[list[bytes]]:
    """Yield pages of export lines for briefs published in ``[start_ms, end_ms]``."""
    cursor: StreamId | None = None
    while True:
        briefs, cursor = await store.briefs_between(feed.slug, start_ms, end_ms, cursor, page)
        if briefs:
            yield [export_line(b) for b in briefs]
        if cursor is None:
            return


def parse_import(lines: Iterable[bytes | str], after: StreamId) -> list[ImportedBrief]:
    """Validate every line before anything is written; raise ImportRejected naming the line.

    Lines must be in time order and not older than ``after`` (the feed's last event).
    """
    out: list[ImportedBrief] = []
    last_ms = after.ms
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ImportRejected(number, f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ImportRejected(number, "each line must be a JSON object")
        data = dict(data)
        at_ms = _published_ms(number, data.pop("published_at", None))
        version = data.pop("version", 1)
        if type(version) is not int or version < 1:
            raise ImportRejected(number, "version must be a positive whole number")
        updated = data.pop("updated_at", None)
        updated_at = None
        if updated is not None:
            updated_ms = _published_ms(number, updated, "updated_at")
            if updated_ms < at_ms:
                raise ImportRejected(number, "updated_at is before published_at")
            updated_at = iso_ms(updated_ms)
        try:
            draft = parse_new_brief(data, default_author="")
        except (ValidationFailed, LivefeedError) as exc:
            raise ImportRejected(number, exc.message) from None
        if at_ms < last_ms:
            if out:
                raise ImportRejected(number, "published_at is earlier than the line before")
            raise ImportRejected(number, "published_at is earlier than what the feed already holds")
        last_ms = at_ms
        out.append(ImportedBrief(number, at_ms, draft, version, updated_at))
    return out


def _published_ms(line: int, value: Any, name: str = "published_at") -> int:
    if not isinstance(value, str):
        raise ImportRejected(line, f"{name} is required (ISO 8601 with a time zone)")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ImportRejected(line, f"{name} {value!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise ImportRejected(line, f"{name} needs a time zone (Z or an offset)")
    ms = round(when.timestamp() * 1000)
    if ms <= 0:
        raise ImportRejected(line, f"{name} must be after 1970")
    return ms


async def import_briefs(
    store: Store, feed: Feed, briefs: list[ImportedBrief], progress: Progress | None = None
) -> list[StreamId]:
    """Append parsed briefs at their original times, all or nothing.

    If Redis refuses one (someone published to the feed meanwhile, say), what this import had
    appended is removed again and ImportRejected names the line.
    """
    appended: list[StreamId] = []
    batches = [briefs[start : start + BATCH] for start in range(0, len(briefs), BATCH)]
    pending: asyncio.Task[list[StreamId]] | None = None
    pending_batch: list[ImportedBrief] = []
    try:
        for batch in [*batches, []]:
            # Build the next batch while Redis works on the one sent before it.
            changes = [_change(feed, item) for item in batch]
            if pending is not None:
                appended += await pending
                if progress is not None:
                    progress(len(appended), len(briefs))
                pending = None
            if changes:
                pending = asyncio.create_task(store.append_many(feed.slug, changes))
                pending_batch = batch
                await asyncio.sleep(0)  # let it write its pipeline before we build on
    except AppendRefused as exc:
        appended += exc.appended
        await store.remove(feed.slug, appended, _days_of(feed, appended))
        line = pending_batch[exc.index].line
        raise ImportRejected(line, f"refused by Redis: {exc.reason}") from None
    except BaseException:
        if pending is not None:
            pending.cancel()
        await store.remove(feed.slug, appended, _days_of(feed, appended))
        raise
    return appended


def _change(feed: Feed, item: ImportedBrief) -> Append:
    return Append(
        "brief",
        brief_dict(item.draft, ID, AT, version=item.version, updated_at=item.updated_at),
        item.at_ms,
        extra={"editor": "import"},
        strict=True,
        day=day_containing(item.at_ms, feed.timezone),
        day_delta=1,
        state="set",
        history=True,
        key_event=item.draft.key_event or None,
    )


def _days_of(feed: Feed, ids: list[StreamId]) -> dict[str, int]:
    days: dict[str, int] = {}
    for entry_id in ids:
        iso = day_containing(entry_id.ms, feed.timezone).iso
        days[iso] = days.get(iso, 0) + 1
    return days
