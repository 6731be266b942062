"""Stream positions and the time stamps livefeed writes. Pure: no I/O."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from livefeed.errors import BadRequest

_STREAM_ID_RE = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
_U64 = 2**64 - 1


@dataclass(frozen=True, order=True, slots=True)
class StreamId:
    """A Redis stream entry id ``<ms>-<seq>``; ordered like Redis orders them."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: str, *, name: str = "id") -> StreamId:
        """Parse ``"<ms>-<seq>"`` or ``"<ms>"`` (seq 0); raise BadRequest for anything else."""
        match = _STREAM_ID_RE.fullmatch(raw)
        if match is None:
            raise BadRequest(f"{name} must be a stream id like 1718000000000-0", code=f"bad_{name}")
        ms, seq = int(match.group(1)), int(match.group(2) or 0)
        if ms > _U64 or seq > _U64:
            raise BadRequest(f"{name} is out of range", code=f"bad_{name}")
        return cls(ms, seq)

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    def next(self) -> StreamId:
        """The smallest id greater than this one."""
        return StreamId(self.ms, self.seq + 1) if self.seq < _U64 else StreamId(self.ms + 1, 0)


ZERO_ID = StreamId(0, 0)


def iso_ms(ms: int) -> str:
    """UTC ISO 8601 with milliseconds, e.g. ``2026-11-24T20:40:00.123Z``: livefeed's one time
    stamp format (append.lua writes the same for the times Redis chooses). Integer arithmetic
    and a cached date, as an import formats one per brief."""
    day, rest = divmod(ms, 86_400_000)
    seconds, milli = divmod(rest, 1000)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{_utc_date(day)}{_DIGITS[hh]}:{_DIGITS[mm]}:{_DIGITS[ss]}.{_MILLIS[milli]}Z"


@functools.lru_cache(maxsize=64)
def _utc_date(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat() + "T"


_DIGITS = [f"{n:02d}" for n in range(60)]
_MILLIS = [f"{n:03d}" for n in range(1000)]
_EPOCH = date(1970, 1, 1)


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)
