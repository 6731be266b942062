"""What reads of a feed's stream give back: entries, the stream's bounds, an import's mark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from livefeed.model.ids import StreamId


@dataclass(frozen=True, slots=True)
class Entry:
    """A raw stream entry: position, event type, the stored JSON object, and ``prev``, the id
    generated just before it as text (None for entries written before livefeed recorded it)."""

    id: StreamId
    type: str
    data: bytes
    prev: str | None = None

    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.data)
        return value


@dataclass(frozen=True, slots=True)
class StreamBounds:
    """What a feed's stream still holds, to tell a resumable ``since`` from a lost one."""

    last_generated: StreamId
    first: StreamId | None
    max_deleted: StreamId | None
    length: int = 0


@dataclass(frozen=True, slots=True)
class FeedMark:
    """What a feed's writes had reached before an import, so that undoing it can put it back:
    which of its keys existed, the stream's last id (and, on Redis 7, its entries-added and
    max-deleted-entry-id), the ``last-id`` key, and the days that had a count."""

    existed: tuple[bool, ...]
    """For each of ``Keys.script``, in their order."""
    last_generated: StreamId
    entries_added: int | None
    max_deleted: StreamId | None
    last_id_key: StreamId | None
    days: frozenset[str]

    @property
    def last(self) -> StreamId:
        """The stream's last id as the scripts see it (``stream_last_id()`` in last_id.lua)."""
        return self.last_id_key if self.last_id_key is not None else self.last_generated


def entry_of(raw_id: bytes, fields: dict[bytes, bytes]) -> Entry:
    """An entry from the id and fields Redis returns for it."""
    prev = fields.get(b"p")
    return Entry(
        StreamId.parse(raw_id.decode()),
        fields[b"t"].decode(),
        fields[b"d"],
        None if prev is None else prev.decode(),
    )


def first_unchained(
    after: StreamId, entries: list[Entry], *, trust_unmarked: bool = True
) -> int | None:
    """Where the chain breaks: the index of the first entry that does not name the one before
    it (the first must name ``after``), or None when every one does. Entries written before
    livefeed recorded ``prev`` pass when ``trust_unmarked``."""
    expected = str(after)
    for index, entry in enumerate(entries):
        if not trust_unmarked if entry.prev is None else entry.prev != expected:
            return index
        expected = str(entry.id)
    return None
