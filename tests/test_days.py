"""Local days in a feed's zone, without I/O: exact bounds across clock changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from livefeed.errors import BadRequest
from livefeed.model.days import day_containing, local_clock, parse_clock, parse_day


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_spring_forward_day_has_23_hours_and_exact_bounds() -> None:
    day = parse_day("2024-03-31", "Europe/Kyiv")
    assert day.hours == 23
    assert day.start_ms == utc_ms("2024-03-30T22:00:00")  # 00:00 EET (UTC+2)
    assert day.end_ms == utc_ms("2024-03-31T21:00:00") - 1  # next midnight is EEST (UTC+3)


def test_fall_back_day_has_25_hours() -> None:
    day = parse_day("2024-10-27", "Europe/Kyiv")
    assert day.hours == 25
    assert day.start_ms == utc_ms("2024-10-26T21:00:00")
    assert day.end_ms == utc_ms("2024-10-27T22:00:00") - 1


def test_an_ordinary_day_has_24_hours_and_days_tile_without_gaps() -> None:
    first = parse_day("2024-06-01", "America/New_York")
    second = parse_day("2024-06-02", "America/New_York")
    assert first.hours == 24
    assert second.start_ms == first.end_ms + 1


def test_day_containing_uses_the_local_date() -> None:
    ms = utc_ms("2024-03-30T22:00:00")  # the first millisecond of 31 March in Kyiv
    assert day_containing(ms, "Europe/Kyiv").iso == "2024-03-31"
    assert day_containing(ms - 1, "Europe/Kyiv").iso == "2024-03-30"
    assert day_containing(ms - 1, "UTC").iso == "2024-03-30"


def test_clock_times_in_a_repeated_hour_take_the_first_pass() -> None:
    day = parse_day("2024-10-27", "Europe/Kyiv")
    assert day.at_clock(3, 30) == utc_ms("2024-10-27T00:30:00")  # 03:30 EEST
    assert local_clock(utc_ms("2024-10-27T01:30:00"), "Europe/Kyiv") == "03:30:00"  # again, EET


def test_clock_times_in_a_skipped_hour_fall_after_the_jump() -> None:
    day = parse_day("2024-03-31", "Europe/Kyiv")
    assert day.at_clock(3, 30) == utc_ms("2024-03-31T01:00:00") + 30 * 60_000
    assert day.at_clock(0, 0) == day.start_ms and day.at_clock(23, 59, 59) <= day.end_ms


@pytest.mark.parametrize(
    "raw", ["2024-02-30", "2023-02-29", "2024-13-01", "24-01-01", "2024-1-1", "today", ""]
)
def test_dates_that_are_not_on_the_calendar_are_rejected(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_day(raw, "UTC")


def test_leap_day_is_a_date() -> None:
    assert parse_day("2024-02-29", "UTC").hours == 24


@pytest.mark.parametrize("raw", ["24:00", "12:60", "7:00", "12:00:61", "noon", "12-00"])
def test_bad_clock_times_are_rejected(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_clock(raw)


def test_clock_times_parse_with_or_without_seconds() -> None:
    assert parse_clock("09:05") == (9, 5, 0)
    assert parse_clock("23:59:59") == (23, 59, 59)
