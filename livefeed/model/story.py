"""The story so far: a feed's lead (the article at the top) and its summary box ("What we know").

Pure: no I/O. Each has one stored and wire form (Lead, Summary: the JSON of ``encode_story``),
kept in the feed's meta hash and carried by its events (``lead_updated``/``lead_cleared``,
``summary_updated``/``summary_cleared``); and a model editors send (NewLead, NewSummary).
Each has a version of its own, counted on across clears, so an ``If-Match`` made before a
clear fails with 412 rather than bringing the old text back. Limits and error codes are
``model/schema.py``'s. Bodies and items leave here validated but unsanitised: the caller
sanitises them (``sanitize_body``) before they are stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from livefeed.errors import ValidationFailed
from livefeed.model.schema import (
    ALT_MAX,
    AUTHOR_MAX,
    CAPTION_MAX,
    CREDIT_MAX,
    HEADLINE_MAX,
    LEAD_MEDIA_MAX,
    MEDIA_ID_MAX,
    STANDFIRST_MAX,
    SUMMARY_ITEM_MAX,
    SUMMARY_ITEMS_MAX,
    SUMMARY_TITLE_MAX,
    Author,
    Body,
    Headline,
    Instant,
    Version,
    _line,
    _meta,
    collapsed_line,
    decode,
)
from livefeed.model.text import TEXT_PATTERN, check_text

DEFAULT_SUMMARY_TITLE = "What we know"

_MEDIA_ID_PATTERN = rf"^[A-Za-z0-9_-]{{1,{MEDIA_ID_MAX}}}$"
_MEDIA_ID = re.compile(_MEDIA_ID_PATTERN[1:-1])


class MediaRef(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A picture in the lead, by the id media storage gave it; ``alt`` unless ``decorative``.

    The shape of a brief's media reference; URLs come from media storage once it exists, so
    pages render the caption and credit of a reference, and an image only when given its URL.
    """

    id: Annotated[str, _meta("the media id an upload returned", pattern=_MEDIA_ID_PATTERN)]
    alt: Annotated[
        str, _line(ALT_MAX, "what the picture shows, for who cannot see it", blank=True)
    ] = ""
    caption: Annotated[str, _line(CAPTION_MAX, "shown under the picture", blank=True)] = ""
    credit: Annotated[str, _line(CREDIT_MAX, "who took or owns it", blank=True)] = ""
    decorative: bool = False

    def __post_init__(self) -> None:
        if not _MEDIA_ID.fullmatch(self.id):
            raise ValidationFailed(
                f"media id must be 1-{MEDIA_ID_MAX} characters of A-Z, a-z, 0-9, '_' and '-'",
                code="invalid_field",
                field="media",
            )
        for name, limit in (("alt", ALT_MAX), ("caption", CAPTION_MAX), ("credit", CREDIT_MAX)):
            value = collapsed_line(getattr(self, name), name, limit, required=False)
            msgspec.structs.force_setattr(self, name, value)
        if not self.alt and not self.decorative:
            raise ValidationFailed(
                'each picture needs alt text (or "decorative": true)',
                code="missing_alt",
                field="media",
            )


Media = Annotated[tuple[MediaRef, ...], Meta(
    max_length=LEAD_MEDIA_MAX, description=f"at most {LEAD_MEDIA_MAX} pictures"
)]  # fmt: skip
Standfirst = Annotated[str, _line(STANDFIRST_MAX, "the lead's summary line", blank=True)]
SummaryTitle = Annotated[str, _line(SUMMARY_TITLE_MAX, "the box's heading")]
SummaryItem = Annotated[str, Meta(  # its length is checked by NewSummary: too_long, not too_many
    extra_json_schema={"pattern": TEXT_PATTERN, "maxLength": SUMMARY_ITEM_MAX},
    description="one point: plain text or HTML, reduced as a brief's body is",
)]  # fmt: skip
SummaryItems = Annotated[tuple[SummaryItem, ...], Meta(
    max_length=SUMMARY_ITEMS_MAX, description=f"1 to {SUMMARY_ITEMS_MAX} points, in order"
)]  # fmt: skip
_BaseVersion = Annotated[Version | None, _meta("the version edited; the same as If-Match")]


