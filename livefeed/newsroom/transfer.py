"""Moving history in and out: JSON Lines of briefs as they stand, oldest first (then, in a
whole-feed export, the lead and the summary: ``newsroom.story``).

One brief per line, its fields but the id (``EXPORT_FIELDS``, from ``model.brief.Brief``); only
``published_at`` and ``headline`` are required on import, the rest is validated as NewBrief.
An import appends each brief at its original time (the stream id is derived from
``published_at``), so days and replays come out right; exporting an import of an export gives
the same bytes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
import orjson

from livefeed.errors import LivefeedError, LivefeedException, ValidationFailed
from livefeed.model.brief import (
    Brief,
    BriefDraft,
    Correction,
    encode_brief,
    new_brief,
    parse_new_brief,
)
from livefeed.model.days import Day, day_containing
from livefeed.model.embed import Embed, stored_embeds
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, iso_ms
from livefeed.model.media import exported_media
from livefeed.model.schema import CORRECTION_NOTE_MAX, collapsed_line
from livefeed.model.story import Lead, Summary
from livefeed.model.text import sanitize_body
from livefeed.model.topics import tag_keys
from livefeed.newsroom.story import STORY_LINES, parse_line
from livefeed.storage.bulk import BulkBrief, BulkRefused, BulkWriter, next_id
from livefeed.storage.store import Store

EXPORT_FIELDS = tuple(name for name in Brief.__struct_fields__ if name != "id")
"""A brief's fields but its id, which an import derives again from ``published_at``."""
BATCH = 1000
IN_FLIGHT = 2000
"""Briefs sent ahead of the replies: Redis always has the next batch while we encode."""

Progress = Callable[[int, int], None]


class NotReplicated(LivefeedException):
    """An import was written whole but fewer replicas than ``LIVEFEED_MIN_REPLICAS`` confirmed
    it in time: it stays (a failover before they catch up could lose it)."""

    def __init__(self, written: int, confirmed: int, wanted: int) -> None:
        super().__init__(f"{written} briefs written, confirmed by {confirmed} of {wanted} replicas")
        self.written = written
        self.confirmed = confirmed
        self.wanted = wanted


class ImportStopped(LivefeedException):
    """The import was asked to stop (``stop`` was set); nothing of it is left in the feed."""


class ImportRejected(LivefeedError):
    """A line of an import is not acceptable; nothing was imported."""

    status = 422
    default_code = "import_rejected"

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class ImportedBrief:
    """A validated line. With ``raw_body`` the draft's body is as the line gave it (checked,
    not sanitised yet): ``import_briefs`` sanitises it as it writes, while Redis works."""

    line: int
    at_ms: int
    draft: BriefDraft
    version: int = 1
    updated_at: str | None = None
    raw_body: bool = False
    embeds: tuple[Embed, ...] = ()
    correction: Correction | None = None


def export_line(brief: Brief) -> bytes:
    """A brief as one JSON line: its encoding without the id, fields in the model's order."""
    line = {k: getattr(brief, k) for k in EXPORT_FIELDS}
    return orjson.dumps(line, default=msgspec.to_builtins, option=orjson.OPT_APPEND_NEWLINE)


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


