"""Calendar days in a feed's time zone: parsing, exact bounds in UTC ms, local clock labels.

A day runs from the first millisecond whose local date is that day to the last one, so a day on
which clocks change has 23 or 25 hours (or whatever the zone's rules say).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from livefeed.errors import BadRequest
from livefeed.model.ids import now_ms

FIRST_DAY = date(1970, 1, 2)
LAST_DAY = date(9998, 12, 31)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?")


@dataclass(frozen=True, slots=True)
class Day:
    """One local calendar day of a feed: ``start_ms`` to ``end_ms`` inclusive."""

    date: date
    timezone: str
    start_ms: int
    end_ms: int

    @property
    def iso(self) -> str:
        return self.date.isoformat()

    @property
    def hours(self) -> float:
        return (self.end_ms + 1 - self.start_ms) / 3_600_000

    def at_clock(self, hh: int, mm: int, ss: int = 0) -> int:
        """The first instant that shows ``hh:mm:ss`` on this day's local clock, clamped to the day.

        In a repeated hour (clocks going back) that is the first pass; in a skipped hour (clocks
        going forward) it is the instant the clocks jumped.
        """
        local = datetime.combine(self.date, time(hh, mm, ss), tzinfo=zone(self.timezone))
        ms = _utc_ms(local)
        return min(max(ms, self.start_ms), self.end_ms)

    def contains(self, ms: int) -> bool:
        return self.start_ms <= ms <= self.end_ms


def _utc_ms(local: datetime) -> int:
    return int(local.timestamp() * 1000)


def day_of(value: date, timezone: str) -> Day:
    tz = zone(timezone)
    start = _utc_ms(datetime.combine(value, time(0), tzinfo=tz))
    end = _utc_ms(datetime.combine(value + timedelta(days=1), time(0), tzinfo=tz)) - 1
    return Day(value, timezone, start, end)


def parse_day(raw: str, timezone: str) -> Day:
    """``YYYY-MM-DD`` that is a real date, else BadRequest."""
    if _DATE_RE.fullmatch(raw) is None:
        raise BadRequest("a day is written YYYY-MM-DD", code="bad_date")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{raw} is not a date on the calendar", code="bad_date") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise BadRequest(
            f"days run from {FIRST_DAY} to {LAST_DAY}", code="bad_date"
        )  # stream ids count milliseconds from 1970
    return day_of(value, timezone)


def day_containing(ms: int, timezone: str) -> Day:
    local = datetime.fromtimestamp(ms / 1000, tz=zone(timezone))
    return day_of(local.date(), timezone)


def days_around(ms: int, timezone: str) -> tuple[Day, Day, Day]:
    """The local days before, of and after ``ms``: where an event stamped by another clock (Redis's)
    a little earlier or later than ``ms`` falls."""
    local = datetime.fromtimestamp(ms / 1000, tz=zone(timezone)).date()
    return _days_around(local, timezone)


@lru_cache(maxsize=256)
def _days_around(local: date, timezone: str) -> tuple[Day, Day, Day]:
    one = timedelta(days=1)
    return day_of(local - one, timezone), day_of(local, timezone), day_of(local + one, timezone)


def parse_clock(raw: str) -> tuple[int, int, int]:
    """``HH:MM`` or ``HH:MM:SS`` on a 24-hour clock, else BadRequest."""
    match = _CLOCK_RE.fullmatch(raw)
    if match is None:
        raise BadRequest("from is a local time written HH:MM or HH:MM:SS", code="bad_from")
    hh, mm, ss = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hh > 23 or mm > 59 or ss > 59:
        raise BadRequest("from is not a time on a 24-hour clock", code="bad_from")
    return hh, mm, ss


def local_clock(ms: int, timezone: str) -> str:
    """``HH:MM:SS`` on the feed's local clock."""
    return datetime.fromtimestamp(ms / 1000, tz=zone(timezone)).strftime("%H:%M:%S")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time_label(ms: int, tz: str, now: int | None = None) -> str:
    """``HH:MM`` in the feed's zone, or ``D Mon HH:MM`` when not on today's local date."""
    zi = zone(tz)
    when = datetime.fromtimestamp(ms / 1000, tz=zi)
    today = datetime.fromtimestamp((now if now is not None else now_ms()) / 1000, tz=zi).date()
    if when.date() == today:
        return when.strftime("%H:%M")
    return f"{when.day} {when.strftime('%b %H:%M')}"


def zone_label(tz: str, ms: int | None = None) -> str:
    """The zone's abbreviation right now (``EET``/``EEST``), or its UTC offset when it has none."""
    when = datetime.fromtimestamp((ms if ms is not None else now_ms()) / 1000, tz=zone(tz))
    return when.tzname() or when.strftime("UTC%z")
