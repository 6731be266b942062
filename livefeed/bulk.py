"""Imports into Redis: a batch of briefs per script call (``bulk.lua``), with the writes that
``append.lua`` would make for each of them, but a few commands for the whole batch.

The caller numbers the briefs itself (``next_id``) and fills each brief's id and time into its
JSON; the script first checks that the stream's last id is still the one the numbering started
from. So a batch is written whole or not at all, and once a batch is refused (someone published
to the feed meanwhile, say) every batch after it is refused too: what was written is always a
prefix of what was sent, and ``undo`` removes it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livefeed.metrics import EVENTS_PUBLISHED
from livefeed.models import StreamId
from livefeed.store import Store

BULK_LUA = (Path(__file__).parent / "bulk.lua").read_text()
PER_CALL = 500
"""Briefs per script call: they share one fsync; Redis serves nobody else for ~10 ms."""

HEAD = b'{"brief":'
"""The stream entry is ``{"brief": <the brief's state>, "editor": "import"}``."""
TAIL = b',"editor":"import"}'


@dataclass(frozen=True, slots=True)
class BulkBrief:
    """One brief ready to write: its entry id, its JSON (id and time filled in), its local day."""

    id: StreamId
    state: bytes
    day: str
    key_event: bool


class BulkRefused(Exception):
    """Redis refused a batch; ``written`` are the ids that went in before (and, should any
    batch after the refused one have gone through, those too)."""

    def __init__(self, index: int, reason: str, written: list[StreamId]) -> None:
        super().__init__(f"brief {index} refused: {reason}")
        self.index = index
        self.reason = reason
        self.written = written


def next_id(last: StreamId, at_ms: int) -> StreamId:
    """The id append.lua gives an entry at ``at_ms`` after ``last`` (strict: never older)."""
    return StreamId(last.ms, last.seq + 1) if at_ms <= last.ms else StreamId(at_ms, 0)


class BulkWriter:
    """Writes batches of briefs to one feed's stream and state; safe to use from one task."""

    def __init__(self, store: Store, slug: str, per_call: int | None = None) -> None:
        self.store = store
        self.slug = slug
        self.per_call = per_call or PER_CALL
        self._keys = store.script_keys(slug)

    async def _cmd(self, *args: Any) -> Any:
        return await self.store.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    async def last_id(self) -> StreamId:
        """The stream's last id as the scripts see it (ZERO_ID for an empty feed)."""
        raw = await self._cmd("GET", self._keys[-1])
        if raw is not None:
            return StreamId.parse(raw.decode() if isinstance(raw, bytes) else str(raw))
        return (await self.store.bounds(self.slug)).last_generated

    async def write(self, after: StreamId, briefs: list[BulkBrief]) -> list[StreamId]:
        """Write briefs numbered from ``after``, ``per_call`` to a script call (they share one
        fsync), the calls pipelined in one round trip; returns their ids.

        Raises ``BulkRefused`` naming the first brief of the first batch refused.
        """
        if not briefs:
            return []
        # EVAL, not EVALSHA: nothing to load first (a round trip), no NOSCRIPT to recover from
        pipe = self.store.redis.pipeline(transaction=False)
        starts = range(0, len(briefs), self.per_call)
        expect = after
        for start in starts:
            batch = briefs[start : start + self.per_call]
            pipe.execute_command("EVAL", BULK_LUA, len(self._keys), *self._keys,
                                 *_script_args(expect, batch))  # fmt: skip
            expect = batch[-1].id
        written: list[StreamId] = []
        refused: tuple[int, str] | None = None
        results = await pipe.execute(raise_on_error=False)
        for start, result in zip(starts, results, strict=True):
            text = result if isinstance(result, Exception) else _text(result)
            if isinstance(text, Exception) or text.startswith("LIVEFEED_"):
                refused = refused or (start, str(text))
            else:
                written += [b.id for b in briefs[start : start + self.per_call]]
        EVENTS_PUBLISHED.labels("brief").inc(len(written))
        if refused is not None:
            raise BulkRefused(refused[0], refused[1], written)
        return written

    async def present(self, ids: list[StreamId]) -> list[StreamId]:
        """Those of ``ids`` that are in the feed's time index (written, not yet undone)."""
        if not ids:
            return []
        scores = await self._cmd("ZMSCORE", self.store.index_key(self.slug), *map(str, ids))
        return [entry_id for entry_id, score in zip(ids, scores, strict=True) if score is not None]

    async def undo(self, ids: list[StreamId], days: dict[str, int]) -> None:
        """Remove what ``write`` wrote (a failed import)."""
        await self.store.remove(self.slug, ids, days)


def _script_args(after: StreamId, batch: list[BulkBrief]) -> list[bytes | str | int]:
    args: list[bytes | str | int] = [str(after), HEAD, TAIL, len(batch)]
    for brief in batch:
        args += (str(brief.id), brief.id.ms, brief.state)
    days = Counter(brief.day for brief in batch)
    args.append(len(days))
    for day, count in days.items():
        args += (day, count)
    keys = [str(brief.id) for brief in batch if brief.key_event]
    args += (len(keys), *keys)
    return args


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
