"""Validation, sanitising, stream ids and times: the pure core, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from websockets.frames import Frame, Opcode

from livefeed.errors import BadRequest, ValidationFailed
from livefeed.model.days import local_time_label
from livefeed.model.frames import event_frame, websocket_text_frame
from livefeed.model.ids import StreamId, iso_ms
from livefeed.model.schema import parse_new_brief, parse_new_feed
from livefeed.model.text import sanitize_body


def test_stream_id_parses_full_and_ms_only_forms_and_orders_like_redis() -> None:
    assert StreamId.parse("1700000000000-5") == StreamId(1700000000000, 5)
    assert StreamId.parse("1700000000000") == StreamId(1700000000000, 0)
    assert StreamId(1, 9) < StreamId(2, 0) < StreamId(2, 1)
    assert str(StreamId(3, 4).next()) == "3-5"


@pytest.mark.parametrize("raw", ["", "abc", "1-", "-1", "1-2-3", "1.5", " 1-0", "1-0 ", "9" * 21])
def test_stream_id_rejects_malformed_input(raw: str) -> None:
    with pytest.raises(BadRequest):
        StreamId.parse(raw, name="since")


def test_iso_ms_is_utc_with_milliseconds() -> None:
    assert iso_ms(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"


@pytest.mark.parametrize(
    "ms", [0, 1, 999, 86_399_999, 86_400_000, 951_782_400_000, 1_711_846_799_999, 4_102_444_799_999]
)
def test_iso_ms_matches_datetime_at_day_and_year_edges(ms: int) -> None:
    """The integer formatter writes what datetime's own ISO form says, to the millisecond."""
    expected = datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=ms % 1000 * 1000)
    assert iso_ms(ms) == expected.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_local_time_label_uses_feed_zone_and_adds_date_for_other_days() -> None:
    ms = 1_700_000_000_000  # 22:13 UTC = 00:13 next day in Kyiv (UTC+2)
    assert local_time_label(ms, "Europe/Kyiv", now=ms) == "00:13"
    assert local_time_label(ms, "UTC", now=ms + 86_400_000) == "14 Nov 22:13"


def test_plain_text_body_becomes_paragraphs_and_is_escaped() -> None:
    body = sanitize_body("First line\nsecond line\n\nSecond para with a < b & c")
    assert body == "<p>First line<br>second line</p><p>Second para with a &lt; b &amp; c</p>"


def test_html_body_keeps_only_the_allowed_subset() -> None:
    dirty = (
        '<p onclick="x()">Hi <script>alert(1)</script><strong>bold</strong> '
        '<a href="javascript:alert(1)">bad</a> <a href="https://example.org/x">ok</a>'
        '<img src=x onerror=alert(1)><iframe src="https://evil"></iframe></p><ul><li>a</li></ul>'
    )
    clean = sanitize_body(dirty)
    assert "script" not in clean and "onclick" not in clean and "javascript" not in clean
    assert "<img" not in clean and "<iframe" not in clean
    assert "<strong>bold</strong>" in clean and "<ul><li>a</li></ul>" in clean
    assert 'href="https://example.org/x"' in clean


def test_brief_payload_is_normalised() -> None:
    draft = parse_new_brief(
        {
            "headline": "  Two   spaces ",
            "body": "x",
            "tags": ["a", "a", " b "],
            "url": "https://e.org",
        },
        default_author="Desk",
    )
    assert draft.headline == "Two spaces"
    assert draft.author == "Desk"
    assert draft.tags == ("a", "b")
    assert draft.url == "https://e.org"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "x"}, "headline"),
        ({"headline": "   "}, "headline"),
        ({"headline": 5}, "headline"),
        ({"headline": "h" * 301}, "headline"),
        ({"headline": "h", "body": "b" * 20_001}, "body"),
        ({"headline": "h", "body": ["x"]}, "body"),
        ({"headline": "h", "author": 3}, "author"),
        ({"headline": "h", "url": "ftp://x"}, "url"),
        ({"headline": "h", "url": "javascript:alert(1)"}, "url"),
        ({"headline": "h", "tags": "x"}, "tags"),
        ({"headline": "h", "tags": [""]}, "tags"),
        ({"headline": "h", "tags": [str(i) for i in range(11)]}, "tags"),
        ({"headline": "h", "extra": 1}, "extra"),
    ],
)
def test_bad_brief_fields_are_named_in_the_error(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_new_brief(payload, default_author="Desk")
    assert info.value.field == field
    assert info.value.status == 422


def test_brief_payload_must_be_an_object() -> None:
    with pytest.raises(BadRequest):
        parse_new_brief(["headline"], default_author="Desk")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slug": "Bad Slug", "title": "t", "timezone": "UTC"}, "slug"),
        ({"slug": "x" * 65, "title": "t", "timezone": "UTC"}, "slug"),
        ({"slug": "ok", "title": "t", "timezone": "Mars/Olympus"}, "timezone"),
        ({"slug": "ok", "title": "", "timezone": "UTC"}, "title"),
    ],
)
def test_bad_feed_fields_are_rejected(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_new_feed(payload, 0)
    assert info.value.field == field


def test_event_frame_wraps_stored_data_without_reencoding() -> None:
    data = orjson.dumps({"brief": {"id": "1-0", "headline": "é"}})
    frame = orjson.loads(event_frame("brief", "1-0", data))
    assert frame == {"type": "brief", "event_id": "1-0", "brief": {"id": "1-0", "headline": "é"}}
    assert orjson.loads(event_frame("ping", "2-0", b"{}")) == {"type": "ping", "event_id": "2-0"}


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_a_broadcast_frame_is_what_websockets_would_send_for_the_text(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert websocket_text_frame(payload) == expected
