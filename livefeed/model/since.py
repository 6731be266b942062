"""What a returning reader missed: the answer of ``GET /api/feeds/{feed}/since/{id}``. Pure.

``newsroom/since.py`` folds the stream after the reader's last event into one ``SinceReport``;
the page (web/js/since.js) turns it into one line. The OpenAPI schema is generated from these.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from livefeed.model.schema import FullId, Instant


class SinceBrief(Struct, frozen=True):
    """A brief the line links to: its id (the permalink's fragment) and its headline now."""

    id: FullId
    headline: Annotated[str, Meta(description="plain text, as it now stands")]


class SinceCorrection(Struct, frozen=True):
    """A public correction, made since, to a brief published at or before the reader's id."""

    id: FullId
    headline: str
    note: Annotated[str, Meta(description="the latest correction's note to readers")]


class SinceLinks(Struct, frozen=True):
    """Where a reader goes when the line cannot say it all (``too_much``)."""

    key_events: Annotated[str, Meta(description="the live page's key events box")]
    days: Annotated[str, Meta(description="the archive, a page per day")]


class SinceReport(Struct, frozen=True, kw_only=True):
    """What happened in a feed after ``since``, folded from one bounded read of its stream.

    ``too_much``: more events than the read takes, or events after ``since`` no longer in the
    stream; then the counts and lists are empty and ``links`` say where to look instead.
    """

    since: FullId
    since_at: Annotated[Instant, Meta(description="the time of `since`: the reader's last visit")]
    last_event_id: Annotated[FullId, Meta(description="the newest event the answer covers")]
    too_much: bool
    new_briefs: Annotated[int, Meta(ge=0, description="briefs published since, still standing")]
    key_events: Annotated[
        tuple[SinceBrief, ...], Meta(description="those of them marked key events, oldest first")
    ]
    corrections: Annotated[
        tuple[SinceCorrection, ...],
        Meta(description="briefs published at or before `since`, publicly corrected since"),
    ]
    retractions: Annotated[
        tuple[FullId, ...], Meta(description="briefs published at or before `since`, retracted")
    ]
    lead_updated: Annotated[bool, Meta(description="the lead was changed or cleared")]
    summary_updated: Annotated[bool, Meta(description="the summary box was changed or cleared")]
    ended: Annotated[bool, Meta(description="coverage ended since (and has not resumed)")]
    links: SinceLinks