class NewLead(Struct, forbid_unknown_fields=True, kw_only=True):
    """The lead to show at the top of the feed, replacing any other."""

    headline: Headline
    standfirst: Standfirst = ""
    body: Body = ""
    media: Media = ()
    author: Author | None = None
    version: _BaseVersion = None

    def __post_init__(self) -> None:
        self.headline = collapsed_line(self.headline, "headline", HEADLINE_MAX, required=True)
        self.standfirst = collapsed_line(self.standfirst, "standfirst", STANDFIRST_MAX,
                                         required=False)  # fmt: skip
        check_text(self.body, "body")
        self.author = collapsed_line(self.author or "", "author", AUTHOR_MAX, required=False)


class NewSummary(Struct, forbid_unknown_fields=True, kw_only=True):
    """The summary box: a title and its points, replacing any other."""

    items: SummaryItems
    title: SummaryTitle = DEFAULT_SUMMARY_TITLE
    version: _BaseVersion = None

    def __post_init__(self) -> None:
        self.title = collapsed_line(self.title, "title", SUMMARY_TITLE_MAX, required=True)
        if not self.items:
            raise ValidationFailed(
                "a summary needs at least one item (DELETE clears it)",
                code="empty_field",
                field="items",
            )
        for item in self.items:
            if not check_text(item, "items").strip():
                raise ValidationFailed("items must not be empty", code="empty_field",
                                       field="items")  # fmt: skip
            if len(item) > SUMMARY_ITEM_MAX:
                raise ValidationFailed(f"each item must be at most {SUMMARY_ITEM_MAX} characters",
                                       code="too_long", field="items")  # fmt: skip


class Lead(Struct, frozen=True, kw_only=True):
    """The lead as stored and sent: sanitised, at its ``version``, with who wrote it."""

    version: Version
    updated_at: Instant
    headline: Annotated[str, Meta(min_length=1, max_length=HEADLINE_MAX)]
    standfirst: str = ""
    body: Annotated[str, Meta(description="sanitised HTML")] = ""
    media: tuple[MediaRef, ...] = ()
    author: str = ""


class Summary(Struct, frozen=True, kw_only=True):
    """The summary box as stored and sent: each item sanitised HTML."""

    version: Version
    updated_at: Instant
    title: str = DEFAULT_SUMMARY_TITLE
    items: Annotated[tuple[str, ...], Meta(description="sanitised HTML, one per point")] = ()


def parse_lead(payload: Any, default_author: str) -> NewLead:
    """Validate a lead; the author defaults to the editor's name. The body is left to sanitise."""
    lead = decode(payload, NewLead)
    if not lead.author:
        lead.author = default_author
    return lead


def parse_summary(payload: Any) -> NewSummary:
    """Validate a summary; its items are left to sanitise."""
    return decode(payload, NewSummary)


def lead_of(new: NewLead, version: int, updated_at: str) -> Lead:
    """``new`` (sanitised) as the lead at ``version``."""
    return Lead(version=version, updated_at=updated_at, headline=new.headline,
                standfirst=new.standfirst, body=new.body, media=new.media,
                author=new.author or "")  # fmt: skip


def summary_of(new: NewSummary, version: int, updated_at: str) -> Summary:
    """``new`` (items sanitised) as the summary at ``version``."""
    return Summary(version=version, updated_at=updated_at, title=new.title, items=new.items)


_LEAD = msgspec.json.Decoder(Lead)
_SUMMARY = msgspec.json.Decoder(Summary)


def decode_lead(raw: bytes) -> Lead:
    """A stored lead (its text was checked against the text rule when it was written)."""
    return _LEAD.decode(raw)


def decode_summary(raw: bytes) -> Summary:
    """A stored summary (its text was checked against the text rule when it was written)."""
    return _SUMMARY.decode(raw)