def parse_import(
    lines: Iterable[bytes | str],
    after: StreamId,
    stop: threading.Event | None = None,
    story: list[Lead | Summary] | None = None,
) -> list[ImportedBrief]:
    """Validate every line before anything is written; raise ImportRejected naming the line.

    A line ``{"lead": {...}}`` or ``{"summary": {...}}`` (a whole-feed export ends with them)
    is validated and added to ``story``, for ``newsroom.story.restore`` once the briefs are in;
    without ``story`` such a line is refused.

    Lines must be in time order and not older than ``after`` (the feed's last event). Bodies
    are left to sanitise (``raw_body``): that cannot fail, and costs as much as the rest of
    the validation, so ``import_briefs`` does it while Redis writes the batch before.
    ``stop`` is looked at every ``BATCH`` lines: once set, ImportStopped is raised.
    """
    out: list[ImportedBrief] = []
    last_ms = after.ms
    for number, raw in enumerate(lines, start=1):
        if stop is not None and number % BATCH == 1 and stop.is_set():
            raise ImportStopped
        if not raw.strip():
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ImportRejected(number, f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ImportRejected(number, "each line must be a JSON object")
        if len(data) == 1 and "audit" in data:  # export --audit: the desk's record, not a brief
            continue
        if len(data) == 1 and STORY_LINES.issuperset(data):
            if story is None:
                raise ImportRejected(number, f"a {next(iter(data))} line cannot be imported here")
            try:
                story.append(parse_line(data))
            except LivefeedError as exc:
                raise ImportRejected(number, exc.message) from None
            continue
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
        media = data.pop("media", ())
        correction = _correction(number, data.pop("correction", None), at_ms)
        try:
            embeds = stored_embeds(data.pop("embeds", None) or ())  # snapshots, kept as they are
            draft = parse_new_brief(data, default_author="", sanitize=False)
            draft.media = exported_media(media)
        except (ValidationFailed, LivefeedError) as exc:
            raise ImportRejected(number, exc.message) from None
        if at_ms < last_ms:
            if out:
                raise ImportRejected(number, "published_at is earlier than the line before")
            raise ImportRejected(number, "published_at is earlier than what the feed already holds")
        last_ms = at_ms
        out.append(
            ImportedBrief(
                number, at_ms, draft, version, updated_at, True, embeds, correction=correction
            )
        )
    return out


def _correction(line: int, value: Any, at_ms: int) -> Correction | None:
    """A line's ``correction`` (``{"note", "at"}``, as exported), checked; None if null."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"note", "at"}:
        raise ImportRejected(line, 'correction must be null or {"note": ..., "at": ...}')
    note = value["note"]
    if not isinstance(note, str):
        raise ImportRejected(line, "correction note must be a string")
    try:
        note = collapsed_line(note, "correction note", CORRECTION_NOTE_MAX, required=True)
    except LivefeedError as exc:
        raise ImportRejected(line, exc.message) from None
    at = _published_ms(line, value["at"], "correction at")
    if at < at_ms:
        raise ImportRejected(line, "the correction is dated before the brief")
    return Correction(note=note, at=iso_ms(at))


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


async def check_media(
    store: Store, briefs: list[ImportedBrief], story: Sequence[Lead | Summary] = ()
) -> None:
    """ImportRejected naming the first line whose media are not uploaded here (an archive
    made with ``export --with-media`` brings them); a lead's line is counted as an export
    writes it, after the briefs."""
    leads = [(n, v) for n, v in enumerate(story, (briefs[-1].line if briefs else 0) + 1)
             if isinstance(v, Lead)]  # fmt: skip
    named = [(b.line, b.draft.media) for b in briefs] + [(n, v.media) for n, v in leads]
    found = await store.media.get_many(item.id for _, items in named for item in items)
    for line, items in named:
        for item in items:
            if item.id not in found:
                raise ImportRejected(
                    line, f"media {item.id} is not uploaded here (import an archive "
                    "written by export --with-media)",
                )  # fmt: skip


async def import_briefs(
    store: Store,
    feed: Feed,
    briefs: list[ImportedBrief],
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> list[StreamId]:
    """Append parsed briefs at their original times, all or nothing.

    If Redis refuses a batch (someone published to the feed meanwhile, say), or the import
    fails, is cancelled or is stopped part way, what it had appended is removed again and the
    feed's last id put back; a refusal becomes ImportRejected naming the first line of the
    batch refused. ``stop`` (a flag a signal handler can set) is looked at before each batch
    and each reply: once set, the import is undone and ImportStopped raised. With
    ``store.replicas``, NotReplicated if too few replicas confirm the whole import in time.
    """
    async with BulkWriter(store, feed.slug) as writer:
        mark = await writer.mark()
        last = mark.last
        if briefs and briefs[0].at_ms < last.ms:
            raise ImportRejected(briefs[0].line, f"refused by Redis: the feed is at {last} now")
        encoder = _Encoder(feed, last)
        written: list[StreamId] = []
        days: dict[StreamId, str] = {}  # of every brief sent, to undo day counts
        try:
            for start in range(0, len(briefs), BATCH):
                _check(stop)
                # Encode the next batch while Redis writes those sent before it.
                after = encoder.last
                encoded = [encoder.encode(item) for item in briefs[start : start + BATCH]]
                days.update((brief.id, brief.day) for brief in encoded)
                await writer.send(after, encoded)
                del encoded  # not kept: memory is reused batch after batch
                ahead = IN_FLIGHT if start + BATCH < len(briefs) else 0  # at the end: all
                while writer.in_flight > ahead:
                    written += await writer.receive()
                    _check(stop)
                    if progress is not None:
                        progress(len(written), len(briefs))
        except BaseException as exc:
            written += await writer.settle()
            counts = Counter(days[entry_id] for entry_id in written)
            await writer.undo(written, dict(counts), mark)
            if not isinstance(exc, BulkRefused):
                raise
            reason = exc.reason
            if reason.startswith("LIVEFEED_MOVED"):
                reason = f"the feed is at {reason.split()[1]} now (published to meanwhile?)"
            line = briefs[exc.index].line
            raise ImportRejected(line, f"refused by Redis: {reason}") from None
        if store.replicas and written:
            confirmed = await writer.replicated(
                store.replicas, store.replica_timeout_ms, store.wait_aof
            )
            if confirmed < store.replicas:
                raise NotReplicated(len(written), confirmed, store.replicas)
    return written


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise ImportStopped


class _Encoder:
    """Numbers imported briefs as append.lua would and renders each as its stored JSON.

    Lines come in time order, so the feed's local day and the UTC date are worked out once a
    day rather than once a brief.
    """

    def __init__(self, feed: Feed, last: StreamId) -> None:
        self.feed = feed
        self.last = last
        self._day = Day(date(1970, 1, 1), feed.timezone, 1, 0)  # contains nothing
        self._day_iso = ""

    def encode(self, item: ImportedBrief) -> BulkBrief:
        entry_id = next_id(self.last, item.at_ms)
        self.last = entry_id
        if not self._day.start_ms <= entry_id.ms <= self._day.end_ms:
            self._day = day_containing(entry_id.ms, self.feed.timezone)
            self._day_iso = self._day.iso
        brief = new_brief(
            item.draft,
            str(entry_id),
            iso_ms(entry_id.ms),
            version=item.version,
            updated_at=item.updated_at,
            embeds=item.embeds,
        )
        if item.raw_body:
            brief = msgspec.structs.replace(brief, body=sanitize_body(item.draft.body))
        if item.correction is not None:
            brief = msgspec.structs.replace(brief, correction=item.correction)
        return BulkBrief(entry_id, encode_brief(brief), self._day_iso, item.draft.key_event,
                         tuple(tag_keys(brief.tags)))  # fmt: skip
