"""A feed: its stored and wire form (Feed) and what editors send to create or change one.

Pure: no I/O. Fields, limits and error codes come from ``livefeed.model.schema``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfoNotFoundError, available_timezones

import msgspec
from msgspec import Meta, Struct

from livefeed.model.days import zone
from livefeed.model.ids import FULL_ID_PATTERN, iso_ms
from livefeed.model.schema import (
    DEFAULT_LANGUAGE,
    DESCRIPTION_MAX,
    LANGUAGE_MAX,
    LANGUAGE_RE,
    SLUG_MAX,
    SLUG_RE,
    TITLE_MAX,
    Description,
    Instant,
    Language,
    Slug,
    Status,
    Timezone,
    Title,
    _meta,
    collapsed_line,
    decode,
    refusal,
)
from livefeed.model.text import _clean_line, obeys_text_rule


class Feed(Struct, frozen=True):
    """A feed; ``status``, ``ended_at`` and ``pinned`` change as editors work (feed meta)."""

    slug: Slug
    title: Annotated[str, Meta(min_length=1, max_length=TITLE_MAX)]
    timezone: Annotated[str, Meta(description="IANA time zone name")]
    created_at: Instant
    status: Status = "live"
    ended_at: Instant | None = None
    pinned: Annotated[str, _meta("id of the pinned brief", pattern=FULL_ID_PATTERN)] | None = None
    language: Annotated[
        str, _meta("BCP 47 language tag of what the feed publishes, e.g. uk or en-GB")
    ] = DEFAULT_LANGUAGE
    description: Annotated[str, _meta("what the feed covers; empty: pages say 'Live updates'")] = ""

    def to_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = msgspec.to_builtins(self)
        return value

    def identity(self) -> dict[str, Any]:
        """What never changes after creation: the stored feed record."""
        return {k: v for k, v in self.to_dict().items() if k in _FEED_IDENTITY}


_FEED_IDENTITY = {"slug", "title", "timezone", "language", "description", "created_at"}


class NewFeed(Struct, forbid_unknown_fields=True):
    """A feed to create."""

    slug: Slug
    title: Title
    timezone: Timezone
    language: Language = DEFAULT_LANGUAGE
    description: Description = ""

    def __post_init__(self) -> None:
        validate_slug(self.slug)
        self.title = validate_title(self.title)
        self.timezone = validate_timezone(self.timezone)
        self.language = validate_language(self.language)
        self.description = validate_description(self.description)


class FeedPatch(Struct, forbid_unknown_fields=True):
    """``status`` ends or reopens coverage, ``title`` retitles, ``language`` is pages' lang,
    ``description`` their meta description."""

    json_schema_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    status: Status | None = None
    title: Title | None = None
    language: Language | None = None
    description: Description | None = None

    def __post_init__(self) -> None:
        if self.title is not None:
            self.title = validate_title(self.title)
        if self.language is not None:
            self.language = validate_language(self.language)
        if self.description is not None:
            self.description = validate_description(self.description)


def validate_slug(value: str) -> str:
    if SLUG_RE.fullmatch(value) is None:
        raise refusal("type", "slug", f"slug must be 1-{SLUG_MAX} characters of a-z, 0-9 and '-'")
    return value


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(value: str) -> str:
    message = "timezone must be an IANA time zone name such as Europe/Kyiv"
    if value not in _known_zones():
        raise refusal("type", "timezone", message)
    try:
        zone(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise refusal("type", "timezone", f"unknown time zone {value!r}") from None
    return value


def validate_language(value: str) -> str:
    """A BCP 47 tag in its usual case (``en-gb`` becomes ``en-GB``): pages say it in ``lang``."""
    match = LANGUAGE_RE.fullmatch(value)
    if match is None or len(value) > LANGUAGE_MAX:
        message = "language must be a BCP 47 language tag such as uk, ar or en-GB"
        raise refusal("type", "language", message)
    language, script, region, variants = match.groups()
    parts = [language.lower(), script and script.title(), region and region.upper()]
    return "-".join(p for p in parts if p) + variants.lower()


def validate_title(value: str) -> str:
    """A feed's title, on creation or retitling: 1-TITLE_MAX characters, whitespace collapsed."""
    return collapsed_line(value, "title", TITLE_MAX, required=True)


def validate_description(value: str) -> str:
    """A feed's description: up to DESCRIPTION_MAX characters, whitespace collapsed."""
    return collapsed_line(value, "description", DESCRIPTION_MAX, required=False)


def parse_new_feed(payload: Any, created_ms: int) -> Feed:
    """Validate a ``{"slug", "title", "timezone"[, "language"]}`` object into a Feed."""
    new = decode(payload, NewFeed)
    return Feed(new.slug, new.title, new.timezone, iso_ms(created_ms), language=new.language,
                description=new.description)  # fmt: skip


def clean_feed(feed: Feed) -> Feed:
    """``feed`` with a title that obeys the text rule (a title stored before it may not)."""
    if obeys_text_rule(feed.title) and obeys_text_rule(feed.description):
        return feed
    return msgspec.structs.replace(feed, title=_clean_line(feed.title, "\ufffd"),
                                   description=_clean_line(feed.description, ""))  # fmt: skip
