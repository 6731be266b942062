"""The story so far: a feed's lead (the article at the top) and its summary box ("What we know").

Pure: no I/O. Each has one stored and wire form (Lead, Summary: the JSON of ``encode_story``),
kept in the feed's meta hash and carried by its events (``lead_updated``/``lead_cleared``,
``summary_updated``/``summary_cleared``); and a model editors send (NewLead, NewSummary).
Each has a version of its own, counted on across clears, so an ``If-Match`` made before a
clear fails with 412 rather than bringing the old text back. Limits and error codes are
``model/schema.py``'s. Bodies and items leave here validated but unsanitised: the caller
sanitises them (``sanitize_body``) before they are stored. The lead's pictures are a brief's
media (``model/media.py``): referenced by upload id, resolved against the upload when set.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from livefeed.errors import ValidationFailed
from livefeed.model.brief import resolved
from livefeed.model.media import Media, MediaRef, check_items
from livefeed.model.schema import (
    AUTHOR_MAX,
    HEADLINE_MAX,
    STANDFIRST_MAX,
    SUMMARY_ITEM_MAX,
    SUMMARY_ITEMS_MAX,
    SUMMARY_TITLE_MAX,
    Author,
    Body,
    Headline,
    Instant,
    MediaItems,
    Version,
    _line,
    _meta,
    collapsed_line,
    decode,
)
from livefeed.model.text import TEXT_PATTERN, check_text

DEFAULT_SUMMARY_TITLE = "What we know"

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
    media: MediaItems[MediaRef] = ()
    author: Author | None = None
    version: _BaseVersion = None

    def __post_init__(self) -> None:
        self.headline = collapsed_line(self.headline, "headline", HEADLINE_MAX, required=True)
        self.standfirst = collapsed_line(self.standfirst, "standfirst", STANDFIRST_MAX,
                                         required=False)  # fmt: skip
        check_text(self.body, "body")
        self.media = check_items(self.media)
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
    media: tuple[Media, ...] = ()
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
    """``new`` (sanitised, its media resolved: ``store.media.resolve``) as the lead at
    ``version``."""
    return Lead(version=version, updated_at=updated_at, headline=new.headline,
                standfirst=new.standfirst, body=new.body, media=resolved(new.media),
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
